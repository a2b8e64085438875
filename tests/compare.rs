//! `asyncsim compare`, from the real binary: two variants of a file, two
//! seeds, two files, and bad input. The expected figures come from each
//! side's own `summary.json`, written by `asyncsim run` of the same file,
//! variant and seed.

use crate::common;

use common::{assert_bad_input, asyncsim, describe, num, stdout, TempDir};
use serde_json::Value;
use std::path::Path;

fn p(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_string()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Runs `asyncsim compare ARGS... --out OUT`; it must exit 0. Returns
/// stdout and compare.json.
fn compare(args: &[&str], out: &Path) -> (String, Value) {
    let mut all: Vec<String> = vec!["compare".into(), "--no-progress".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["--out".to_string(), p(out)]);
    let o = asyncsim(&all);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    (stdout(&o), read_json(&out.join("compare.json")))
}

/// `asyncsim run FILE --seed SEED` into `out`: its summary.json.
fn run_summary(file: &str, seed: &str, out: &Path) -> Value {
    let o = asyncsim(&["run", file, "--no-progress", "--seed", seed, "--out", &p(out)]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", describe(&o));
    read_json(&out.join("summary.json"))
}

/// The difference of `key` in the `i`-th pair of compare.json.
fn diff<'a>(json: &'a Value, i: usize, key: &str) -> &'a Value {
    let diffs = json["pairs"][i]["differences"].as_array().expect("differences");
    diffs.iter().find(|d| d["key"] == key).unwrap_or_else(|| panic!("no difference `{key}` in {diffs:?}"))
}

/// The line of the table whose label (after the two-column mark) is `label`.
fn row<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.len() > 2 && l[2..].strip_prefix(label).is_some_and(|r| r.starts_with("  ")))
        .unwrap_or_else(|| panic!("no row `{label}` in:\n{out}"))
}

#[test]
fn two_variants_of_a_file_show_what_acks_and_retries_change() {
    let tmp = TempDir::new("compare-variants");
    let file = "scenarios/network-faults.toml";
    let run = run_summary(file, "1", &tmp.path().join("run"));
    let (out, json) =
        compare(&[&format!("{file}:fire-and-forget"), ":acks-retries", "--seed", "1"], &tmp.path().join("c"));
    let (ff, ar) = (&run["variants"]["fire-and-forget"], &run["variants"]["acks-retries"]);
    // Each side is the variant `run` ran, figure for figure.
    assert_eq!(json["a"]["summary"]["variants"]["fire-and-forget"], *ff);
    assert_eq!(json["b"]["summary"]["variants"]["acks-retries"], *ar);
    for key in ["lost", "duplicated", "processed", "errors", "latency_ms.p99"] {
        let d = diff(&json, 0, key);
        let (a, b) = (num(ff, key), num(ar, key));
        assert_eq!((num(d, "a"), num(d, "b"), num(d, "difference")), (a, b, b - a), "{key}");
        assert_eq!(d["differs"], Value::Bool(a != b), "{key}");
    }
    // The known difference: fire-and-forget loses, acks and retries do not.
    let lost = diff(&json, 0, "lost");
    assert!(num(lost, "a") > 0.0 && num(lost, "b") == 0.0, "{lost}");
    assert_eq!(num(lost, "relative"), -1.0);
    let line = row(&out, "lost");
    assert!(line.starts_with('*'), "a row that differs is marked: {line}");
    assert!(line.contains(&format!(" -{} ", num(ff, "lost"))), "B-A is shown: {line}");
    assert!(line.ends_with("-100.0%"), "{line}");
    // acked is 0 in A: no relative change.
    assert!(json["pairs"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["key"] == "acked" && d["relative"].is_null()));
    assert!(row(&out, "produced").starts_with(' '), "equal rows are not marked:\n{out}");
    let kind = row(&out, "errors: ack-timeout");
    assert!(kind.contains(&format!(" {} ", num(ar, "errors_by_kind.ack-timeout"))), "{kind}");
    // The plots overlay the two sides: one series each, named A: and B:.
    let plots = read_json(&tmp.path().join("c").join("plots.json"));
    let plots = plots.as_array().expect("plots.json lists the plots");
    assert!(plots.len() >= 6, "{plots:?}");
    for plot in plots {
        for file in [&plot["svg"], &plot["png"]] {
            let path = tmp.path().join("c").join(file.as_str().expect("a file name"));
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0, "{} is written and not empty", path.display());
        }
    }
    let cdf = plots.iter().find(|p| p["name"] == "latency-cdf").expect("a latency plot");
    assert_eq!(cdf["series"], serde_json::json!(["A: fire-and-forget", "B: acks-retries"]));
    let svg = std::fs::read_to_string(tmp.path().join("c").join("latency-cdf.svg")).expect("latency-cdf.svg");
    assert!(svg.contains("A: fire-and-forget") && svg.contains("B: acks-retries"), "the legend names both sides");
}

#[test]
fn two_seeds_of_a_file() {
    let tmp = TempDir::new("compare-seeds");
    let file = "scenarios/mm1.toml";
    let one = run_summary(file, "1", &tmp.path().join("s1"));
    let two = run_summary(file, "2", &tmp.path().join("s2"));
    let (out, json) = compare(&[&format!("{file}@1"), "@2"], &tmp.path().join("c"));
    assert_eq!((json["a"]["seed"].as_u64(), json["b"]["seed"].as_u64()), (Some(1), Some(2)));
    assert!(out.contains("seed 1") && out.contains("seed 2"), "{out}");
    assert_eq!(json["a"]["summary"]["variants"], one["variants"]);
    assert_eq!(json["b"]["summary"]["variants"], two["variants"]);
    let d = diff(&json, 0, "latency_ms.mean");
    let (a, b) =
        (num(&one["variants"]["default"], "latency_ms.mean"), num(&two["variants"]["default"], "latency_ms.mean"));
    assert_ne!(a, b, "two seeds, two runs");
    assert_eq!((num(d, "a"), num(d, "b")), (a, b));
    assert!((num(d, "relative") - (b - a) / a.abs()).abs() < 1e-12);
    // The same seed twice differs nowhere; --no-plots writes no plot.
    let (out, json) = compare(&[&format!("{file}@3"), "@3", "--no-plots"], &tmp.path().join("same"));
    assert!(!tmp.path().join("same").join("latency-cdf.svg").exists() && !tmp.path().join("same/plots.json").exists());
    assert!(json["pairs"][0]["differences"].as_array().unwrap().iter().all(|d| d["differs"] == false), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("* ") && !l.starts_with("* marks")), "{out}");
}

#[test]
fn two_files_pair_their_variants_by_name() {
    let tmp = TempDir::new("compare-files");
    let (out, json) = compare(&["scenarios/mm1.toml", "scenarios/md1.toml"], &tmp.path().join("c"));
    let pairs = json["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 1, "{out}");
    assert_eq!((pairs[0]["a"].as_str(), pairs[0]["b"].as_str()), (Some("default"), Some("default")));
    // M/D/1 waits half as long as M/M/1 at the same load: its mean latency is lower.
    let d = diff(&json, 0, "latency_ms.mean");
    assert!(num(d, "b") < num(d, "a"), "{d}");
    let mm1 = run_summary("scenarios/mm1.toml", "1", &tmp.path().join("mm1"));
    assert_eq!(num(d, "a"), num(&mm1["variants"]["default"], "latency_ms.mean"));
}

#[test]
fn bad_input_exits_2_with_a_reason() {
    let tmp = TempDir::new("compare-bad");
    let out = p(&tmp.path().join("c"));
    let nf = "scenarios/network-faults.toml";
    let cases: [(&[&str], &str); 6] = [
        (&[&format!("{nf}:nope"), ":acks-retries"], "no variant named `nope`"),
        (&["scenarios/missing.toml", "@2"], "cannot read scenario"),
        (&[&format!("{nf}@abc"), "@2"], "not a seed"),
        (&[":fire-and-forget", nf], "no scenario file"),
        (&[nf, "scenarios/ordering.toml"], "no variant name in common"),
        (&[&format!("{nf}:"), "@2"], "empty"),
    ];
    for (args, says) in cases {
        let mut all = vec!["compare", "--no-progress", "--out", &out];
        all.extend(args);
        let err = assert_bad_input(&asyncsim(&all));
        assert!(err.contains(says), "`{}` says `{says}`:\n{err}", args.join(" "));
    }
}

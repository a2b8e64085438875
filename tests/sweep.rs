//! `asyncsim sweep`, through the real command line: ranges and their
//! points, the same bytes whatever the number of jobs, paired comparisons
//! narrower than unpaired ones on a bundled scenario (common random
//! numbers), `--precision` stopping within its target on mm1, shards, and
//! bad input.

use crate::common::{assert_bad_input, asyncsim, describe, stdout, TempDir};
use serde_json::Value;
use std::path::Path;

fn p(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_string()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// Runs `asyncsim sweep ARGS --out OUT`; the exit status must be `code`.
fn sweep(args: &[&str], out: &Path, code: i32) -> String {
    let mut all: Vec<String> = vec!["--no-progress".into(), "sweep".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["--out".to_string(), p(out)]);
    let o = asyncsim(&all);
    assert_eq!(o.status.code(), Some(code), "{}", describe(&o));
    stdout(&o)
}

/// A small M/M/1 sweep: three arrival rates, few messages.
const SMALL_MM1: [&str; 6] = [
    "scenarios/mm1.toml",
    "--set",
    "producers.producer.messages=5000",
    "--set",
    "producers.producer.arrival.rate_per_s=500..900:3",
    "--seeds",
];

/// Every file of a folder, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read the folder")
        .map(|e| {
            let e = e.expect("an entry");
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read a file"))
        })
        .collect();
    all.sort();
    all
}

#[test]
fn one_job_and_two_give_the_same_bytes() {
    let tmp = TempDir::new("sweep-jobs");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let mut args: Vec<&str> = SMALL_MM1.to_vec();
    args.extend(["4", "--metric", "latency_ms.mean", "--metric", "wait_ms.p99"]);
    let printed_one = sweep(&[&args[..], &["--jobs", "1"]].concat(), &one, 0);
    let printed_two = sweep(&[&args[..], &["--jobs", "2"]].concat(), &two, 0);
    assert_eq!(printed_one.replace(&p(&one), "OUT"), printed_two.replace(&p(&two), "OUT"));
    let (a, b) = (files(&one), files(&two));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["sweep.csv", "runs.csv", "sweep.json", "sweep-latency_ms.mean.svg", "sweep-wait_ms.p99.png"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between 1 and 2 jobs");
    }
    // 3 points x 1 variant x 4 seeds; each row names its rate and seed.
    let runs = std::fs::read_to_string(one.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 12, "{runs}");
    assert!(runs
        .starts_with("index,producers.producer.arrival.rate_per_s,variant,seed,latency_ms.mean,wait_ms.p99,stopped\n"));
    assert!(runs.lines().nth(1).unwrap().starts_with("0,500,default,1,"));
    assert!(runs.lines().nth(12).unwrap().starts_with("11,900,default,4,"));
}

#[test]
fn an_integer_range_sets_an_integer_field_at_every_point() {
    let tmp = TempDir::new("sweep-int");
    let args = [
        "scenarios/mm1.toml",
        "--set",
        "producers.producer.messages=1000..3000:3",
        "--seeds",
        "2",
        "--metric",
        "produced",
    ];
    let printed = sweep(&args, tmp.path(), 0);
    assert!(printed.contains("producers.producer.messages = 1000, 2000, 3000 (3 values)"), "{printed}");
    let runs = std::fs::read_to_string(tmp.path().join("runs.csv")).unwrap();
    for row in runs.lines().skip(1) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[1], cells[4], "the messages made are the point's count: {row}");
    }
    let err = assert_bad_input(&asyncsim(&[
        "sweep",
        "scenarios/mm1.toml",
        "--set",
        "producers.producer.messages=1000..2000:4",
        "--out",
        &p(&tmp.path().join("bad")),
    ]));
    assert!(err.contains("1500") || err.contains("messages"), "names the point or the field:\n{err}");
}

/// The acceptance of common random numbers: in sync-vs-async, users who
/// poll learn their outcome later than users called back. Both variants see
/// the same arrivals and the same crash and slow-down of B, which move the
/// completion time of both together from seed to seed; the pairing removes
/// that, the unpaired interval cannot.
#[test]
fn paired_intervals_are_at_least_three_times_narrower_on_sync_vs_async() {
    let tmp = TempDir::new("sweep-crn");
    let args = [
        "scenarios/sync-vs-async.toml",
        "--variant",
        "async-poll",
        "--variant",
        "async-callback",
        "--baseline",
        "async-callback",
        "--metric",
        "completion_ms.mean",
        "--seeds",
        "20",
    ];
    let printed = sweep(&args, tmp.path(), 0);
    assert!(printed.contains("differences from `async-callback`"), "{printed}");
    let json = read_json(&tmp.path().join("sweep.json"));
    let c = &json["comparisons"][0];
    assert_eq!((c["variant"].as_str(), c["metric"].as_str()), (Some("async-poll"), Some("completion_ms.mean")));
    let paired = &c["comparison"]["paired"];
    let unpaired = &c["comparison"]["unpaired"];
    let (pw, uw) = (paired["half_width"].as_f64().unwrap(), unpaired["half_width"].as_f64().unwrap());
    assert_eq!(paired["mean"], unpaired["mean"], "the same difference of means");
    // Recompute the standard errors from runs.csv: the pairing is seed by seed.
    let runs = std::fs::read_to_string(tmp.path().join("runs.csv")).unwrap();
    let value = |variant: &str| -> Vec<f64> {
        runs.lines()
            .skip(1)
            .filter(|r| r.split(',').nth(1) == Some(variant))
            .map(|r| r.split(',').nth(3).unwrap().parse().unwrap())
            .collect()
    };
    let (poll, callback) = (value("async-poll"), value("async-callback"));
    assert_eq!((poll.len(), callback.len()), (20, 20));
    let var = |x: &[f64]| {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
    };
    let d: Vec<f64> = poll.iter().zip(&callback).map(|(a, b)| a - b).collect();
    let n = 20.0;
    let (se_paired, se_unpaired) = ((var(&d) / n).sqrt(), ((var(&poll) + var(&callback)) / n).sqrt());
    // Welch's degrees of freedom lie between 19 and 38: its t quantile is at
    // most the paired one (2.093 at 95%) and at least t(38) = 2.024.
    let ratio = se_unpaired / se_paired;
    assert!(uw / pw >= ratio * 2.024 / 2.093 * (1.0 - 1e-3), "{uw} / {pw} against {ratio}");
    assert!(uw / pw <= ratio * (1.0 + 1e-3), "{uw} / {pw} against {ratio}");
    assert!(ratio >= 3.0 * 2.093 / 2.024, "the pairing removes most of the variance: {se_unpaired} vs {se_paired}");
    assert!(uw >= 3.0 * pw, "paired {pw}, unpaired {uw}");
    assert_eq!(c["comparison"]["narrowing"].as_f64().unwrap(), uw / pw);
}

#[test]
fn precision_adds_seeds_until_every_interval_is_within_its_target_on_mm1() {
    let tmp = TempDir::new("sweep-precision");
    let args = [
        "scenarios/mm1.toml",
        "--set",
        "producers.producer.messages=20000",
        "--metric",
        "latency_ms.mean",
        "--precision",
        "2%",
    ];
    let printed = sweep(&args, tmp.path(), 0);
    assert!(printed.contains("precision ±2% at 95%: met by every interval"), "{printed}");
    let json = read_json(&tmp.path().join("sweep.json"));
    let seeds = json["precision"]["seeds"].as_u64().unwrap();
    assert!(json["precision"]["met"].as_bool().unwrap());
    assert_eq!(seeds % 10, 0, "whole batches of 10");
    let e = &json["estimates"][0]["estimate"];
    assert_eq!(e["n"].as_u64(), Some(seeds));
    let (mean, hw) = (e["mean"].as_f64().unwrap(), e["half_width"].as_f64().unwrap());
    assert!(hw <= 0.02 * mean, "{hw} within 2% of {mean}");
    // Theory: 1 / (mu - lambda) = 5 ms. The interval is a 95% one; three
    // half-widths leave room for a 1-in-1000 seed set, not for a wrong engine.
    assert!((mean - 5.0).abs() <= 3.0 * hw, "mean {mean} ± {hw} against 5 ms");
    // A target it cannot reach within --max-seeds: said, and exit 1.
    let tight = [&args[..5], &["--precision", "0.1%", "--max-seeds", "20"]].concat();
    let printed = sweep(&tight, &tmp.path().join("tight"), 1);
    assert!(printed.contains("NOT met: 0 of 1 intervals within it after 20 seeds"), "{printed}");
}

#[test]
fn shards_split_the_runs_and_share_the_plan() {
    let tmp = TempDir::new("sweep-shards");
    let mut args: Vec<&str> = SMALL_MM1.to_vec();
    args.extend(["3", "--metric", "latency_ms.mean"]);
    let mut seen = Vec::new();
    let mut plans = Vec::new();
    for shard in ["1/2", "2/2"] {
        let out = tmp.path().join(shard.replace('/', "-of-"));
        let printed = sweep(&[&args[..], &["--shard", shard]].concat(), &out, 0);
        assert!(printed.contains(&format!("shard {shard}")), "{printed}");
        let partial = read_json(&out.join("partial.json"));
        assert_eq!(partial["command"], "sweep");
        plans.push(partial["plan"].clone());
        for r in partial["runs"].as_array().unwrap() {
            let index = r["index"].as_u64().unwrap();
            assert_eq!(index % 2, u64::from(shard == "2/2"), "shard I owns the units u with u % N == I - 1");
            seen.push(index);
        }
    }
    assert_eq!(plans[0], plans[1], "every shard has the same plan");
    seen.sort();
    assert_eq!(seen, (0..9).collect::<Vec<u64>>(), "together, every run once");
}

#[test]
fn bad_input_exits_2_with_a_reason() {
    let tmp = TempDir::new("sweep-bad");
    let out = p(tmp.path());
    let bad = |extra: &[&str]| {
        let mut args = vec!["sweep", "scenarios/mm1.toml", "--out", &out];
        args.extend(extra);
        assert_bad_input(&asyncsim(&args))
    };
    let err = bad(&["--metric", "latency_ms.mea"]);
    assert!(err.contains("did you mean `latency_ms.mean`"), "{err}");
    assert!(bad(&["--set", "producers.producer.arrival.rate_per_s=1..10"]).contains("needs its number of points"));
    assert!(bad(&["--set", "producers.producer.arrival.rate_per_s=-5..10:3"]).contains("rate_per_s"));
    assert!(bad(&["--variant", "nope"]).contains("no variant named `nope`"));
    assert!(bad(&["--precision", "2%", "--shard", "1/2"]).contains("cannot run in shards"));
    assert!(bad(&["--shard", "3/2"]).contains("--shard"));
    assert!(bad(&["--precision", "abc"]).contains("--precision"));
    assert!(bad(&["--level", "120"]).contains("--level"));
    let err = bad(&["--metric", "lost", "--metric", "lost"]);
    assert!(err.contains("named twice"), "{err}");
}

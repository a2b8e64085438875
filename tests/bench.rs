//! `asyncsim bench`: the suite's table and JSON have the shape
//! docs/benchmarks.md describes, the fan-out's runs give the same summaries
//! whatever the number of jobs, and `bench FILE` works as before. No test
//! here asserts a speed: the machine's load decides those.

use crate::common;

use common::{asyncsim, describe, stdout, TempDir};
use serde_json::Value;

/// Runs `asyncsim bench ARGS --json DIR/bench.json --no-progress` and
/// returns its stdout and the JSON.
fn bench_json(args: &[&str], dir: &TempDir) -> (String, Value) {
    let json = dir.path().join("bench.json");
    let mut all: Vec<&str> = vec!["bench", "--no-progress", "--json", json.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = asyncsim(&all);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let text = std::fs::read_to_string(&json).expect("bench.json written");
    (stdout(&o), serde_json::from_str(&text).expect("bench.json is JSON"))
}

fn rows(doc: &Value) -> &Vec<Value> {
    doc["workloads"].as_array().expect("a list of workloads")
}

/// The variants of a bundled scenario, in file order.
fn variants(file: &str) -> Vec<String> {
    let path = common::repo().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = sim_core::scenario::Scenario::parse(file, &text).unwrap();
    scenario.variants().iter().map(|v| v.name.clone()).collect()
}

#[test]
fn the_suite_prints_a_row_per_workload_and_variant_and_writes_the_same_as_json() {
    let dir = TempDir::new("bench-suite");
    let (out, doc) = bench_json(&["--messages", "2000", "--runs", "6", "--jobs", "2", "--repeat", "1"], &dir);
    let header = out.lines().next().expect("a header");
    for column in ["workload", "events", "msgs", "wall s", "events/s", "msgs/s", "peak MiB"] {
        assert!(header.contains(column), "{header}");
    }
    let mut expected: Vec<String> = vec!["a mm1".into(), "b cluster".into()];
    expected.extend(variants("scenarios/sync-vs-async.toml").iter().map(|v| format!("c sync-vs-async/{v}")));
    expected.push("d fan-out 6 runs, 2 jobs".into());
    let names: Vec<String> = rows(&doc)
        .iter()
        .map(|r| format!("{} {}", r["workload"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, expected);
    for name in &expected {
        assert!(out.lines().any(|l| l.starts_with(name.as_str())), "no row {name}:\n{out}");
    }
    for r in rows(&doc) {
        let (events, msgs, wall) =
            (r["events"].as_u64().unwrap(), r["msgs"].as_u64().unwrap(), r["wall_s"].as_f64().unwrap());
        assert!(events > msgs && msgs > 0 && wall > 0.0, "{r}");
        let per_s = r["events_per_s"].as_f64().unwrap();
        assert!((per_s - events as f64 / wall).abs() <= 1e-6 * per_s, "{r}");
        if cfg!(target_os = "linux") {
            assert!(r["peak_mib"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    // A lossless M/M/1 processes every message it produces.
    assert_eq!(rows(&doc)[0]["msgs"], 2000);
    let fan = &rows(&doc).last().unwrap()["fanout"];
    assert_eq!((fan["runs"].as_u64(), fan["jobs"].as_u64(), fan["stopped"].as_u64()), (Some(6), Some(2), Some(0)));
    assert_eq!(fan["summaries_digest"].as_str().unwrap().len(), 16);
    assert!(out.contains("runs/s") && out.contains("% of 2 jobs"), "{out}");
}

#[test]
fn the_fan_out_gives_the_same_summaries_on_one_job_and_on_two() {
    let dir = TempDir::new("bench-jobs");
    let fan = |jobs: &str, runs: &str| {
        let (_, doc) = bench_json(&["--only", "d", "--runs", runs, "--jobs", jobs, "--repeat", "1"], &dir);
        assert_eq!(rows(&doc).len(), 1);
        let r = &rows(&doc)[0];
        (r["fanout"]["summaries_digest"].clone(), r["events"].clone(), r["msgs"].clone())
    };
    let one = fan("1", "8");
    assert_eq!(one, fan("2", "8"));
    assert_ne!(one.0, fan("2", "7").0, "the digest covers every run");
}

#[test]
fn only_chooses_workloads_and_messages_sizes_the_mm1() {
    let dir = TempDir::new("bench-only");
    let (out, doc) = bench_json(&["--only", "a", "--messages", "500", "--repeat", "2"], &dir);
    assert_eq!(rows(&doc).len(), 1);
    assert_eq!(rows(&doc)[0]["msgs"], 500);
    assert_eq!(doc["repeat"], 2);
    assert!(out.contains("fastest of 2") && !out.contains("\nb "), "{out}");
}

#[test]
fn bench_file_keeps_its_table() {
    let o = asyncsim(&["bench", "scenarios/mm1.toml", "--messages", "1000", "--repeat", "1", "--no-progress"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out = stdout(&o);
    assert!(out.starts_with("variant               events    processed     wall s    events/s      msgs/s\n"), "{out}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[2]), ("default", "1000"), "{out}");
    assert!(out.contains("peak resident memory:"), "{out}");
}

#[test]
fn suite_only_arguments_are_refused_with_a_file_and_a_file_only_one_without() {
    for (args, named) in [
        (vec!["bench", "--only", "e"], "--only"),
        (vec!["bench", "scenarios/mm1.toml", "--only", "a"], "--only"),
        (vec!["bench", "scenarios/mm1.toml", "--jobs", "2"], "--jobs"),
        (vec!["bench", "--set", "run.seed=3"], "--set"),
        (vec!["bench", "--runs", "0"], "--runs"),
    ] {
        let o = asyncsim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", describe(&o));
        let err = common::stderr(&o);
        assert!(err.contains(named) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn the_json_is_written_whole_or_not_at_all() {
    let dir = TempDir::new("bench-json");
    let path = dir.path().join("missing-folder").join("bench.json");
    let o = asyncsim(&["bench", "--only", "a", "--messages", "100", "--repeat", "1", "--json", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(!path.exists() && !dir.path().join("missing-folder").exists());
}

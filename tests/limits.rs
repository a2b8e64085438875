//! Bounded runs stop cleanly (issue 8): a run that reaches `run.max_events`
//! or `run.max_memory_mb` stops, writes what it measured, says which bound
//! on stderr, and exits 3. A run that reaches no bound is untouched.

use crate::common;

use common::*;
use serde_json::Value;

fn summary(out: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json is written");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// The only variant's summary.
fn variant(s: &Value) -> &Value {
    s["variants"].as_object().expect("variants").values().next().expect("one variant")
}

/// Every produced message is settled: processed, lost, in flight or a failed send.
fn assert_settled(v: &Value) {
    let sum: f64 = ["processed", "lost", "in_flight", "send_failed"].iter().map(|k| num(v, k)).sum();
    assert_eq!(sum, num(v, "produced"), "the ledger settles every message: {v}");
}

#[test]
fn a_run_that_reaches_max_events_stops_writes_its_summary_and_exits_3() {
    let dir = TempDir::new("limits-events");
    let file = dir.write("overload.toml", OVERLOAD_30_DAYS);
    let out = dir.path().join("out");
    let o = asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "run.max_events=50000"]);
    assert_eq!(o.status.code(), Some(3), "a run stopped at a limit exits 3:\n{}", describe(&o));
    let err = stderr(&o);
    assert!(err.contains("run.max_events"), "stderr names the bound:\n{err}");
    assert!(err.contains("t="), "stderr says when it stopped:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    let s = summary(&out);
    let v = variant(&s);
    assert_eq!(v["run"]["stopped"]["reason"], "max_events", "{v}");
    assert!(num(v, "run.stopped.at_s") > 0.0, "{v}");
    assert_eq!(num(v, "run.events"), 50_000.0, "exactly max_events events were dispatched");
    assert!(num(v, "produced") > 0.0 && num(v, "processed") > 0.0, "it measured what it ran: {v}");
    assert!(num(v, "in_flight") > 0.0, "the queued messages are in flight: {v}");
    assert_settled(v);
    assert!(out.join("timeseries.csv").is_file(), "the time series is written too");
}

#[test]
fn a_30_day_overload_stops_at_the_memory_bound_within_seconds() {
    let dir = TempDir::new("limits-memory");
    let file = dir.write("overload.toml", OVERLOAD_30_DAYS);
    let out = dir.path().join("out");
    let args = ["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--max-memory-mb", "64"];
    let m = asyncsim_measured(&args, dir.path());
    let o = &m.output;
    assert_eq!(o.status.code(), Some(3), "a run stopped at a limit exits 3:\n{}", describe(o));
    assert!(m.wall.as_secs_f64() < 60.0, "it stops within seconds, not after 30 simulated days: {:?}", m.wall);
    if let Some(kib) = m.peak_rss_kib {
        assert!(kib < 256 * 1024, "a 64 MiB bound keeps the process small; peak RSS was {kib} KiB");
    }
    let err = stderr(o);
    assert!(
        err.contains("max_memory_mb") && err.contains("--max-memory-mb"),
        "stderr names the bound and how to raise it:\n{err}"
    );
    let s = summary(&out);
    let v = variant(&s);
    assert_eq!(v["run"]["stopped"]["reason"], "max_memory", "{v}");
    let at = num(v, "run.stopped.at_s");
    assert!(at > 0.0 && at < 30.0 * 86_400.0, "it stopped long before the 30 days: {at} s");
    assert!(num(v, "in_flight") > 100_000.0, "the backlog is in flight: {v}");
    assert_eq!(num(v, "lost"), 0.0, "nothing held is lost: {v}");
    assert_settled(v);
}

#[test]
fn a_run_that_reaches_no_bound_has_no_stopped_key_and_exits_0() {
    let dir = TempDir::new("limits-normal");
    let file = dir.write("overload.toml", OVERLOAD_30_DAYS);
    let out = dir.path().join("out");
    let o = asyncsim(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "run.duration_ms=2000",
        "--max-memory-mb",
        "64",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v = variant(&summary(&out)).clone();
    assert!(v["run"].get("stopped").is_none(), "no `stopped` key in a normal run: {}", v["run"]);
    assert_eq!(v["run"]["drain_complete"], true);
}

#[test]
fn max_memory_mb_must_be_at_least_1() {
    let dir = TempDir::new("limits-zero");
    let text = OVERLOAD_30_DAYS.replace("[run]\n", "[run]\nmax_memory_mb = 0\n");
    let file = dir.write("zero.toml", &text);
    let out = dir.path().join("out");
    let err = assert_bad_input(&asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    assert!(err.contains("run.max_memory_mb"), "{err}");
    let o = asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--max-memory-mb", "0"]);
    assert_bad_input(&o);
}

#[test]
fn run_help_documents_exit_status_3() {
    let o = asyncsim(&["run", "--help"]);
    let help = stdout(&o);
    assert!(help.contains("3 when a run stopped at a limit"), "{help}");
    assert!(help.contains("--max-memory-mb"), "{help}");
}

/// 50 topics x 100,000 partitions x 64 replicas: a 2.5 KB file whose sizes
/// alone need about 16 GiB. It passed `validate` and then ran out of memory.
fn huge_log() -> String {
    let mut s = String::from(
        "name = \"huge\"\nconcept = \"a log too large to start\"\nseed = 1\n[run]\nduration_ms = 1000\n\
         [brokers.log]\nkind = \"log\"\nreplicas = 64\n",
    );
    for i in 0..50 {
        s.push_str(&format!("[brokers.log.topics.t{i}]\npartitions = 100000\n"));
    }
    s.push_str(
        "[producers.p]\ntarget = \"log\"\ntopic = \"t0\"\narrival = { process = \"poisson\", rate_per_s = 10 }\n\
         [consumers.c]\nkind = \"log-consumer\"\nsource = \"log\"\ntopic = \"t0\"\ngroup = \"g\"\n\
         processing = { dist = \"constant\", ms = 1 }\n",
    );
    s
}

#[test]
fn static_sizes_over_the_memory_budget_are_refused_before_running() {
    let dir = TempDir::new("limits-huge-log");
    let file = dir.write("huge.toml", &huge_log());
    for command in ["validate", "run"] {
        let m = asyncsim_measured(&[command, file.to_str().unwrap()], dir.path());
        let err = assert_bad_input(&m.output);
        assert_names(&err, &file, 6, "brokers.log");
        assert!(err.contains("GiB") && err.contains("run.max_memory_mb"), "says how much and which bound:\n{err}");
        assert!(m.wall.as_secs_f64() < 10.0, "refused at once, not after allocating: {:?}", m.wall);
    }
    // With the budget raised above the estimate, validation lets it through.
    let o = asyncsim(&["validate", file.to_str().unwrap(), "--set", "run.max_memory_mb=40000"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
}

#[test]
fn validate_warns_of_a_run_that_will_outgrow_its_budget_or_its_event_bound() {
    let dir = TempDir::new("limits-estimate");
    let file = dir.write("overload.toml", OVERLOAD_30_DAYS);
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "growth is a warning, not an error:\n{}", describe(&o));
    let err = stderr(&o);
    assert!(err.contains("faster than the consumers can serve them"), "{err}");
    assert!(err.contains("1000/s in, 100/s out"), "{err}");
    assert!(err.contains("run.max_events"), "30 days at 1000/s exceed the default event bound:\n{err}");
    let o = asyncsim(&["validate", file.to_str().unwrap(), "--set", "run.duration_ms=1000"]);
    assert!(!stderr(&o).contains("warning"), "one second of overload is harmless:\n{}", describe(&o));
}

#[test]
fn the_bundled_scenarios_draw_no_estimate_warning() {
    let files: Vec<String> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    let mut args = vec!["validate".to_string()];
    args.extend(files);
    let o = asyncsim(&args);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(stderr(&o), "", "no warnings for the bundled scenarios");
}

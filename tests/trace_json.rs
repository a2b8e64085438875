//! `asyncsim run --trace-json`: the Perfetto trace (Chrome trace-event
//! JSON), checked on real runs of the real binary: it parses, every
//! track's events are in time order and its slices nest, every arrow joins
//! the sending of one message to its arrival (or drop) at the right node,
//! drops, faults, crashes and elections are instants, the counters are the
//! time series, and a window or a limit bounds the file and is stated in it.

use crate::common;

use common::{assert_bad_input, asyncsim, describe, repo, stderr, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn run_ok(args: &[&str]) -> std::process::Output {
    let o = asyncsim(args);
    assert!(o.status.code() == Some(0) || o.status.code() == Some(1), "{}", describe(&o));
    o
}

fn scenario(name: &str) -> String {
    repo().join("scenarios").join(name).to_str().expect("UTF-8").to_string()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn events(trace: &Value) -> &Vec<Value> {
    trace["traceEvents"].as_array().expect("a traceEvents array")
}

fn ph(e: &Value) -> &str {
    e["ph"].as_str().expect("every event has a phase")
}

fn ts(e: &Value) -> f64 {
    e["ts"].as_f64().expect("every event has a numeric ts")
}

/// A time in microseconds (three decimals) as integer nanoseconds.
fn ns(us: f64) -> i64 {
    (us * 1000.0).round() as i64
}

fn name(e: &Value) -> &str {
    e["name"].as_str().unwrap_or("")
}

/// The track an event is drawn on, as Perfetto reads it.
fn track(e: &Value) -> String {
    match (ph(e), e["s"].as_str()) {
        ("i", Some("p")) => "process instants".to_string(),
        ("b" | "e", _) => format!("async {} {}", e["cat"], e["id"]),
        ("C", _) => format!("counter {}", name(e)),
        _ => format!("thread {}", e["tid"]),
    }
}

/// Thread names by tid, from the metadata events.
fn thread_names(evs: &[Value]) -> BTreeMap<u64, String> {
    evs.iter()
        .filter(|e| ph(e) == "M" && name(e) == "thread_name")
        .map(|e| (e["tid"].as_u64().unwrap(), e["args"]["name"].as_str().unwrap().to_string()))
        .collect()
}

/// Runs network-faults (loss, a partition, a crash) with both traces.
fn network_faults(dir: &TempDir, extra: &[&str]) -> Value {
    let out = dir.path().to_str().unwrap().to_string();
    let nf = scenario("network-faults.toml");
    let mut args = vec!["run", nf.as_str(), "--out", out.as_str(), "--variant", "fire-and-forget", "--trace-json"];
    args.extend_from_slice(extra);
    run_ok(&args);
    read_json(&dir.path().join("trace-fire-and-forget.json"))
}

#[test]
fn every_track_is_in_time_order_and_its_slices_nest() {
    let dir = TempDir::new("tj-order");
    let trace = network_faults(&dir, &[]);
    let evs = events(&trace);
    assert!(evs.len() > 5_000, "a real trace: {} events", evs.len());
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    // Per thread track, the ends of the slices that enclose the current time.
    let mut stacks: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["pid"], 1, "one process: {e}");
        let (t, tr) = (ns(ts(e)), track(e));
        let before = last.insert(tr.clone(), t).unwrap_or(0);
        assert!(t >= before, "event {i} on {tr} at {t} ns comes after one at {before} ns: {e}");
        if ph(e) == "X" {
            let end = t + ns(e["dur"].as_f64().expect("a complete event has a dur"));
            let stack = stacks.entry(tr.clone()).or_default();
            while stack.last().is_some_and(|&top| top <= t) {
                stack.pop();
            }
            if let Some(&top) = stack.last() {
                assert!(end <= top, "event {i} on {tr} [{t}, {end}] overlaps a slice ending at {top} without nesting");
            }
            stack.push(end);
        }
    }
    // Steps are on their nodes' step lanes, and some overlap in time (the
    // consumer processes several at once) without sharing a lane.
    let names = thread_names(evs);
    let steps: Vec<&Value> = evs.iter().filter(|e| ph(e) == "X" && name(e).starts_with("process #")).collect();
    assert!(steps.len() > 1000, "{} steps", steps.len());
    for s in &steps {
        let lane = &names[&s["tid"].as_u64().unwrap()];
        assert!(lane.starts_with("consumer steps"), "a step on {lane}");
    }
}

#[test]
fn arrows_join_each_sending_to_its_arrival_between_the_right_tracks() {
    let dir = TempDir::new("tj-flows");
    // With network copies too (the scenario makes none).
    let trace = network_faults(&dir, &["--trace", "--set", "network.duplicate_probability=0.02"]);
    let evs = events(&trace);
    let names = thread_names(evs);
    let mut starts: BTreeMap<u64, (usize, &Value)> = BTreeMap::new();
    let mut ends: BTreeMap<u64, (usize, &Value)> = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        let id = || e["id"].as_u64().expect("a numeric flow id");
        match ph(e) {
            "s" => assert!(starts.insert(id(), (i, e)).is_none(), "flow {} starts twice", id()),
            "f" => assert!(ends.insert(id(), (i, e)).is_none(), "flow {} ends twice", id()),
            _ => {}
        }
    }
    assert!(starts.len() > 4000, "{} arrows", starts.len());
    assert_eq!(starts.keys().collect::<Vec<_>>(), ends.keys().collect::<Vec<_>>(), "every arrow starts and ends");
    let (mut drops, mut copies) = (0, 0);
    for (id, &(i, s)) in &starts {
        let (j, f) = ends[id];
        assert_eq!((&s["cat"], &s["name"]), (&f["cat"], &f["name"]), "flow {id}: one identity");
        assert_eq!(f["bp"], "e", "flow {id} binds to the slice it ends at");
        // Each flow event binds to the slice or instant written just before
        // it on its track, at the same time.
        let (sent, got) = (&evs[i - 1], &evs[j - 1]);
        assert_eq!((&sent["tid"], sent["ts"].as_f64()), (&s["tid"], s["ts"].as_f64()), "flow {id}: {sent} / {s}");
        assert_eq!((&got["tid"], got["ts"].as_f64()), (&f["tid"], f["ts"].as_f64()), "flow {id}: {got} / {f}");
        let (verb, what) = name(sent).split_once(' ').expect("`send KIND #ID`");
        assert!(verb == "send" || verb == "duplicate", "flow {id} starts at {sent}");
        let (end_verb, end_what) = match name(got).strip_prefix("in flight ") {
            Some(what) => ("in flight", what),
            None => name(got).split_once(' ').expect("`recv KIND #ID`"),
        };
        assert_eq!(what, end_what, "flow {id} joins one message: {sent} -> {got}");
        assert!(ts(f) >= ts(s), "flow {id} goes forward in time");
        // From the sender's track to the receiver's.
        let from = &names[&s["tid"].as_u64().unwrap()];
        let to = &names[&f["tid"].as_u64().unwrap()];
        assert_eq!(sent["args"]["to"].as_str(), Some(to.as_str()), "flow {id}: {sent} ends on {to}");
        match end_verb {
            "recv" => assert_eq!(got["args"]["from"].as_str(), Some(from.as_str()), "{got}"),
            "drop" => {
                drops += 1;
                assert_eq!(ph(got), "i", "a drop is an instant: {got}");
                assert_eq!(got["args"]["where"], "on arrival");
            }
            "in flight" => assert_eq!(got["args"]["note"], "not arrived by the end of the trace"),
            other => panic!("flow {id} ends at `{other}`: {got}"),
        }
        if verb == "send" && end_verb == "recv" {
            // It arrives exactly when the sending said.
            let delay_ns = (sent["args"]["delay_ms"].as_f64().unwrap() * 1e6).round() as i64;
            assert_eq!(ns(ts(f)) - ns(ts(s)), delay_ns, "flow {id}: {s} -> {f}");
        }
        copies += usize::from(verb == "duplicate");
    }
    assert!(drops > 0, "the partition drops messages on arrival");
    assert!(copies > 0, "the network duplicates messages");
    // The same run's CSV trace (written through the tee) saw as many sendings and drops.
    let csv = std::fs::read_to_string(dir.path().join("trace-fire-and-forget.csv")).unwrap();
    let count = |ev: &str| csv.lines().filter(|l| l.split(',').nth(1) == Some(ev)).count();
    let slices = |verb: &str| evs.iter().filter(|e| name(e).starts_with(verb)).count();
    assert_eq!(count("send"), slices("send "));
    assert_eq!(count("duplicate"), slices("duplicate "));
    assert_eq!(count("arrive"), slices("recv "));
    assert_eq!(count("drop"), slices("drop "));
}

#[test]
fn drops_faults_crashes_and_elections_are_instants() {
    let dir = TempDir::new("tj-instants");
    let trace = network_faults(&dir, &[]);
    let evs = events(&trace);
    let instants: Vec<&Value> = evs.iter().filter(|e| ph(e) == "i").collect();
    let with = |cat: &str| instants.iter().filter(|e| e["cat"] == cat).copied().collect::<Vec<_>>();
    let drops = with("drop");
    for reason in ["loss", "partition"] {
        assert!(drops.iter().any(|d| d["args"]["reason"] == reason), "a drop for {reason}");
    }
    let faults = with("fault");
    assert!(faults.iter().any(|f| name(f).starts_with("fault begins: ")), "{faults:?}");
    assert!(faults.iter().any(|f| name(f).starts_with("fault ends: ")), "{faults:?}");
    assert!(faults.iter().all(|f| f["s"] == "p"), "faults are process instants");
    // Each fault's window is an async slice, begun and ended.
    let begins = evs.iter().filter(|e| ph(e) == "b").count();
    assert!(begins > 0 && begins == evs.iter().filter(|e| ph(e) == "e").count());
    assert!(with("crash").iter().any(|c| name(c) == "crash") && with("crash").iter().any(|c| name(c) == "restart"));
    // The counters are the time series, row for row.
    let series = std::fs::read_to_string(dir.path().join("timeseries.csv")).unwrap();
    let rows: Vec<&str> = series.lines().skip(1).filter(|l| l.starts_with("fire-and-forget,")).collect();
    let depth: Vec<&Value> = evs.iter().filter(|e| ph(e) == "C" && name(e) == "queue depth").collect();
    assert_eq!(depth.len(), rows.len());
    for (row, c) in rows.iter().zip(&depth) {
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(ns(ts(c)), (cols[1].parse::<f64>().unwrap() * 1e9).round() as i64, "{row} / {c}");
        assert_eq!(c["args"]["messages"].as_u64(), cols[5].parse().ok(), "{row} / {c}");
    }

    // A leader election is an instant on the broker that made it.
    let dir = TempDir::new("tj-elections");
    let out = dir.path().to_str().unwrap();
    let ra = scenario("replication-acks.toml");
    run_ok(&["run", &ra, "--out", out, "--variant", "acks-1", "--trace-json"]);
    let trace = read_json(&dir.path().join("trace-acks-1.json"));
    let evs = events(&trace);
    let names = thread_names(evs);
    let marks: Vec<&Value> = evs.iter().filter(|e| ph(e) == "i" && e["cat"] == "mark").collect();
    assert!(marks.iter().any(|m| name(m).contains("leader elected")), "{marks:?}");
    for m in marks {
        assert!(names.contains_key(&m["tid"].as_u64().unwrap()), "a mark on a named node's track: {m}");
    }
}

#[test]
fn a_window_bounds_the_trace_and_is_stated_in_it() {
    let dir = TempDir::new("tj-window");
    let full = network_faults(&dir, &[]);
    let full_bytes = std::fs::metadata(dir.path().join("trace-fire-and-forget.json")).unwrap().len();
    let trace = network_faults(&dir, &["--trace-from-ms", "2000", "--trace-to-ms", "3000"]);
    let bytes = std::fs::metadata(dir.path().join("trace-fire-and-forget.json")).unwrap().len();
    assert!(bytes * 4 < full_bytes, "a 1 s window of a 10 s run: {bytes} bytes of {full_bytes}");
    for e in events(&trace) {
        if !(ph(e) == "M" && name(e) == "process_name") {
            let t = ts(e);
            assert!((2_000_000.0..=3_000_000.0).contains(&t), "outside the window: {e}");
        }
    }
    let other = &trace["otherData"];
    assert_eq!(other["window_ms"]["from"], 2000.0);
    assert_eq!(other["window_ms"]["to"], 3000.0);
    assert_eq!(other["truncated"], false);
    let n = |k: &str| other[k].as_u64().unwrap_or_else(|| panic!("otherData.{k}: {other}"));
    assert!(n("events_outside_window") > n("events_kept"), "{other}");
    assert_eq!(n("events_recorded"), full["otherData"]["events_recorded"].as_u64().unwrap(), "the same run");
    assert_eq!(
        n("events_kept") + n("events_outside_window") + n("events_over_limit") + n("timers_left_out"),
        n("events_recorded"),
        "every event is kept or counted: {other}"
    );
    assert_eq!(n("trace_events_written"), events(&trace).len() as u64);
    // Arrows still start and end inside the window.
    let count = |p: &str| events(&trace).iter().filter(|e| ph(e) == p).count();
    assert!(count("s") > 100 && count("s") == count("f"));
}

#[test]
fn the_limit_truncates_the_trace_and_says_so() {
    let dir = TempDir::new("tj-limit");
    let out = dir.path().to_str().unwrap();
    let nf = scenario("network-faults.toml");
    let args =
        ["run", &nf, "--out", out, "--variant", "acks-retries", "--trace-json", "--trace", "--trace-limit", "300"];
    let o = run_ok(&args);
    assert!(stderr(&o).contains("trace-acks-retries.json holds only the first 300 events"), "{}", describe(&o));
    // The CSV trace beside it keeps to the same limit, on its own.
    assert!(stderr(&o).contains("trace-acks-retries.csv holds only the first 300 events"), "{}", describe(&o));
    let csv = std::fs::read_to_string(dir.path().join("trace-acks-retries.csv")).unwrap();
    assert_eq!(csv.lines().count(), 301, "a header and 300 events");
    let trace = read_json(&dir.path().join("trace-acks-retries.json"));
    let other = &trace["otherData"];
    assert_eq!(other["truncated"], true);
    assert_eq!(other["events_kept"], 300);
    assert_eq!(other["limit_events"], 300);
    assert!(other["events_over_limit"].as_u64().unwrap() > 10_000, "{other}");
    let count = |p: &str| events(&trace).iter().filter(|e| ph(e) == p).count();
    assert_eq!(count("s"), count("f"), "arrows cut by the limit end where the trace does");
    assert!(events(&trace).len() < 1000);
}

#[test]
fn the_same_seed_gives_the_same_trace_byte_for_byte() {
    let (a, b) = (TempDir::new("tj-det-a"), TempDir::new("tj-det-b"));
    let nf = scenario("network-faults.toml");
    for (dir, threads) in [(&a, "1"), (&b, "4")] {
        run_ok(&["run", &nf, "--out", dir.path().to_str().unwrap(), "--trace-json", "--threads", threads]);
    }
    for v in ["fire-and-forget", "acks-retries"] {
        let f = format!("trace-{v}.json");
        let (ta, tb) = (std::fs::read(a.path().join(&f)).unwrap(), std::fs::read(b.path().join(&f)).unwrap());
        assert!(ta == tb, "{f} differs between runs");
    }
}

#[test]
fn a_bad_window_is_bad_input() {
    let dir = TempDir::new("tj-bad");
    let out = dir.path().to_str().unwrap();
    let nf = scenario("network-faults.toml");
    let err = assert_bad_input(&asyncsim(&[
        "run",
        &nf,
        "--out",
        out,
        "--trace-json",
        "--trace-from-ms",
        "5",
        "--trace-to-ms",
        "1",
    ]));
    assert!(err.contains("--trace-from-ms 5 is after --trace-to-ms 1"), "{err}");
    let err = assert_bad_input(&asyncsim(&["run", &nf, "--out", out, "--trace-json", "--trace-from-ms=-3"]));
    assert!(err.contains("--trace-from-ms"), "{err}");
    let err = assert_bad_input(&asyncsim(&["run", &nf, "--out", out, "--trace-to-ms", "3"]));
    assert!(err.contains("--trace-json"), "the window needs --trace-json: {err}");
    assert!(!dir.path().join("summary.json").exists(), "nothing ran");
}

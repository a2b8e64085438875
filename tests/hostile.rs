//! Hostile values (issue 8, "What to build" 12): each ends with a clear
//! error (exit 2), a clean stop at a limit (exit 3) or a sensible run, never
//! a panic. These are the fast cases that no other test pins; the slow ones
//! (10,000 variants run, 5,000 producers, a 30-day overload with the default
//! budget, ...) are in `scripts/hostile.sh`, which measures time and memory.
//! Files that are not scenario files (a folder, a FIFO, `/dev/zero`,
//! non-UTF-8) are in `cli_args.rs`; names that escape `--out` and a
//! misspelt expectation in `cli.rs`.

use crate::common;

use common::*;
use serde_json::Value;
use std::path::Path;

/// 100 messages/s for one second through a queue; `{ARRIVAL}` is the
/// producer's arrival table and `{MORE}` is appended.
const BASE: &str = r#"name = "hostile"
concept = "a hostile input"
seed = 1

[run]
duration_ms = 1_000

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 100 }

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
processing = { dist = "constant", ms = 1 }
"#;

fn with_rate(rate: &str) -> String {
    BASE.replace("rate_per_s = 100", &format!("rate_per_s = {rate}"))
}

/// Runs `text` as `hostile.toml` with `extra` arguments; returns the output
/// and summary.json (`Null` when none was written).
fn run(text: &str, extra: &[&str]) -> (std::process::Output, Value) {
    let dir = TempDir::new("hostile");
    let file = dir.write("hostile.toml", text);
    let out = dir.path().join("out");
    let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend(extra);
    let o = asyncsim(&args);
    assert!(!stderr(&o).contains("panicked"), "{}", describe(&o));
    (o, read_summary(&out))
}

fn read_summary(out: &Path) -> Value {
    std::fs::read_to_string(out.join("summary.json"))
        .map(|t| serde_json::from_str(&t).expect("summary.json is JSON"))
        .unwrap_or(Value::Null)
}

fn default_variant(s: &Value) -> &Value {
    &s["variants"]["default"]
}

/// `validate` and `run` both refuse `text` with exit 2 and a message that
/// names the file's line `line` and contains `field` and `why`.
fn refused(text: &str, line: usize, field: &str, why: &str) {
    let dir = TempDir::new("hostile-bad");
    let file = dir.write("hostile.toml", text);
    let out = dir.path().join("out");
    for args in
        [vec!["validate", file.to_str().unwrap()], vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]]
    {
        let err = assert_bad_input(&asyncsim(&args));
        assert_names(&err, &file, line, field);
        assert!(err.contains(why), "stderr must say `{why}`:\n{err}");
    }
    assert!(!out.join("summary.json").exists(), "bad input runs nothing");
}

#[test]
fn a_rate_of_0_is_refused() {
    refused(&with_rate("0"), 10, "producers.producer.arrival.rate_per_s", "a rate per second above 0, got 0");
}

#[test]
fn a_rate_of_1e12_stops_at_the_memory_bound_with_exit_3() {
    let (o, s) = run(&with_rate("1e12"), &["--max-memory-mb", "16"]);
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    assert!(stderr(&o).contains("run.max_memory_mb (16 MiB)"), "{}", describe(&o));
    let v = default_variant(&s);
    assert_eq!(v["run"]["stopped"]["reason"], "max_memory", "{v}");
    assert!(num(v, "produced") > 10_000.0, "it produced before it stopped: {v}");
}

#[test]
fn a_rate_of_1e_300_runs_and_produces_nothing() {
    // The first arrival is due some 1e300 s after the start: never, in a 1 s run.
    let (o, s) = run(&with_rate("1e-300"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v = default_variant(&s);
    assert_eq!(num(v, "produced"), 0.0, "{v}");
    assert_eq!(num(v, "in_flight"), 0.0, "{v}");
}

#[test]
fn a_loss_probability_of_1_loses_every_message_and_0_loses_none() {
    let network = |p: &str| format!("{BASE}\n[network]\nloss_probability = {p}\nduplicate_probability = {p}\n");
    let (o, s) = run(&network("1"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v = default_variant(&s);
    assert!(num(v, "produced") > 50.0, "{v}");
    assert_eq!(num(v, "processed"), 0.0, "nothing gets through a network that loses everything: {v}");
    assert_eq!(num(v, "lost"), num(v, "produced"), "{v}");

    let (o, s) = run(&network("0"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v = default_variant(&s);
    assert!(num(v, "produced") > 50.0, "{v}");
    assert_eq!(num(v, "processed"), num(v, "produced"), "{v}");
    assert_eq!(num(v, "lost") + num(v, "duplicated"), 0.0, "{v}");
}

#[test]
fn an_empty_topology_is_refused() {
    let dir = TempDir::new("hostile-empty");
    let file = dir.write("empty.toml", "name = \"empty\"\nconcept = \"nothing\"\nseed = 1\n");
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert!(err.contains("the scenario has no nodes"), "{err}");
}

#[test]
fn a_partition_that_never_heals_cuts_the_producer_off_for_good() {
    // Fire-and-forget: what is sent into the partition is lost, and the
    // drain (faults healed) does not bring it back.
    let text = format!(
        "{BASE}\n[[faults]]\nkind = \"partition\"\nat_ms = 500\ngroups = [[\"producer\"], [\"broker\", \"consumer\"]]\n"
    )
    .replace("rate_per_s = 100 }", "rate_per_s = 100 }\nacks = \"none\"");
    let (o, s) = run(&text, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v = default_variant(&s);
    let (produced, processed, lost) = (num(v, "produced"), num(v, "processed"), num(v, "lost"));
    assert!(processed > 20.0 && lost > 20.0, "about half before, half after the cut: {v}");
    assert_eq!(processed + lost, produced, "{v}");
}

#[test]
fn a_fault_window_that_ends_before_it_starts_is_refused() {
    let text = format!("{BASE}\n[[faults]]\nkind = \"crash\"\nnode = \"consumer\"\nat_ms = 500\nuntil_ms = 100\n");
    refused(&text, 23, "faults.0.until_ms", "ends (100 ms) before it begins (500 ms)");
}

#[test]
fn a_billion_messages_stop_at_max_events_with_exit_3() {
    let text = BASE
        .replace("duration_ms = 1_000\n", "")
        .replace("[producers.producer]\n", "[producers.producer]\nmessages = 1_000_000_000\n");
    let (o, s) = run(&text, &["--set", "run.max_events=20000"]);
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    assert!(stderr(&o).contains("run.max_events (20000 events)"), "{}", describe(&o));
    let v = default_variant(&s);
    assert_eq!(num(v, "run.events"), 20_000.0, "{v}");
    assert!(num(v, "processed") > 1000.0, "{v}");
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{a=", "}")] {
        let text = format!("{BASE}\nnested = {}1{}\n", open.repeat(10_000), close.repeat(10_000));
        let dir = TempDir::new("hostile-nested");
        let file = dir.write("nested.toml", &text);
        let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
        assert!(err.contains("nested.toml:19:") && err.contains("recursion limit"), "{err}");
    }
}

#[test]
fn node_names_with_a_quote_or_a_leading_equals_sign_are_refused() {
    for name in [r#""q\"x""#, r#""=cmd""#, r#""+x""#, r#""@x""#] {
        let text = BASE.replace("[consumers.consumer]", &format!("[consumers.{name}]"));
        refused(&text, 15, "consumers.", "a node name must hold only ASCII letters, digits, `_` and `-`");
    }
}

#[test]
fn variant_names_with_a_comma_or_a_leading_equals_sign_are_refused() {
    for name in [r#""a,b""#, r#""=cmd""#] {
        let text = format!("{BASE}\n[variants.{name}]\ndescription = \"odd\"\n");
        refused(&text, 19, "variants.", "a variant name must hold only ASCII letters, digits, `_` and `-`");
    }
}

//! Publishers as RabbitMQ has them, through the real command line:
//!
//! - an idempotent producer to a queue broker is refused (RabbitMQ has
//!   publisher deduplication on streams only): exit 2, naming the file,
//!   the line and the field;
//! - a durable queue keeps persistent messages across a broker crash and
//!   loses transient ones (cause `transient`); a non-durable one loses both;
//! - persistent publishes are confirmed in batches at the broker's disk
//!   sync, one confirm (with `multiple`) covering every publish of the
//!   channel the sync made safe.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, num, run_summary, TempDir};
use serde_json::Value;

/// A producer at `rate` messages a second (`messages` of them, `producer`
/// lines added) to queue broker `b` (`broker` lines added), read by one
/// consumer that takes 5 ms a message; `faults` appended.
fn scenario(rate: u32, messages: u32, producer: &str, broker: &str, faults: &str) -> String {
    format!(
        r#"name = "confirms"
concept = "publisher confirms"

[run]
drain_ms = 60000

[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
messages = {messages}
acks = "broker"
retries = 100
{producer}

[brokers.b]
kind = "queue"
{broker}

[consumers.c]
source = "b"
processing = {{ dist = "constant", ms = 5 }}
prefetch = 10
{faults}"#
    )
}

/// Regression (issue 12, "wrong today" 5): an idempotent producer to a
/// queue broker used to be accepted (its resends deduplicated by a
/// sequencer RabbitMQ's queues do not have: 0 duplicates). It is refused.
#[test]
fn an_idempotent_producer_to_a_queue_broker_is_refused_with_exit_2() {
    let dir = TempDir::new("confirms-idempotent");
    let text = scenario(100, 100, "idempotent = true", "", "");
    let line = text.lines().position(|l| l.starts_with("idempotent")).unwrap() + 1;
    let file = dir.write("idem.toml", &text);
    let out = dir.path().join("out");
    let err = assert_bad_input(&asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    assert_names(&err, &file, line, "producers.p.idempotent");
    assert!(err.contains("streams only"), "says why: {err}");
    assert!(err.contains("effect = \"idempotent\"") && err.contains("log broker"), "says what instead: {err}");
}

#[test]
fn a_persistent_setting_for_a_log_producer_is_refused() {
    let dir = TempDir::new("confirms-log-persistent");
    let text = r#"name = "x"
concept = "x"
[producers.p]
target = "k"
topic = "t"
arrival = { process = "constant", rate_per_s = 10 }
messages = 10
persistent = true
[brokers.k]
kind = "log"
topics = { t = { partitions = 1 } }
"#;
    let file = dir.write("log.toml", text);
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert_names(&err, &file, 8, "producers.p.persistent");
}

/// The broker crashes at 1 s for 0.5 s with a backlog: the consumer takes
/// 5 ms a message (200/s) while 300/s arrive.
const CRASH: &str = "[[faults]]\nkind = \"crash\"\nnode = \"b\"\nat_ms = 1000\nuntil_ms = 1500\n";

fn crash_run(dir: &TempDir, name: &str, producer: &str, broker: &str) -> Value {
    let file = dir.write(&format!("{name}.toml"), &scenario(300, 600, producer, broker, CRASH));
    let (summary, _) = run_summary(file.to_str().unwrap(), "1", &dir.path().join(name));
    summary["variants"]["default"].clone()
}

#[test]
fn a_durable_queue_keeps_persistent_messages_across_a_crash_and_loses_transient_ones() {
    let dir = TempDir::new("confirms-crash");
    let persistent = crash_run(&dir, "persistent", "persistent = true", "");
    assert_eq!(num(&persistent, "lost"), 0.0, "a confirmed persistent message survives the restart");
    assert_eq!(num(&persistent, "processed"), num(&persistent, "produced"));

    let transient = crash_run(&dir, "transient", "", "");
    // About (300 - 200) per second of backlog for 1 s was waiting: far more than none.
    let lost = num(&transient, "lost");
    assert!(lost > 10.0, "the backlog of transient messages is lost: {lost}");
    assert_eq!(num(&transient, "lost_by_cause.transient"), lost, "every loss is named");

    let non_durable = crash_run(&dir, "non-durable", "persistent = true", "durable = false");
    let lost = num(&non_durable, "lost");
    assert!(lost > 10.0, "a non-durable queue loses persistent messages too: {lost}");
    assert_eq!(num(&non_durable, "lost_by_cause.crash"), lost);
}

#[test]
fn persistent_publishes_are_confirmed_in_batches_at_the_sync() {
    // 500 publishes a second, a 200 ms sync: the first publish after a sync
    // arms the timer, and the Poisson arrivals of the next 200 ms join it,
    // so a confirm covers 1 + Poisson(100) publishes. Over n confirms the
    // mean has a standard deviation of sqrt(100 / n).
    let dir = TempDir::new("confirms-batches");
    let file = dir.write("batches.toml", &scenario(500, 5000, "persistent = true", "", ""));
    let (summary, _) = run_summary(file.to_str().unwrap(), "1", &dir.path().join("out"));
    let v = &summary["variants"]["default"];
    let (frames, covered) = (num(v, "metrics.confirms_at_sync"), num(v, "metrics.publishes_confirmed_at_sync"));
    assert_eq!(covered, num(v, "produced"), "every publish was confirmed at a sync");
    assert_eq!(num(v, "acked"), num(v, "produced"), "and the ledger saw every confirmed id");
    let mean = covered / frames;
    let sd = (100.0 / frames).sqrt();
    assert!((mean - 101.0).abs() < 5.0 * sd + 1.0, "mean {mean} over {frames} confirms (sd {sd})");

    // Transient publishes are confirmed at once, one by one: no sync.
    let file = dir.write("transient.toml", &scenario(500, 5000, "", "", ""));
    let (summary, _) = run_summary(file.to_str().unwrap(), "1", &dir.path().join("out2"));
    let v = &summary["variants"]["default"];
    assert!(v["metrics"].get("confirms_at_sync").is_none(), "{}", v["metrics"]);
    assert_eq!(num(v, "acked"), num(v, "produced"));
}

//! The bundled log-broker scenarios through the real command line:
//! `asyncsim run` on `replication-acks.toml`, `delivery-guarantees.toml`
//! and `exactly-once-myth.toml` writes the documented variant keys to
//! `summary.json`, with the figures each scenario's header promises; and
//! mistakes in log settings are bad input (exit 2) that name the file, the
//! line and the field.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, repo, run_summary, TempDir};
use serde_json::Value;

/// Runs a bundled scenario with seed 1; it must exit 0 (every expectation
/// held). Checks that summary.json holds exactly `variants`, in that (file)
/// order, and returns it.
fn run_bundled(file: &str, variants: &[&str]) -> Value {
    let dir = TempDir::new(file.trim_end_matches(".toml"));
    let (summary, text) = run_summary(&format!("scenarios/{file}"), "1", &dir.path().join("out"));
    let mut names: Vec<&str> = summary["variants"].as_object().expect("variants").keys().map(|k| k.as_str()).collect();
    let mut expected = variants.to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(names, expected, "the variants of {file}");
    // The map above is sorted; the file keeps the scenario's order.
    let at = text.find("\"variants\"").expect("a variants key");
    let positions: Vec<usize> =
        variants.iter().map(|v| text[at..].find(&format!("\"{v}\":")).expect("a variant key")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{file}: variants out of file order: {positions:?}");
    summary
}

fn names(summary: &Value) -> Vec<String> {
    summary["variants"].as_object().expect("variants").keys().cloned().collect()
}

/// A number at a dotted path in a variant (absent metrics count as 0).
fn num(summary: &Value, variant: &str, path: &str) -> f64 {
    let mut x = &summary["variants"][variant];
    assert!(!x.is_null(), "no variant `{variant}`");
    for seg in path.split('.') {
        x = match x.get(seg) {
            Some(v) => v,
            None if path.starts_with("metrics.") => return 0.0,
            None => panic!("no key `{path}` in variant `{variant}`"),
        };
    }
    x.as_f64().unwrap_or_else(|| panic!("`{path}` of `{variant}` is not a number"))
}

#[test]
fn replication_acks_shows_what_each_acks_setting_loses() {
    let variants = [
        "acks-0",
        "acks-1",
        "acks-all",
        "acks-all-unclean-election",
        "acks-all-power-loss",
        "acks-all-power-loss-flush-100ms",
    ];
    let s = run_bundled("replication-acks.toml", &variants);
    // A power loss of every replica loses acked writes no replica flushed;
    // a flush every 100 ms loses far fewer.
    let (os, flushed) = (num(&s, "acks-all-power-loss", "lost"), num(&s, "acks-all-power-loss-flush-100ms", "lost"));
    assert_eq!(num(&s, "acks-all-power-loss", "lost_by_cause.unflushed"), os);
    assert!(os > 1000.0 && flushed < os / 4.0, "{os} lost without a flush, {flushed} with");
    for v in names(&s) {
        assert_eq!(num(&s, &v, "in_flight"), 0.0, "{v}");
    }
    // acks=0: the producer never hears back; what died with the leader is lost.
    assert!(num(&s, "acks-0", "lost") > 0.0);
    assert_eq!(num(&s, "acks-0", "acked"), 0.0);
    // acks=1: acknowledged writes are truncated away by the failover.
    assert!(num(&s, "acks-1", "lost") > 0.0);
    assert!(num(&s, "acks-1", "metrics.acked_records_truncated") > 0.0);
    // acks=all, min ISR 2: nothing acknowledged is lost.
    assert_eq!(num(&s, "acks-all", "lost"), 0.0);
    assert_eq!(num(&s, "acks-all", "metrics.acked_records_truncated"), 0.0);
    assert!(num(&s, "acks-all", "metrics.leader_elections") > 0.0);
    // acks=all with min ISR 1 and an unclean election loses acknowledged writes.
    let unclean = "acks-all-unclean-election";
    assert!(num(&s, unclean, "lost") > 0.0);
    assert!(num(&s, unclean, "metrics.unclean_elections") > 0.0);
    assert!(num(&s, unclean, "metrics.acked_records_truncated") > 0.0);
}

#[test]
fn delivery_guarantees_loses_duplicates_or_neither() {
    let s = run_bundled("delivery-guarantees.toml", &["at-most-once", "at-least-once", "exactly-once"]);
    for v in names(&s) {
        assert_eq!(num(&s, &v, "in_flight"), 0.0, "{v}");
        assert!(num(&s, &v, "processed") > 0.0, "{v}");
    }
    assert!(num(&s, "at-most-once", "lost") > 0.0);
    assert_eq!(num(&s, "at-most-once", "duplicated"), 0.0);
    assert_eq!(num(&s, "at-least-once", "lost"), 0.0);
    assert_eq!(num(&s, "at-least-once", "send_failed"), 0.0);
    assert!(num(&s, "at-least-once", "duplicated") > 0.0);
    assert_eq!(num(&s, "exactly-once", "lost"), 0.0);
    assert_eq!(num(&s, "exactly-once", "send_failed"), 0.0);
    assert_eq!(num(&s, "exactly-once", "duplicated"), 0.0);
}

#[test]
fn exactly_once_myth_keeps_the_log_exact_and_repeats_the_emails() {
    let s = run_bundled("exactly-once-myth.toml", &["transactional", "at-least-once", "read-uncommitted"]);
    for v in names(&s) {
        assert_eq!(num(&s, &v, "lost"), 0.0, "{v}");
        assert_eq!(num(&s, &v, "in_flight"), 0.0, "{v}");
        // The email is sent outside any transaction: at-least-once either way.
        assert!(num(&s, &v, "domains.email.duplicated") > 0.0, "{v}");
    }
    assert_eq!(num(&s, "transactional", "domains.output.duplicated"), 0.0);
    assert!(num(&s, "transactional", "metrics.transactions_committed") > 0.0);
    assert!(num(&s, "at-least-once", "domains.output.duplicated") > 0.0);
    // Read uncommitted, the output of aborted transactions is seen too.
    let aborted = num(&s, "read-uncommitted", "domains.output.duplicated_by_cause.aborted_transaction");
    assert!(aborted > 0.0 && aborted == num(&s, "read-uncommitted", "domains.output.duplicated"));
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

/// Writes `text` as a scenario file, runs and validates it, and checks the
/// bad-input contract: exit 2, no panic, `FILE:LINE:` and the field's path
/// in the error, no output folder.
fn check_bad(name: &str, text: &str, needle: &str, field: &str) {
    let line =
        text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` is not in the scenario"))
            + 1;
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let out = dir.path().join("out");
    for args in
        [vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()], vec!["validate", file.to_str().unwrap()]]
    {
        assert_names(&assert_bad_input(&asyncsim(&args)), &file, line, field);
    }
    assert!(!out.exists(), "bad input must not create the output folder");
}

fn bundled(file: &str) -> String {
    std::fs::read_to_string(repo().join("scenarios").join(file)).expect("read a bundled scenario")
}

#[test]
fn an_unknown_topic_names_file_line_and_field() {
    let text = bundled("replication-acks.toml");
    // The producer's topic (the first `topic = "events"`, in [producers.producer]).
    let at = text.find("[producers.producer]").expect("a producer");
    let (head, tail) = text.split_at(at);
    let text = format!("{head}{}", tail.replacen("topic = \"events\"", "topic = \"evnets\"", 1));
    check_bad("unknown-topic", &text, "\"evnets\"", "producers.producer.topic");
}

#[test]
fn a_replica_out_of_range_names_file_line_and_field() {
    let text = bundled("delivery-guarantees.toml");
    let leader_crash = "kind = \"leader-crash\"\nbroker = \"kafka\"\ntopic = \"orders\"\npartition = 0";
    assert!(text.contains(leader_crash), "the scenario's leader-crash fault changed");
    // Three replicas: 0, 1 and 2.
    let text = text.replacen(leader_crash, "kind = \"replica-crash\"\nbroker = \"kafka\"\nreplica = 3", 1);
    check_bad("replica-out-of-range", &text, "replica = 3", "faults.1.replica");
}

#[test]
fn a_power_loss_of_a_replica_out_of_range_names_file_line_and_field() {
    let text = bundled("delivery-guarantees.toml");
    let leader_crash = "kind = \"leader-crash\"\nbroker = \"kafka\"\ntopic = \"orders\"\npartition = 0";
    assert!(text.contains(leader_crash), "the scenario's leader-crash fault changed");
    // Three replicas: 0, 1 and 2.
    let text = text.replacen(leader_crash, "kind = \"power-loss\"\nbroker = \"kafka\"\nreplicas = [0, 3]", 1);
    check_bad("power-loss-out-of-range", &text, "replicas = [0, 3]", "faults.1.replicas");
}

#[test]
fn acks_1_on_a_queue_broker_names_file_line_and_field() {
    let text = bundled("mm1.toml");
    assert!(text.contains("[producers.producer]\n"), "mm1's producer changed");
    let text = text.replacen("[producers.producer]\n", "[producers.producer]\nacks = \"1\"\n", 1);
    check_bad("acks-on-queue", &text, "acks = \"1\"", "producers.producer.acks");
}

#[test]
fn a_log_only_field_on_a_queue_consumer_names_file_line_and_field() {
    // A queue consumer with a log consumer's setting would silently ignore
    // it: it is refused instead.
    let text = bundled("mm1.toml");
    assert!(text.contains("[consumers.consumer]\n"), "mm1's consumer changed");
    let text = text.replacen("[consumers.consumer]\n", "[consumers.consumer]\nmax_poll_records = 10\n", 1);
    check_bad("log-field-on-queue", &text, "max_poll_records = 10", "consumers.consumer.max_poll_records");
}

#[test]
fn a_heartbeat_not_below_the_session_timeout_names_file_line_and_field() {
    // Kafka's client refuses heartbeat.interval.ms >= session.timeout.ms:
    // the member would be expired between two heartbeats.
    let text = bundled("delivery-guarantees.toml");
    let beat = "heartbeat_interval_ms = 100";
    assert!(text.contains(beat), "delivery-guarantees' consumers changed");
    let equal = text.replacen(beat, "heartbeat_interval_ms = 500", 1); // its broker's session is 500 ms
    check_bad("heartbeat-equal", &equal, "heartbeat_interval_ms = 500", "consumers.consumer-a.heartbeat_interval_ms");
    let above = text.replacen(beat, "heartbeat_interval_ms = 3000", 1);
    check_bad("heartbeat-above", &above, "heartbeat_interval_ms = 3000", "consumers.consumer-a.heartbeat_interval_ms");
    // Above Kafka's advice (a third of the session) but below it: accepted, as Kafka does.
    let dir = TempDir::new("heartbeat-below");
    let file = dir.write("below.toml", &text.replacen(beat, "heartbeat_interval_ms = 499", 1));
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

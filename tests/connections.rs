//! Connections, through the real command line: a fault-free pipeline with
//! jittered latency reorders nothing (issue 10, "wrong today" 1: the log
//! reordered 1,012 of 5,999 messages and the queue 1,187 of 9,999, because
//! each message travelled as an independent datagram); and mistakes in the
//! new network settings are bad input (exit 2) naming file, line and field.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, num, run_summary, TempDir};

/// Lognormal latency, mean 2 ms, standard deviation 1.5 ms: messages 0.5 ms
/// apart routinely draw delays in the opposite order.
const JITTER: &str = r#"latency = { dist = "lognormal", mean_ms = 2, stddev_ms = 1.5 }"#;

/// Runs `text` with seed `seed`; every expectation must hold. Returns the
/// default variant.
fn run(name: &str, text: &str, seed: &str) -> serde_json::Value {
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let (summary, _) = run_summary(file.to_str().expect("a UTF-8 path"), seed, &dir.path().join("out"));
    summary["variants"]["default"].clone()
}

fn log_pipeline() -> String {
    format!(
        r#"
name = "log-fifo"
concept = "a fault-free log pipeline with jittered latency"
[network]
{JITTER}
[producers.producer]
target = "kafka"
topic = "events"
arrival = {{ process = "poisson", rate_per_s = 2000 }}
messages = 6000
keys = {{ distribution = "uniform", count = 20 }}
acks = "all"
ack_timeout_ms = 5000
max_in_flight = 5
[brokers.kafka]
kind = "log"
topics = {{ events = {{ partitions = 4 }} }}
[consumers.reader]
source = "kafka"
topic = "events"
group = "readers"
processing = {{ dist = "constant", ms = 0.1 }}
max_poll_records = 50
"#
    )
}

fn queue_pipeline() -> String {
    format!(
        r#"
name = "queue-fifo"
concept = "a fault-free queue pipeline with jittered latency"
[network]
{JITTER}
[producers.producer]
target = "broker"
arrival = {{ process = "poisson", rate_per_s = 2000 }}
messages = 10000
keys = {{ distribution = "uniform", count = 20 }}
acks = "broker"
ack_timeout_ms = 5000
[brokers.broker]
kind = "queue"
[consumers.consumer]
source = "broker"
processing = {{ dist = "constant", ms = 0.1 }}
prefetch = 100
"#
    )
}

/// The counts that say the run was fault-free, and its reordering.
fn assert_fault_free_and_in_order(v: &serde_json::Value, produced: f64) {
    assert_eq!(num(v, "produced"), produced, "{v}");
    assert_eq!(num(v, "processed"), produced, "{v}");
    for key in ["lost", "duplicated", "errors", "in_flight", "send_failed"] {
        assert_eq!(num(v, key), 0.0, "{key}: {v}");
    }
    assert_eq!(num(v, "reordered"), 0.0, "a connection keeps its order: {v}");
}

/// Before connections, seed 1 reordered 220 of 6,000.
#[test]
fn a_fault_free_log_pipeline_with_jitter_reorders_nothing() {
    for seed in ["1", "2", "3"] {
        let v = run("log-fifo", &log_pipeline(), seed);
        assert_fault_free_and_in_order(&v, 6000.0);
    }
}

/// Before connections, seed 1 reordered 973 of 10,000.
#[test]
fn a_fault_free_queue_pipeline_with_jitter_reorders_nothing() {
    for seed in ["1", "2", "3"] {
        let v = run("queue-fifo", &queue_pipeline(), seed);
        assert_fault_free_and_in_order(&v, 10000.0);
    }
}

/// The same queue pipeline with a `reorder` fault on the producer's links
/// does reorder: reordering now has a cause, and it is this one.
#[test]
fn a_reorder_fault_reorders_the_same_pipeline() {
    let text = format!(
        "{}\n[[faults]]\nkind = \"reorder\"\nat_ms = 1000\nuntil_ms = 3000\nprobability = 0.1\nnodes = [\"producer\"]\n",
        queue_pipeline()
    );
    let v = run("queue-reorder", &text, "1");
    assert!(num(&v, "reordered") > 0.0, "{v}");
    assert_eq!(num(&v, "lost") + num(&v, "duplicated"), 0.0, "{v}");
}

/// Runs a bad scenario: exit 2, and stderr names the file, the line of
/// `needle` and `field`.
fn check_bad(name: &str, text: &str, needle: &str, field: &str) {
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let o = asyncsim(&["run", file.to_str().expect("a UTF-8 path"), "--out", "/nonexistent-asyncsim-out"]);
    let err = assert_bad_input(&o);
    let lines: Vec<usize> = text.lines().enumerate().filter(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1).collect();
    assert_eq!(lines.len(), 1, "`{needle}` must occur once");
    assert_names(&err, &file, lines[0], field);
}

#[test]
fn bad_connection_and_fault_fields_name_file_line_and_field() {
    let base = queue_pipeline();
    let fault = |body: &str| format!("{base}\n[[faults]]\n{body}\n");
    check_bad(
        "reorder-prob",
        &base.replace("[network]\n", "[network]\nreorder_probability = 1.5\n"),
        "reorder_probability",
        "network.reorder_probability",
    );
    check_bad(
        "link-reorder-prob",
        &format!("{base}\n[[network.links]]\nfrom = \"producer\"\nto = \"broker\"\nreorder_probability = -0.1\n"),
        "reorder_probability",
        "network.links.0.reorder_probability",
    );
    check_bad(
        "reorder-fault-prob",
        &fault("kind = \"reorder\"\nat_ms = 10\nprobability = 2"),
        "probability = 2",
        "faults.0.probability",
    );
    check_bad(
        "dup-spike-node",
        &fault("kind = \"duplicate-spike\"\nat_ms = 10\nprobability = 0.5\nnodes = [\"nobody\"]"),
        "nodes = ",
        "faults.0.nodes",
    );
    check_bad(
        "dup-spike-no-prob",
        &fault("kind = \"duplicate-spike\"\nat_ms = 10"),
        "[[faults]]",
        "field `faults.0`: a `duplicate-spike` fault needs `probability`",
    );
    check_bad(
        "reorder-stray-field",
        &fault("kind = \"reorder\"\nat_ms = 10\nprobability = 0.1\nfactor = 2"),
        "[[faults]]",
        "`factor` does not belong to a `reorder` fault",
    );
}

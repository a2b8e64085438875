//! Integration tests of `scenarios/outbox.toml` and
//! `scenarios/request-response.toml` through the real `asyncsim` binary:
//! the expectations hold, `summary.json` carries the variants, domains and
//! metrics they promise, and bad forwarding or client settings are refused
//! with the file, the line and the field.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, describe, num, run_summary, TempDir};

#[test]
fn the_outbox_scenario_shows_each_dual_write_strategy() {
    let dir = TempDir::new("outbox");
    let (summary, text) = run_summary("scenarios/outbox.toml", "3", &dir.path().join("out"));
    let v = &summary["variants"];
    let names = ["send-after-commit", "retry-without-idempotency", "idempotent-receiver", "transactional-outbox"];
    let at: Vec<usize> = names.iter().map(|n| text.find(&format!("\"{n}\": {{")).expect(n)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "variants in file order: {at:?}");
    let send = &v["send-after-commit"];
    assert!(num(send, "inconsistent") > 0.0);
    assert_eq!(num(send, "inconsistent"), num(send, "domains.y.lost"), "X changed, Y never told");
    assert_eq!(num(send, "domains.x.lost"), 0.0);
    let retry = &v["retry-without-idempotency"];
    assert_eq!(num(retry, "inconsistent"), 0.0);
    assert!(num(retry, "domains.y.duplicated") > 0.0);
    for name in ["idempotent-receiver", "transactional-outbox"] {
        let x = &v[name];
        for key in ["inconsistent", "lost", "duplicated", "in_flight"] {
            assert_eq!(num(x, key), 0.0, "{name}: {key}");
        }
    }
    // The outbox keeps A's input flowing while B's queue is cut off.
    let stalled = num(&v["idempotent-receiver"], "domains.x.latency_ms.p90");
    let flowing = num(&v["transactional-outbox"], "domains.x.latency_ms.p90");
    assert!(flowing * 2.0 < stalled, "outbox p90 {flowing} ms vs ack-after-forward {stalled} ms");
    assert!(num(&v["transactional-outbox"], "metrics.outbox_max_entries") > 0.0);
}

#[test]
fn the_request_response_scenario_shows_late_and_out_of_order_responses_and_double_work() {
    let dir = TempDir::new("rpc");
    let (summary, _) = run_summary("scenarios/request-response.toml", "7", &dir.path().join("out"));
    let v = &summary["variants"];
    let with = &v["with-idempotency-key"];
    let without = &v["without-idempotency-key"];
    for x in [with, without] {
        for key in ["responses_out_of_order", "late_responses", "request_timeouts", "duplicate_responses"] {
            assert!(num(x, &format!("metrics.{key}")) > 0.0, "{key}");
        }
        assert_eq!(num(x, "domains.responses.duplicated"), 0.0, "the client applies one response per request");
    }
    assert_eq!(num(with, "domains.work.duplicated"), 0.0);
    assert!(num(without, "domains.work.duplicated") > 0.0);
    // The key changes nothing the client sees, only the work done.
    assert_eq!(num(with, "domains.responses.processed"), num(without, "domains.responses.processed"));
}

/// Writes `text`, validates it, and checks the bad-input contract: exit 2,
/// and stderr names `FILE:LINE:` and `field`.
fn refused(name: &str, text: &str, needle: &str, field: &str) -> String {
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let line = text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1;
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert_names(&err, &file, line, field);
    err
}

const BASE: &str = r#"name = "bad"
concept = "test"
[producers.p]
target = "inbox"
arrival = { process = "constant", rate_per_s = 10 }
messages = 10
[brokers.inbox]
kind = "queue"
[brokers.to-b]
kind = "queue"
[consumers.a]
source = "inbox"
processing = { dist = "constant", ms = 1 }
"#;

#[test]
fn acking_after_a_forward_that_is_not_acked_is_refused() {
    let text = format!("{BASE}forward_to = \"to-b\"\nack = \"after-forward\"\n");
    let err = refused("after-forward", &text, "after-forward", "consumers.a.ack");
    assert!(err.contains("forward_acks"), "{err}");
}

#[test]
fn a_forward_setting_without_forward_to_is_refused() {
    let text = format!("{BASE}outbox = true\n");
    refused("no-forward-to", &text, "outbox", "consumers.a.outbox");
}

#[test]
fn a_forward_to_an_unknown_broker_is_refused() {
    let text = format!("{BASE}forward_to = \"nowhere\"\n");
    refused("unknown-forward", &text, "nowhere", "consumers.a.forward_to");
}

#[test]
fn forwards_that_loop_are_refused() {
    let text = format!(
        "{BASE}forward_to = \"to-b\"\n[consumers.b]\nsource = \"to-b\"\nprocessing = {{ dist = \"constant\", ms = 1 }}\nforward_to = \"inbox\"\n"
    );
    let err = refused("loop", &text, "forward_to = \"to-b\"", "consumers.a.forward_to");
    assert!(err.contains("loop"), "{err}");
}

#[test]
fn a_client_with_an_unknown_response_queue_is_refused() {
    let text = format!(
        "{BASE}[clients.c]\ntarget = \"inbox\"\nresponses = \"replies\"\narrival = {{ process = \"constant\", rate_per_s = 1 }}\nmessages = 1\n"
    );
    refused("client", &text, "replies", "clients.c.responses");
}

#[test]
fn an_expectation_on_an_unknown_domain_or_unreportable_metric_is_refused_and_declared_metrics_default_to_zero() {
    let text = format!("{BASE}domain = \"x\"\n")
        .replace("concept = \"test\"", "concept = \"test\"\nexpect = [\"domains.y.lost == 0\"]");
    let err = refused("domain", &text, "expect", "expect");
    assert!(err.contains("no effect domain named `y`") && err.contains("`x`"), "{err}");

    // A metric only a client reports, in a scenario without one, is refused...
    let text = format!("{BASE}domain = \"x\"\n")
        .replace("concept = \"test\"", "concept = \"test\"\nexpect = [\"metrics.late_responses == 0\"]");
    let err = refused("client-metric", &text, "expect", "expect");
    assert!(err.contains("the metric `late_responses`"), "{err}");

    // ...but one the broker declares and never reported counts as 0.
    let dir = TempDir::new("metric");
    let file = dir.path().join("metric.toml");
    let text = format!("{BASE}domain = \"x\"\n").replace(
        "concept = \"test\"",
        "concept = \"test\"\nexpect = [\"metrics.dropped_no_subscriber == 0\", \"domains.x.lost == 0\"]",
    );
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let o = asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
}

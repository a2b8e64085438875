//! Request/response over two queues: a client, a request queue, a server
//! that forwards its result to the client's response queue.
//!
//! - Property: with an idempotent server (its dedup store is the
//!   idempotency-key store), no request's work is done twice, whatever the
//!   loss, duplication, crashes of the server and timeouts of the client;
//!   and the client applies each response once.
//! - Regressions: without the key, a retry does the work twice; a response
//!   that comes after its attempt timed out is late, and the retry's
//!   response a duplicate; a quick response overtakes a slower one.

use crate::common;

use common::{metric, run};
use proptest::prelude::*;

/// `client` settings and `server` settings on a zero-latency network, with
/// `extra` (faults) appended.
fn rpc(client: &str, server: &str, extra: &str) -> String {
    format!(
        r#"
name = "rpc"
concept = "test"
[clients.client]
target = "requests"
responses = "responses"
{client}
[brokers.requests]
kind = "queue"
# The old default: RabbitMQ's 30 min would outlast these runs' drains.
redelivery_timeout_ms = 30_000
[brokers.responses]
kind = "queue"
redelivery_timeout_ms = 200
[consumers.server]
source = "requests"
domain = "work"
forward_to = "responses"
{server}
{extra}
"#
    )
}

/// One request at 1 s; the server takes 80 ms; the client waits 50 ms and
/// retries once, at once. The original's response comes at 1.08 s (after
/// the timeout), the retry's at 1.13 s.
const SLOW: &str = "arrival = { process = \"constant\", rate_per_s = 1 }\nmessages = 1\ntimeout_ms = 50\nretries = 1";
const SERVER_80MS: &str = "processing = { dist = \"constant\", ms = 80 }\nconcurrency = 2";

#[test]
fn retries_without_an_idempotency_key_do_the_work_twice() {
    let plain = run(&rpc(SLOW, SERVER_80MS, ""), 1);
    assert_eq!(plain.domains["work"].processed, 1);
    assert_eq!(plain.domains["work"].duplicated, 1, "the retry was new work");
    assert_eq!(plain.domains["responses"].processed, 1);

    let keyed = run(&rpc(SLOW, &format!("{SERVER_80MS}\neffect = \"idempotent\""), ""), 1);
    assert_eq!(keyed.domains["work"].duplicated, 0, "the key was in the store");
    assert_eq!(keyed.domains["responses"].processed, 1, "the client still got its answer");
    assert_eq!(metric(&keyed, "duplicate_responses"), 1.0, "the original result was sent again");
}

#[test]
fn a_response_after_its_timeout_is_late_and_the_retrys_is_a_duplicate() {
    let out = run(&rpc(SLOW, SERVER_80MS, ""), 1);
    assert_eq!(metric(&out, "request_timeouts"), 1.0);
    assert_eq!(metric(&out, "late_responses"), 1.0);
    assert_eq!(metric(&out, "duplicate_responses"), 1.0);
    assert_eq!(metric(&out, "requests_given_up"), 0.0);
    // The user waited for the first response: 80 ms.
    let latency = out.domains["responses"].latency_ms.max;
    assert!((latency - 80.0).abs() < 0.01, "{latency}");
    assert_eq!(out.domains["responses"].duplicated, 0, "the client applies one response per request");
}

#[test]
fn a_request_given_up_is_lost_to_the_user_and_its_response_is_late() {
    let out = run(&rpc(&SLOW.replace("retries = 1", "retries = 0"), SERVER_80MS, ""), 1);
    assert_eq!(metric(&out, "requests_given_up"), 1.0);
    assert_eq!(metric(&out, "late_responses"), 1.0);
    assert_eq!(out.domains["responses"].lost, 1, "never answered while the client waited");
    assert_eq!(out.domains["work"].processed, 1, "the work was done all the same");
    assert_eq!(out.inconsistent, 1);
}

#[test]
fn a_quick_response_overtakes_one_still_awaited() {
    // Requests at 0.1 s and 0.2 s, 10 ms of work each. The first response
    // is dropped on its way to the client and redelivered after the
    // responses queue's consumer timeout (200 ms): the second arrives first.
    let client = "arrival = { process = \"constant\", rate_per_s = 10 }\nmessages = 2\ntimeout_ms = 1000";
    let drop = "[[faults]]\nkind = \"one-way-partition\"\nfrom = [\"responses\"]\nto = [\"client\"]\nat_ms = 105\nuntil_ms = 115\n";
    let out = run(&rpc(client, "processing = { dist = \"constant\", ms = 10 }", drop), 1);
    assert_eq!(metric(&out, "responses_out_of_order"), 1.0);
    assert_eq!(metric(&out, "late_responses"), 0.0);
    assert_eq!(out.domains["responses"].processed, 2);
}

#[derive(Debug, Clone)]
struct Faults {
    loss: f64,
    duplicate: f64,
    timeout_ms: u32,
    retries: u32,
    crashes: Vec<(u32, u32)>,
    partition: Option<(u32, u32)>,
}

fn faults() -> impl Strategy<Value = Faults> {
    (
        0.0..0.1f64,
        0.0..0.1f64,
        5..200u32,
        0..6u32,
        prop::collection::vec((0..2000u32, 1..500u32), 0..4),
        prop::option::of((0..2000u32, 1..800u32)),
    )
        .prop_map(|(loss, duplicate, timeout_ms, retries, crashes, partition)| Faults {
            loss,
            duplicate,
            timeout_ms,
            retries,
            crashes,
            partition,
        })
}

fn faulty(f: &Faults) -> String {
    let client = format!(
        "arrival = {{ process = \"poisson\", rate_per_s = 100 }}\nmessages = 200\ntimeout_ms = {}\nretries = {}\nretry_backoff_ms = 10\nresubscribe_ms = 50",
        f.timeout_ms, f.retries
    );
    let server = "processing = { dist = \"exponential\", mean_ms = 5 }\nconcurrency = 3\nresubscribe_ms = 50\neffect = \"idempotent\"";
    let mut extra = format!(
        "[run]\ndrain_ms = 60000\n[network]\nlatency = {{ dist = \"exponential\", mean_ms = 1 }}\nloss_probability = {}\nduplicate_probability = {}\n",
        f.loss, f.duplicate
    );
    for (at, len) in &f.crashes {
        extra += &format!("[[faults]]\nkind = \"crash\"\nnode = \"server\"\nat_ms = {at}\nuntil_ms = {}\n", at + len);
    }
    if let Some((at, len)) = f.partition {
        extra += &format!(
            "[[faults]]\nkind = \"partition\"\ngroups = [[\"server\"]]\nat_ms = {at}\nuntil_ms = {}\n",
            at + len
        );
    }
    rpc(&client, server, &extra)
}

proptest! {
    // 48 cases per property, or `PROPTEST_CASES`.
    #![proptest_config(common::proptest_config(48))]

    #[test]
    fn an_idempotent_server_never_does_a_requests_work_twice(f in faults(), seed in 0..1000u64) {
        let out = run(&faulty(&f), seed);
        prop_assert_eq!(out.domains["work"].duplicated, 0);
        prop_assert_eq!(out.domains["responses"].duplicated, 0);
        prop_assert_eq!(out.domains["responses"].in_flight, 0, "every request answered or given up");
        for d in out.domains.values() {
            prop_assert_eq!(out.counts.produced, d.processed + d.lost + d.in_flight + d.send_failed);
        }
        let answered = out.domains["responses"].processed as f64;
        prop_assert_eq!(answered + metric(&out, "requests_given_up"), out.counts.produced as f64);
    }
}

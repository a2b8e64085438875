//! Dual writes: service A changes X (domain `x`) and tells B, through a
//! second queue, to change Y (domain `y`).
//!
//! - Property: with acks after the forward and an idempotent receiver, or
//!   with a transactional outbox, random crashes of A (and of B), random
//!   loss and duplication and a partition between A and B's queue never
//!   leave X and Y inconsistent, lose a command, or apply one twice, once
//!   the drain has healed the faults.
//! - Regressions: a crash in the forward window leaves X without Y when
//!   the input is acked at the commit; the same crash is harmless with acks
//!   after the forward or with the outbox; a forward retried to a receiver
//!   without idempotency applies Y twice.

use crate::common;

use common::run;
use proptest::prelude::*;
use sim_core::engine::RunOutput;

/// Two commands, at 1 s and 2 s (the second keeps the run phase, and its
/// faults, going), from `p` to `inbox`, read by `a` (domain x, idempotent),
/// which forwards each to `to-b` 100 ms after its commit; `b` (domain y)
/// reads `to-b`. No latency, no loss: only the faults appended, which
/// concern the first command.
fn one_command(a: &str, b: &str, faults: &str) -> String {
    format!(
        r#"
name = "one-command"
concept = "test"
[producers.p]
target = "inbox"
arrival = {{ process = "constant", rate_per_s = 1 }}
messages = 2
[brokers.inbox]
kind = "queue"
[brokers.to-b]
kind = "queue"
[consumers.a]
source = "inbox"
domain = "x"
effect = "idempotent"
processing = {{ dist = "constant", ms = 1 }}
forward_to = "to-b"
forward_delay = {{ dist = "constant", ms = 100 }}
{a}
[consumers.b]
source = "to-b"
domain = "y"
processing = {{ dist = "constant", ms = 1 }}
{b}
{faults}
"#
    )
}

/// A crashes at 1.05 s, between its commit (1.001 s) and its forward
/// (1.101 s), and restarts at 1.2 s.
const CRASH_IN_WINDOW: &str = "[[faults]]\nkind = \"crash\"\nnode = \"a\"\nat_ms = 1050\nuntil_ms = 1200\n";

const AFTER_FORWARD: &str =
    "ack = \"after-forward\"\nforward_acks = \"broker\"\nforward_ack_timeout_ms = 50\nforward_retries = 100";

#[test]
fn a_crash_in_the_forward_window_leaves_x_changed_and_y_never_told() {
    let out = run(&one_command("", "", CRASH_IN_WINDOW), 1);
    assert_eq!(out.domains["x"].processed, 2, "X was committed before the crash");
    assert_eq!(out.domains["y"].processed, 1, "the first forward died with A");
    assert_eq!(out.domains["y"].lost, 1);
    assert_eq!(out.inconsistent, 1);
}

#[test]
fn without_a_crash_the_forward_reaches_b() {
    let out = run(&one_command("", "", ""), 1);
    assert_eq!((out.domains["x"].processed, out.domains["y"].processed), (2, 2));
    assert_eq!(out.inconsistent, 0);
}

#[test]
fn acking_after_the_forward_survives_a_crash_in_the_window() {
    // The input was not acked: it comes back, X skips it, B is told.
    let out = run(&one_command(AFTER_FORWARD, "effect = \"idempotent\"", CRASH_IN_WINDOW), 1);
    assert_eq!((out.domains["x"].processed, out.domains["y"].processed), (2, 2));
    assert_eq!(out.counts.duplicated, 0);
    assert_eq!(out.inconsistent, 0);
}

#[test]
fn an_outbox_entry_survives_the_crash_and_reaches_b() {
    let outbox = "outbox = true\nforward_acks = \"broker\"\nforward_ack_timeout_ms = 50";
    let out = run(&one_command(outbox, "effect = \"idempotent\"", CRASH_IN_WINDOW), 1);
    assert_eq!((out.domains["x"].processed, out.domains["y"].processed), (2, 2));
    assert_eq!(out.counts.duplicated, 0);
    assert_eq!(out.inconsistent, 0);
}

#[test]
fn a_forward_retried_to_a_receiver_without_idempotency_applies_y_twice() {
    // B's queue's acks cannot reach A for a while: A sends the forward
    // again, and B's queue gets two copies.
    let ack_lost =
        "[[faults]]\nkind = \"one-way-partition\"\nfrom = [\"to-b\"]\nto = [\"a\"]\nat_ms = 900\nuntil_ms = 1160\n";
    let plain = run(&one_command(AFTER_FORWARD, "", ack_lost), 1);
    assert_eq!(plain.domains["y"].processed, 2);
    assert!(plain.domains["y"].duplicated > 0, "Y applied once per copy");
    assert_eq!(plain.domains["x"].duplicated, 0, "X is idempotent");
    assert_eq!(plain.inconsistent, 0);

    let idempotent = run(&one_command(AFTER_FORWARD, "effect = \"idempotent\"", ack_lost), 1);
    assert_eq!(idempotent.domains["y"].duplicated, 0, "B skips the copy");
}

#[derive(Debug, Clone)]
struct Faults {
    loss: f64,
    duplicate: f64,
    crashes: Vec<(&'static str, u32, u32)>,
    partition: Option<(u32, u32)>,
}

fn faults() -> impl Strategy<Value = Faults> {
    let crash = (prop::sample::select(vec!["a", "a", "a", "b"]), 0..2000u32, 1..500u32);
    (0.0..0.1f64, 0.0..0.1f64, prop::collection::vec(crash, 0..5), prop::option::of((0..2000u32, 1..800u32)))
        .prop_map(|(loss, duplicate, crashes, partition)| Faults { loss, duplicate, crashes, partition })
}

/// 200 commands at 100/s through `inbox` to A (domain x, idempotent,
/// forwarding as `a` says) and `to-b` to B (domain y, idempotent).
fn pipeline(f: &Faults, a: &str) -> String {
    let mut s = format!(
        r#"
name = "dual-writes"
concept = "test"
[run]
drain_ms = 120000
[network]
latency = {{ dist = "exponential", mean_ms = 1 }}
loss_probability = {loss}
duplicate_probability = {dup}
[producers.p]
target = "inbox"
arrival = {{ process = "poisson", rate_per_s = 100 }}
messages = 200
keys = {{ distribution = "uniform", count = 5 }}
acks = "broker"
ack_timeout_ms = 50
retries = 1000
retry_backoff_ms = 10
[brokers.inbox]
kind = "queue"
redelivery_timeout_ms = 300
[brokers.to-b]
kind = "queue"
redelivery_timeout_ms = 300
[consumers.a]
source = "inbox"
domain = "x"
effect = "idempotent"
processing = {{ dist = "exponential", mean_ms = 3 }}
concurrency = 2
resubscribe_ms = 50
forward_to = "to-b"
forward_delay = {{ dist = "uniform", min_ms = 0, max_ms = 20 }}
{a}
[consumers.b]
source = "to-b"
domain = "y"
effect = "idempotent"
processing = {{ dist = "exponential", mean_ms = 2 }}
resubscribe_ms = 50
"#,
        loss = f.loss,
        dup = f.duplicate,
    );
    for (node, at, len) in &f.crashes {
        s += &format!("[[faults]]\nkind = \"crash\"\nnode = \"{node}\"\nat_ms = {at}\nuntil_ms = {}\n", at + len);
    }
    if let Some((at, len)) = f.partition {
        s += &format!(
            "[[faults]]\nkind = \"partition\"\ngroups = [[\"a\"], [\"to-b\"]]\nat_ms = {at}\nuntil_ms = {}\n",
            at + len
        );
    }
    s
}

fn assert_consistent(out: &RunOutput) -> Result<(), TestCaseError> {
    let c = &out.counts;
    prop_assert_eq!(out.inconsistent, 0);
    prop_assert_eq!(c.duplicated, 0);
    prop_assert_eq!(c.lost, 0);
    prop_assert_eq!(c.in_flight, 0);
    prop_assert_eq!(c.processed, 2 * c.produced, "every command applied in x and in y");
    Ok(())
}

proptest! {
    // 48 cases per property, or `PROPTEST_CASES`.
    #![proptest_config(common::proptest_config(48))]

    #[test]
    fn an_idempotent_receiver_with_acks_after_the_forward_stays_consistent(f in faults(), seed in 0..1000u64) {
        let a = "ack = \"after-forward\"\nforward_acks = \"broker\"\nforward_ack_timeout_ms = 30\nforward_retries = 3\nforward_retry_backoff_ms = 10";
        assert_consistent(&run(&pipeline(&f, a), seed))?;
    }

    #[test]
    fn a_transactional_outbox_stays_consistent(f in faults(), seed in 0..1000u64) {
        let a = "outbox = true\nforward_acks = \"broker\"\nforward_ack_timeout_ms = 30\nforward_retry_backoff_ms = 10";
        assert_consistent(&run(&pipeline(&f, a), seed))?;
    }
}

//! Unit tests of a queue consumer's failures and failure policies (see
//! `consumer/failure.rs`): retry in place, drop, the `errors` fault, poison
//! and schema versions, each step fired by hand with the test harness.

use super::tests::{deliver, to_source};
use super::{Consumer, ConsumerTimer};
use crate::dedup::Header;
use crate::engine::{Emitted, Harness};
use crate::ledger::LossCause;
use crate::message::{MsgId, NodeId};
use crate::net::NodeFault;
use crate::protocol::QueueMsg;
use crate::time::NS_PER_MS;
use ConsumerTimer::Slot;

const MS: u64 = NS_PER_MS;
const Q: NodeId = 10;

/// A consumer of broker Q (processing takes 10 ms) with `extra` settings,
/// started and subscribed (forwarding to node 11 with `forward_to`).
fn consumer(extra: &str) -> (Harness, Consumer) {
    super::tests::consumer(extra, None)
}

/// Delivers `id` (tag `tag`) into idle slot 0 and ends its first attempt.
fn first_attempt(h: &mut Harness, c: &mut Consumer, id: MsgId, tag: u64) -> Emitted {
    assert_eq!(h.message(c, Q, deliver(id, tag)).timers::<ConsumerTimer>(), vec![(10 * MS, Slot(0))]);
    h.now += 10 * MS;
    h.timer(c, Slot(0))
}

const ALWAYS_DOWN: NodeFault = NodeFault::Errors { ppm: 1_000_000 };

#[test]
fn retry_in_place_holds_the_slot_then_rejects_when_the_attempts_run_out() {
    let extra = "failure_probability = 1.0\non_failure = \"retry\"\nretry_attempts = 3\nretry_backoff_ms = 100";
    let (mut h, mut c) = consumer(extra);
    let e = first_attempt(&mut h, &mut c, 7, 1);
    assert_eq!(e.errors(), ["transient-failure"]);
    assert!(to_source(&e).is_empty(), "nothing goes back to the broker while it retries");
    assert_eq!(e.timers::<ConsumerTimer>(), [(110 * MS, Slot(0))], "the backoff, then 10 ms of processing");
    assert_eq!(e.metric("retries_in_place"), 1.0);
    // A delivery arriving now waits behind the one being retried.
    assert!(h.message(&mut c, Q, deliver(8, 2)).timers::<ConsumerTimer>().is_empty(), "head-of-line blocked");
    h.now += 110 * MS;
    assert_eq!(h.timer(&mut c, Slot(0)).timers::<ConsumerTimer>(), [(110 * MS, Slot(0))], "attempt 2 of 3 failed");
    h.now += 110 * MS;
    let e = h.timer(&mut c, Slot(0));
    assert_eq!(e.errors(), ["transient-failure", "retries-exhausted"]);
    assert_eq!(to_source(&e), [QueueMsg::Nack { tag: 1, requeue: false }], "rejected: the broker dead-letters it");
    assert_eq!(e.started(), [8], "the slot is free: the waiting delivery starts");
    assert!(e.applied().is_empty());
}

#[test]
fn a_retry_in_place_succeeds_once_the_dependency_is_back() {
    let (mut h, mut c) = consumer("on_failure = \"retry\"\nretry_backoff_ms = 500");
    h.fault(&mut c, &ALWAYS_DOWN, true);
    let e = first_attempt(&mut h, &mut c, 7, 1);
    assert_eq!((e.errors(), e.timers::<ConsumerTimer>()), (vec!["transient-failure"], vec![(510 * MS, Slot(0))]));
    h.fault(&mut c, &ALWAYS_DOWN, false);
    h.now += 510 * MS;
    let e = h.timer(&mut c, Slot(0));
    assert_eq!((e.applied(), to_source(&e)), (vec![7], vec![QueueMsg::Ack { tag: 1 }]));
}

#[test]
fn an_errors_fault_fails_each_attempt_while_in_force() {
    let (mut h, mut c) = consumer("");
    h.fault(&mut c, &ALWAYS_DOWN, true);
    let e = first_attempt(&mut h, &mut c, 7, 1);
    assert_eq!(to_source(&e), [QueueMsg::Nack { tag: 1, requeue: true }], "the default policy requeues");
    assert_eq!(e.errors(), ["transient-failure"]);
    h.fault(&mut c, &ALWAYS_DOWN, false);
    let e = first_attempt(&mut h, &mut c, 7, 2);
    assert_eq!((e.applied(), to_source(&e)), (vec![7], vec![QueueMsg::Ack { tag: 2 }]), "recovered");
}

#[test]
fn a_partial_errors_fault_fails_about_its_share_of_attempts() {
    let (mut h, mut c) = consumer("");
    h.fault(&mut c, &NodeFault::Errors { ppm: 250_000 }, true);
    let n = 2000;
    let failed = (0..n).filter(|&i| !first_attempt(&mut h, &mut c, i, i).errors().is_empty()).count();
    // Binomial(2000, 0.25): mean 500, standard deviation 19.4; 5 of them either side.
    assert!((403..=597).contains(&failed), "{failed} of {n} attempts failed");
}

#[test]
fn drop_acks_a_failed_message_without_its_effect() {
    let (mut h, mut c) = consumer("failure_probability = 1.0\non_failure = \"drop\"");
    let e = first_attempt(&mut h, &mut c, 7, 1);
    assert_eq!(to_source(&e), [QueueMsg::Ack { tag: 1 }]);
    assert_eq!(e.discarded(), [(7, LossCause::DroppedOnFailure)]);
    assert!(e.applied().is_empty());
}

#[test]
fn a_forwarding_stage_that_drops_a_message_loses_it_in_every_domain() {
    // Dropped here, it never reaches the domains downstream either: the
    // cause must explain the loss there too, not only in this domain.
    let (mut h, mut c) = consumer("failure_probability = 1.0\non_failure = \"drop\"\nforward_to = \"next\"");
    let e = first_attempt(&mut h, &mut c, 7, 1);
    let every =
        crate::engine::Fact::Discarded { id: 7, cause: LossCause::DroppedOnFailure, reader: None, domain: None };
    assert!(e.facts().contains(&every), "{:?}", e.facts());
}

#[test]
fn poison_is_rejected_at_once_even_under_retry_in_place() {
    let (mut h, mut c) = consumer("poison_probability = 1.0\non_failure = \"retry\"");
    let e = first_attempt(&mut h, &mut c, 7, 1);
    assert_eq!(e.errors(), ["permanent-failure"]);
    assert_eq!(to_source(&e), [QueueMsg::Nack { tag: 1, requeue: false }]);
    assert!(e.timers::<ConsumerTimer>().is_empty(), "no retry of a permanent failure");
}

/// Stamps `id` as version 2 of a breaking change (or a compatible one).
fn version_2(h: &mut Harness, id: MsgId, breaking: bool) {
    h.stores().set_header(id, Header::SchemaVersion, 2);
    h.stores().set_header(id, Header::OldestReader, if breaking { 2 } else { 1 });
}

#[test]
fn an_old_reader_rejects_a_breaking_version_until_it_is_upgraded() {
    let (mut h, mut c) = consumer("schema_version = 1\nschema_upgrade_at_ms = 100");
    version_2(&mut h, 7, true);
    let e = first_attempt(&mut h, &mut c, 7, 1);
    assert_eq!(e.errors(), ["schema-mismatch"]);
    assert_eq!(to_source(&e), [QueueMsg::Nack { tag: 1, requeue: false }], "poison for this reader");
    assert_eq!(first_attempt(&mut h, &mut c, 8, 2).applied(), [8], "version 1 still reads");
    h.now = 100 * MS; // upgraded
    assert_eq!(first_attempt(&mut h, &mut c, 7, 3).applied(), [7], "a replay after the upgrade reads it");
}

#[test]
fn an_old_reader_reads_a_compatible_version_and_ignores_the_new_fields() {
    let (mut h, mut c) = consumer("schema_version = 1");
    version_2(&mut h, 7, false);
    let e = first_attempt(&mut h, &mut c, 7, 1);
    assert_eq!((e.applied(), e.metric("new_fields_ignored")), (vec![7], 1.0));
    assert_eq!(to_source(&e), [QueueMsg::Ack { tag: 1 }]);
}

#[test]
fn a_reader_without_a_version_reads_every_version() {
    let (mut h, mut c) = consumer("");
    version_2(&mut h, 7, true);
    assert_eq!(first_attempt(&mut h, &mut c, 7, 1).applied(), [7]);
}

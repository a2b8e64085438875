//! Unit tests of the producer, driven through its handlers with the test
//! harness: arrivals, acks, timeouts and retries are fired by hand.

use super::{LogTarget, Producer, ProducerSpec, ProducerTimer};
use crate::broker::key_partition;
use crate::engine::{Component, Emitted, Fact, Harness};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{publish, publish_ack, Acks, LogMsg, ProduceError, QueueMsg};
use crate::time::NS_PER_MS;
use ProducerTimer::{AckTimeout, Arrival, Retry};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 0;
const B: NodeId = 5;

/// A producer at 1,000 messages per second (one every ms), with `extra`
/// lines of its scenario table; started.
fn producer(extra: &str, log: Option<LogTarget>) -> (Harness, Producer) {
    let table = format!("target = \"b\"\narrival = {{ process = \"constant\", rate_per_s = 1000 }}\n{extra}");
    let spec: ProducerSpec = toml::from_str(&table).expect("a valid producer table");
    let mut h = Harness::new(ME);
    let mut p = Producer::new(&spec, B, log);
    assert_eq!(h.start(&mut p).timers::<ProducerTimer>(), vec![(MS, Arrival)]);
    (h, p)
}

/// (id, attempt) of every publish that wants an ack.
fn publishes(e: &Emitted) -> Vec<(MsgId, u32)> {
    numbered(e).into_iter().map(|(id, attempt, _, _)| (id, attempt)).collect()
}

/// (id, attempt, channel, tag) of every publish that wants an ack.
fn numbered(e: &Emitted) -> Vec<(MsgId, u32, u32, u64)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Queue(QueueMsg::Publish { rec, want_ack: true, attempt, channel, tag, .. }) if to == B => {
                Some((rec.id, attempt, channel, u64::from(tag)))
            }
            _ => None,
        })
        .collect()
}

/// The answer to attempt `attempt` of `id` as to an unnumbered publish
/// (tag 0: that attempt alone).
fn ack(id: MsgId, attempt: u32, accepted: bool) -> QueueMsg {
    publish_ack(id, accepted, attempt, 0)
}

/// A confirm of `tag` (message `id`), of every tag up to it when `multiple`.
fn confirm(id: MsgId, tag: u64, multiple: bool) -> QueueMsg {
    QueueMsg::PublishAck { id, accepted: true, attempt: 1, tag, multiple, also: Box::default() }
}

fn held(p: &Producer) -> Vec<MsgId> {
    let mut out = Vec::new();
    p.held(&mut out);
    out
}

/// At `at`: the ack deadline fires, then the retry it sets (no backoff).
/// Returns (the timeout's effects, the retry's).
fn time_out(h: &mut Harness, p: &mut Producer, at: u64) -> (Emitted, Emitted) {
    h.now = at;
    let timeout = h.timer(p, AckTimeout);
    let retry = h.timer(p, Retry);
    (timeout, retry)
}

#[test]
fn fire_and_forget_reports_the_message_sent_and_publishes_it_at_once() {
    let (mut h, mut p) = producer("", None);
    let e = h.timer(&mut p, Arrival);
    assert_eq!(e.facts(), vec![Fact::Produced { id: 0, key: 0, fire_and_forget: true }]);
    assert_eq!(e.sent(), vec![(B, Msg::Queue(publish(Record::new(0, 0), false, 1)))]);
    assert_eq!(e.timers::<ProducerTimer>(), vec![(MS, Arrival)], "the next arrival; no ack to wait for");
    assert!(held(&p).is_empty());
}

#[test]
fn with_acks_it_waits_and_only_an_ack_confirms() {
    let (mut h, mut p) = producer("acks = \"broker\"", None);
    let e = h.timer(&mut p, Arrival);
    assert_eq!(e.facts(), vec![Fact::Produced { id: 0, key: 0, fire_and_forget: false }]);
    assert_eq!(publishes(&e), vec![(0, 1)]);
    assert!(e.timers::<ProducerTimer>().contains(&(1000 * MS, AckTimeout)), "the default ack timeout");
    assert_eq!(held(&p), vec![0]);
    assert_eq!(h.message(&mut p, B, ack(0, 1, true)).facts(), vec![Fact::Confirmed(0)]);
    assert!(held(&p).is_empty());
    assert!(h.message(&mut p, B, ack(0, 1, true)).facts().is_empty(), "a duplicate ack confirms nothing new");
}

#[test]
fn an_ack_timeout_is_counted_and_retried_up_to_retries_then_the_message_is_given_up() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100\nretries = 2", None);
    h.timer(&mut p, Arrival);
    for (at, attempt) in [(100, 2), (200, 3)] {
        let (timeout, retry) = time_out(&mut h, &mut p, at * MS);
        assert_eq!(timeout.errors(), vec!["ack-timeout"]);
        assert_eq!(timeout.timers::<ProducerTimer>(), vec![(0, Retry)], "no backoff");
        assert_eq!(publishes(&retry), vec![(0, attempt)], "the same message again");
    }
    h.now = 300 * MS;
    let e = h.timer(&mut p, AckTimeout);
    assert_eq!(e.errors(), vec!["ack-timeout"]);
    assert!(e.timers::<ProducerTimer>().is_empty() && e.facts().is_empty(), "given up after 1 + 2 attempts");
    assert!(held(&p).is_empty());
}

#[test]
fn a_retry_waits_for_its_backoff() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100\nretries = 1\nretry_backoff_ms = 50", None);
    h.timer(&mut p, Arrival);
    h.now = 100 * MS;
    assert_eq!(h.timer(&mut p, AckTimeout).timers::<ProducerTimer>(), vec![(50 * MS, Retry)]);
    h.now = 120 * MS;
    assert!(h.timer(&mut p, Retry).sent().is_empty(), "not due yet");
    h.now = 150 * MS;
    assert_eq!(publishes(&h.timer(&mut p, Retry)), vec![(0, 2)]);
}

#[test]
fn a_refused_attempt_fails_at_its_deadline_without_counting_as_a_timeout() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100\nretries = 1", None);
    h.timer(&mut p, Arrival);
    h.now = 5 * MS;
    let e = h.message(&mut p, B, ack(0, 1, false));
    assert!(e.sent().is_empty() && e.facts().is_empty(), "no resend before the deadline");
    let (timeout, retry) = time_out(&mut h, &mut p, 100 * MS);
    assert!(timeout.errors().is_empty(), "the broker counted the refusal: {:?}", timeout.errors());
    assert_eq!(publishes(&retry), vec![(0, 2)]);
    // A late refusal of attempt 1 says nothing about attempt 2, which times out.
    h.message(&mut p, B, ack(0, 1, false));
    h.now = 200 * MS;
    assert_eq!(h.timer(&mut p, AckTimeout).errors(), vec!["ack-timeout"]);
}

#[test]
fn max_in_flight_buffers_messages_until_an_ack_frees_a_slot() {
    let (mut h, mut p) = producer("acks = \"broker\"\nmax_in_flight = 1", None);
    h.timer(&mut p, Arrival);
    h.now = MS;
    let e = h.timer(&mut p, Arrival);
    assert_eq!(e.facts(), vec![Fact::Produced { id: 1, key: 0, fire_and_forget: false }]);
    assert!(publishes(&e).is_empty(), "message 1 waits in the buffer");
    assert_eq!(held(&p), vec![0, 1]);
    let e = h.message(&mut p, B, ack(0, 1, true));
    assert_eq!((e.facts(), publishes(&e)), (vec![Fact::Confirmed(0)], vec![(1, 1)]));
}

#[test]
fn the_delivery_timeout_gives_up_with_retries_left_and_expires_buffered_messages() {
    let table = "acks = \"broker\"\nack_timeout_ms = 100\nretries = 10\nmax_in_flight = 1\ndelivery_timeout_ms = 250";
    let (mut h, mut p) = producer(table, None);
    h.now = MS;
    h.timer(&mut p, Arrival); // message 0, produced at 1 ms
    h.now = 2 * MS;
    h.timer(&mut p, Arrival); // message 1, buffered
    time_out(&mut h, &mut p, 101 * MS);
    let (_, retry) = time_out(&mut h, &mut p, 201 * MS);
    assert_eq!(publishes(&retry), vec![(0, 3)], "within 250 ms of production: still trying");
    h.now = 301 * MS;
    let e = h.timer(&mut p, AckTimeout);
    assert_eq!(e.errors(), vec!["ack-timeout", "delivery-timeout", "delivery-timeout"]);
    assert!(e.sent().is_empty(), "message 1 expired in the buffer, never sent");
    assert!(held(&p).is_empty());
}

#[test]
fn a_queue_producer_numbers_its_publishes_on_its_channel_a_resend_is_a_new_tag_and_a_restart_a_new_channel() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100\nretries = 1", None);
    let mut first = numbered(&h.timer(&mut p, Arrival));
    first.extend(numbered(&h.timer(&mut p, Arrival)));
    assert_eq!(first, vec![(0, 1, 1, 1), (1, 1, 1, 2)], "channel 1, tags 1 and 2");
    let (_, retry) = time_out(&mut h, &mut p, 100 * MS);
    assert_eq!(numbered(&retry), vec![(0, 2, 1, 3), (1, 2, 1, 4)], "a resend is a new publish: a new tag");
    p.crash();
    h.restart(&mut p);
    assert_eq!(numbered(&h.timer(&mut p, Arrival)), vec![(2, 1, 2, 1)], "a new channel, from tag 1");
}

#[test]
fn a_multiple_confirm_settles_each_covered_message_once_and_a_late_or_repeated_confirm_is_harmless() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100", None);
    for _ in 0..4 {
        h.timer(&mut p, Arrival);
    }
    assert_eq!(held(&p), vec![0, 1, 2, 3]);
    // Tag 2 alone, then every tag up to 3: 1 and 3 (2 is settled already).
    assert_eq!(h.message(&mut p, B, confirm(1, 2, false)).confirmed(), vec![1]);
    assert_eq!(h.message(&mut p, B, confirm(2, 3, true)).confirmed(), vec![0, 2]);
    assert_eq!(held(&p), vec![3], "tag 4 is not covered");
    // The same confirms again, and a multiple one up to a tag already settled: nothing.
    assert!(h.message(&mut p, B, confirm(2, 3, true)).confirmed().is_empty());
    assert!(h.message(&mut p, B, confirm(1, 2, false)).confirmed().is_empty());
    // A confirm whose tag this channel gave another message is stale (a closed channel's).
    assert!(h.message(&mut p, B, confirm(9, 4, true)).confirmed().is_empty());
    assert_eq!(h.message(&mut p, B, confirm(3, 4, true)).confirmed(), vec![3]);
    assert!(held(&p).is_empty());
}

#[test]
fn a_nack_is_a_refusal_retried_with_a_new_tag_and_a_confirm_of_the_old_attempt_still_settles() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100\nretries = 1", None);
    h.timer(&mut p, Arrival);
    let nack =
        QueueMsg::PublishAck { id: 0, accepted: false, attempt: 1, tag: 1, multiple: false, also: Box::default() };
    let e = h.message(&mut p, B, nack);
    assert!(e.confirmed().is_empty() && e.errors().is_empty(), "a refusal counts only as the broker's");
    let (timeout, retry) = time_out(&mut h, &mut p, 100 * MS);
    assert!(timeout.errors().is_empty(), "a refused attempt is no timeout");
    assert_eq!(numbered(&retry), vec![(0, 2, 1, 2)], "resent at its deadline, tag 2");
    assert_eq!(h.message(&mut p, B, confirm(0, 2, false)).confirmed(), vec![0]);
    assert!(held(&p).is_empty());
}

#[test]
fn a_queue_producer_reopens_its_channel_when_its_broker_connection_closes() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100\nretries = 1", None);
    h.timer(&mut p, Arrival);
    h.message(&mut p, B, crate::message::Notice::PeerDown);
    assert!(h.message(&mut p, B, confirm(0, 1, false)).confirmed().is_empty(), "the old channel's confirm is stale");
    let (_, retry) = time_out(&mut h, &mut p, 100 * MS);
    assert_eq!(numbered(&retry), vec![(0, 2, 2, 1)], "resent on channel 2, tag 1");
}

#[test]
fn a_queue_producer_publishes_persistent_only_when_asked() {
    for (extra, want) in [("", false), ("persistent = false", false), ("persistent = true", true)] {
        let (mut h, mut p) = producer(&format!("acks = \"broker\"\n{extra}"), None);
        let e = h.timer(&mut p, Arrival);
        let modes: Vec<bool> = e
            .sent()
            .into_iter()
            .filter_map(|(_, m)| match m {
                Msg::Queue(QueueMsg::Publish { persistent, .. }) => Some(persistent),
                _ => None,
            })
            .collect();
        assert_eq!(modes, vec![want], "{extra:?}: transient unless set, as RabbitMQ's clients publish");
    }
}

/// (key, acks, topic, partition) of every log produce.
fn produces(e: &Emitted) -> Vec<(u64, Acks, u16, u32)> {
    e.sent()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::Log(LogMsg::Produce { recs, acks, topic, partition, .. }) => {
                assert_eq!(recs.len(), 1, "no linger, no wait: a batch of one");
                Some((recs[0].key(), acks, topic, partition))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_log_producer_sends_each_key_to_its_hash_partition() {
    let target = LogTarget { topic: 3, partitions: 4 };
    let (mut h, mut p) =
        producer("keys = { distribution = \"uniform\", count = 50 }\nacks = 0\nlinger_ms = 0", Some(target));
    let sent: Vec<_> = (0..40).flat_map(|_| produces(&h.timer(&mut p, Arrival))).collect();
    assert_eq!(sent.len(), 40);
    for &(key, acks, topic, partition) in &sent {
        assert_eq!((acks, topic), (Acks::None, 3));
        assert_eq!(partition as usize, key_partition(key, 4), "key {key}: the partition the broker expects");
    }
    let used: std::collections::BTreeSet<u32> = sent.iter().map(|s| s.3).collect();
    assert!(used.len() > 1, "keys spread over partitions: {used:?}");
}

#[test]
fn a_log_producer_with_round_robin_deals_partitions_in_turn_and_maps_acks() {
    for (acks, want) in [("1", Acks::Leader), ("\"all\"", Acks::All), ("\"broker\"", Acks::All)] {
        let extra = format!("partitioner = \"round-robin\"\nacks = {acks}\nlinger_ms = 0");
        let (mut h, mut p) = producer(&extra, Some(LogTarget { topic: 0, partitions: 3 }));
        let sent: Vec<_> = (0..5).flat_map(|_| produces(&h.timer(&mut p, Arrival))).collect();
        let parts: Vec<u32> = sent.iter().map(|s| s.3).collect();
        assert_eq!(parts, vec![0, 1, 2, 0, 1]);
        assert!(sent.iter().all(|s| s.1 == want), "acks = {acks}: {sent:?}");
    }
}

#[test]
fn the_producer_is_done_after_messages_and_a_restart_resumes_its_count() {
    let (mut h, mut p) = producer("messages = 2", None);
    let e = h.timer(&mut p, Arrival);
    assert!(!e.facts().contains(&Fact::ProducerDone));
    p.crash();
    assert_eq!(h.restart(&mut p).timers::<ProducerTimer>(), vec![(MS, Arrival)]);
    let e = h.timer(&mut p, Arrival);
    assert_eq!(e.facts(), vec![Fact::Produced { id: 1, key: 0, fire_and_forget: true }, Fact::ProducerDone]);
    assert!(e.timers::<ProducerTimer>().is_empty(), "no next arrival");
    p.crash();
    assert!(h.restart(&mut p).timers::<ProducerTimer>().is_empty(), "done stays done");
    assert!(h.timer(&mut p, Arrival).is_empty());
}

#[test]
fn the_drain_stops_production_and_cancels_timers_with_nothing_to_guard() {
    let (mut h, mut p) = producer("acks = \"broker\"", None);
    h.timer(&mut p, Arrival);
    assert_eq!(h.drain(&mut p).cancelled::<ProducerTimer>(), vec![Arrival], "message 0 still awaits its ack");
    assert!(h.timer(&mut p, Arrival).facts().is_empty(), "nothing is produced in the drain");
    let e = h.message(&mut p, B, ack(0, 1, true));
    assert_eq!(e.facts(), vec![Fact::Confirmed(0)]);
    assert_eq!(e.cancelled::<ProducerTimer>(), vec![AckTimeout]);
}

#[test]
fn a_resend_after_an_ack_timeout_is_reported_as_a_producer_retry() {
    use crate::ledger::DupCause;
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 100\nretries = 2", None);
    assert!(h.timer(&mut p, Arrival).resent().is_empty(), "the first attempt is no copy");
    let (_, retry) = time_out(&mut h, &mut p, 100 * MS);
    assert_eq!((publishes(&retry), retry.resent()), (vec![(0, 2)], vec![(0, DupCause::ProducerRetry)]));
}

/// (ids, attempt, epoch, seq, partition) of every log produce.
fn batches(e: &Emitted) -> Vec<(Vec<MsgId>, u32, u32, u64, u32)> {
    e.sent()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::Log(LogMsg::Produce { recs, attempt, epoch, seq, partition, .. }) => {
                Some((recs.iter().map(|r| r.id).collect(), attempt, epoch, seq, partition))
            }
            _ => None,
        })
        .collect()
}

fn log_ack(ids: &[MsgId], attempt: u32) -> LogMsg {
    LogMsg::ProduceAck { ids: ids.into(), accepted: true, attempt, error: ProduceError::None }
}

#[test]
fn a_log_producer_batches_while_its_one_request_is_in_flight_and_one_ack_confirms_the_batch() {
    let log = Some(LogTarget { topic: 0, partitions: 1 });
    let (mut h, mut p) = producer("max_in_flight = 1\nlinger_ms = 0", log);
    assert_eq!(batches(&h.timer(&mut p, Arrival)), vec![(vec![0], 1, 1, 0, 0)], "no linger: record 0 goes at once");
    for at in 2..=4 {
        h.now = at * MS;
        assert!(batches(&h.timer(&mut p, Arrival)).is_empty(), "the one slot is taken: records wait");
    }
    assert_eq!(held(&p), vec![0, 1, 2, 3]);
    let e = h.message(&mut p, B, log_ack(&[0], 1));
    assert_eq!(e.facts(), vec![Fact::Confirmed(0)]);
    assert_eq!(batches(&e), vec![(vec![1, 2, 3], 1, 1, 1, 0)], "one batch, numbered from 1");
    let e = h.message(&mut p, B, log_ack(&[1, 2, 3], 1));
    assert_eq!(e.facts(), vec![Fact::Confirmed(1), Fact::Confirmed(2), Fact::Confirmed(3)]);
    assert!(held(&p).is_empty());
}

#[test]
fn a_batch_that_is_not_full_waits_for_its_linger_and_a_full_one_does_not() {
    let log = Some(LogTarget { topic: 0, partitions: 1 });
    let (mut h, mut p) = producer("linger_ms = 5\nbatch_size = 3072", log);
    let e = h.timer(&mut p, Arrival);
    assert!(batches(&e).is_empty());
    assert!(e.timers::<ProducerTimer>().contains(&(5 * MS, ProducerTimer::Linger)));
    h.now = 2 * MS;
    h.timer(&mut p, Arrival);
    h.now = 3 * MS;
    let e = h.timer(&mut p, Arrival);
    assert_eq!(batches(&e), vec![(vec![0, 1, 2], 1, 1, 0, 0)], "3 records of 1,024 bytes fill 3,072");
    h.now = 4 * MS;
    h.timer(&mut p, Arrival);
    h.now = 6 * MS;
    assert!(batches(&h.timer(&mut p, ProducerTimer::Linger)).is_empty(), "record 3's batch lingers until 9 ms");
    h.now = 9 * MS;
    assert_eq!(batches(&h.timer(&mut p, ProducerTimer::Linger)), vec![(vec![3], 1, 1, 3, 0)]);
}

#[test]
fn an_idempotent_log_producer_that_gives_a_batch_up_starts_a_new_session_of_its_partition() {
    let log = Some(LogTarget { topic: 0, partitions: 1 });
    let table = "linger_ms = 0\nretries = 1\nack_timeout_ms = 100\nretry_backoff_ms = 0\nidempotent = true";
    let (mut h, mut p) = producer(table, log);
    h.timer(&mut p, Arrival); // record 0, batch (epoch 1, seq 0)
    h.now = 2 * MS;
    assert_eq!(batches(&h.timer(&mut p, Arrival)), vec![(vec![1], 1, 1, 1, 0)]);
    time_out(&mut h, &mut p, 101 * MS); // both time out once, and are resent
    h.now = 201 * MS;
    let e = h.timer(&mut p, AckTimeout);
    assert_eq!(e.errors(), vec!["ack-timeout", "ack-timeout", "out-of-order-sequence"]);
    assert_eq!(e.metric("epoch_bumps"), 1.0, "record 0 given up: a new session");
    assert!(held(&p).is_empty(), "record 1, numbered past the gap, failed with it");
    h.now = 202 * MS;
    assert_eq!(batches(&h.timer(&mut p, Arrival)), vec![(vec![2], 1, 2, 0, 0)], "epoch 2 from sequence 0");
}

// Back-pressure at the producer (see `pressure`).

/// The producer-side latencies recorded, in ns.
fn send_times(e: &Emitted) -> Vec<u64> {
    e.0.iter()
        .filter_map(|x| match x {
            crate::engine::Effect::Metric(crate::engine::Metric::Timing(crate::engine::Timing::Send, ns)) => Some(*ns),
            _ => None,
        })
        .collect()
}

/// Ids of the fire-and-forget publishes in `e`.
fn forgotten(e: &Emitted) -> Vec<MsgId> {
    e.sent()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::Queue(QueueMsg::Publish { rec, want_ack: false, .. }) => Some(rec.id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rate_limit_holds_the_excess_in_the_producer_until_a_token_comes() {
    use ProducerTimer::Token;
    // 1,000 a second produced, 100 a second allowed, a burst of 2.
    let (mut h, mut p) = producer("rate_limit = { rate_per_s = 100, burst = 2 }", None);
    let mut sent = Vec::new();
    let mut timers = Vec::new();
    for i in 0..4 {
        h.now = i * MS;
        let e = h.timer(&mut p, Arrival);
        sent.extend(forgotten(&e));
        assert!(send_times(&e).iter().all(|&t| t == 0), "the burst leaves at once");
        timers.extend(e.timers::<ProducerTimer>().into_iter().filter(|t| t.1 == Token));
    }
    assert_eq!(sent, [0, 1], "the bucket's 2 tokens");
    assert_eq!(held(&p), [2, 3], "the rest wait in the producer, counted as held");
    // A token every 10 ms: at 2 ms the bucket holds 2 ms of the next one.
    assert_eq!(timers, [(8 * MS, Token)], "one timer, for the next token");
    h.now = 10 * MS;
    let e = h.timer(&mut p, Token);
    assert_eq!(forgotten(&e), [2]);
    assert_eq!(send_times(&e), [8 * MS], "made at 2 ms, left at 10 ms");
    assert_eq!(e.timers::<ProducerTimer>(), [(10 * MS, Token)], "the next token, for message 3");
}

#[test]
fn a_full_buffer_blocks_the_caller_then_fails_its_send_after_max_block() {
    use ProducerTimer::Unblock;
    let table = "acks = \"broker\"\nmax_in_flight = 1\nbuffer_messages = 2\nmax_block_ms = 5";
    let (mut h, mut p) = producer(table, None);
    for i in 0..3 {
        h.now = i * MS;
        let e = h.timer(&mut p, Arrival);
        assert_eq!(e.timers::<ProducerTimer>().contains(&(5 * MS, Unblock)), i == 2, "only the third blocks");
    }
    assert_eq!(held(&p), [0, 1, 2], "one awaiting a confirm, one buffered, one blocked caller");
    // A confirm makes room: the blocked caller goes on into the buffer.
    h.now = 3 * MS;
    let e = h.message(&mut p, B, ack(0, 1, true));
    assert_eq!((publishes(&e), send_times(&e)), (vec![(1, 1)], vec![3 * MS]));
    h.now = 4 * MS;
    h.timer(&mut p, Arrival); // message 3 blocks behind a full buffer (1 sent, 2 buffered)
    h.now = 5 * MS;
    let e = h.timer(&mut p, Unblock);
    assert!(e.errors().is_empty(), "message 2 got room before its deadline; 3's is at 9 ms");
    assert_eq!(e.timers::<ProducerTimer>(), [(4 * MS, Unblock)]);
    h.now = 9 * MS;
    let e = h.timer(&mut p, Unblock);
    assert_eq!(e.errors(), ["buffer-full"]);
    assert!(e.confirmed().is_empty() && e.sent().is_empty(), "a failed send: never sent, never confirmed");
    assert_eq!(held(&p), [1, 2], "message 3 is gone");
}

#[test]
fn a_queue_producer_measures_its_send_latency_to_the_confirm() {
    let (mut h, mut p) = producer("acks = \"broker\"\nack_timeout_ms = 10\nretries = 1", None);
    h.now = MS;
    h.timer(&mut p, Arrival);
    let (_, retry) = time_out(&mut h, &mut p, 11 * MS);
    assert_eq!(publishes(&retry), [(0, 2)]);
    h.now = 14 * MS;
    let e = h.message(&mut p, B, ack(0, 2, true));
    assert_eq!(send_times(&e), [13 * MS], "from production to the confirm, the retry included");
}

//! The network's faults, observed from the outside: through the trace (what
//! crossed which link, and when) and through the ledger's counts. Bounds on
//! random counts are derived from the binomial distribution.

use crate::common;

use common::{node, run, run_traced};
use sim_core::time::NS_PER_MS;
use sim_core::trace::{DropReason, FaultEvent, TraceWhat};

/// A producer -> broker -> consumer pipeline at a constant 1,000 msg/s with
/// 1 ms links, plus `extra` TOML appended (faults, links, variants...).
/// The consumer prefetches 100: with prefetch 1 it could take only one
/// message per 2.5 ms round trip, slower than the producer.
fn pipeline(messages: u64, extra: &str) -> String {
    format!(
        r#"
name = "test"
concept = "test"
[network]
latency = {{ dist = "constant", ms = 1 }}
[producers.p]
target = "b"
arrival = {{ process = "constant", rate_per_s = 1000 }}
messages = {messages}
[brokers.b]
kind = "queue"
[consumers.c]
source = "b"
processing = {{ dist = "constant", ms = 0.5 }}
prefetch = 100
{extra}
"#
    )
}

#[test]
fn a_partitioned_pair_exchanges_nothing_until_it_heals() {
    let text = pipeline(
        3000,
        r#"
[[faults]]
kind = "partition"
at_ms = 1000
until_ms = 2000
groups = [["p"], ["b", "c"]]
"#,
    );
    let out = run_traced(&text, 1);
    let (p, b) = (node(&out, "p"), node(&out, "b"));
    let (start, end) = (1000 * NS_PER_MS, 2000 * NS_PER_MS);
    let mut arrivals_after = 0;
    let mut partition_drops = 0;
    for e in &out.trace {
        match &e.what {
            TraceWhat::Arrive(w) if w.from == p && w.to == b => {
                assert!(!(start..end).contains(&e.time), "a publish crossed the partition at {}", e.time);
                if e.time >= end {
                    arrivals_after += 1;
                }
            }
            TraceWhat::Drop(w, DropReason::Partition) => {
                assert!((start..end).contains(&e.time));
                assert_eq!((w.from, w.to), (p, b));
                partition_drops += 1;
            }
            _ => {}
        }
    }
    assert!(arrivals_after > 900, "traffic resumes after the heal ({arrivals_after})");
    // Fire-and-forget publishes sent into the partition are exactly the lost ones.
    assert_eq!(out.counts.lost, partition_drops);
    assert!((990..=1001).contains(&partition_drops), "one second at 1,000 msg/s: {partition_drops}");
    assert_eq!(out.counts.produced, out.counts.processed + out.counts.lost);
    // The fault shows in the trace and in the fault log.
    let faults: Vec<_> = out.trace.iter().filter(|e| matches!(e.what, TraceWhat::Fault(..))).collect();
    assert_eq!(faults.len(), 2);
    assert_eq!(out.fault_log.iter().map(|f| f.0).collect::<Vec<_>>(), vec![start, end]);
}

#[test]
fn a_one_way_partition_blocks_one_direction_only() {
    // The consumer can still hear the broker but its acks do not get back:
    // every delivery times out and is redelivered during the cut.
    let text = pipeline(
        500,
        r#"
[brokers.b]
kind = "queue"
redelivery_timeout_ms = 100
[[faults]]
kind = "one-way-partition"
at_ms = 100
until_ms = 300
from = ["c"]
to = ["b"]
"#,
    )
    .replacen("[brokers.b]\nkind = \"queue\"\n[consumers", "[consumers", 1);
    let out = run_traced(&text, 1);
    let (b, c) = (node(&out, "b"), node(&out, "c"));
    let mut b_to_c_during = 0;
    for e in &out.trace {
        let during = (100 * NS_PER_MS..300 * NS_PER_MS).contains(&e.time);
        match &e.what {
            TraceWhat::Arrive(w) if during && w.from == c && w.to == b => {
                panic!("c reached b during the cut")
            }
            TraceWhat::Arrive(w) if during && w.from == b && w.to == c => b_to_c_during += 1,
            _ => {}
        }
    }
    assert!(b_to_c_during > 0, "the other direction still works");
    assert_eq!(out.counts.lost, 0, "acks lost, not messages: at-least-once redelivers");
    assert!(out.counts.duplicated > 0, "redelivered messages were applied again");
}

/// A binomial count is within 5 standard deviations of its mean (a false
/// alarm about once in 3.5 million runs).
fn assert_binomial(count: u64, n: u64, p: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!((count as f64 - mean).abs() <= 5.0 * sd, "{count} is not Binomial({n}, {p}): mean {mean}, sd {sd}");
}

#[test]
fn loss_probability_gives_a_binomial_loss_count() {
    // Loss on the producer -> broker direction only, fire-and-forget: each
    // message is lost independently with probability p.
    let n = 100_000;
    let text = pipeline(
        n,
        r#"
[[network.links]]
from = "p"
to = "b"
both_ways = false
loss_probability = 0.1
"#,
    )
    .replace("rate_per_s = 1000", "rate_per_s = 10000")
    .replace("ms = 0.5", "ms = 0.001");
    let out = run(&text, 7);
    assert_eq!(out.counts.produced, n);
    assert_eq!(out.counts.in_flight, 0);
    assert_binomial(out.counts.lost, n, 0.1);
    assert_eq!(out.counts.lost, out.network.dropped_loss);
    assert_eq!(out.counts.duplicated, 0);
}

#[test]
fn duplication_probability_gives_a_binomial_duplicate_count() {
    let n = 100_000;
    let text = pipeline(
        n,
        r#"
[[network.links]]
from = "p"
to = "b"
both_ways = false
duplicate_probability = 0.2
"#,
    )
    .replace("rate_per_s = 1000", "rate_per_s = 10000")
    .replace("ms = 0.5", "ms = 0.001");
    let out = run(&text, 8);
    assert_eq!(out.counts.in_flight, 0);
    assert_binomial(out.counts.duplicated, n, 0.2);
    assert_eq!(out.counts.duplicated, out.network.duplicated);
    assert_eq!(out.counts.lost, 0);
}

/// Jitter larger than the gap between messages used to reorder them: a
/// link was a stream of independent datagrams. A connection keeps its order
/// now, so a fault-free pipeline reorders nothing, however jittery.
#[test]
fn latency_jitter_does_not_reorder_a_connection() {
    let jittery = pipeline(5000, "").replace(
        r#"latency = { dist = "constant", ms = 1 }"#,
        r#"latency = { dist = "uniform", min_ms = 0.1, max_ms = 5 }"#,
    );
    let out = run(&jittery, 3);
    assert_eq!(out.counts.reordered, 0, "{:?}", out.counts);
    assert_eq!(out.counts.lost + out.counts.duplicated, 0);
    assert_eq!(out.counts.processed, 5000);
}

/// `reorder_probability` on a link lets its messages leave the connection's
/// order, even with constant latency; a `reorder` fault does the same for
/// its window only.
#[test]
fn reorder_probability_and_the_reorder_fault_reorder() {
    let link = pipeline(
        5000,
        r#"
[[network.links]]
from = "p"
to = "b"
both_ways = false
reorder_probability = 0.05
"#,
    )
    .replace("rate_per_s = 1000", "rate_per_s = 2000")
    .replace("ms = 0.5", "ms = 0.1");
    let out = run(&link, 3);
    assert!(out.counts.reordered > 0, "{:?}", out.counts);
    assert_eq!(out.counts.lost + out.counts.duplicated, 0);
    let fault = pipeline(
        3000,
        r#"
[[faults]]
kind = "reorder"
at_ms = 1000
until_ms = 1500
probability = 0.2
nodes = ["p"]
"#,
    )
    .replace("rate_per_s = 1000", "rate_per_s = 2000")
    .replace("ms = 0.5", "ms = 0.1");
    let out = run_traced(&fault, 3);
    assert!(out.counts.reordered > 0, "{:?}", out.counts);
    // Only sends inside the window were reordered: with 1 ms links and a
    // message every 0.5 ms, a reordered send (2 ms) is overtaken by the
    // next ones, and every arrival out of send order lands in the window.
    let (p, b) = (node(&out, "p"), node(&out, "b"));
    let mut last = 0;
    for e in &out.trace {
        if let TraceWhat::Arrive(w) = &e.what {
            if let (Some(id), true) = (w.id, (w.from, w.to) == (p, b)) {
                if id < last {
                    assert!((1000 * NS_PER_MS..=1503 * NS_PER_MS).contains(&e.time), "at {}", e.time);
                }
                last = last.max(id);
            }
        }
    }
}

#[test]
fn a_crash_loses_a_volatile_queue_and_keeps_a_durable_one() {
    // The consumer is slow (20 ms a message at 1,000 msg/s) and prefetches
    // one, so the queue at the broker grows; the broker crashes at 500 ms
    // and restarts at 600 ms.
    let faults = r#"
[[faults]]
kind = "crash"
node = "b"
at_ms = 500
until_ms = 600
"#;
    let slow = |durable: bool| {
        pipeline(1000, faults)
            .replace("ms = 0.5", "ms = 20")
            .replace("prefetch = 100", "prefetch = 1")
            .replace("kind = \"queue\"", &format!("kind = \"queue\"\ndurable = {durable}"))
            // Persistent: a durable queue keeps only persistent messages.
            .replace("[brokers.b]", "persistent = true\n[brokers.b]")
    };
    let volatile = run_traced(&slow(false), 1);
    // What was queued or unacked at the crash is gone; publishes sent while
    // it was down were dropped on arrival. Everything else gets processed.
    let b = node(&volatile, "b");
    let dropped_while_down = volatile
        .trace
        .iter()
        .filter(|e| matches!(&e.what, TraceWhat::Drop(w, DropReason::Crashed) if w.to == b && w.msg == "publish"))
        .count() as u64;
    assert!((99..=101).contains(&dropped_while_down), "100 ms down at 1,000 msg/s: {dropped_while_down}");
    assert!(
        volatile.counts.lost > dropped_while_down + 400,
        "the queued messages died with the broker: {}",
        volatile.counts.lost
    );
    let durable = run(&slow(true), 1);
    assert_eq!(durable.counts.lost, dropped_while_down, "a durable queue loses only what arrived while it was down");
    for out in [&volatile, &durable] {
        let c = &out.counts;
        assert_eq!(c.produced, c.processed + c.lost + c.in_flight + c.send_failed);
    }
}

#[test]
fn a_consumer_crash_drops_work_in_progress_and_the_broker_redelivers_it() {
    // Processing takes 50 ms; the consumer crashes at 1,025 ms, in the middle
    // of a message, and restarts at 1,200 ms.
    let text = pipeline(
        100,
        r#"
[[faults]]
kind = "crash"
node = "c"
at_ms = 1025
until_ms = 1200
"#,
    )
    .replace("rate_per_s = 1000", "rate_per_s = 10")
    .replace("ms = 0.5", "ms = 50");
    let out = run_traced(&text, 1);
    let c = node(&out, "c");
    // The timer of the interrupted work never fires: nothing is applied by c while down.
    let timers_while_down = out
        .trace
        .iter()
        .filter(|e| {
            matches!(e.what, TraceWhat::Timer(n, _) if n == c) && (1025 * NS_PER_MS..1200 * NS_PER_MS).contains(&e.time)
        })
        .count();
    assert_eq!(timers_while_down, 0);
    assert_eq!(out.counts.processed, 100, "the interrupted message is redelivered after the restart");
    assert_eq!(out.counts.lost, 0);
    assert_eq!(out.counts.duplicated, 0, "it was never applied before the crash");
}

#[test]
fn a_loss_spike_drops_only_inside_its_window() {
    let text = pipeline(
        3000,
        r#"
[[faults]]
kind = "loss-spike"
at_ms = 1000
until_ms = 1500
probability = 0.5
nodes = ["p"]
"#,
    );
    let out = run_traced(&text, 2);
    let mut drops = 0;
    for e in &out.trace {
        if let TraceWhat::Drop(_, DropReason::Loss) = e.what {
            assert!((1000 * NS_PER_MS..1500 * NS_PER_MS).contains(&e.time));
            drops += 1;
        }
    }
    // 500 messages cross the affected link during the spike.
    assert_binomial(drops, 500, 0.5);
    assert_eq!(out.counts.lost, drops);
}

#[test]
fn a_duplicate_spike_duplicates_only_inside_its_window() {
    let text = pipeline(
        3000,
        r#"
[[faults]]
kind = "duplicate-spike"
at_ms = 1000
until_ms = 1500
probability = 0.3
nodes = ["p"]
"#,
    );
    let out = run_traced(&text, 2);
    let mut copies = 0;
    for e in &out.trace {
        if let TraceWhat::Duplicate(_) = e.what {
            assert!((1000 * NS_PER_MS..1500 * NS_PER_MS).contains(&e.time), "a copy at {}", e.time);
            copies += 1;
        }
    }
    // 500 messages cross the affected link during the spike.
    assert_binomial(copies, 500, 0.3);
    assert_eq!(out.network.duplicated, copies);
    assert_eq!(out.counts.duplicated, copies, "the consumer applies each copy");
    assert_eq!(out.counts.lost, 0);
}

#[test]
fn a_slow_node_stretches_its_latency_while_slowed() {
    let base = pipeline(2000, "");
    let slowed = pipeline(
        2000,
        r#"
[[faults]]
kind = "slow"
node = "c"
at_ms = 0
until_ms = 1000
factor = 10
"#,
    );
    let a = run(&base, 1);
    let b = run(&slowed, 1);
    // 1 ms links and 0.5 ms processing: 2.5 ms end to end; ten times slower
    // on the consumer's link and processing for half the run.
    assert!((a.latency.mean - 2.5).abs() < 1e-6, "{}", a.latency.mean);
    assert!(b.latency.mean > 5.0, "{}", b.latency.mean);
    assert_eq!(b.counts.processed, 2000);
}

#[test]
fn the_drain_heals_faults_that_never_end_by_themselves() {
    // A partition with no until_ms, and a crash with no restart: the drain
    // heals both, and the queued messages get through.
    let text = pipeline(
        1000,
        r#"
[[faults]]
kind = "partition"
at_ms = 500
groups = [["c"]]
[[faults]]
kind = "crash"
node = "c"
at_ms = 600
"#,
    );
    let out = run_traced(&text, 1);
    assert_eq!(out.counts.lost, 0);
    assert_eq!(out.counts.processed, 1000);
    let healed: Vec<&str> = out.fault_log.iter().filter(|f| f.2 == FaultEvent::Ends).map(|f| f.1.as_str()).collect();
    assert_eq!(healed.len(), 2, "both faults end in the drain: {:?}", out.fault_log);
    assert!(
        out.fault_log.iter().all(|f| f.2 != FaultEvent::Begins || f.0 < out.run_end),
        "no fault begins after the run"
    );
}

#[test]
fn a_repeated_subscribe_is_not_mistaken_for_a_reconnect() {
    // The confirmation takes 100 ms to come back but the consumer asks again
    // every 10 ms: the repeats must not make the broker take back (and so
    // redeliver) the messages the consumer is working on.
    let text = pipeline(500, "")
        .replace(r#"latency = { dist = "constant", ms = 1 }"#, r#"latency = { dist = "constant", ms = 50 }"#)
        .replace("prefetch = 100", "prefetch = 100\nresubscribe_ms = 10");
    let out = run(&text, 1);
    assert_eq!(out.counts.processed, 500);
    assert_eq!(out.counts.duplicated, 0);
    assert_eq!(out.counts.lost, 0);
}

#[test]
fn histories_that_differ_only_in_message_fields_have_different_digests() {
    // Capacity 1 versus 50: the same events at the same times, but the
    // brokers' acks say accepted or refused. The digest must tell them apart.
    let base = pipeline(20, "")
        .replace("kind = \"queue\"", "kind = \"queue\"\ncapacity = CAP\noverflow = \"reject-publish\"")
        .replace("messages = 20", "messages = 20\nacks = \"broker\"\nack_timeout_ms = 5");
    let base = base.replace("ms = 0.5", "ms = 30").replace("prefetch = 100", "prefetch = 1");
    let a = run(&base.replace("CAP", "1"), 1);
    let b = run(&base.replace("CAP", "50"), 1);
    assert_ne!(a.counts.acked, b.counts.acked, "the two runs really differ");
    assert_ne!(a.digest, b.digest);
}

#[test]
fn a_crash_cancels_the_nodes_timers_so_the_drain_is_not_held_open() {
    // The broker's 30 s redelivery timer was pending when it crashed; after
    // the crash it must not keep the run waiting for nothing.
    let text = pipeline(
        100,
        r#"
[[faults]]
kind = "crash"
node = "b"
at_ms = 50
until_ms = 55
"#,
    );
    let out = run(&text, 1);
    assert!(out.last_event < 1_000 * NS_PER_MS, "last event at {} ns", out.last_event);
}

#[test]
fn a_fault_due_after_the_run_phase_ended_is_reported_as_skipped() {
    // 10 messages end the run phase at 10 ms; the crash at 300 ms never happens.
    let text = pipeline(
        10,
        r#"
[[faults]]
kind = "crash"
node = "c"
at_ms = 300
"#,
    );
    let out = run(&text, 1);
    assert_eq!(out.fault_log.len(), 1);
    assert_eq!(out.fault_log[0].2, FaultEvent::Skipped);
}

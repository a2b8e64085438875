//! Unit tests of the store, driven through its handlers with the harness:
//! latency, the connection pool's FIFO queue, writes applied once per
//! success, the `errors` fault and a crash, each step fired by hand.

use super::{Served, Store, StoreSpec};
use crate::engine::{Component, Emitted, Harness};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::{RpcMsg, Status};
use crate::time::NS_PER_MS;

const MS: u64 = NS_PER_MS;
const ME: NodeId = 3;
const CALLER: NodeId = 1;
const OTHER: NodeId = 2;

fn spec(extra: &str) -> StoreSpec {
    let table = format!("latency = {{ dist = \"constant\", ms = 5 }}\n{extra}");
    toml::from_str(&table).expect("a valid store table")
}

fn store(extra: &str) -> (Harness, Store) {
    let mut s = Store::new(&spec(extra));
    let mut h = Harness::new(ME);
    assert!(h.start(&mut s).is_empty(), "a store does nothing until called");
    (h, s)
}

fn call(id: MsgId, n: u64) -> RpcMsg {
    RpcMsg::Call { rec: Record::new(id, 0), call: n, deadline: 0 }
}

/// The replies sent to `to`: (request, attempt, status).
fn replies(e: &Emitted, to: NodeId) -> Vec<(MsgId, u64, Status)> {
    e.sent_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Rpc(RpcMsg::Reply { id, call, status }) => Some((id, call, status)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_call_is_answered_200_after_the_latency_and_its_write_applied_once() {
    let (mut h, mut s) = store("");
    let e = h.message(&mut s, CALLER, call(7, 1));
    assert_eq!(e.timers::<Served>(), vec![(5 * MS, Served(0))]);
    assert_eq!(e.started(), [7]);
    assert!(e.applied().is_empty() && e.sent().is_empty(), "nothing is applied or answered before the latency");
    h.now = 5 * MS;
    let done = h.timer(&mut s, Served(0));
    assert_eq!(done.applied(), [7]);
    assert_eq!(replies(&done, CALLER), [(7, 1, Status::Ok)]);
    assert_eq!(done.metric("store_calls"), 0.0, "a call is counted when it arrives");
    assert_eq!(e.metric("store_calls"), 1.0);
    // A second firing of the same timer (it cannot happen, but) answers nothing.
    assert!(h.timer(&mut s, Served(0)).is_empty());
}

#[test]
fn a_slow_fault_stretches_the_latency_of_calls_that_start_under_it() {
    let (mut h, mut s) = store("");
    h.set_slow(3.0);
    assert_eq!(h.message(&mut s, CALLER, call(1, 1)).timers::<Served>(), vec![(15 * MS, Served(0))]);
}

#[test]
fn a_store_that_does_not_write_applies_nothing_but_still_answers() {
    let (mut h, mut s) = store("writes = false");
    let e = h.message(&mut s, CALLER, call(4, 9));
    assert!(e.started().is_empty());
    let done = h.timer(&mut s, Served(0));
    assert!(done.applied().is_empty());
    assert_eq!(replies(&done, CALLER), [(4, 9, Status::Ok)]);
}

#[test]
fn calls_beyond_the_pool_wait_in_order_and_start_as_connections_free() {
    let (mut h, mut s) = store("concurrency = 2");
    let mut started = Vec::new();
    for id in 1..=4 {
        let from = if id % 2 == 0 { OTHER } else { CALLER };
        let e = h.message(&mut s, from, call(id, id * 10));
        started.extend(e.timers::<Served>());
        if id > 2 {
            assert_eq!(e.queue_depth(), Some(id - 2), "the waiting calls are the queue depth");
            assert!(e.started().is_empty(), "call {id} waits for a connection");
        }
    }
    assert_eq!(started, [(5 * MS, Served(0)), (5 * MS, Served(1))], "two at once");
    let mut held = Vec::new();
    s.held(&mut held);
    assert_eq!(held, [1, 2, 3, 4], "the store holds the calls it serves and those waiting");
    // The second finishes first: the oldest waiting call (3) takes its place.
    h.now = 5 * MS;
    let e = h.timer(&mut s, Served(1));
    assert_eq!(replies(&e, OTHER), [(2, 20, Status::Ok)]);
    assert_eq!(e.started(), [3]);
    assert_eq!(e.timers::<Served>(), vec![(5 * MS, Served(2))]);
    assert_eq!(e.queue_depth(), Some(1));
    let e = h.timer(&mut s, Served(0));
    assert_eq!(replies(&e, CALLER), [(1, 10, Status::Ok)]);
    assert_eq!(e.started(), [4]);
    assert_eq!(e.queue_depth(), Some(0));
    let mut applied = Vec::new();
    for n in [2, 3] {
        let e = h.timer(&mut s, Served(n));
        assert!(e.started().is_empty(), "nothing waits any more");
        applied.extend(e.applied());
    }
    assert_eq!(applied, [3, 4]);
}

#[test]
fn unlimited_concurrency_serves_every_call_at_once() {
    let (mut h, mut s) = store("concurrency = 0");
    for id in 0..100 {
        let e = h.message(&mut s, CALLER, call(id, id));
        assert_eq!(e.timers::<Served>(), vec![(5 * MS, Served(id))]);
        assert_eq!(e.queue_depth(), None, "nothing ever waits");
    }
}

#[test]
fn a_retried_call_is_a_second_write() {
    // The store cannot tell a retry from a new request: a caller that gave
    // up on an attempt and sent it again gets the effect applied twice.
    let (mut h, mut s) = store("");
    h.message(&mut s, CALLER, call(5, 1));
    h.message(&mut s, CALLER, call(5, 2));
    let mut applied = h.timer(&mut s, Served(0)).applied();
    applied.extend(h.timer(&mut s, Served(1)).applied());
    assert_eq!(applied, [5, 5]);
}

#[test]
fn under_an_errors_fault_calls_fail_at_once_without_the_work() {
    let (mut h, mut s) = store("concurrency = 1");
    let fault = NodeFault::Errors { ppm: 1000000 };
    assert!(h.fault(&mut s, &fault, true).is_empty());
    let e = h.message(&mut s, CALLER, call(1, 1));
    assert_eq!(replies(&e, CALLER), [(1, 1, Status::Error)]);
    assert!(e.timers::<Served>().is_empty() && e.started().is_empty() && e.applied().is_empty());
    assert_eq!((e.metric("store_calls"), e.metric("store_errors")), (1.0, 1.0));
    let mut held = Vec::new();
    s.held(&mut held);
    assert!(held.is_empty(), "a failed call is not held");
    h.fault(&mut s, &fault, false);
    let e = h.message(&mut s, CALLER, call(2, 2));
    assert_eq!(e.timers::<Served>(), vec![(5 * MS, Served(0))], "after the fault, calls are served");
    assert_eq!(e.metric("store_errors"), 0.0);
}

#[test]
fn an_errors_fault_fails_calls_with_its_probability() {
    // 4000 calls at p = 0.25: the count of 500s is binomial, mean 1000 and
    // standard deviation sqrt(4000 * 0.25 * 0.75) = 27.4; five deviations
    // either side is a bound a correct store misses once in 1.7 million.
    let (mut h, mut s) = store("");
    h.fault(&mut s, &NodeFault::Errors { ppm: 250000 }, true);
    let n = 4000u64;
    let failed: usize = (0..n).map(|id| replies(&h.message(&mut s, CALLER, call(id, id)), CALLER).len()).sum();
    let (mean, sd) = (n as f64 * 0.25, (n as f64 * 0.25 * 0.75).sqrt());
    assert!((failed as f64 - mean).abs() < 5.0 * sd, "{failed} 500s of {n}, expected {mean} ± {:.0}", 5.0 * sd);
}

#[test]
fn overlapping_errors_faults_fail_calls_independently_and_end_one_by_one() {
    let (mut h, mut s) = store("");
    let (half, all) = (NodeFault::Errors { ppm: 500000 }, NodeFault::Errors { ppm: 1000000 });
    h.fault(&mut s, &half, true);
    h.fault(&mut s, &all, true);
    assert!((s.error_probability() - 1.0).abs() < 1e-12);
    h.fault(&mut s, &all, false);
    assert!((s.error_probability() - 0.5).abs() < 1e-12, "the half fault is still in force");
    h.fault(&mut s, &half, false);
    assert_eq!(s.error_probability(), 0.0);
}

#[test]
fn a_crash_loses_the_calls_in_progress_and_waiting_but_not_what_was_written() {
    let (mut h, mut s) = store("concurrency = 1");
    h.message(&mut s, CALLER, call(1, 1));
    h.now = 5 * MS;
    assert_eq!(h.timer(&mut s, Served(0)).applied(), [1], "written before the crash");
    h.message(&mut s, CALLER, call(2, 2));
    h.message(&mut s, CALLER, call(3, 3));
    h.fault(&mut s, &NodeFault::Errors { ppm: 1000000 }, true);
    s.crash();
    let mut held = Vec::new();
    s.held(&mut held);
    assert!(held.is_empty(), "calls in progress and waiting are gone, unanswered");
    let back = h.restart(&mut s);
    assert!(back.sent().is_empty() && back.applied().is_empty(), "nothing is answered after the restart");
    assert_eq!(back.queue_depth(), Some(0));
    // The errors fault in force outlives the crash: it is the schedule.
    assert_eq!(replies(&h.message(&mut s, CALLER, call(4, 4)), CALLER), [(4, 4, Status::Error)]);
    h.fault(&mut s, &NodeFault::Errors { ppm: 1000000 }, false);
    let e = h.message(&mut s, CALLER, call(5, 5));
    assert_eq!(e.timers::<Served>(), vec![(5 * MS, Served(2))], "a new serial: an old timer cannot answer it");
}

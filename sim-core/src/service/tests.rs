//! Unit tests of the service, driven through its handlers with the test
//! harness: the pool and its accept queue, dependency calls in sequence
//! and in parallel, retries, timeouts, the breaker and the bulkhead,
//! deadlines, worker mode, and crashes.

use super::{Service, ServiceSpec, ServiceTimer};
use crate::engine::{Component, Emitted, Harness};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Notice, Record};
use crate::protocol::rpc::{RpcMsg, Status};
use crate::protocol::QueueMsg;
use crate::time::{Time, NS_PER_MS};
use ServiceTimer::{AttemptTimeout, Backoff, JobRetry, Processed, RequestDeadline};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 0;
const U: NodeId = 1;
const B: NodeId = 10;
const C: NodeId = 11;
const Q: NodeId = 20;
const EDGE: NodeId = 21;

/// A service whose table is `table` (dependencies target B, then C).
fn service(table: &str) -> (Harness, Service) {
    let spec: ServiceSpec = toml::from_str(table).expect("a valid service table");
    let mut s = Service::for_test(&spec, &[B, C], None);
    let mut h = Harness::new(ME);
    h.start(&mut s);
    (h, s)
}

fn call(h: &mut Harness, s: &mut Service, id: MsgId, deadline: Time) -> Emitted {
    h.message(s, U, RpcMsg::Call { rec: Record::new(id, 0), call: 100 + id, deadline })
}

/// (call number, deadline) of every call sent to `to`.
fn calls(e: &Emitted, to: NodeId) -> Vec<(u64, Time)> {
    e.sent_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Rpc(RpcMsg::Call { call, deadline, .. }) => Some((call, deadline)),
            _ => None,
        })
        .collect()
}

/// (request id, status) of every reply to the caller U.
fn replies(e: &Emitted) -> Vec<(MsgId, Status)> {
    e.sent_to(U)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Rpc(RpcMsg::Reply { id, status, .. }) => Some((id, status)),
            _ => None,
        })
        .collect()
}

fn reply(h: &mut Harness, s: &mut Service, from: NodeId, call: u64, status: Status) -> Emitted {
    h.message(s, from, RpcMsg::Reply { id: 0, call, status })
}

const ONE_DEP: &str = "processing = { dist = \"constant\", ms = 5 }\n[[dependencies]]\ntarget = \"b\"\n";

#[test]
fn a_full_pool_and_accept_queue_answer_503_at_once() {
    let (mut h, mut s) = service("workers = 1\nqueue_limit = 1\nprocessing = { dist = \"constant\", ms = 5 }\n");
    let first = call(&mut h, &mut s, 1, 0);
    assert_eq!(first.timers::<ServiceTimer>(), vec![(5 * MS, Processed(0))], "a free worker takes it");
    assert_eq!(first.queue_depth(), Some(0));
    let second = call(&mut h, &mut s, 2, 0);
    assert!(second.timers::<ServiceTimer>().is_empty() && replies(&second).is_empty(), "it waits");
    assert_eq!(second.queue_depth(), Some(1));
    let third = call(&mut h, &mut s, 3, 0);
    assert_eq!(replies(&third), vec![(3, Status::Unavailable)]);
    assert_eq!(third.metric("requests_rejected"), 1.0);
    // The first ends: 200, and the worker takes the queued one.
    h.now = 5 * MS;
    let done = h.timer(&mut s, Processed(0));
    assert_eq!(replies(&done), vec![(1, Status::Ok)]);
    assert_eq!(done.timers::<ServiceTimer>(), vec![(5 * MS, Processed(1))]);
    assert_eq!(done.queue_depth(), Some(0));
}

#[test]
fn sequence_calls_one_after_the_other_and_parallel_all_at_once() {
    let deps = "[[dependencies]]\ntarget = \"b\"\n[[dependencies]]\ntarget = \"c\"\n";
    let (mut h, mut s) = service(deps);
    call(&mut h, &mut s, 1, 0);
    let e = h.timer(&mut s, Processed(0));
    assert_eq!((calls(&e, B).len(), calls(&e, C).len()), (1, 0), "sequence: b first");
    h.now = 3 * MS;
    let e = reply(&mut h, &mut s, B, 0, Status::Ok);
    assert_eq!(calls(&e, C).len(), 1, "then c, once b answered");
    h.now = 7 * MS;
    let e = reply(&mut h, &mut s, C, 1, Status::Ok);
    assert_eq!(replies(&e), vec![(1, Status::Ok)], "the reply after both: 3 + 4 ms");

    let (mut h, mut s) = service(&format!("calls = \"parallel\"\n{deps}"));
    call(&mut h, &mut s, 1, 0);
    let e = h.timer(&mut s, Processed(0));
    assert_eq!((calls(&e, B).len(), calls(&e, C).len()), (1, 1), "parallel: both at once");
    h.now = 4 * MS;
    assert!(replies(&reply(&mut h, &mut s, C, 1, Status::Ok)).is_empty(), "waits for b");
    h.now = 5 * MS;
    assert_eq!(replies(&reply(&mut h, &mut s, B, 0, Status::Ok)), vec![(1, Status::Ok)], "max(3, 4) ms, not the sum");
}

#[test]
fn a_failed_dependency_in_sequence_ends_the_request_and_in_parallel_the_first_in_order_decides() {
    let deps = "[[dependencies]]\ntarget = \"b\"\n[[dependencies]]\ntarget = \"c\"\n";
    let (mut h, mut s) = service(deps);
    call(&mut h, &mut s, 1, 0);
    h.timer(&mut s, Processed(0));
    let e = reply(&mut h, &mut s, B, 0, Status::Unavailable);
    assert!(calls(&e, C).is_empty(), "c is never called");
    assert_eq!(replies(&e), vec![(1, Status::Error)], "a dependency's 503 is this service's 500");
    assert_eq!(e.metric("dependency_errors"), 1.0);

    let (mut h, mut s) = service(&format!("calls = \"parallel\"\n{deps}"));
    call(&mut h, &mut s, 1, 0);
    h.timer(&mut s, Processed(0));
    reply(&mut h, &mut s, C, 1, Status::Error);
    h.now = 1000 * MS;
    let e = h.timer(&mut s, AttemptTimeout);
    assert_eq!(e.metric("dependency_timeouts"), 1.0);
    assert_eq!(replies(&e), vec![(1, Status::GatewayTimeout)], "b (first in order) timed out: 504");
}

#[test]
fn retries_back_off_exponentially_and_the_last_failure_decides() {
    let (mut h, mut s) = service(&format!("{ONE_DEP}retries = 2\nbackoff_ms = 100\ntimeout_ms = 50\n"));
    call(&mut h, &mut s, 1, 0);
    h.now = 5 * MS;
    let e = h.timer(&mut s, Processed(0));
    assert_eq!(calls(&e, B), vec![(0, 55 * MS)], "the callee gets now + timeout as deadline");
    h.now = 6 * MS;
    let e = reply(&mut h, &mut s, B, 0, Status::Error);
    assert_eq!(e.timers::<ServiceTimer>(), vec![(100 * MS, Backoff { rid: 0, dep: 0 })]);
    assert_eq!(e.metric("dependency_retries"), 1.0);
    h.now = 106 * MS;
    let e = h.timer(&mut s, Backoff { rid: 0, dep: 0 });
    assert_eq!(calls(&e, B), vec![(1, 156 * MS)]);
    h.now = 156 * MS;
    let e = h.timer(&mut s, AttemptTimeout);
    assert_eq!(e.metric("dependency_timeouts"), 1.0);
    assert_eq!(e.timers::<ServiceTimer>(), vec![(200 * MS, Backoff { rid: 0, dep: 0 })], "doubled");
    // The timed-out attempt's late answer is ignored.
    assert!(reply(&mut h, &mut s, B, 1, Status::Ok).is_empty());
    h.now = 356 * MS;
    let e = h.timer(&mut s, Backoff { rid: 0, dep: 0 });
    assert_eq!(calls(&e, B).len(), 1);
    let e = reply(&mut h, &mut s, B, 2, Status::Error);
    assert_eq!(replies(&e), vec![(1, Status::Error)], "retries spent: the last failure (500) decides");
    assert_eq!(e.metric("dependency_retries"), 0.0);
}

#[test]
fn full_jitter_draws_each_backoff_between_zero_and_the_exponential_one() {
    let (mut h, mut s) = service(&format!("{ONE_DEP}retries = 1\nbackoff_ms = 100\njitter = \"full\"\n"));
    let mut waits = Vec::new();
    for id in 0..200u64 {
        call(&mut h, &mut s, id, 0);
        h.timer(&mut s, Processed(id));
        let e = reply(&mut h, &mut s, B, 2 * id, Status::Error);
        let (wait, _) = e.timers::<ServiceTimer>()[0];
        waits.push(wait);
        h.timer(&mut s, Backoff { rid: id, dep: 0 });
        reply(&mut h, &mut s, B, 2 * id + 1, Status::Ok);
    }
    assert!(waits.iter().all(|&w| w <= 100 * MS));
    // Uniform on [0, 100 ms]: mean 50 ms, standard error 28.9 / sqrt(200) = 2 ms.
    let mean = waits.iter().sum::<u64>() as f64 / waits.len() as f64 / MS as f64;
    assert!((mean - 50.0).abs() < 5.0 * 2.05, "mean {mean} ms");
}

#[test]
fn an_open_breaker_refuses_at_once_then_half_open_trials_close_it() {
    let breaker = "breaker = { sliding_window = 2, minimum_calls = 2, open_ms = 1000, half_open_calls = 1 }\n";
    let (mut h, mut s) = service(&format!("workers = 5\n{ONE_DEP}{breaker}"));
    let mut opened = 0.0;
    for id in 0..2 {
        call(&mut h, &mut s, id, 0);
        h.timer(&mut s, Processed(id));
        opened += reply(&mut h, &mut s, B, id, Status::Error).metric("breaker_opened");
    }
    assert_eq!(opened, 1.0, "2 failures of 2 opened it");
    call(&mut h, &mut s, 2, 0);
    let e = h.timer(&mut s, Processed(2));
    assert!(calls(&e, B).is_empty(), "refused: nothing on the wire");
    assert_eq!(replies(&e), vec![(2, Status::Unavailable)]);
    assert_eq!(e.metric("breaker_rejected"), 1.0);
    // After open_ms: one trial goes, a second is refused while it is out.
    h.now = 1000 * MS;
    call(&mut h, &mut s, 3, 0);
    call(&mut h, &mut s, 4, 0);
    let trial = h.timer(&mut s, Processed(3));
    assert_eq!(calls(&trial, B).len(), 1, "half-open: the trial call goes");
    let refused = h.timer(&mut s, Processed(4));
    assert_eq!(replies(&refused), vec![(4, Status::Unavailable)], "quota of 1 used");
    let (trial_call, _) = calls(&trial, B)[0];
    let e = reply(&mut h, &mut s, B, trial_call, Status::Ok);
    assert_eq!(replies(&e), vec![(3, Status::Ok)]);
    call(&mut h, &mut s, 5, 0);
    assert_eq!(calls(&h.timer(&mut s, Processed(5)), B).len(), 1, "closed again");
}

#[test]
fn a_full_bulkhead_refuses_at_once() {
    let (mut h, mut s) = service(&format!("workers = 3\n{ONE_DEP}bulkhead = 1\n"));
    call(&mut h, &mut s, 1, 0);
    call(&mut h, &mut s, 2, 0);
    assert_eq!(calls(&h.timer(&mut s, Processed(0)), B).len(), 1);
    let e = h.timer(&mut s, Processed(1));
    assert!(calls(&e, B).is_empty());
    assert_eq!(replies(&e), vec![(2, Status::Unavailable)]);
    assert_eq!(e.metric("bulkhead_rejected"), 1.0);
    reply(&mut h, &mut s, B, 0, Status::Ok);
    call(&mut h, &mut s, 3, 0);
    assert_eq!(calls(&h.timer(&mut s, Processed(2)), B).len(), 1, "the place is free again");
}

#[test]
fn without_deadline_propagation_work_for_gone_callers_is_counted() {
    let (mut h, mut s) = service("workers = 1\nprocessing = { dist = \"constant\", ms = 50 }\n");
    call(&mut h, &mut s, 1, 0);
    call(&mut h, &mut s, 2, 10 * MS);
    h.now = 50 * MS;
    let e = h.timer(&mut s, Processed(0));
    assert_eq!(e.timers::<ServiceTimer>(), vec![(50 * MS, Processed(1))], "started for a caller who left");
    h.now = 100 * MS;
    let e = h.timer(&mut s, Processed(1));
    assert_eq!(replies(&e), vec![(2, Status::Ok)]);
    assert_eq!(e.metric("work_for_gone_callers"), 1.0);
}

#[test]
fn with_deadline_propagation_expired_requests_are_dropped_and_deadlines_passed_on() {
    let table = format!("workers = 1\npropagate_deadline = true\n{ONE_DEP}timeout_ms = 1000\n");
    let (mut h, mut s) = service(&table);
    call(&mut h, &mut s, 1, 300 * MS);
    call(&mut h, &mut s, 2, 4 * MS);
    h.now = 5 * MS;
    let e = h.timer(&mut s, Processed(0));
    assert_eq!(calls(&e, B), vec![(0, 300 * MS)], "min(deadline, now + timeout)");
    h.now = 10 * MS;
    let e = reply(&mut h, &mut s, B, 0, Status::Ok);
    assert_eq!(replies(&e), vec![(1, Status::Ok)]);
    assert_eq!(e.metric("expired_dropped"), 1.0, "the second's caller left at 4 ms: dropped unstarted");
    assert!(e.timers::<ServiceTimer>().iter().all(|(_, t)| !matches!(t, Processed(_))), "no work for it");
    // A request whose deadline comes while it waits on a dependency is given up then.
    call(&mut h, &mut s, 3, 100 * MS);
    h.timer(&mut s, Processed(2));
    h.now = 100 * MS;
    let e = h.timer(&mut s, RequestDeadline);
    assert_eq!(replies(&e), vec![(3, Status::GatewayTimeout)]);
    assert!(reply(&mut h, &mut s, B, 1, Status::Ok).is_empty(), "its attempt was abandoned");
}

#[test]
fn the_errors_fault_answers_500_at_once() {
    let (mut h, mut s) = service(ONE_DEP);
    s.set_errors(1_000_000, true);
    let e = call(&mut h, &mut s, 1, 0);
    assert_eq!(replies(&e), vec![(1, Status::Error)]);
    assert!(e.timers::<ServiceTimer>().is_empty(), "no worker used");
    s.set_errors(1_000_000, false);
    assert!(replies(&call(&mut h, &mut s, 2, 0)).is_empty());
}

#[test]
fn a_dependency_that_dies_fails_its_calls_at_once_and_a_crash_forgets_everything() {
    let (mut h, mut s) = service(&format!("workers = 1\nqueue_limit = 5\n{ONE_DEP}"));
    call(&mut h, &mut s, 1, 0);
    call(&mut h, &mut s, 2, 0);
    h.timer(&mut s, Processed(0));
    let e = h.message(&mut s, B, Notice::PeerDown);
    assert_eq!(replies(&e), vec![(1, Status::Error)], "connection reset: a failure, no retries left");
    assert_eq!(e.metric("dependency_errors"), 1.0);
    h.timer(&mut s, Processed(1));
    s.crash();
    assert!(s.reqs.is_empty() && s.queue.is_empty() && s.attempts.is_empty() && s.busy == 0);
    assert!(reply(&mut h, &mut s, B, 1, Status::Ok).is_empty(), "an answer from before the crash matches nothing");
    call(&mut h, &mut s, 3, 0);
    let e = h.timer(&mut s, Processed(2));
    assert_eq!(calls(&e, B), vec![(2, 1000 * MS)], "call numbers are never reused");
}

/// A worker reading broker Q and telling EDGE; started and subscribed.
fn worker(extra: &str) -> (Harness, Service) {
    let spec: ServiceSpec =
        toml::from_str(&format!("workers = 2\nsource = \"q\"\nnotify = \"edge\"\n{extra}{ONE_DEP}"))
            .expect("a valid worker table");
    let mut s = Service::for_test(&spec, &[B], Some((Q, Some(EDGE))));
    let mut h = Harness::new(ME);
    let e = h.start(&mut s);
    assert!(matches!(e.sent_to(Q)[..], [Msg::Queue(QueueMsg::Subscribe { prefetch: 2, auto_ack: false, .. })]));
    h.message(&mut s, Q, QueueMsg::Subscribed { session: 1 });
    (h, s)
}

fn deliver(h: &mut Harness, s: &mut Service, id: MsgId, tag: u64) -> Emitted {
    h.message(s, Q, QueueMsg::Deliver { rec: Record::new(id, 0), tag, redelivered: false })
}

fn acks(e: &Emitted) -> Vec<u64> {
    e.sent_to(Q)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Queue(QueueMsg::Ack { tag }) => Some(tag),
            _ => None,
        })
        .collect()
}

#[test]
fn a_worker_tells_notify_when_done_and_acks_once_heard() {
    let (mut h, mut s) = worker("");
    deliver(&mut h, &mut s, 7, 1);
    h.timer(&mut s, Processed(0));
    let e = reply(&mut h, &mut s, B, 0, Status::Ok);
    assert_eq!(e.sent_to(EDGE), vec![Msg::Rpc(RpcMsg::Done { id: 7, status: Status::Ok })]);
    assert!(acks(&e).is_empty(), "held until the notice is heard");
    h.now = 1000 * MS;
    let e = h.timer(&mut s, ServiceTimer::DoneResend);
    assert_eq!(e.sent_to(EDGE), vec![Msg::Rpc(RpcMsg::Done { id: 7, status: Status::Ok })], "resent");
    let e = h.message(&mut s, EDGE, RpcMsg::DoneAck { id: 7 });
    assert_eq!(acks(&e), vec![1]);
    assert!(h.timer(&mut s, ServiceTimer::DoneResend).is_empty(), "nothing left to resend");
}

#[test]
fn a_failed_job_is_retried_holding_its_delivery_until_its_attempts_are_spent() {
    let (mut h, mut s) = worker("job_retry_ms = 500\njob_attempts = 2\n");
    deliver(&mut h, &mut s, 7, 1);
    h.timer(&mut s, Processed(0));
    let e = reply(&mut h, &mut s, B, 0, Status::Unavailable);
    assert_eq!(e.timers::<ServiceTimer>(), vec![(500 * MS, JobRetry(0))]);
    assert!(e.sent_to(EDGE).is_empty() && acks(&e).is_empty(), "the delivery is held");
    assert_eq!(e.metric("job_retries"), 1.0);
    h.now = 500 * MS;
    assert_eq!(h.timer(&mut s, JobRetry(0)).timers::<ServiceTimer>(), vec![(5 * MS, Processed(0))], "done again");
    h.timer(&mut s, Processed(0));
    let e = reply(&mut h, &mut s, B, 1, Status::Error);
    assert_eq!(e.sent_to(EDGE), vec![Msg::Rpc(RpcMsg::Done { id: 7, status: Status::Error })]);
    assert_eq!(e.metric("jobs_failed"), 1.0);
    assert_eq!(e.discarded(), vec![(7, LossCause::GaveUp)]);
    assert!(e.errors().is_empty(), "internal failures are metrics, never user-visible errors");
    assert_eq!(acks(&h.message(&mut s, EDGE, RpcMsg::DoneAck { id: 7 })), vec![1]);
}

#[test]
fn timer_words_round_trip() {
    for t in [
        Processed(0),
        Processed(u64::MAX >> 8),
        Backoff { rid: 12345, dep: 999 },
        JobRetry(3),
        AttemptTimeout,
        RequestDeadline,
        ServiceTimer::DoneResend,
        ServiceTimer::Resubscribe,
    ] {
        use crate::engine::Timer;
        let masked = match t {
            Processed(r) => Processed(r & super::LOW),
            other => other,
        };
        assert_eq!(ServiceTimer::from_word(t.to_word()), Some(masked));
    }
}

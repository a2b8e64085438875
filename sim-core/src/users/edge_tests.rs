//! Unit tests of the asynchronous edge, driven through its handlers:
//! publish and confirm, the status table, Done from a worker, callbacks.

use super::{Edge, EdgeTimer};
use crate::engine::{Component, Emitted, Harness};
use crate::message::{Msg, NodeId, Record};
use crate::protocol::rpc::{JobState, RpcMsg, Status};
use crate::protocol::{publish_ack, QueueMsg};
use crate::time::NS_PER_MS;

const MS: u64 = NS_PER_MS;
const ME: NodeId = 3;
const QUEUE: NodeId = 1;
const USER: NodeId = 8;
const WORKER: NodeId = 2;

fn edge(extra: &str) -> (Harness, Edge) {
    let spec = toml::from_str(&format!("queue = \"jobs\"\nconfirm_timeout_ms = 100\ncallback_retry_ms = 50\n{extra}"))
        .expect("a valid edge table");
    let mut h = Harness::new(ME);
    let mut e = Edge::new(&spec, QUEUE);
    h.start(&mut e);
    (h, e)
}

fn call(h: &mut Harness, e: &mut Edge, id: u64, call: u64) -> Emitted {
    h.message(e, USER, RpcMsg::Call { rec: Record::new(id, 0), call, deadline: 0 })
}

/// The attempt number of the publish sent, checked to be persistent and
/// to want a confirm.
fn published(x: &Emitted) -> u32 {
    match x.sent_to(QUEUE).as_slice() {
        [Msg::Queue(QueueMsg::Publish { want_ack: true, persistent: true, attempt, .. })] => *attempt,
        other => panic!("expected one confirmed, persistent publish: {other:?}"),
    }
}

fn replies(x: &Emitted) -> Vec<Msg> {
    x.sent_to(USER)
}

#[test]
fn a_call_is_published_and_answered_202_once_confirmed() {
    let (mut h, mut e) = edge("");
    let x = call(&mut h, &mut e, 4, 1);
    let attempt = published(&x);
    assert!(replies(&x).is_empty(), "not before the confirm");
    let x = h.message(&mut e, QUEUE, publish_ack(4, true, attempt, 0));
    assert_eq!(replies(&x), vec![Msg::Rpc(RpcMsg::Reply { id: 4, call: 1, status: Status::Accepted })]);
    assert_eq!(x.metric("accepted"), 1.0);
    let x = h.message(&mut e, USER, RpcMsg::Poll { id: 4, call: 2 });
    assert_eq!(replies(&x), vec![Msg::Rpc(RpcMsg::PollReply { id: 4, call: 2, state: JobState::Pending })]);
    assert_eq!(x.metric("status_polls"), 1.0);
    let x = call(&mut h, &mut e, 4, 3);
    assert!(x.sent_to(QUEUE).is_empty(), "a retry of an accepted request is not queued twice");
    assert_eq!(replies(&x), vec![Msg::Rpc(RpcMsg::Reply { id: 4, call: 3, status: Status::Accepted })]);
}

#[test]
fn a_refused_or_unconfirmed_publish_is_a_503() {
    let (mut h, mut e) = edge("");
    let attempt = published(&call(&mut h, &mut e, 4, 1));
    let x = h.message(&mut e, QUEUE, publish_ack(4, false, attempt, 0));
    assert_eq!(replies(&x), vec![Msg::Rpc(RpcMsg::Reply { id: 4, call: 1, status: Status::Unavailable })]);
    let attempt = published(&call(&mut h, &mut e, 5, 2));
    h.now = 100 * MS;
    let x = h.timer(&mut e, EdgeTimer::Confirm);
    assert_eq!(replies(&x), vec![Msg::Rpc(RpcMsg::Reply { id: 5, call: 2, status: Status::Unavailable })]);
    let x = h.message(&mut e, QUEUE, publish_ack(5, true, attempt, 0));
    assert!(replies(&x).is_empty(), "answered already");
    let x = h.message(&mut e, USER, RpcMsg::Poll { id: 5, call: 3 });
    assert_eq!(
        replies(&x),
        vec![Msg::Rpc(RpcMsg::PollReply { id: 5, call: 3, state: JobState::Pending })],
        "but queued"
    );
}

#[test]
fn a_workers_done_is_acked_and_finishes_the_job() {
    let (mut h, mut e) = edge("");
    let attempt = published(&call(&mut h, &mut e, 4, 1));
    h.message(&mut e, QUEUE, publish_ack(4, true, attempt, 0));
    let x = h.message(&mut e, WORKER, RpcMsg::Done { id: 4, status: Status::Ok });
    assert_eq!(x.sent(), vec![(WORKER, Msg::Rpc(RpcMsg::DoneAck { id: 4 }))], "no callbacks: just the ack");
    let x = h.message(&mut e, USER, RpcMsg::Poll { id: 4, call: 2 });
    let finished = JobState::Finished(Status::Ok);
    assert_eq!(replies(&x), vec![Msg::Rpc(RpcMsg::PollReply { id: 4, call: 2, state: finished })]);
    let x = h.message(&mut e, USER, RpcMsg::Poll { id: 77, call: 3 });
    assert_eq!(replies(&x), vec![Msg::Rpc(RpcMsg::PollReply { id: 77, call: 3, state: JobState::Unknown })]);
}

#[test]
fn a_callback_is_resent_until_acked_and_survives_a_crash_of_the_edge() {
    let (mut h, mut e) = edge("callbacks = true");
    let attempt = published(&call(&mut h, &mut e, 4, 1));
    h.message(&mut e, QUEUE, publish_ack(4, true, attempt, 0));
    let done = Msg::Rpc(RpcMsg::Done { id: 4, status: Status::Ok });
    let x = h.message(&mut e, WORKER, RpcMsg::Done { id: 4, status: Status::Ok });
    assert_eq!((replies(&x), x.metric("callbacks_sent")), (vec![done.clone()], 1.0));
    assert_eq!(x.timers::<EdgeTimer>(), vec![(50 * MS, EdgeTimer::Callback)]);
    assert!(h.message(&mut e, WORKER, RpcMsg::Done { id: 4, status: Status::Ok }).sent_to(USER).is_empty(), "a repeat");
    h.now = 50 * MS;
    assert_eq!(replies(&h.timer(&mut e, EdgeTimer::Callback)), vec![done.clone()], "resent");
    e.crash();
    h.now = 60 * MS;
    assert_eq!(replies(&h.restart(&mut e)), vec![done], "still owed: resent from the table");
    h.message(&mut e, USER, RpcMsg::DoneAck { id: 4 });
    h.now = 110 * MS;
    assert!(h.timer(&mut e, EdgeTimer::Callback).sent().is_empty(), "acked: no more");
}

/// The worker's delivery can overtake the broker's confirm to the edge: a
/// job may be done before the edge records it as accepted. The confirm
/// must not put it back to Pending (found by the async property test: the
/// user polled a finished job forever).
#[test]
fn a_job_done_before_its_confirm_stays_finished_and_is_called_back() {
    let (mut h, mut e) = edge("callbacks = true");
    let attempt = published(&call(&mut h, &mut e, 5, 1));
    h.message(&mut e, WORKER, RpcMsg::Done { id: 5, status: Status::Ok });
    let confirmed = h.message(&mut e, QUEUE, publish_ack(5, true, attempt, 0));
    assert!(replies(&confirmed).contains(&Msg::Rpc(RpcMsg::Reply { id: 5, call: 1, status: Status::Accepted })));
    assert!(
        replies(&confirmed).contains(&Msg::Rpc(RpcMsg::Done { id: 5, status: Status::Ok })),
        "the caller, known only now, is called back"
    );
    let polled = h.message(&mut e, USER, RpcMsg::Poll { id: 5, call: 2 });
    assert_eq!(
        replies(&polled),
        vec![Msg::Rpc(RpcMsg::PollReply { id: 5, call: 2, state: JobState::Finished(Status::Ok) })]
    );
}

/// A publish whose confirm never comes (lost, or the broker crashed with
/// it) is answered 503; the user's retry publishes again instead of only
/// waiting for that confirm, so a short broker outage does not become a
/// run of errors (found in review).
#[test]
fn a_retry_after_an_overdue_confirm_publishes_again() {
    let (mut h, mut e) = edge("");
    let first = published(&call(&mut h, &mut e, 6, 1));
    h.now = 100 * MS;
    let late = h.timer(&mut e, EdgeTimer::Confirm);
    assert!(replies(&late).contains(&Msg::Rpc(RpcMsg::Reply { id: 6, call: 1, status: Status::Unavailable })));
    let second = published(&call(&mut h, &mut e, 6, 2));
    assert_ne!(first, second, "a new attempt");
    let confirmed = h.message(&mut e, QUEUE, publish_ack(6, true, second, 0));
    assert_eq!(replies(&confirmed), vec![Msg::Rpc(RpcMsg::Reply { id: 6, call: 2, status: Status::Accepted })]);
}

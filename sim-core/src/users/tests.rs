//! Unit tests of the users, driven through their handlers with the test
//! harness: calls, replies, timeouts, retries, polls and callbacks by hand.

use super::{Users, UsersSpec, UsersTimer};
use crate::engine::{Component, Effect, Emitted, Fact, Harness, Metric, Timing};
use crate::message::{Msg, MsgId, NodeId};
use crate::metrics::Gauges;
use crate::protocol::rpc::{JobState, RpcMsg, Status};
use crate::time::NS_PER_MS;
use UsersTimer::{Arrival, Poll, Retry, Think, Timeout};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 7;
/// The target.
const T: NodeId = 5;

fn spec(extra: &str) -> UsersSpec {
    let table = format!("target = \"a\"\ntimeout_ms = 100\n{extra}");
    toml::from_str(&table).expect("a valid users table")
}

/// Open-loop users making a request every ms, waiting 100 ms per attempt.
fn users(extra: &str) -> (Harness, Users) {
    let extra = format!("arrival = {{ process = \"constant\", rate_per_s = 1000 }}\n{extra}");
    let mut h = Harness::new(ME);
    let mut u = Users::new(&spec(&extra), T);
    h.start(&mut u);
    (h, u)
}

/// (id, call, deadline) of every call sent.
fn calls(e: &Emitted) -> Vec<(MsgId, u64, u64)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Rpc(RpcMsg::Call { rec, call, deadline }) if to == T => Some((rec.id, call, deadline)),
            _ => None,
        })
        .collect()
}

fn reply(h: &mut Harness, u: &mut Users, id: MsgId, call: u64, status: Status) -> Emitted {
    h.message(u, T, RpcMsg::Reply { id, call, status })
}

/// The timings of `kind` recorded, in ns.
fn timings(e: &Emitted, kind: Timing) -> Vec<u64> {
    e.0.iter()
        .filter_map(|x| match x {
            Effect::Metric(Metric::Timing(k, ns)) if *k == kind => Some(*ns),
            _ => None,
        })
        .collect()
}

fn gauges(u: &Users) -> Vec<(String, f64)> {
    let mut g = Gauges::default();
    u.gauges(0, &mut g);
    g.into_vec()
}

#[test]
fn a_request_is_produced_unconfirmed_and_called_with_its_deadline() {
    let (mut h, mut u) = users("");
    h.now = MS;
    let e = h.timer(&mut u, Arrival);
    assert_eq!(e.facts(), vec![Fact::Produced { id: 0, key: 0, fire_and_forget: false }]);
    assert_eq!(calls(&e), vec![(0, 1, 101 * MS)]);
    assert_eq!((e.metric("requests"), e.metric("attempts")), (1.0, 1.0));
}

#[test]
fn a_200_confirms_applies_and_times_the_request_once() {
    let (mut h, mut u) = users("");
    h.timer(&mut u, Arrival);
    h.now = 30 * MS;
    let e = reply(&mut h, &mut u, 0, 1, Status::Ok);
    assert_eq!((e.confirmed(), e.applied()), (vec![0], vec![0]));
    assert_eq!(timings(&e, Timing::Response), vec![30 * MS]);
    assert_eq!(timings(&e, Timing::Completion), vec![30 * MS], "sync: the outcome is the response");
    assert!(e.errors().is_empty());
    let again = reply(&mut h, &mut u, 0, 1, Status::Ok);
    assert_eq!((again.metric("late_replies"), again.applied()), (1.0, vec![]), "answered already");
    assert_eq!(
        gauges(&u),
        vec![
            ("completion_mean_ms".into(), 30.0),
            ("completion_p99_ms".into(), 30.0),
            ("error_rate".into(), 0.0),
            ("response_mean_ms".into(), 30.0),
            ("response_p99_ms".into(), 30.0)
        ]
    );
    assert!(gauges(&u).is_empty(), "a sample resets the interval");
}

#[test]
fn a_timeout_without_retries_is_one_user_visible_error_and_a_late_reply_is_ignored() {
    let (mut h, mut u) = users("");
    h.timer(&mut u, Arrival);
    h.now = 100 * MS;
    let e = h.timer(&mut u, Timeout);
    assert_eq!(e.errors(), vec!["timeout"]);
    assert_eq!(timings(&e, Timing::Response), vec![100 * MS]);
    assert!(e.confirmed().is_empty(), "never confirmed: the ledger calls it send_failed");
    h.now = 150 * MS;
    let late = reply(&mut h, &mut u, 0, 1, Status::Ok);
    assert_eq!((late.metric("late_replies"), late.applied(), late.confirmed()), (1.0, vec![], vec![]));
    assert_eq!(gauges(&u).into_iter().find(|(n, _)| n == "error_rate").map(|(_, v)| v), Some(1.0));
}

#[test]
fn retries_are_new_calls_after_a_doubling_backoff_and_a_reply_to_an_old_call_is_late() {
    let (mut h, mut u) = users("retries = 2\nretry_backoff_ms = 50");
    h.timer(&mut u, Arrival);
    h.now = 100 * MS;
    let e = h.timer(&mut u, Timeout);
    assert_eq!(e.timers::<UsersTimer>(), vec![(50 * MS, Retry)], "the first backoff");
    h.now = 150 * MS;
    let e = h.timer(&mut u, Retry);
    assert_eq!(calls(&e), vec![(0, 2, 250 * MS)], "a new call number");
    assert_eq!((e.metric("user_retries"), e.resent().len()), (1.0, 1));
    h.now = 160 * MS;
    let e = reply(&mut h, &mut u, 0, 2, Status::Unavailable);
    assert_eq!(e.timers::<UsersTimer>(), vec![(100 * MS, Retry)], "doubled");
    assert!(e.errors().is_empty(), "retries remain");
    assert_eq!(reply(&mut h, &mut u, 0, 1, Status::Ok).metric("late_replies"), 1.0, "the first call was given up");
    h.now = 260 * MS;
    assert_eq!(calls(&h.timer(&mut u, Retry)), vec![(0, 3, 360 * MS)]);
    h.now = 270 * MS;
    let e = reply(&mut h, &mut u, 0, 3, Status::GatewayTimeout);
    assert_eq!(e.errors(), vec!["gateway-timeout"], "the final attempt's error is what the user sees");
    assert_eq!(timings(&e, Timing::Response), vec![270 * MS], "from the first attempt");
}

#[test]
fn full_jitter_draws_the_backoff_between_zero_and_its_cap() {
    let (mut h, mut u) = users("retries = 1\nretry_backoff_ms = 50\njitter = \"full\"");
    h.timer(&mut u, Arrival);
    h.now = 100 * MS;
    let e = h.timer(&mut u, Timeout);
    let ts = e.timers::<UsersTimer>();
    assert!(ts.len() <= 1 && ts.iter().all(|&(d, t)| t == Retry && d < 50 * MS), "{ts:?}");
}

#[test]
fn every_error_status_names_its_error() {
    for (status, kind) in [
        (Status::Error, "server-error"),
        (Status::Unavailable, "unavailable"),
        (Status::GatewayTimeout, "gateway-timeout"),
    ] {
        let (mut h, mut u) = users("");
        h.timer(&mut u, Arrival);
        assert_eq!(reply(&mut h, &mut u, 0, 1, status).errors(), vec![kind]);
    }
}

#[test]
fn a_polling_user_polls_after_a_202_until_the_job_is_finished() {
    let (mut h, mut u) = users("outcome = \"poll\"\npoll_interval_ms = 40");
    h.timer(&mut u, Arrival);
    h.now = 10 * MS;
    let e = reply(&mut h, &mut u, 0, 1, Status::Accepted);
    assert_eq!((e.confirmed(), e.applied()), (vec![0], vec![]), "taken, not yet done");
    assert_eq!(timings(&e, Timing::Response), vec![10 * MS]);
    assert!(timings(&e, Timing::Completion).is_empty());
    assert!(e.timers::<UsersTimer>().contains(&(40 * MS, Poll)));
    h.now = 50 * MS;
    let e = h.timer(&mut u, Poll);
    assert_eq!(e.sent(), vec![(T, Msg::Rpc(RpcMsg::Poll { id: 0, call: 2 }))]);
    assert_eq!(e.metric("polls"), 1.0);
    let e = h.message(&mut u, T, RpcMsg::PollReply { id: 0, call: 2, state: JobState::Pending });
    assert!(e.applied().is_empty());
    h.now = 90 * MS;
    assert_eq!(h.timer(&mut u, Poll).metric("polls"), 1.0, "the next poll");
    h.now = 95 * MS;
    let e = h.message(&mut u, T, RpcMsg::PollReply { id: 0, call: 3, state: JobState::Finished(Status::Ok) });
    assert_eq!((e.applied(), timings(&e, Timing::Completion)), (vec![0], vec![95 * MS]));
    h.now = 130 * MS;
    assert!(h.timer(&mut u, Poll).sent().is_empty(), "known: no more polls");
}

#[test]
fn a_callback_is_acked_once_known_and_a_failed_job_is_a_user_visible_error() {
    let (mut h, mut u) = users("outcome = \"callback\"");
    h.timer(&mut u, Arrival);
    reply(&mut h, &mut u, 0, 1, Status::Accepted);
    h.now = 500 * MS;
    assert!(h.timer(&mut u, Timeout).errors().is_empty(), "accepted: the attempt's deadline is void");
    let e = h.message(&mut u, 9, RpcMsg::Done { id: 0, status: Status::Error });
    assert_eq!(e.sent(), vec![(9, Msg::Rpc(RpcMsg::DoneAck { id: 0 }))]);
    assert_eq!((e.errors(), e.metric("callbacks")), (vec!["job-failed"], 1.0));
    assert_eq!(timings(&e, Timing::Completion), vec![500 * MS]);
    let dup = h.message(&mut u, 9, RpcMsg::Done { id: 0, status: Status::Error });
    assert_eq!(dup.sent().len(), 1, "a repeat is acked");
    assert!(dup.errors().is_empty(), "and ignored");
}

#[test]
fn closed_loop_users_think_then_request_and_wait_for_the_answer() {
    let mut h = Harness::new(ME);
    let mut u = Users::new(&spec("users = 2\nthink = { dist = \"constant\", ms = 20 }\nmessages = 3"), T);
    let e = h.start(&mut u);
    assert_eq!(e.timers::<UsersTimer>(), vec![(20 * MS, Think)], "one timer for both users");
    h.now = 20 * MS;
    let e = h.timer(&mut u, Think);
    assert_eq!(calls(&e).len(), 2, "both users request");
    h.now = 30 * MS;
    let e = reply(&mut h, &mut u, 0, 1, Status::Ok);
    assert_eq!(e.timers::<UsersTimer>(), vec![(20 * MS, Think)], "user 0 thinks again");
    h.now = 50 * MS;
    let e = h.timer(&mut u, Think);
    assert_eq!(calls(&e).len(), 1, "user 0's next request; user 1 still waits");
    assert!(e.facts().contains(&Fact::ProducerDone), "3 made");
    h.now = 60 * MS;
    assert!(reply(&mut h, &mut u, 1, 2, Status::Ok).timers::<UsersTimer>().is_empty(), "all made: no more thinking");
}

#[test]
fn a_crash_forgets_awaited_requests() {
    let (mut h, mut u) = users("outcome = \"callback\"");
    h.timer(&mut u, Arrival);
    h.now = MS;
    h.timer(&mut u, Arrival);
    reply(&mut h, &mut u, 0, 1, Status::Accepted);
    let mut held = Vec::new();
    u.held(&mut held);
    assert_eq!(held, vec![0, 1]);
    u.crash();
    held.clear();
    u.held(&mut held);
    assert!(held.is_empty());
    let e = h.message(&mut u, 9, RpcMsg::Done { id: 0, status: Status::Ok });
    assert_eq!((e.sent().len(), e.applied()), (1, vec![]), "acked, but nobody waits for it");
    h.now = 2 * MS;
    let e = h.restart(&mut u);
    assert_eq!(e.timers::<UsersTimer>(), vec![(MS, Arrival)], "the load resumes");
    assert_eq!(calls(&h.timer(&mut u, Arrival)), vec![(2, 3, 102 * MS)], "call numbers are not reused");
}

//! Unit tests of the saga kinds: the coordinator and a participant driven
//! through their handlers with a `Harness`.

use super::*;
use crate::engine::{Harness, Timer};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::rpc::{RpcMsg, Status};
use crate::time::ms_to_ns;

const STEPS: [NodeId; 3] = [1, 2, 3];

fn saga_spec(extra: &str) -> SagaSpec {
    let text = format!(
        "steps = [\"order\", \"payment\", \"shipping\"]\narrival = {{ process = \"constant\", rate_per_s = 10 }}\nmessages = 1\ntimeout_ms = 50\nretries = 1\nretry_backoff_ms = 10\nresend_ms = 20\n{extra}"
    );
    toml::from_str(&text).expect("a valid saga table")
}

fn step_spec(extra: &str) -> StepSpec {
    let text = format!("processing = {{ dist = \"constant\", ms = 2 }}\nresend_ms = 20\n{extra}");
    toml::from_str(&text).expect("a valid participant table")
}

/// A saga with one workflow started: (harness, saga, the workflow's id,
/// what its arrival emitted).
fn started(extra: &str) -> (Harness, Saga, MsgId, crate::engine::Emitted) {
    let spec = saga_spec(extra);
    let mut h = Harness::new(0);
    let mut saga = Saga::new(&spec, STEPS.to_vec());
    let start = h.start(&mut saga);
    assert_eq!(start.timers::<SagaTimer>().len(), 1, "the first arrival");
    let id = h.next_id();
    let made = h.timer(&mut saga, SagaTimer::Arrival);
    assert_eq!(made.applied(), Vec::<MsgId>::new());
    (h, saga, id, made)
}

/// The one call `e` sent to `to`: (call number, deadline).
fn call_to(e: &crate::engine::Emitted, to: NodeId) -> (u64, u64) {
    match e.sent_to(to).as_slice() {
        [Msg::Rpc(RpcMsg::Call { call, deadline, .. })] => (*call, *deadline),
        other => panic!("expected one call to {to}, got {other:?}"),
    }
}

#[test]
fn orchestration_calls_each_step_in_turn_and_ends_once() {
    let (mut h, mut saga, id, first) = started("");
    let mut e = first;
    for (i, &step) in STEPS.iter().enumerate() {
        let (call, deadline) = call_to(&e, step);
        assert_eq!(Action::of(call), Action::Do, "step {i} is asked to do");
        assert_eq!(deadline, h.now + ms_to_ns(50.0), "the caller's deadline");
        h.now += ms_to_ns(5.0);
        e = h.message(&mut saga, step, RpcMsg::Reply { id, call, status: Status::Ok });
    }
    assert_eq!(e.applied(), [id], "a completed workflow applies once");
    assert_eq!(e.metric("sagas_completed"), 1.0);
    assert_eq!(e.metric("sagas_stuck"), -1.0);
    let mut held = Vec::new();
    crate::engine::Component::held(&saga, &mut held);
    assert!(held.is_empty());
}

#[test]
fn a_refusal_at_the_last_step_compensates_the_others_in_reverse() {
    let (mut h, mut saga, id, first) = started("");
    let mut e = first;
    for step in [1, 2] {
        let (call, _) = call_to(&e, step);
        e = h.message(&mut saga, step, RpcMsg::Reply { id, call, status: Status::Ok });
    }
    let (call, _) = call_to(&e, 3);
    e = h.message(&mut saga, 3, RpcMsg::Reply { id, call, status: Status::Error });
    assert!(e.sent_to(3).is_empty(), "the step that refused has nothing to undo");
    for step in [2, 1] {
        let (call, _) = call_to(&e, step);
        assert_eq!(Action::of(call), Action::Compensate, "step {step} is asked to undo");
        assert!(e.applied().is_empty(), "not ended before every compensation");
        e = h.message(&mut saga, step, RpcMsg::Reply { id, call, status: Status::Ok });
    }
    assert_eq!(e.applied(), [id]);
    assert_eq!(e.metric("sagas_compensated"), 1.0);
}

#[test]
fn a_silent_step_is_retried_then_given_up_and_undone_itself() {
    let (mut h, mut saga, id, first) = started("");
    let (first, deadline) = call_to(&first, 1);
    h.now = deadline;
    let e = h.timer(&mut saga, SagaTimer::Wake);
    assert!(e.sent().is_empty(), "a backoff first");
    assert_eq!(e.timers::<SagaTimer>(), [(ms_to_ns(10.0), SagaTimer::Wake)]);
    h.now += ms_to_ns(10.0);
    let (second, deadline) = call_to(&h.timer(&mut saga, SagaTimer::Wake), 1);
    assert_ne!(first, second, "each attempt has its own number");
    // The first attempt's late reply changes nothing.
    assert!(h.message(&mut saga, 1, RpcMsg::Reply { id, call: first, status: Status::Ok }).sent().is_empty());
    h.now = deadline;
    let e = h.timer(&mut saga, SagaTimer::Wake);
    let (undo, _) = call_to(&e, 1);
    assert_eq!(Action::of(undo), Action::Compensate, "retries = 1 spent: the uncertain step is undone");
    let e = h.message(&mut saga, 1, RpcMsg::Reply { id, call: undo, status: Status::Ok });
    assert_eq!(e.applied(), [id]);
    assert_eq!(e.metric("sagas_compensated"), 1.0);
}

#[test]
fn a_failed_compensation_is_retried_until_it_succeeds() {
    let (mut h, mut saga, id, first) = started("");
    let (call, _) = call_to(&first, 1);
    let e = h.message(&mut saga, 1, RpcMsg::Reply { id, call, status: Status::Ok });
    let (call, _) = call_to(&e, 2);
    let e = h.message(&mut saga, 2, RpcMsg::Reply { id, call, status: Status::Error });
    let (mut undo, _) = call_to(&e, 1);
    for retry in 1..=5 {
        let e = h.message(&mut saga, 1, RpcMsg::Reply { id, call: undo, status: Status::Error });
        assert_eq!(e.metric("compensation_retries"), 1.0, "retry {retry}");
        h.now += ms_to_ns(10.0);
        undo = call_to(&h.timer(&mut saga, SagaTimer::Wake), 1).0;
        assert_eq!(Action::of(undo), Action::Compensate, "never given up");
    }
    let e = h.message(&mut saga, 1, RpcMsg::Reply { id, call: undo, status: Status::Ok });
    assert_eq!(e.applied(), [id]);
}

#[test]
fn choreography_starts_the_flow_and_learns_its_end() {
    let (mut h, mut saga, id, first) = started("style = \"choreography\"");
    let e = first;
    assert_eq!(e.sent_to(1), [Msg::Rpc(RpcMsg::Done { id, status: Status::Ok })], "order requested");
    h.now += ms_to_ns(20.0);
    let e = h.timer(&mut saga, SagaTimer::Wake);
    assert_eq!(e.sent_to(1).len(), 1, "resent until acked");
    h.message(&mut saga, 1, RpcMsg::DoneAck { id });
    h.now += ms_to_ns(20.0);
    assert!(h.timer(&mut saga, SagaTimer::Wake).sent().is_empty(), "acked: no more resends");
    // The end: the first step says the flow compensated itself.
    let e = h.message(&mut saga, 1, RpcMsg::Done { id, status: Status::Error });
    assert_eq!(e.sent_to(1), [Msg::Rpc(RpcMsg::DoneAck { id })]);
    assert_eq!(e.applied(), [id]);
    assert_eq!(e.metric("sagas_compensated"), 1.0);
    let e = h.message(&mut saga, 1, RpcMsg::Done { id, status: Status::Error });
    assert!(e.applied().is_empty(), "a repeated end event is acked, not counted");
}

#[test]
fn hybrid_orchestrates_then_hands_off_and_undoes_its_own_steps() {
    let (mut h, mut saga, id, first) = started("style = \"hybrid\"\nsubflow_from = \"payment\"");
    let (call, _) = call_to(&first, 1);
    let e = h.message(&mut saga, 1, RpcMsg::Reply { id, call, status: Status::Ok });
    assert_eq!(e.sent_to(2), [Msg::Rpc(RpcMsg::Done { id, status: Status::Ok })], "handed to the sub-flow");
    h.message(&mut saga, 2, RpcMsg::DoneAck { id });
    let e = h.message(&mut saga, 2, RpcMsg::Done { id, status: Status::Error });
    let (undo, _) = call_to(&e, 1);
    assert_eq!(Action::of(undo), Action::Compensate);
    let e = h.message(&mut saga, 1, RpcMsg::Reply { id, call: undo, status: Status::Ok });
    assert_eq!(e.applied(), [id]);
    assert_eq!(saga_spec("style = \"hybrid\"\nsubflow_from = \"payment\"").state_locations(), 3);
    assert_eq!(saga_spec("style = \"choreography\"").state_locations(), 3);
    assert_eq!(saga_spec("").state_locations(), 1);
    assert_eq!(saga_spec("style = \"hybrid\"").state_locations(), 2, "by default the last step alone");
}

fn call(id: MsgId, action: Action, seq: u64) -> RpcMsg {
    RpcMsg::Call { rec: Record::new(id, 0), call: action.call(seq), deadline: 0 }
}

fn replies(e: &crate::engine::Emitted) -> Vec<(u64, Status)> {
    e.sent_to(0)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Rpc(RpcMsg::Reply { call, status, .. }) => Some((call, status)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_participant_answers_repeats_from_its_table_and_undoes_once() {
    let mut h = Harness::new(1);
    let mut step = Step::new(&step_spec(""), None);
    let e = h.message(&mut step, 0, call(7, Action::Do, 1));
    assert_eq!(e.timers::<StepTimer>(), [(ms_to_ns(2.0), StepTimer::Process(7))]);
    // A retry while it works: answered when the work ends, to the retry.
    assert!(h.message(&mut step, 0, call(7, Action::Do, 2)).is_empty());
    let e = h.timer(&mut step, StepTimer::Process(7));
    assert_eq!(replies(&e), [(Action::Do.call(2), Status::Ok)]);
    assert_eq!(e.metric("steps_applied"), 1.0);
    let e = h.message(&mut step, 0, call(7, Action::Do, 3));
    assert_eq!(replies(&e), [(Action::Do.call(3), Status::Ok)], "done: answered at once");
    assert_eq!(e.metric("steps_applied"), 0.0, "and not done again");
    h.message(&mut step, 0, call(7, Action::Compensate, 4));
    let e = h.timer(&mut step, StepTimer::Process(7));
    assert_eq!(replies(&e), [(Action::Compensate.call(4), Status::Ok)]);
    assert_eq!(e.metric("compensations_run"), 1.0);
    // The reply was lost: the retry is answered without a second refund.
    let e = h.message(&mut step, 0, call(7, Action::Compensate, 5));
    assert_eq!(replies(&e), [(Action::Compensate.call(5), Status::Ok)]);
    assert!(e.timers::<StepTimer>().is_empty());
}

#[test]
fn an_undo_before_the_step_leaves_a_tombstone_that_refuses_it() {
    let mut h = Harness::new(1);
    let mut step = Step::new(&step_spec(""), None);
    let e = h.message(&mut step, 0, call(3, Action::Compensate, 1));
    assert_eq!(replies(&e), [(Action::Compensate.call(1), Status::Ok)]);
    assert_eq!(e.metric("compensations_run"), 0.0, "nothing was done, nothing undone");
    let e = h.message(&mut step, 0, call(3, Action::Do, 2));
    assert_eq!(replies(&e), [(Action::Do.call(2), Status::Error)], "the late step is refused");
}

#[test]
fn a_refusing_step_and_a_failing_undo() {
    let mut h = Harness::new(1);
    let mut step = Step::new(&step_spec("failure_probability = 1.0"), None);
    h.message(&mut step, 0, call(1, Action::Do, 1));
    let e = h.timer(&mut step, StepTimer::Process(1));
    assert_eq!(replies(&e), [(Action::Do.call(1), Status::Error)]);
    assert_eq!(e.metric("steps_applied"), 0.0);
    let mut step = Step::new(&step_spec("compensation_failure_probability = 0.999999"), None);
    h.message(&mut step, 0, call(1, Action::Do, 1));
    h.timer(&mut step, StepTimer::Process(1));
    h.message(&mut step, 0, call(1, Action::Compensate, 2));
    let e = h.timer(&mut step, StepTimer::Process(1));
    assert_eq!(replies(&e), [(Action::Compensate.call(2), Status::Error)], "a transient failure");
    assert_eq!(e.metric("compensations_run"), 0.0);
    // A crash in the middle of the next attempt leaves the step done.
    h.message(&mut step, 0, call(1, Action::Compensate, 3));
    crate::engine::Component::crash(&mut step);
    let e = h.message(&mut step, 0, call(1, Action::Compensate, 4));
    assert_eq!(e.timers::<StepTimer>().len(), 1, "still done, so undone again: not a tombstone");
}

#[test]
fn a_choreographed_step_acks_after_the_work_and_passes_events_on() {
    let (saga, next) = (0, 3);
    let mut h = Harness::new(2);
    let mut step = Step::new(&step_spec(""), Some((saga, next)));
    assert!(h.message(&mut step, saga, RpcMsg::Done { id: 5, status: Status::Ok }).sent().is_empty(), "no ack yet");
    let e = h.timer(&mut step, StepTimer::Process(5));
    assert_eq!(e.sent_to(saga), [Msg::Rpc(RpcMsg::DoneAck { id: 5 })]);
    assert_eq!(e.sent_to(next), [Msg::Rpc(RpcMsg::Done { id: 5, status: Status::Ok })]);
    h.now = ms_to_ns(20.0);
    assert_eq!(h.timer(&mut step, StepTimer::Resend).sent_to(next).len(), 1, "resent until acked");
    h.message(&mut step, next, RpcMsg::DoneAck { id: 5 });
    // The next step failed: undo, ack, and tell the one before.
    h.message(&mut step, next, RpcMsg::Done { id: 5, status: Status::Error });
    let e = h.timer(&mut step, StepTimer::Process(5));
    assert_eq!(e.sent_to(next), [Msg::Rpc(RpcMsg::DoneAck { id: 5 })]);
    assert_eq!(e.sent_to(saga), [Msg::Rpc(RpcMsg::Done { id: 5, status: Status::Error })]);
    assert_eq!(e.metric("compensations_run"), 1.0);
    // Its outbox survives a crash: the restart sends again.
    crate::engine::Component::crash(&mut step);
    h.now = ms_to_ns(30.0);
    let e = h.restart(&mut step);
    assert_eq!(e.timers::<StepTimer>(), [(0, StepTimer::Resend)]);
    let e = h.timer(&mut step, StepTimer::Resend);
    assert_eq!(e.sent_to(saga), [Msg::Rpc(RpcMsg::Done { id: 5, status: Status::Error })]);
    assert_eq!(e.metric("compensation_retries"), 1.0);
    h.message(&mut step, saga, RpcMsg::DoneAck { id: 5 });
    h.now = ms_to_ns(60.0);
    assert!(h.timer(&mut step, StepTimer::Resend).sent().is_empty(), "acked: quiet");
}

#[test]
fn timers_and_call_numbers_round_trip() {
    for t in [StepTimer::Resend, StepTimer::Process(0), StepTimer::Process(1 << 40)] {
        assert_eq!(StepTimer::from_word(t.to_word()), Some(t));
    }
    for t in [SagaTimer::Arrival, SagaTimer::Wake] {
        assert_eq!(SagaTimer::from_word(t.to_word()), Some(t));
    }
    assert_eq!(Action::of(Action::Do.call(9)), Action::Do);
    assert_eq!(Action::of(Action::Compensate.call(9)), Action::Compensate);
    assert_ne!(Action::Do.call(9), Action::Compensate.call(9));
}

//! Sending until acked: the attempts a component makes to have a message
//! accepted by a broker that acks (or answered by a server). Producers
//! (publishes), consumers (forwards, the outbox relay) and request/response
//! clients (requests) all do it the same way, here.
//!
//! Each attempt has an ack deadline. An attempt that misses it fails then;
//! so does one the broker refused (a refusal fails its attempt at the
//! deadline, not at once, so that time passes before the resend even on a
//! zero-latency link). A failed attempt is sent again after a backoff, up to
//! a number of retries (or forever), until a delivery timeout counted from
//! when the message was made; then the message is given up. A delay before
//! the first attempt (a consumer's `forward_delay`) waits the way a backoff
//! does.
//!
//! [`UntilAcked`] keeps, per key (a message id, a forward number), the
//! component's own payload and the state of its attempts, and serves every
//! deadline and due send with two engine timers of the component's type, the
//! way [`Deadlines`] does. It decides *when*; the component says *what*: it
//! builds each message (in the closure it gives [`UntilAcked::send`]),
//! matches acks to keys and removes what was acked, counts errors and
//! metrics, and decides what a message given up means to it.
//!
//! [`backoff_ns`] is the pause of callers whose backoff grows and may be
//! jittered (services and users), which keep their own attempts.
//!
//! Left out: which attempt an ack answers (an accepted ack for any attempt
//! settles the key); backoff that grows or is jittered in [`UntilAcked`]
//! (one fixed pause); sending without an ack (fire-and-forget needs none of this, so the
//! component does it itself).

use crate::engine::{Ctx, Timer};
use crate::rng::{unit, SimRng};
use crate::time::{Duration, Time};
use crate::timers::Deadlines;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Randomness added to a retry's backoff (`jitter` in a scenario).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// The backoff exactly.
    #[default]
    None,
    /// AWS's "full jitter": uniform between 0 and the backoff.
    Full,
}

/// The pause before retry `retry` (1 for the first): `base_ns` times
/// `multiplier^(retry - 1)`, with [`Jitter::Full`] a uniform draw from 0 to
/// that; a pause beyond a day is a day (no scenario waits that long).
pub fn backoff_ns(base_ns: u64, multiplier: f64, retry: u32, jitter: Jitter, rng: &mut SimRng) -> u64 {
    let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
    let mut wait = base_ns as f64 * multiplier.powi(exp);
    if jitter == Jitter::Full {
        wait *= unit(rng);
    }
    wait.min(86_400e9) as u64
}

/// How a component retries its sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long an attempt waits for its ack before it fails.
    pub ack_timeout_ns: Duration,
    /// How many times a failed message is sent again; `u32::MAX`: until acked.
    pub retries: u32,
    /// Pause between a failed attempt and the next.
    pub backoff_ns: Duration,
    /// Longest time, from when a message was made, that it is tried;
    /// `None`: no limit.
    pub delivery_timeout_ns: Option<Duration>,
    /// Whether a send due after no delay at all leaves at once (true), or
    /// when the send timer fires at the same instant, after whatever else is
    /// due then (false).
    pub zero_delay_at_once: bool,
}

impl RetryPolicy {
    /// True once the delivery timeout of a message made at `made_at` has
    /// passed at `now`.
    pub fn expired(&self, now: Time, made_at: Time) -> bool {
        // Strictly past: a timeout of 0 still allows the first send (only it).
        self.delivery_timeout_ns.is_some_and(|t| now > made_at.saturating_add(t))
    }
}

/// What became of a message whose attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed<P> {
    /// Its next attempt waits for the backoff (the send timer brings it back).
    Backoff,
    /// Its next attempt is due now (no backoff): call [`UntilAcked::send`].
    SendNow,
    /// It was given up and removed: out of retries, or, when `out_of_time`,
    /// past its delivery timeout.
    GaveUp {
        /// The component's payload.
        payload: P,
        /// The delivery timeout ran out (else the retries did).
        out_of_time: bool,
    },
}

/// One message sent until acked.
#[derive(Debug)]
struct Entry<P> {
    payload: P,
    /// When it was made: the delivery timeout counts from here.
    made_at: Time,
    /// Attempts sent so far.
    attempts: u32,
    /// When the next attempt is due (`Time::MAX`: none is waiting).
    send_at: Time,
    /// The ack deadline of the attempt in progress (`Time::MAX`: none is in
    /// progress). Deadlines of earlier attempts are stale.
    deadline: Time,
    /// The broker refused the attempt in progress: it fails at its deadline.
    refused: bool,
}

/// The messages a component sends until acked, keyed by a `u64`, each with
/// the component's payload `P`; `T` is the component's timer type.
///
/// ```
/// use sim_core::engine::{Harness, Timer};
/// use sim_core::reliable::{Failed, RetryPolicy, UntilAcked};
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// enum Wake { Ack, Send }
/// impl Timer for Wake {
///     fn to_word(self) -> u64 { self as u64 }
///     fn from_word(w: u64) -> Option<Self> { [Wake::Ack, Wake::Send].get(w as usize).copied() }
/// }
///
/// let policy = RetryPolicy {
///     ack_timeout_ns: 100, retries: 1, backoff_ns: 10, delivery_timeout_ns: None, zero_delay_at_once: true,
/// };
/// let mut sends = UntilAcked::new(policy, Wake::Ack, Wake::Send);
/// let mut h = Harness::new(0);
/// sends.insert(7, "payload", 0);
/// let (_, out) = h.act(|ctx| sends.send(ctx, 7, |ctx, _, attempt| ctx.send(1, sim_core::protocol::QueueMsg::Ack { tag: u64::from(attempt) })));
/// assert_eq!(out.timers::<Wake>(), vec![(100, Wake::Ack)]);
/// h.now = 100; // no ack came
/// let (expired, _) = h.act(|ctx| sends.timed_out(ctx));
/// assert_eq!(expired, vec![7]);
/// let (next, out) = h.act(|ctx| sends.failed(ctx, 7, false));
/// assert_eq!((next, out.timers::<Wake>()), (Some(Failed::Backoff), vec![(10, Wake::Send)]));
/// ```
#[derive(Debug)]
pub struct UntilAcked<P, T> {
    policy: RetryPolicy,
    ack_timer: T,
    send_timer: T,
    entries: BTreeMap<u64, Entry<P>>,
    /// The keys whose next attempt is scheduled (`send_at` set).
    backing_off: BTreeSet<u64>,
    ack_due: Deadlines,
    send_due: Deadlines,
}

impl<P, T: Timer> UntilAcked<P, T> {
    /// Sends that retry as `policy` says, with engine timers `ack_timer`
    /// (an ack deadline has come) and `send_timer` (a send is due).
    pub fn new(policy: RetryPolicy, ack_timer: T, send_timer: T) -> Self {
        UntilAcked {
            policy,
            ack_timer,
            send_timer,
            entries: BTreeMap::new(),
            backing_off: BTreeSet::new(),
            ack_due: Deadlines::default(),
            send_due: Deadlines::default(),
        }
    }

    /// How these sends retry.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Adds message `key`, made at `made_at`, with no attempt yet: send it
    /// now ([`UntilAcked::send`]) or later ([`UntilAcked::schedule`]).
    pub fn insert(&mut self, key: u64, payload: P, made_at: Time) {
        let entry = Entry { payload, made_at, attempts: 0, send_at: Time::MAX, deadline: Time::MAX, refused: false };
        let earlier = self.entries.insert(key, entry);
        assert!(earlier.is_none(), "key {key} is already being sent until acked");
    }

    /// Forgets message `key` (acked, or no longer wanted) and returns its
    /// payload. Its pending deadlines are dropped when they come up.
    pub fn remove(&mut self, key: u64) -> Option<P> {
        self.backing_off.remove(&key);
        self.entries.remove(&key).map(|e| e.payload)
    }

    /// The payload of message `key`.
    pub fn get(&self, key: u64) -> Option<&P> {
        self.entries.get(&key).map(|e| &e.payload)
    }

    /// The payload of message `key`, to change.
    pub fn get_mut(&mut self, key: u64) -> Option<&mut P> {
        self.entries.get_mut(&key).map(|e| &mut e.payload)
    }

    /// True while message `key` is kept.
    pub fn contains(&self, key: u64) -> bool {
        self.entries.contains_key(&key)
    }

    /// When message `key` was made.
    pub fn made_at(&self, key: u64) -> Option<Time> {
        self.entries.get(&key).map(|e| e.made_at)
    }

    /// True once an attempt of message `key` has left.
    pub fn was_sent(&self, key: u64) -> bool {
        self.entries.get(&key).is_some_and(|e| e.attempts > 0)
    }

    /// How many attempts of message `key` have left.
    pub fn attempts(&self, key: u64) -> Option<u32> {
        self.entries.get(&key).map(|e| e.attempts)
    }

    /// The payloads of the messages whose next attempt is scheduled (a
    /// backoff, or due and not sent yet), in key order.
    pub fn waiting_retry(&self) -> impl Iterator<Item = &P> + '_ {
        self.backing_off.iter().map(|k| &self.entries[k].payload)
    }

    /// True when the broker refused the attempt of `key` in progress.
    pub fn is_refused(&self, key: u64) -> bool {
        self.entries.get(&key).is_some_and(|e| e.refused)
    }

    /// The keys kept, in order.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.keys().copied()
    }

    /// The keys kept with their payloads, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &P)> + '_ {
        self.entries.iter().map(|(&k, e)| (k, &e.payload))
    }

    /// Number of messages kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no message is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Makes the next attempt of `key` due after `delay`. Returns true when
    /// it is due at once (no delay, and the policy sends those at once):
    /// then the caller sends it. Otherwise the send timer brings it back
    /// through [`UntilAcked::due`].
    pub fn schedule(&mut self, ctx: &mut Ctx<T>, key: u64, delay: Duration) -> bool {
        let Some(e) = self.entries.get_mut(&key) else { return false };
        if delay == 0 && self.policy.zero_delay_at_once {
            return true;
        }
        e.send_at = ctx.now().saturating_add(delay);
        self.backing_off.insert(key);
        self.send_due.add(ctx, e.send_at, key, self.send_timer);
        false
    }

    /// Starts the next attempt of `key`: `emit` sends it (it gets the
    /// payload and the attempt's number, from 1), then the attempt's ack
    /// deadline is set. Nothing happens for a key not kept.
    pub fn send(&mut self, ctx: &mut Ctx<T>, key: u64, emit: impl FnOnce(&mut Ctx<T>, &P, u32)) {
        let Some(e) = self.entries.get_mut(&key) else { return };
        e.attempts += 1;
        e.refused = false;
        e.send_at = Time::MAX;
        self.backing_off.remove(&key);
        e.deadline = ctx.now().saturating_add(self.policy.ack_timeout_ns);
        emit(ctx, &e.payload, e.attempts);
        self.ack_due.add(ctx, e.deadline, key, self.ack_timer);
    }

    /// The broker refused attempt number `attempt` of `key`. If that is the
    /// attempt in progress, it fails at its deadline; a refusal of an
    /// earlier attempt changes nothing.
    pub fn refused(&mut self, key: u64, attempt: u32) {
        if let Some(e) = self.entries.get_mut(&key).filter(|e| e.attempts == attempt && e.deadline != Time::MAX) {
            e.refused = true;
        }
    }

    /// Call when the ack timer fires: the keys whose attempt in progress
    /// has reached its deadline, in deadline order. For each, the caller
    /// counts what it counts (a timeout, unless [`UntilAcked::is_refused`])
    /// and calls [`UntilAcked::failed`].
    pub fn timed_out(&mut self, ctx: &mut Ctx<T>) -> Vec<u64> {
        let entries = &self.entries;
        self.ack_due.expire(ctx, self.ack_timer, |key, at| entries.get(&key).is_some_and(|e| e.deadline == at))
    }

    /// Call when the send timer fires: the keys whose next attempt is due,
    /// in order; the caller sends each.
    pub fn due(&mut self, ctx: &mut Ctx<T>) -> Vec<u64> {
        let entries = &self.entries;
        self.send_due.expire(ctx, self.send_timer, |key, at| entries.get(&key).is_some_and(|e| e.send_at == at))
    }

    /// The attempt of `key` in progress failed: gives the message up (out
    /// of retries or of time, unless `forever`), or makes its next attempt
    /// due after the backoff. `None` for a key not kept.
    pub fn failed(&mut self, ctx: &mut Ctx<T>, key: u64, forever: bool) -> Option<Failed<P>> {
        let e = self.entries.get_mut(&key)?;
        e.deadline = Time::MAX;
        let out_of_time = self.policy.expired(ctx.now(), e.made_at);
        if !forever && (e.attempts > self.policy.retries || out_of_time) {
            self.backing_off.remove(&key);
            let payload = self.entries.remove(&key).expect("the entry is there").payload;
            return Some(Failed::GaveUp { payload, out_of_time });
        }
        Some(if self.schedule(ctx, key, self.policy.backoff_ns) { Failed::SendNow } else { Failed::Backoff })
    }

    /// Cancels both engine timers and forgets the deadlines behind them: for
    /// when none matters any more (nothing is kept, in the drain), where a
    /// pending timer would only keep the run waiting.
    pub fn cancel_timers(&mut self, ctx: &mut Ctx<T>) {
        self.ack_due.cancel_all(ctx, self.ack_timer);
        self.send_due.cancel_all(ctx, self.send_timer);
    }

    /// The component crashed (its engine timers are gone): keeps the
    /// messages `keep` says survive (it may change their payloads), with
    /// their attempt counts but no attempt in progress or due, and forgets
    /// the rest.
    pub fn crash(&mut self, mut keep: impl FnMut(u64, &mut P) -> bool) {
        self.entries.retain(|&key, e| keep(key, &mut e.payload));
        self.backing_off.clear();
        for e in self.entries.values_mut() {
            (e.send_at, e.deadline, e.refused) = (Time::MAX, Time::MAX, false);
        }
        self.ack_due.clear();
        self.send_due.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Effect, Harness};
    use crate::message::{Msg, Record};
    use crate::protocol::{publish, QueueMsg};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Wake {
        Ack,
        Send,
    }

    impl Timer for Wake {
        fn to_word(self) -> u64 {
            self as u64
        }
        fn from_word(word: u64) -> Option<Self> {
            [Wake::Ack, Wake::Send].get(word as usize).copied()
        }
    }

    fn policy(retries: u32, backoff_ns: Duration) -> RetryPolicy {
        RetryPolicy { ack_timeout_ns: 100, retries, backoff_ns, delivery_timeout_ns: None, zero_delay_at_once: true }
    }

    /// Sends attempt `attempt` of record `key` to node 1.
    fn emit(ctx: &mut Ctx<Wake>, key: &u64, attempt: u32) {
        ctx.send(1, publish(Record::new(*key, 0), true, attempt));
    }

    fn attempts_sent(out: &crate::engine::Emitted) -> Vec<u32> {
        out.sent()
            .into_iter()
            .filter_map(|(_, m)| match m {
                Msg::Queue(QueueMsg::Publish { attempt, .. }) => Some(attempt),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_attempt_sends_then_arms_its_deadline() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(0, 0), Wake::Ack, Wake::Send);
        s.insert(5, 5, 0);
        let (_, out) = h.act(|ctx| s.send(ctx, 5, emit));
        assert!(matches!(out.0[..], [Effect::Send { .. }, Effect::SetTimer { delay: 100, .. }]));
        assert_eq!(attempts_sent(&out), vec![1]);
        assert!(s.was_sent(5));
    }

    #[test]
    fn a_missed_deadline_retries_after_the_backoff_then_gives_up() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(1, 10), Wake::Ack, Wake::Send);
        s.insert(5, 5, 0);
        h.act(|ctx| s.send(ctx, 5, emit));
        h.now = 100;
        assert_eq!(h.act(|ctx| s.timed_out(ctx)).0, vec![5]);
        let (next, out) = h.act(|ctx| s.failed(ctx, 5, false));
        assert_eq!(next, Some(Failed::Backoff));
        assert_eq!(out.timers::<Wake>(), vec![(10, Wake::Send)]);
        h.now = 110;
        assert_eq!(h.act(|ctx| s.due(ctx)).0, vec![5]);
        let (_, out) = h.act(|ctx| s.send(ctx, 5, emit));
        assert_eq!(attempts_sent(&out), vec![2]);
        h.now = 210;
        assert_eq!(h.act(|ctx| s.timed_out(ctx)).0, vec![5]);
        let (next, _) = h.act(|ctx| s.failed(ctx, 5, false));
        assert_eq!(next, Some(Failed::GaveUp { payload: 5, out_of_time: false }));
        assert!(s.is_empty());
    }

    #[test]
    fn only_messages_backing_off_wait_for_a_retry() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(3, 10), Wake::Ack, Wake::Send);
        let waiting = |s: &UntilAcked<u64, Wake>| s.waiting_retry().copied().collect::<Vec<u64>>();
        for key in [5, 6, 7] {
            s.insert(key, key * 10, 0);
            h.act(|ctx| s.send(ctx, key, emit));
        }
        assert!(waiting(&s).is_empty(), "all in flight");
        h.now = 100;
        assert_eq!(h.act(|ctx| s.timed_out(ctx)).0, vec![5, 6, 7]);
        h.act(|ctx| s.failed(ctx, 7, false));
        h.act(|ctx| s.failed(ctx, 5, false));
        h.act(|ctx| s.send(ctx, 6, emit));
        assert_eq!(waiting(&s), vec![50, 70], "in key order");
        h.now = 110;
        assert_eq!(h.act(|ctx| s.due(ctx)).0, vec![7, 5], "in the order they were scheduled");
        h.act(|ctx| s.send(ctx, 5, emit));
        assert_eq!(waiting(&s), vec![70], "7 is due but not sent yet");
        h.act(|ctx| s.send(ctx, 7, emit));
        assert!(waiting(&s).is_empty());
    }

    #[test]
    fn no_backoff_sends_at_once_or_through_the_timer_as_the_policy_says() {
        let mut h = Harness::new(0);
        let mut at_once = UntilAcked::new(policy(3, 0), Wake::Ack, Wake::Send);
        at_once.insert(1, 1, 0);
        h.act(|ctx| at_once.send(ctx, 1, emit));
        h.now = 100;
        h.act(|ctx| at_once.timed_out(ctx));
        assert_eq!(h.act(|ctx| at_once.failed(ctx, 1, false)), (Some(Failed::SendNow), crate::engine::Emitted(vec![])));

        let mut timed =
            UntilAcked::new(RetryPolicy { zero_delay_at_once: false, ..policy(3, 0) }, Wake::Ack, Wake::Send);
        timed.insert(1, 1, 0);
        h.act(|ctx| timed.send(ctx, 1, emit));
        h.now = 200;
        h.act(|ctx| timed.timed_out(ctx));
        let (next, out) = h.act(|ctx| timed.failed(ctx, 1, false));
        assert_eq!((next, out.timers::<Wake>()), (Some(Failed::Backoff), vec![(0, Wake::Send)]));
    }

    #[test]
    fn an_acked_message_leaves_no_live_deadline() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(5, 0), Wake::Ack, Wake::Send);
        s.insert(1, 1, 0);
        s.insert(2, 2, 0);
        h.act(|ctx| s.send(ctx, 1, emit));
        h.act(|ctx| s.send(ctx, 2, emit));
        assert_eq!(s.remove(1), Some(1));
        h.now = 100;
        assert_eq!(h.act(|ctx| s.timed_out(ctx)).0, vec![2]);
    }

    #[test]
    fn a_refusal_counts_for_the_attempt_in_progress_only() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(5, 0), Wake::Ack, Wake::Send);
        s.insert(1, 1, 0);
        h.act(|ctx| s.send(ctx, 1, emit));
        s.refused(1, 2); // not sent yet
        assert!(!s.is_refused(1));
        s.refused(1, 1);
        assert!(s.is_refused(1));
        // It still fails only at its deadline.
        h.now = 99;
        assert!(h.act(|ctx| s.timed_out(ctx)).0.is_empty());
        h.now = 100;
        assert_eq!(h.act(|ctx| s.timed_out(ctx)).0, vec![1]);
        h.act(|ctx| s.failed(ctx, 1, false));
        h.act(|ctx| s.send(ctx, 1, emit));
        assert!(!s.is_refused(1), "a new attempt starts unrefused");
    }

    #[test]
    fn the_delivery_timeout_gives_up_even_with_retries_left() {
        let mut h = Harness::new(0);
        let policy = RetryPolicy { delivery_timeout_ns: Some(150), ..policy(u32::MAX, 0) };
        let mut s = UntilAcked::new(policy, Wake::Ack, Wake::Send);
        s.insert(1, 1, 0);
        h.act(|ctx| s.send(ctx, 1, emit));
        h.now = 100;
        h.act(|ctx| s.timed_out(ctx));
        assert_eq!(h.act(|ctx| s.failed(ctx, 1, false)).0, Some(Failed::SendNow));
        h.act(|ctx| s.send(ctx, 1, emit));
        h.now = 200;
        h.act(|ctx| s.timed_out(ctx));
        assert_eq!(h.act(|ctx| s.failed(ctx, 1, false)).0, Some(Failed::GaveUp { payload: 1, out_of_time: true }));
    }

    #[test]
    fn forever_never_gives_up() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(0, 0), Wake::Ack, Wake::Send);
        s.insert(1, 1, 0);
        for round in 1..=5 {
            h.act(|ctx| s.send(ctx, 1, emit));
            h.now = 100 * round;
            h.act(|ctx| s.timed_out(ctx));
            assert_eq!(h.act(|ctx| s.failed(ctx, 1, true)).0, Some(Failed::SendNow));
        }
    }

    #[test]
    fn a_delay_before_the_first_attempt_waits_for_the_send_timer() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(0, 0), Wake::Ack, Wake::Send);
        s.insert(1, 1, 0);
        s.insert(2, 2, 0);
        let (now, _) = h.act(|ctx| s.schedule(ctx, 1, 0));
        assert!(now, "no delay: the caller sends at once");
        let (now, out) = h.act(|ctx| s.schedule(ctx, 2, 30));
        assert!(!now);
        assert_eq!(out.timers::<Wake>(), vec![(30, Wake::Send)]);
        h.now = 30;
        assert_eq!(h.act(|ctx| s.due(ctx)).0, vec![2]);
        assert!(!s.was_sent(2));
    }

    #[test]
    fn a_crash_keeps_what_survives_with_its_attempts_but_nothing_in_progress() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(5, 0), Wake::Ack, Wake::Send);
        for key in 1..=3 {
            s.insert(key, key, 0);
            h.act(|ctx| s.send(ctx, key, emit));
        }
        s.crash(|key, _| key != 2);
        assert_eq!(s.keys().collect::<Vec<_>>(), vec![1, 3]);
        h.now = 100;
        assert!(h.act(|ctx| s.timed_out(ctx)).0.is_empty(), "no attempt is in progress after a crash");
        let (_, out) = h.act(|ctx| s.send(ctx, 3, emit));
        assert_eq!(attempts_sent(&out), vec![2]);
    }

    #[test]
    fn cancelling_the_timers_cancels_both_once_armed() {
        let mut h = Harness::new(0);
        let mut s = UntilAcked::new(policy(5, 10), Wake::Ack, Wake::Send);
        assert!(h.act(|ctx| s.cancel_timers(ctx)).1.is_empty(), "nothing armed, nothing to cancel");
        s.insert(1, 1, 0);
        h.act(|ctx| s.send(ctx, 1, emit));
        h.act(|ctx| s.schedule(ctx, 1, 10));
        s.remove(1);
        assert_eq!(h.act(|ctx| s.cancel_timers(ctx)).1.cancelled::<Wake>(), vec![Wake::Ack, Wake::Send]);
    }
}

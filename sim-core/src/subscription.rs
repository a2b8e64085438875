//! The subscribe handshake of a queue-broker subscriber (a consumer, a
//! request/response client reading its response queue).
//!
//! Each subscription is a session, numbered from 1 by the subscriber (the
//! count survives crashes, so the broker tells a reconnect from a repeat).
//! The subscriber sends `Subscribe` naming its session and asks again every
//! `resubscribe` interval until the broker's `Subscribed` for that session
//! comes back, so that a subscribe or a confirmation lost on the network
//! does not leave it unsubscribed for good; the pending resubscribe timer is
//! cancelled once confirmed. A `Cancelled` for the current session (the
//! broker took back everything the subscriber held: a consumer timeout, a
//! closed connection) starts a new session. Answers that name another
//! session are stale and ignored.
//!
//! Left out: what the subscriber does with what it holds when cancelled
//! (the component voids it); unsubscribing; a backoff between asks (the
//! interval is fixed).

use crate::engine::{Ctx, Timer};
use crate::message::NodeId;
use crate::protocol::QueueMsg;
use crate::time::Duration;

/// One subscriber's side of the handshake with its queue broker; `T` is
/// the component's timer type.
///
/// ```
/// use sim_core::engine::{Harness, Timer};
/// use sim_core::subscription::Subscription;
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// struct Resubscribe;
/// impl Timer for Resubscribe {
///     fn to_word(self) -> u64 { 0 }
///     fn from_word(w: u64) -> Option<Self> { (w == 0).then_some(Resubscribe) }
/// }
///
/// let mut sub = Subscription::new(1, 10, false, 500, Resubscribe);
/// let mut h = Harness::new(0);
/// let (_, out) = h.act(|ctx| sub.start(ctx));
/// assert_eq!((sub.session(), out.timers::<Resubscribe>()), (1, vec![(500, Resubscribe)]));
/// let (_, out) = h.act(|ctx| sub.subscribed(ctx, 1));
/// assert!(sub.is_subscribed());
/// assert_eq!(out.cancelled::<Resubscribe>(), vec![Resubscribe]);
/// ```
#[derive(Debug)]
pub struct Subscription<T> {
    broker: NodeId,
    prefetch: u32,
    auto_ack: bool,
    resubscribe_ns: Duration,
    timer: T,
    /// The current session (durable: counts starts).
    session: u32,
    /// The broker confirmed the current session.
    subscribed: bool,
    /// The resubscribe timer is pending.
    armed: bool,
}

impl<T: Timer> Subscription<T> {
    /// A subscription to `broker` with `prefetch` credit (or `auto_ack`),
    /// asking again every `resubscribe_ns` with engine timer `timer`.
    pub fn new(broker: NodeId, prefetch: u32, auto_ack: bool, resubscribe_ns: Duration, timer: T) -> Self {
        Subscription { broker, prefetch, auto_ack, resubscribe_ns, timer, session: 0, subscribed: false, armed: false }
    }

    /// The current session (0 before the first start).
    pub fn session(&self) -> u32 {
        self.session
    }

    /// True once the broker confirmed the current session.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// Starts a new session (at a start or restart) and asks for it.
    pub fn start(&mut self, ctx: &mut Ctx<T>) {
        self.session += 1;
        self.ask(ctx);
    }

    /// Sends `Subscribe` for the current session and arms the resubscribe timer.
    fn ask(&mut self, ctx: &mut Ctx<T>) {
        self.subscribed = false;
        let (prefetch, session, auto_ack) = (self.prefetch, self.session, self.auto_ack);
        ctx.send(self.broker, QueueMsg::Subscribe { prefetch, session, auto_ack });
        ctx.set_timer(self.resubscribe_ns, self.timer);
        self.armed = true;
    }

    fn disarm(&mut self, ctx: &mut Ctx<T>) {
        if std::mem::take(&mut self.armed) {
            ctx.cancel_timer(self.timer);
        }
    }

    /// The broker confirmed `session`: subscribed, if it is the current one.
    pub fn subscribed(&mut self, ctx: &mut Ctx<T>, session: u32) {
        if session == self.session {
            self.subscribed = true;
            self.disarm(ctx);
        }
    }

    /// The broker cancelled `session`. If it is the current one, starts a
    /// new session and returns true: the caller voids what the broker took
    /// back. A stale cancellation changes nothing.
    pub fn cancelled(&mut self, ctx: &mut Ctx<T>, session: u32) -> bool {
        if session != self.session {
            return false;
        }
        self.disarm(ctx);
        self.start(ctx);
        true
    }

    /// The resubscribe timer fired: asks again unless confirmed.
    pub fn on_timer(&mut self, ctx: &mut Ctx<T>) {
        self.armed = false;
        if !self.subscribed {
            self.ask(ctx);
        }
    }

    /// The subscriber crashed: the broker's answers to come are for a
    /// session that is over, and the timer is gone. The session count stays.
    pub fn crash(&mut self) {
        self.subscribed = false;
        self.armed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Emitted, Harness};
    use crate::message::Msg;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Again;

    impl Timer for Again {
        fn to_word(self) -> u64 {
            7
        }
        fn from_word(word: u64) -> Option<Self> {
            (word == 7).then_some(Again)
        }
    }

    fn subscribes(out: &Emitted) -> Vec<u32> {
        out.sent()
            .into_iter()
            .filter_map(|(to, m)| match m {
                Msg::Queue(QueueMsg::Subscribe { session, prefetch: 4, auto_ack: true }) if to == 9 => Some(session),
                _ => None,
            })
            .collect()
    }

    fn started(h: &mut Harness) -> Subscription<Again> {
        let mut s = Subscription::new(9, 4, true, 100, Again);
        let (_, out) = h.act(|ctx| s.start(ctx));
        assert_eq!(subscribes(&out), vec![1]);
        assert_eq!(out.timers::<Again>(), vec![(100, Again)]);
        s
    }

    #[test]
    fn asks_again_until_confirmed() {
        let mut h = Harness::new(0);
        let mut s = started(&mut h);
        h.now = 100;
        let (_, out) = h.act(|ctx| s.on_timer(ctx));
        assert_eq!(subscribes(&out), vec![1], "the same session again");
        assert_eq!(out.timers::<Again>(), vec![(100, Again)]);
        let (_, out) = h.act(|ctx| s.subscribed(ctx, 1));
        assert!(s.is_subscribed());
        assert_eq!(out.cancelled::<Again>(), vec![Again]);
        // A timer that fires anyway (it was cancelled too late) asks nothing.
        assert!(h.act(|ctx| s.on_timer(ctx)).1.is_empty());
    }

    #[test]
    fn a_confirmation_once_the_timer_fired_cancels_nothing() {
        let mut h = Harness::new(0);
        let mut s = started(&mut h);
        h.act(|ctx| s.on_timer(ctx));
        h.act(|ctx| s.subscribed(ctx, 1));
        let (_, out) = h.act(|ctx| s.subscribed(ctx, 1));
        assert!(out.is_empty(), "a repeated confirmation changes nothing");
    }

    #[test]
    fn stale_answers_are_ignored() {
        let mut h = Harness::new(0);
        let mut s = started(&mut h);
        let (_, out) = h.act(|ctx| s.subscribed(ctx, 0));
        assert!(out.is_empty() && !s.is_subscribed());
        let (again, out) = h.act(|ctx| s.cancelled(ctx, 2));
        assert!(!again && out.is_empty());
        assert_eq!(s.session(), 1);
    }

    #[test]
    fn a_cancellation_of_the_current_session_starts_a_new_one() {
        let mut h = Harness::new(0);
        let mut s = started(&mut h);
        h.act(|ctx| s.subscribed(ctx, 1));
        let (again, out) = h.act(|ctx| s.cancelled(ctx, 1));
        assert!(again && !s.is_subscribed());
        assert_eq!(subscribes(&out), vec![2]);
        assert!(out.cancelled::<Again>().is_empty(), "no timer was pending");
        // Cancelled again before confirmed: the pending timer goes first.
        let (_, out) = h.act(|ctx| s.cancelled(ctx, 2));
        assert_eq!(out.cancelled::<Again>(), vec![Again]);
        assert_eq!(subscribes(&out), vec![3]);
    }

    #[test]
    fn a_restart_after_a_crash_is_a_new_session() {
        let mut h = Harness::new(0);
        let mut s = started(&mut h);
        h.act(|ctx| s.subscribed(ctx, 1));
        s.crash();
        assert!(!s.is_subscribed());
        let (_, out) = h.act(|ctx| s.start(ctx));
        assert_eq!(subscribes(&out), vec![2]);
        assert!(out.cancelled::<Again>().is_empty(), "a crash took the timers");
    }
}

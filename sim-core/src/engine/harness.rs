//! Driving one component's handlers without an engine, for unit tests.
//!
//! A [`Harness`] lends a component a context of its own (a clock you set,
//! a seeded random stream, stores) and hands back the effects each handler
//! emitted, in order. Nothing is applied: a sent message goes nowhere, a
//! timer never fires by itself. The test decides what happens next, which
//! makes the component's reaction to any interleaving easy to pin down.
//!
//! ```
//! use sim_core::engine::{Component, Ctx, Harness, Timer};
//! use sim_core::message::{Msg, NodeId};
//!
//! /// Wakes up every 10 ns and counts.
//! struct Ticker { ticks: u32 }
//! #[derive(Debug, Clone, Copy, PartialEq)]
//! struct Tick;
//! impl Timer for Tick {
//!     fn to_word(self) -> u64 { 0 }
//!     fn from_word(w: u64) -> Option<Self> { (w == 0).then_some(Tick) }
//! }
//! impl Component for Ticker {
//!     type Timer = Tick;
//!     fn start(&mut self, ctx: &mut Ctx<Tick>) { ctx.set_timer(10, Tick) }
//!     fn on_message(&mut self, _: &mut Ctx<Tick>, _: NodeId, _: Msg) {}
//!     fn on_timer(&mut self, ctx: &mut Ctx<Tick>, _: Tick) {
//!         self.ticks += 1;
//!         ctx.set_timer(10, Tick);
//!     }
//!     fn crash(&mut self) {}
//! }
//!
//! let mut h = Harness::new(0);
//! let mut t = Ticker { ticks: 0 };
//! assert_eq!(h.start(&mut t).timers::<Tick>(), vec![(10, Tick)]);
//! h.now = 10;
//! h.timer(&mut t, Tick);
//! assert_eq!(t.ticks, 1);
//! ```

use super::context::{Component, Ctx, Parts, Recording, Sink, Timer};
use super::effect::{Effect, Fact, Metric};
use crate::dedup::Stores;
use crate::ledger::DomainId;
use crate::message::{Msg, MsgId, NodeId};
use crate::net::NodeFault;
use crate::rng::{stream, SimRng};
use crate::time::{Duration, Time};

/// A stand-in for the engine around one component.
pub struct Harness {
    /// The simulated time handlers see; set it before each call.
    pub now: Time,
    /// The component's node id.
    pub me: NodeId,
    rng: SimRng,
    recording: Recording,
}

impl Harness {
    /// A harness for node `me` at time 0, with seed 1.
    pub fn new(me: NodeId) -> Self {
        let recording = Recording {
            out: Vec::new(),
            stores: Stores::default(),
            next_id: 0,
            domain: 0,
            draining: false,
            slow: 1.0,
            seed: 1,
        };
        Harness { now: 0, me, rng: stream(1, "harness"), recording }
    }

    /// Sets the effect domain the component applies effects in.
    pub fn set_domain(&mut self, domain: DomainId) {
        self.recording.domain = domain;
    }

    /// Sets the slow-node factor handlers see.
    pub fn set_slow(&mut self, factor: f64) {
        self.recording.slow = factor;
    }

    /// Sets the seed behind `message_draw`.
    pub fn set_seed(&mut self, seed: u64) {
        self.recording.seed = seed;
    }

    /// Whether the run phase is over (see [`Harness::drain`]).
    pub fn draining(&self) -> bool {
        self.recording.draining
    }

    /// The stores (dedup tables) handlers use.
    pub fn stores(&mut self) -> &mut Stores {
        &mut self.recording.stores
    }

    /// The id the next produced message gets.
    pub fn next_id(&self) -> MsgId {
        self.recording.next_id
    }

    fn call<T: Timer>(&mut self, f: impl FnOnce(&mut Ctx<T>)) -> Emitted {
        let mut parts = Parts {
            now: self.now,
            me: self.me,
            incarnation: 0,
            domain: self.recording.domain,
            rng: &mut self.rng,
            sink: Sink::Record(&mut self.recording),
        };
        f(&mut Ctx::new(&mut parts));
        Emitted(std::mem::take(&mut self.recording.out))
    }

    /// Runs `f` with a context of timer type `T` and returns what it
    /// returned with the effects it emitted: for testing a helper that acts
    /// through a component's context (a [`crate::timers::Deadlines`], a
    /// retry or subscription helper) without a component around it.
    pub fn act<T: Timer, R>(&mut self, f: impl FnOnce(&mut Ctx<T>) -> R) -> (R, Emitted) {
        let mut out = None;
        let emitted = self.call(|ctx| out = Some(f(ctx)));
        (out.expect("the closure ran"), emitted)
    }

    /// Calls `start`.
    pub fn start<C: Component>(&mut self, c: &mut C) -> Emitted {
        self.call(|ctx| c.start(ctx))
    }

    /// Calls `restart` (call `crash` on the component first, as the engine does).
    pub fn restart<C: Component>(&mut self, c: &mut C) -> Emitted {
        self.call(|ctx| c.restart(ctx))
    }

    /// Delivers `msg` from `from`.
    pub fn message<C: Component>(&mut self, c: &mut C, from: NodeId, msg: impl Into<Msg>) -> Emitted {
        let msg = msg.into();
        self.call(|ctx| c.on_message(ctx, from, msg))
    }

    /// Fires `timer`.
    pub fn timer<C: Component>(&mut self, c: &mut C, timer: C::Timer) -> Emitted {
        self.call(|ctx| c.on_timer(ctx, timer))
    }

    /// Begins (or ends) a fault aimed at a part of the component.
    pub fn fault<C: Component>(&mut self, c: &mut C, fault: &NodeFault, begins: bool) -> Emitted {
        self.call(|ctx| c.on_fault(ctx, fault, begins))
    }

    /// Ends the run phase and calls `drain`.
    pub fn drain<C: Component>(&mut self, c: &mut C) -> Emitted {
        self.recording.draining = true;
        self.call(|ctx| c.drain(ctx))
    }
}

/// The effects one handler call emitted, in order, with ways to read them.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted(pub Vec<Effect>);

impl Emitted {
    /// The messages sent: (receiver, message).
    pub fn sent(&self) -> Vec<(NodeId, Msg)> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Send { to, msg } => Some((*to, msg.clone())),
                _ => None,
            })
            .collect()
    }

    /// The messages sent to `to`, in order.
    pub fn sent_to(&self, to: NodeId) -> Vec<Msg> {
        self.sent().into_iter().filter(|(t, _)| *t == to).map(|(_, m)| m).collect()
    }

    /// The sum of what was added to the metric `name`.
    pub fn metric(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Metric(Metric::Add(n, v)) if *n == name => Some(*v),
                _ => None,
            })
            .sum()
    }

    /// The timers set: (delay, timer), background ones included.
    pub fn timers<T: Timer>(&self) -> Vec<(Duration, T)> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::SetTimer { delay, timer, .. } => T::from_word(*timer).map(|t| (*delay, t)),
                _ => None,
            })
            .collect()
    }

    /// The timers cancelled.
    pub fn cancelled<T: Timer>(&self) -> Vec<T> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::CancelTimer { timer } => T::from_word(*timer),
                _ => None,
            })
            .collect()
    }

    /// The ledger facts reported.
    pub fn facts(&self) -> Vec<Fact> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Fact(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    /// The ids whose processing started.
    pub fn started(&self) -> Vec<MsgId> {
        self.facts()
            .into_iter()
            .filter_map(|f| match f {
                Fact::Started(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// The ids the component now considers sent ([`Fact::Confirmed`]).
    pub fn confirmed(&self) -> Vec<MsgId> {
        self.facts()
            .into_iter()
            .filter_map(|f| match f {
                Fact::Confirmed(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// The ids whose effect was applied.
    pub fn applied(&self) -> Vec<MsgId> {
        self.facts()
            .into_iter()
            .filter_map(|f| match f {
                Fact::Applied(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// The messages reported dropped (or left unprotected), with why.
    pub fn discarded(&self) -> Vec<(MsgId, crate::ledger::LossCause)> {
        self.facts()
            .into_iter()
            .filter_map(|f| match f {
                Fact::Discarded { id, cause, .. } => Some((id, cause)),
                _ => None,
            })
            .collect()
    }

    /// The ids reported put into a dead-letter queue ([`Fact::DeadLettered`]).
    pub fn dead_lettered(&self) -> Vec<MsgId> {
        self.facts()
            .into_iter()
            .filter_map(|f| match f {
                Fact::DeadLettered(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// The facts about state reported for the observer, in order.
    pub fn state_facts(&self) -> Vec<crate::observer::StateFact> {
        self.facts()
            .into_iter()
            .filter_map(|f| match f {
                Fact::State(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The messages reported sent or delivered again, with why.
    pub fn resent(&self) -> Vec<(MsgId, crate::ledger::DupCause)> {
        self.facts()
            .into_iter()
            .filter_map(|f| match f {
                Fact::Resent { id, cause } => Some((id, cause)),
                _ => None,
            })
            .collect()
    }

    /// The last queue depth reported (`None` if none was).
    pub fn queue_depth(&self) -> Option<u64> {
        self.0.iter().rev().find_map(|e| match e {
            Effect::Metric(Metric::QueueDepth(depth)) => Some(*depth),
            _ => None,
        })
    }

    /// The error kinds counted.
    pub fn errors(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Metric(Metric::Error(kind)) => Some(*kind),
                _ => None,
            })
            .collect()
    }

    /// True when nothing was emitted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

//! The queue broker's shortcuts against the general paths they skip: a
//! `direct` broker's publish (no route lookup) and a queue's dispatch
//! without checks (nothing can expire or pass a delivery limit; returns at
//! once when the one subscriber is busy). The same random traffic through
//! a broker with its shortcuts and through the same broker without them
//! must emit the same effects, in the same order, and leave it holding the
//! same messages.

use super::{QueueBroker, QueueSpec, QueueTimer};
use crate::engine::{Component, Emitted, Harness};
use crate::message::{Msg, NodeId, Notice, Record};
use crate::protocol::{QueueMsg, NO_EXPIRATION};
use crate::time::NS_PER_MS;
use crate::units::Millis;
use proptest::prelude::*;
use std::collections::BTreeMap;

const BROKER: NodeId = 10;
const PRODUCER: NodeId = 1;
/// The consumers' nodes.
const CONSUMERS: [NodeId; 3] = [2, 3, 4];

#[derive(Debug, Clone)]
enum Op {
    /// A publish; numbered on the producer's channel when `numbered`.
    Publish { want_ack: bool, persistent: bool, numbered: bool },
    /// A consumer (re)subscribes: a new session unless `repeat`.
    Subscribe { consumer: usize, prefetch: u32, auto_ack: bool, repeat: bool },
    /// A consumer acks one of the deliveries it got (`pick` chooses which).
    Ack { consumer: usize, pick: usize },
    /// A consumer nacks one of the deliveries it got.
    Nack { consumer: usize, pick: usize, requeue: bool },
    /// A consumer's connection closes.
    Down { consumer: usize },
    /// Time passes.
    Wait { ms: u64 },
    /// The redelivery timer fires (armed or not).
    Redeliver,
    /// The disk sync is due.
    Sync,
    /// The broker crashes and restarts.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CONSUMERS.len();
    prop_oneof![
        6 => (any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(want_ack, persistent, numbered)| Op::Publish { want_ack, persistent, numbered }),
        2 => (c.clone(), 0u32..4, prop::bool::weighted(0.2), prop::bool::weighted(0.2))
            .prop_map(|(consumer, prefetch, auto_ack, repeat)| Op::Subscribe { consumer, prefetch, auto_ack, repeat }),
        6 => (c.clone(), any::<usize>()).prop_map(|(consumer, pick)| Op::Ack { consumer, pick }),
        1 => (c.clone(), any::<usize>(), any::<bool>()).prop_map(|(consumer, pick, requeue)| Op::Nack { consumer, pick, requeue }),
        1 => c.prop_map(|consumer| Op::Down { consumer }),
        2 => (0u64..80).prop_map(|ms| Op::Wait { ms }),
        1 => Just(Op::Redeliver),
        1 => Just(Op::Sync),
        1 => Just(Op::Crash),
    ]
}

/// The two brokers, their harnesses, and what the traffic needs to know.
struct Pair {
    brokers: [(Harness, QueueBroker); 2],
    /// Each consumer's session, and the tags delivered to it.
    sessions: [u32; 3],
    held: [Vec<u64>; 3],
    next_id: u64,
    next_tag: u32,
}

impl Pair {
    fn new(spec: &QueueSpec) -> Self {
        let with = QueueBroker::new(spec, None, BTreeMap::new());
        let without = QueueBroker::new(spec, None, BTreeMap::new()).without_shortcuts();
        assert!(with.direct, "a point-to-point broker takes the direct path");
        Pair {
            brokers: [(Harness::new(BROKER), with), (Harness::new(BROKER), without)],
            sessions: [0; 3],
            held: Default::default(),
            next_id: 0,
            next_tag: 0,
        }
    }

    /// Runs `f` on both and checks they emitted the same.
    fn both(&mut self, f: impl Fn(&mut Harness, &mut QueueBroker) -> Emitted) -> Result<Emitted, TestCaseError> {
        let [(ha, a), (hb, b)] = &mut self.brokers;
        let (ea, eb) = (f(ha, a), f(hb, b));
        prop_assert_eq!(&ea, &eb);
        Ok(ea)
    }

    fn message(&mut self, from: NodeId, msg: QueueMsg) -> Result<(), TestCaseError> {
        let e = self.both(|h, b| h.message(b, from, msg.clone()))?;
        self.note(&e);
        Ok(())
    }

    /// Notes the deliveries in `e`.
    fn note(&mut self, e: &Emitted) {
        for (to, m) in e.sent() {
            if let (Msg::Queue(QueueMsg::Deliver { tag, .. }), Some(c)) = (m, CONSUMERS.iter().position(|&n| n == to)) {
                self.held[c].push(tag);
            }
        }
    }

    fn run(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Publish { want_ack, persistent, numbered } => {
                self.next_id += 1;
                let tag = if numbered {
                    self.next_tag += 1;
                    self.next_tag
                } else {
                    0
                };
                let rec = Record::new(self.next_id, 0);
                let (attempt, channel, route, expiration) = (1, u32::from(numbered), 0, NO_EXPIRATION);
                let msg = QueueMsg::Publish { rec, want_ack, attempt, channel, tag, persistent, route, expiration };
                self.message(PRODUCER, msg)?;
            }
            Op::Subscribe { consumer, prefetch, auto_ack, repeat } => {
                if !repeat || self.sessions[consumer] == 0 {
                    self.sessions[consumer] += 1;
                }
                let session = self.sessions[consumer];
                self.message(CONSUMERS[consumer], QueueMsg::Subscribe { prefetch, session, auto_ack })?;
            }
            Op::Ack { consumer, .. } | Op::Nack { consumer, .. } if self.held[consumer].is_empty() => {
                // Nothing delivered to it: an ack of a tag nobody holds.
                self.message(CONSUMERS[consumer], QueueMsg::Ack { tag: u64::MAX })?;
            }
            Op::Ack { consumer, pick } => {
                let tag = self.held[consumer].remove(pick % self.held[consumer].len());
                self.message(CONSUMERS[consumer], QueueMsg::Ack { tag })?;
            }
            Op::Nack { consumer, pick, requeue } => {
                let tag = self.held[consumer].remove(pick % self.held[consumer].len());
                self.message(CONSUMERS[consumer], QueueMsg::Nack { tag, requeue })?;
            }
            Op::Down { consumer } => {
                let e = self.both(|h, b| h.message(b, CONSUMERS[consumer], Notice::PeerDown))?;
                self.note(&e);
            }
            Op::Wait { ms } => self.brokers.iter_mut().for_each(|(h, _)| h.now += ms * NS_PER_MS),
            Op::Redeliver => {
                let e = self.both(|h, b| h.timer(b, QueueTimer::Redeliver(0)))?;
                self.note(&e);
            }
            Op::Sync => {
                self.both(|h, b| h.timer(b, QueueTimer::Sync))?;
            }
            Op::Crash => {
                let e = self.both(|h, b| {
                    b.crash();
                    h.restart(b)
                })?;
                self.note(&e);
            }
        }
        Ok(())
    }
}

proptest! {
    #[test]
    fn shortcuts_change_nothing(
        ops in prop::collection::vec(op(), 1..200),
        durable in any::<bool>(),
        timeout_ms in 20u64..200,
    ) {
        let spec = QueueSpec { durable, redelivery_timeout_ms: Millis(timeout_ms as f64), ..QueueSpec::default() };
        let mut pair = Pair::new(&spec);
        for op in ops {
            pair.run(op)?;
        }
        let [(_, a), (_, b)] = &pair.brokers;
        let (mut ha, mut hb) = (Vec::new(), Vec::new());
        a.held(&mut ha);
        b.held(&mut hb);
        prop_assert_eq!(ha, hb);
        pair.both(|h, b| h.drain(b))?;
    }
}

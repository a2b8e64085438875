//! The queue broker: one FIFO queue. Producers publish into it (and get an
//! ack if they asked for one); subscribed consumers receive messages pushed
//! to them, at most `prefetch` unacknowledged at a time each, and ack them
//! when done. A delivery that is not acked within `redelivery_timeout_ms`
//! goes back to the head of the queue, marked redelivered, and so does every
//! unacked delivery of a consumer that re-subscribes after a restart.
//!
//! Capacity: when the queue holds `capacity` messages, a publish is refused
//! (a negative ack when the producer waits for one; silently dropped when it
//! does not, which the ledger then counts as lost).
//!
//! Crash: a durable broker keeps its queue and puts every unacked delivery
//! back into it on restart (messages were persisted); a non-durable one loses
//! both. Subscriptions are reconnected on restart in either case, with fresh
//! credit.
//!
//! The queue-depth gauge is updated when the broker acts, so while it is
//! down the gauge keeps the depth it had when it crashed.
//!
//! Left out here: dead-lettering, TTL, nack and requeue, priorities,
//! exchanges and fan-out; they come with the full queue model.

use crate::engine::{Component, Ctx};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::time::{ms_to_ns, Duration, Time};
use crate::timers::Deadlines;
use crate::units::Millis;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// A queue broker as written in a scenario file (read through the broker
/// table in `broker/mod.rs`, which fills in these defaults).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueSpec {
    /// Most messages the queue holds (waiting, not counting unacked); unbounded when absent.
    pub capacity: Option<u64>,
    /// Whether the queue survives a crash of the broker (default true).
    pub durable: bool,
    /// How long a delivery may stay unacked before it is redelivered (default 30 s).
    pub redelivery_timeout_ms: Millis,
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec { capacity: None, durable: true, redelivery_timeout_ms: Millis(30_000.0) }
    }
}

const TAG_REDELIVER: u64 = 0;

struct Subscriber {
    node: NodeId,
    prefetch: u32,
    unacked: u32,
    session: u32,
}

struct Unacked {
    consumer: NodeId,
    rec: Record,
    deadline: Time,
}

/// A running queue broker.
pub struct QueueBroker {
    capacity: Option<u64>,
    durable: bool,
    redelivery_ns: Duration,
    queue: VecDeque<(Record, bool)>,
    unacked: BTreeMap<u64, Unacked>,
    subscribers: Vec<Subscriber>,
    next_subscriber: usize,
    next_tag: u64,
    deadlines: Deadlines,
}

impl QueueBroker {
    /// A broker as `spec` says.
    pub fn new(spec: &QueueSpec) -> Self {
        QueueBroker {
            capacity: spec.capacity,
            durable: spec.durable,
            redelivery_ns: ms_to_ns(spec.redelivery_timeout_ms.0).max(1),
            queue: VecDeque::new(),
            unacked: BTreeMap::new(),
            subscribers: Vec::new(),
            next_subscriber: 0,
            next_tag: 0,
            deadlines: Deadlines::default(),
        }
    }

    /// Pushes queued messages to subscribers with free credit, round-robin.
    fn dispatch(&mut self, ctx: &mut Ctx) {
        let n = self.subscribers.len();
        while !self.queue.is_empty() && n > 0 {
            let Some(offset) = (0..n).find(|k| {
                let s = &self.subscribers[(self.next_subscriber + k) % n];
                s.unacked < s.prefetch
            }) else {
                break;
            };
            let i = (self.next_subscriber + offset) % n;
            self.next_subscriber = (i + 1) % n;
            let (rec, redelivered) = self.queue.pop_front().expect("queue is not empty");
            let sub = &mut self.subscribers[i];
            sub.unacked += 1;
            let tag = self.next_tag;
            self.next_tag += 1;
            let deadline = ctx.now() + self.redelivery_ns;
            self.unacked.insert(tag, Unacked { consumer: sub.node, rec, deadline });
            ctx.send(sub.node, Msg::Deliver { rec, tag, redelivered });
            self.deadlines.add(ctx, deadline, tag, TAG_REDELIVER);
        }
        ctx.set_queue_depth(self.queue.len() as u64);
    }

    /// Takes back an unacked delivery and puts its message at the head.
    fn requeue(&mut self, tag: u64) {
        if let Some(u) = self.unacked.remove(&tag) {
            if let Some(s) = self.subscribers.iter_mut().find(|s| s.node == u.consumer) {
                s.unacked = s.unacked.saturating_sub(1);
            }
            self.queue.push_front((u.rec, true));
        }
    }
}

impl Component for QueueBroker {
    fn start(&mut self, _ctx: &mut Ctx) {}

    fn on_message(&mut self, ctx: &mut Ctx, from: NodeId, msg: Msg) {
        match msg {
            Msg::Publish { rec, want_ack, attempt } => {
                let accepted = self.capacity.is_none_or(|c| (self.queue.len() as u64) < c);
                if accepted {
                    self.queue.push_back((rec, false));
                } else {
                    ctx.error("rejected");
                }
                if want_ack {
                    ctx.send(from, Msg::PublishAck { id: rec.id, accepted, attempt });
                }
                self.dispatch(ctx);
            }
            Msg::Ack { tag } => {
                if let Some(u) = self.unacked.remove(&tag) {
                    if let Some(s) = self.subscribers.iter_mut().find(|s| s.node == u.consumer) {
                        s.unacked = s.unacked.saturating_sub(1);
                    }
                }
                self.dispatch(ctx);
                // In the drain, a pending redelivery timer with nothing left to
                // redeliver would only keep the run waiting. (During the run
                // this would cancel and re-arm it for every message.)
                if ctx.draining() && self.unacked.is_empty() {
                    self.deadlines.cancel_all(ctx);
                }
            }
            Msg::Subscribe { prefetch, session } => {
                let known = self.subscribers.iter().position(|s| s.node == from);
                if known.is_some_and(|i| self.subscribers[i].session == session) {
                    // A repeat of a subscribe we already have (its confirmation
                    // was lost): confirm again, change nothing.
                    ctx.send(from, Msg::Subscribed);
                    return;
                }
                // A new connection: whatever this consumer had unacked goes back.
                let mine: Vec<u64> = self.unacked.iter().filter(|(_, u)| u.consumer == from).map(|(&t, _)| t).collect();
                for tag in mine.into_iter().rev() {
                    self.requeue(tag);
                }
                match known {
                    Some(i) => {
                        self.subscribers[i].prefetch = prefetch;
                        self.subscribers[i].session = session;
                    }
                    None => self.subscribers.push(Subscriber { node: from, prefetch, unacked: 0, session }),
                }
                ctx.send(from, Msg::Subscribed);
                self.dispatch(ctx);
            }
            Msg::PublishAck { .. } | Msg::Deliver { .. } | Msg::Subscribed => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx, tag: u64) {
        if tag == TAG_REDELIVER {
            let unacked = &self.unacked;
            let expired =
                self.deadlines.expire(ctx, TAG_REDELIVER, |t, at| unacked.get(&t).is_some_and(|u| u.deadline == at));
            // Requeue in reverse so the oldest ends up first in line.
            for t in expired.into_iter().rev() {
                ctx.error("redelivery-timeout");
                self.requeue(t);
            }
            self.dispatch(ctx);
        }
    }

    fn crash(&mut self) {
        let unacked = std::mem::take(&mut self.unacked);
        if self.durable {
            for u in unacked.into_values().rev() {
                self.queue.push_front((u.rec, true));
            }
        } else {
            self.queue.clear();
        }
        for s in &mut self.subscribers {
            s.unacked = 0;
        }
        self.deadlines.clear();
    }

    fn restart(&mut self, ctx: &mut Ctx) {
        self.dispatch(ctx);
    }

    fn drain(&mut self, ctx: &mut Ctx) {
        if self.unacked.is_empty() {
            self.deadlines.cancel_all(ctx);
        }
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.queue.iter().map(|(r, _)| r.id));
        out.extend(self.unacked.values().map(|u| u.rec.id));
    }
}

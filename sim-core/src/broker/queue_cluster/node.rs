//! A node of a queue cluster: the channels of the clients connected to it,
//! and its part of the queue (the classic queue, on its home node; a
//! replica of the quorum queue, on each of its replicas; the queue itself,
//! with its consumers, on the quorum queue's leader). Raft lives in
//! `raft.rs`.
//!
//! Left out (stated in docs/concepts.md): deliveries, `Subscribed` and
//! `Cancelled` go from the queue's node straight to the consumer (the hop
//! through the consumer's own node is skipped; its acks and subscriptions
//! do take that hop); a publish reaching a node that cannot serve it (no
//! known leader, or a deposed one) is dropped, and its producer's timeout
//! and retry recover it; idempotent producers are refused (RabbitMQ
//! deduplicates publishes only in streams); consumers'
//! deliveries are not in the Raft state, so after a leader change every
//! unsettled message is delivered again (counted as redelivered).

use super::raft::Raft;
use super::Layout;
use crate::broker::queue::core::{Entry, Policy, QueueCore, QueueTimer};
use crate::engine::{Component, Ctx, Timer};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Notice, Record};
use crate::net::NodeFault;
use crate::protocol::queue_cluster::{QueueClusterMsg as Qc, Settlement};
use crate::protocol::QueueMsg;
use std::collections::BTreeMap;

/// A queue cluster node's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTimer {
    /// The leader's heartbeat (and retransmission) period.
    Heartbeat,
    /// A follower checks whether its leader went silent.
    Election,
    /// The queue's own timers (on the node hosting the queue).
    Queue(QueueTimer),
}

impl From<QueueTimer> for NodeTimer {
    fn from(t: QueueTimer) -> Self {
        NodeTimer::Queue(t)
    }
}

impl Timer for NodeTimer {
    fn to_word(self) -> u64 {
        match self {
            NodeTimer::Heartbeat => 0,
            NodeTimer::Election => 1,
            NodeTimer::Queue(q) => 2 + q.to_word(),
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        match word {
            0 => Some(NodeTimer::Heartbeat),
            1 => Some(NodeTimer::Election),
            w => QueueTimer::from_word(w - 2).map(NodeTimer::Queue),
        }
    }
}

/// A consumer's subscription, as its channel's node keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sub {
    pub(super) prefetch: u32,
    pub(super) session: u32,
    pub(super) auto_ack: bool,
}

/// A node of a queue cluster.
pub struct QueueClusterNode {
    pub(super) layout: Layout,
    /// This node's index in the cluster.
    pub(super) index: usize,
    /// The consumers connected to this node (its channels).
    pub(super) consumers: BTreeMap<NodeId, Sub>,
    /// Where this node's channels send the queue's traffic, and the term
    /// it learned it in: the classic queue's home, the quorum queue's
    /// leader as last heard of (`None`: unknown).
    pub(super) target: Option<(NodeId, u32)>,
    /// On the node hosting the queue: every consumer subscribed, with the
    /// node whose channel it uses.
    pub(super) hosted: BTreeMap<NodeId, (NodeId, Sub)>,
    /// The classic queue, on its home node.
    pub(super) classic: Option<QueueCore>,
    /// The quorum queue's replica, on each of its nodes.
    pub(super) raft: Option<Raft>,
}

impl QueueClusterNode {
    /// Member `index` of a cluster laid out as `layout`.
    pub fn new(layout: Layout, index: usize) -> Self {
        let me = layout.nodes[index];
        let home = layout.nodes[layout.home];
        let classic =
            (!layout.quorum() && index == layout.home).then(|| QueueCore::new(policy(&layout), true, 0, None));
        let raft = layout.replicas.contains(&me).then(|| Raft::new(me, &layout));
        QueueClusterNode {
            layout,
            index,
            consumers: BTreeMap::new(),
            target: Some((home, 1)),
            hosted: BTreeMap::new(),
            classic,
            raft,
        }
    }

    /// This node's id.
    pub(super) fn me(&self) -> NodeId {
        self.layout.nodes[self.index]
    }

    /// The replica of the quorum queue here, if any (for tests).
    pub fn replica(&self) -> Option<&Raft> {
        self.raft.as_ref()
    }

    /// The queue, when this node serves it now: the classic queue's home,
    /// or the quorum queue's leader once it has committed its first entry.
    pub(super) fn served(&mut self) -> Option<&mut QueueCore> {
        match &mut self.raft {
            Some(r) => r.core.as_mut(),
            None => self.classic.as_mut(),
        }
    }

    /// A message a client's channel sends to the queue: handled here when
    /// this node hosts it, else sent to the node that does.
    fn send_to_queue(&mut self, ctx: &mut Ctx<NodeTimer>, msg: Qc) {
        let me = self.me();
        match self.target {
            Some((t, _)) if t == me => self.on_cluster(ctx, me, msg),
            Some((t, _)) => ctx.send(t, msg),
            None => {
                if let Qc::Forward { rec, .. } = msg {
                    ctx.error("no-leader");
                    ctx.discarded(rec.id, LossCause::NoLeader);
                }
            }
        }
    }

    /// A message of the queue protocol from a client connected here.
    fn on_client(&mut self, ctx: &mut Ctx<NodeTimer>, from: NodeId, msg: QueueMsg) {
        let forward = match msg {
            QueueMsg::Publish { rec, want_ack, attempt, .. } => Qc::Forward { rec, producer: from, attempt, want_ack },
            QueueMsg::Subscribe { prefetch, session, auto_ack } => {
                self.consumers.insert(from, Sub { prefetch, session, auto_ack });
                Qc::Consume { consumer: from, prefetch, session, auto_ack }
            }
            QueueMsg::Ack { tag } => Qc::Settle { consumer: from, tag, how: Settlement::Ack },
            QueueMsg::Nack { tag, requeue } => Qc::Settle { consumer: from, tag, how: Settlement::Nack { requeue } },
            _ => return,
        };
        self.send_to_queue(ctx, forward);
    }

    /// A message from another node of the cluster (or from this one).
    pub(super) fn on_cluster(&mut self, ctx: &mut Ctx<NodeTimer>, from: NodeId, msg: Qc) {
        match msg {
            Qc::Forward { rec, producer, attempt, want_ack } => {
                self.enqueue(ctx, from, rec, producer, attempt, want_ack)
            }
            Qc::Confirm { id, producer, attempt } => {
                ctx.send(producer, crate::protocol::publish_ack(id, true, attempt, 0));
            }
            Qc::Consume { consumer, prefetch, session, auto_ack } => {
                let sub = Sub { prefetch, session, auto_ack };
                self.hosted.insert(consumer, (from, sub));
                if let Some(core) = self.served() {
                    core.subscribe(ctx, consumer, prefetch, session, auto_ack);
                }
            }
            Qc::Settle { consumer, tag, how } => {
                let Some(core) = self.served() else { return };
                match how {
                    Settlement::Ack => {
                        core.ack(tag);
                    }
                    Settlement::Nack { requeue } => core.take_back(ctx, tag, requeue),
                }
                let _ = consumer;
                core.dispatch(ctx);
                core.settle_timers(ctx);
            }
            Qc::Gone { consumer } => self.consumer_gone(ctx, consumer),
            Qc::Append(a) => self.on_append(ctx, from, *a),
            Qc::AppendReply { term, ok, matched, voter } => self.on_append_reply(ctx, from, term, ok, matched, voter),
            Qc::Vote { term, last_index, last_term, pre } => {
                self.on_vote(ctx, from, term, (last_index, last_term), pre)
            }
            Qc::VoteReply { term, granted, pre } => self.on_vote_reply(ctx, from, term, granted, pre),
        }
        self.after(ctx);
    }

    /// A publish reached the queue's node.
    fn enqueue(
        &mut self,
        ctx: &mut Ctx<NodeTimer>,
        via: NodeId,
        rec: Record,
        producer: NodeId,
        attempt: u32,
        ack: bool,
    ) {
        if self.raft.is_some() {
            self.propose_enqueue(ctx, via, rec, producer, attempt, ack);
            return;
        }
        let me = self.me();
        let Some(core) = self.classic.as_mut() else {
            // Not the home (a client named this node's queue wrongly): drop.
            ctx.error("no-leader");
            ctx.discarded(rec.id, LossCause::NoLeader);
            return;
        };
        core.queue.push_back(Entry { persistent: true, ..Entry::new(rec, ctx.now(), None, core.policy()) });
        core.dispatch(ctx);
        if ack {
            confirm(ctx, me, via, rec.id, producer, attempt);
        }
    }

    /// Consumer `consumer` is gone (its connection closed).
    fn consumer_gone(&mut self, ctx: &mut Ctx<NodeTimer>, consumer: NodeId) {
        self.hosted.remove(&consumer);
        if let Some(core) = self.served() {
            core.peer_down(ctx, consumer);
        }
    }

    /// After any handler: replicate what the queue settled, report the depth.
    pub(super) fn after(&mut self, ctx: &mut Ctx<NodeTimer>) {
        self.replicate_settled(ctx);
        let depth = match (&self.raft, &self.classic) {
            // A replica that does not serve the queue holds none of it waiting.
            (Some(r), _) => Some(r.core.as_ref().map_or(0, |c| c.queue.len())),
            (None, Some(c)) => Some(c.queue.len()),
            _ => None,
        };
        if let Some(d) = depth {
            ctx.set_queue_depth(d as u64);
        }
    }

    /// Subscribes every consumer this node knows of to the queue it now
    /// serves (a new leader, or the home after a restart).
    pub(super) fn resubscribe_hosted(&mut self, ctx: &mut Ctx<NodeTimer>) {
        let hosted: Vec<(NodeId, Sub)> = self.hosted.iter().map(|(&c, &(_, s))| (c, s)).collect();
        if let Some(core) = self.served() {
            for (c, s) in hosted {
                core.subscribe(ctx, c, s.prefetch, s.session, s.auto_ack);
            }
        }
    }

    /// The node learned that `leader` leads in `term`: its channels'
    /// consumers subscribe there.
    pub(super) fn learn_leader(&mut self, ctx: &mut Ctx<NodeTimer>, leader: NodeId, term: u32) {
        if self.target.is_some_and(|(l, t)| l == leader && t == term) {
            return;
        }
        if self.target.is_some_and(|(_, t)| t > term) {
            return;
        }
        self.target = Some((leader, term));
        let consumers: Vec<(NodeId, Sub)> = self.consumers.iter().map(|(&c, &s)| (c, s)).collect();
        for (consumer, s) in consumers {
            let msg = Qc::Consume { consumer, prefetch: s.prefetch, session: s.session, auto_ack: s.auto_ack };
            self.send_to_queue(ctx, msg);
        }
    }

    /// The classic queue's node went down: as RabbitMQ does, its consumers
    /// on other nodes are cancelled (`basic.cancel`), and subscribe again.
    fn queue_node_down(&mut self, ctx: &mut Ctx<NodeTimer>, node: NodeId) {
        let home = self.layout.nodes[self.layout.home];
        if self.layout.quorum() || node != home || self.me() == home {
            return;
        }
        for (consumer, s) in std::mem::take(&mut self.consumers) {
            ctx.send(consumer, QueueMsg::Cancelled { session: s.session });
        }
    }

    /// Every message this node's part of the queue holds.
    fn queue_ids(&self) -> Vec<MsgId> {
        let mut out = Vec::new();
        if let Some(c) = &self.classic {
            c.held(&mut out);
        }
        if let Some(r) = &self.raft {
            r.held(&mut out);
        }
        out
    }

    /// The node is lost with its disk: whatever only it held is lost, and
    /// it will come back empty (a quorum replica, as a non-voting member
    /// until it has caught up).
    fn lose_disk(&mut self, ctx: &mut Ctx<NodeTimer>) {
        for id in self.queue_ids() {
            ctx.discarded(id, LossCause::NodeLost);
        }
        let me = self.me();
        if self.classic.is_some() {
            self.classic = Some(QueueCore::new(policy(&self.layout), true, 0, None));
        }
        if self.raft.is_some() {
            self.raft = Some(Raft::empty(me, &self.layout));
            self.target = None;
        }
        self.hosted.clear();
        self.consumers.clear();
        ctx.set_queue_depth(0);
    }
}

/// The queue's settings.
pub(super) fn policy(layout: &Layout) -> Policy {
    Policy {
        redelivery_ns: layout.redelivery_ns,
        delivery_limit: layout.delivery_limit,
        ttl_ns: layout.ttl_ns,
        dead_letter: layout.dead_letter,
        capacity: None,
        overflow: crate::broker::Overflow::default(),
        dead_letter_exchange: None,
        holds_dead_letters: false,
    }
}

/// Tells publisher `producer`, through node `via`'s channel, that `id` is safe.
pub(super) fn confirm(ctx: &mut Ctx<NodeTimer>, me: NodeId, via: NodeId, id: MsgId, producer: NodeId, attempt: u32) {
    if via == me {
        ctx.send(producer, crate::protocol::publish_ack(id, true, attempt, 0));
    } else {
        ctx.send(via, Qc::Confirm { id, producer, attempt });
    }
}

impl Component for QueueClusterNode {
    type Timer = NodeTimer;

    fn start(&mut self, ctx: &mut Ctx<NodeTimer>) {
        self.start_raft(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<NodeTimer>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Queue(m) => {
                self.on_client(ctx, from, m);
                self.after(ctx);
            }
            Msg::QueueCluster(m) => self.on_cluster(ctx, from, m),
            Msg::Notice(Notice::PeerDown) => {
                if self.consumers.remove(&from).is_some() {
                    self.send_to_queue(ctx, Qc::Gone { consumer: from });
                }
                self.queue_node_down(ctx, from);
                // A channel's node went down: its consumers are gone.
                let gone: Vec<NodeId> =
                    self.hosted.iter().filter(|(_, (via, _))| *via == from).map(|(&c, _)| c).collect();
                for c in gone {
                    self.consumer_gone(ctx, c);
                }
                self.after(ctx);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<NodeTimer>, timer: NodeTimer) {
        match timer {
            NodeTimer::Heartbeat => self.on_heartbeat(ctx),
            NodeTimer::Election => self.on_election_timer(ctx),
            NodeTimer::Queue(t) => {
                if let Some(core) = self.served() {
                    core.on_timer(ctx, t);
                }
            }
        }
        self.after(ctx);
    }

    fn crash(&mut self) {
        // Connections close: consumers subscribe again when they come back.
        self.consumers.clear();
        self.hosted.clear();
        if let Some(c) = &mut self.classic {
            c.crash(self.layout.durable);
        }
        if let Some(r) = &mut self.raft {
            r.crash();
            self.target = None;
        }
    }

    fn restart(&mut self, ctx: &mut Ctx<NodeTimer>) {
        if let Some(c) = &mut self.classic {
            c.dispatch(ctx);
        }
        self.start_raft(ctx);
        self.after(ctx);
    }

    fn on_fault(&mut self, ctx: &mut Ctx<NodeTimer>, fault: &NodeFault, begins: bool) {
        if matches!(fault, NodeFault::DiskLoss) && begins {
            self.lose_disk(ctx);
        }
    }

    fn drain(&mut self, ctx: &mut Ctx<NodeTimer>) {
        if let Some(core) = self.served() {
            core.settle_timers(ctx);
        }
    }

    fn memory_bytes(&self) -> usize {
        let classic = self.classic.as_ref().map_or(0, QueueCore::memory_bytes);
        classic + self.raft.as_ref().map_or(0, Raft::memory_bytes)
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.queue_ids());
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;

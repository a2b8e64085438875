//! Publisher confirms of a queue broker, per producer channel, as RabbitMQ
//! sends them (see its "Publisher Confirms" guide).
//!
//! A producer's publishes are numbered on its channel (delivery tags from
//! 1; a restarted producer opens a new channel). A publish the broker
//! refuses is nacked at once, and one it has made safe is acked: a
//! transient message, or one that no durable queue keeps, when it is
//! enqueued (at once, alone); a persistent message on a durable queue once
//! it is on disk. RabbitMQ's queues write persistent messages to disk in
//! batches, at a sync timer (200 ms, the `SYNC_INTERVAL` of its queue
//! process) or when the queue is idle, and confirm them after the fsync:
//! "under a constant load, latency for basic.ack can reach a few hundred
//! milliseconds". Here the first persistent publish after a sync arms the
//! timer (`sync_interval_ms`), and when it fires the broker confirms every
//! publish each channel has waiting: one `basic.ack` with `multiple` (every
//! tag up to and including the highest) when it covers more than one,
//! else a single ack.
//!
//! `multiple` claims every earlier tag of the channel, so the broker uses
//! it only while it has seen every tag of the channel in order: a publish
//! lost on the network (which TCP would never let happen without closing
//! the channel), or sent while the broker was down (a producer opens its
//! new channel when it hears that the connection closed, not once the
//! broker is back, as a real client's connection recovery would), leaves
//! a gap, and the channel's later confirms are sent one by one.
//!
//! Metrics: `confirms_at_sync` (confirm frames sent at syncs) and
//! `publishes_confirmed_at_sync` (the publishes they settle): their ratio
//! is the mean number of publishes one confirm covers.
//!
//! Left out: the idle sync (the broker always waits for the timer, so at a
//! light load its confirms come later than RabbitMQ's would; lower
//! `sync_interval_ms` to model a fast idle sync), the time an fsync takes,
//! and multiple nacks. A crash loses the confirms not yet sent; the
//! producers, told that their connection closed, open new channels.

use super::QueueTimer;
use crate::engine::Ctx;
use crate::message::{MsgId, NodeId};
use crate::protocol::QueueMsg;
use crate::time::Duration;
use std::collections::BTreeMap;

/// One producer channel, as the broker knows it.
#[derive(Default)]
struct Channel {
    /// Which channel of the producer (a newer one closes the older).
    number: u32,
    /// The highest tag seen on it.
    last_tag: u64,
    /// A tag was skipped (lost on the way): no `multiple` any more.
    gap: bool,
    /// Publishes on disk at the next sync: (tag, id, attempt), in tag order.
    waiting: Vec<(u64, MsgId, u32)>,
}

/// The confirms of a broker's producer channels that wait for its sync.
pub(super) struct Confirms {
    sync_ns: Duration,
    channels: BTreeMap<NodeId, Channel>,
    /// The sync timer is set.
    armed: bool,
}

impl Confirms {
    pub(super) fn new(sync_ns: Duration) -> Self {
        Confirms { sync_ns, channels: BTreeMap::new(), armed: false }
    }

    /// A publish with `tag` came from `from` on its `channel`. Returns false
    /// when that channel is closed (the producer has opened a newer one).
    pub(super) fn publish(&mut self, from: NodeId, channel: u32, tag: u64) -> bool {
        let c = self.channels.entry(from).or_default();
        if channel < c.number {
            return false;
        }
        if channel > c.number {
            // A new channel: the older one is closed, its confirms with it.
            *c = Channel { number: channel, ..Channel::default() };
        }
        c.gap |= tag != c.last_tag + 1;
        c.last_tag = c.last_tag.max(tag);
        true
    }

    /// Publish `tag` of `from` (message `id`, its `attempt`) is written;
    /// it is confirmed at the next sync.
    pub(super) fn after_sync(&mut self, ctx: &mut Ctx<QueueTimer>, from: NodeId, id: MsgId, attempt: u32, tag: u64) {
        self.channels.entry(from).or_default().waiting.push((tag, id, attempt));
        if !std::mem::replace(&mut self.armed, true) {
            ctx.set_timer(self.sync_ns, QueueTimer::Sync);
        }
    }

    /// The sync timer fired: everything waiting is on disk; confirm it.
    pub(super) fn synced(&mut self, ctx: &mut Ctx<QueueTimer>) {
        self.armed = false;
        for (&producer, c) in &mut self.channels {
            if c.waiting.is_empty() {
                continue;
            }
            ctx.metric_add("publishes_confirmed_at_sync", c.waiting.len() as f64);
            ctx.metric_add("confirms_at_sync", if c.gap { c.waiting.len() as f64 } else { 1.0 });
            if c.gap {
                for (tag, id, attempt) in c.waiting.drain(..) {
                    ctx.send(producer, crate::protocol::publish_ack(id, true, attempt, tag));
                }
                continue;
            }
            let (tag, id, attempt) = c.waiting.pop().expect("not empty");
            let also: Box<[MsgId]> = c.waiting.drain(..).map(|(_, id, _)| id).collect();
            let multiple = !also.is_empty();
            ctx.send(producer, QueueMsg::PublishAck { id, accepted: true, attempt, tag, multiple, also });
        }
    }

    /// The broker crashed: confirms not yet sent are lost, the sync timer
    /// too. Its producers hear that the connection closed and open new
    /// channels; until they do, their publishes are still taken.
    pub(super) fn crash(&mut self) {
        self.channels.values_mut().for_each(|c| c.waiting.clear());
        self.armed = false;
    }
}

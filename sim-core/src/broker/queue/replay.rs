//! Replaying a dead-letter queue: a shovel that moves the messages a
//! dead-letter broker holds back to the work broker, once its dependency
//! has recovered.
//!
//! At `replay_at_ms` the broker's shovel moves every message its queues
//! hold ready at that moment (not those delivered to a consumer of the
//! dead-letter queue and not yet acked), oldest first, to `replay_to`, with
//! the same ids, and stops: RabbitMQ's dynamic shovel with
//! `src-delete-after = "queue-length"`, which moves as many messages as the
//! queue held when it started and then deletes itself. A message that fails
//! again is dead-lettered again and stays, so a poison message does not
//! circulate for ever. The ledger then shows what the replay did to order
//! (a replayed message is applied after later messages of its key:
//! `reordered`) and to duplicates.
//!
//! Simplifications: the shovel runs inside the broker and sends every
//! message at once, publishing without confirms and removing each message
//! from the source as it publishes it (the shovel's `ack-mode =
//! "on-publish"`; RabbitMQ's default, `"on-confirm"`, waits for the
//! destination's confirm before removing it), so a message the network
//! loses on the way is lost. A replayed message keeps its persistence and
//! loses its own expiration, as a dead-lettered one does.

use super::core::{QueueCore, QueueTimer};
use crate::engine::Ctx;
use crate::message::NodeId;
use crate::protocol::{QueueMsg, NO_EXPIRATION};
use crate::time::Time;

/// A dead-letter broker's replay, due at a time.
pub(crate) struct Replay {
    to: NodeId,
    at: Time,
    done: bool,
}

impl Replay {
    /// A replay to broker `to`, at `at`.
    pub(crate) fn new(to: NodeId, at: Time) -> Self {
        Replay { to, at, done: false }
    }

    /// Sets the timer of the replay, unless it is done.
    pub(crate) fn arm(&self, ctx: &mut Ctx<QueueTimer>) {
        if !self.done {
            ctx.set_timer(self.at.saturating_sub(ctx.now()), QueueTimer::Replay);
        }
    }

    /// Moves what `queues` hold ready to the work broker, once.
    pub(crate) fn run(&mut self, ctx: &mut Ctx<QueueTimer>, queues: &mut [QueueCore]) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let mut moved = 0u64;
        for q in queues.iter_mut() {
            for e in q.take_ready() {
                let (rec, persistent) = (e.rec, e.persistent);
                let (channel, tag, route, expiration) = (0, 0, 0, NO_EXPIRATION);
                let publish =
                    QueueMsg::Publish { rec, want_ack: false, attempt: 1, channel, tag, persistent, route, expiration };
                ctx.send(self.to, publish);
                moved += 1;
            }
        }
        ctx.metric_add("replayed", moved as f64);
        ctx.mark("dead-letter replay");
    }
}

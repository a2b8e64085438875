//! A group member run by a controller ([`crate::replicas`]): it may start
//! stopped, and it obeys [`ControlMsg::Start`] and [`ControlMsg::Stop`].
//!
//! - **Start**: after its start-up delay (a pod being scheduled and
//!   starting) it starts as at time 0: it joins the group as a new member,
//!   and the group rebalances to give it partitions.
//! - **Stop** (Kafka's `close()`): it commits the offsets of what it has
//!   processed of each partition it owns (as an eager revocation does;
//!   never for `ack = "before"`, whose batches were committed before, nor
//!   for a transactional stage, whose open transaction is abandoned and
//!   aborted by the broker), sends LeaveGroup, and stops: the group
//!   rebalances at once, without waiting for the session timeout. The
//!   record in progress is not finished: its offset is not committed, and
//!   its next owner processes it.
//!
//! While stopped it ignores every message but Start, and a crash and
//! restart leave it stopped.

use super::{LogConsumer, LogConsumerTimer};
use crate::engine::Ctx;
use crate::message::Msg;
use crate::protocol::{ControlMsg, LogMsg};
use crate::time::Duration;

/// A member's state as a controller's replica.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Replica {
    /// Stopped by its controller (or not started yet): durable.
    pub stopped: bool,
    /// Started, and waiting out its start-up delay.
    pub starting: bool,
    /// The start-up delay.
    pub startup_ns: Duration,
}

impl LogConsumer {
    /// A member of a replicated table, running from the start or not, that
    /// takes `startup_ns` to start when told to.
    pub fn as_replica(mut self, running: bool, startup_ns: Duration) -> Self {
        self.replica = Replica { stopped: !running, starting: false, startup_ns };
        self
    }

    /// Whether the member is stopped or starting (it does nothing).
    pub(super) fn idle_replica(&self) -> bool {
        self.replica.stopped || self.replica.starting
    }

    /// Handles a control message; true when `msg` is one, or when the
    /// member is idle (it ignores everything else then).
    pub(super) fn on_control(&mut self, ctx: &mut Ctx<LogConsumerTimer>, msg: &Msg) -> bool {
        match msg {
            Msg::Control(ControlMsg::Start) if self.replica.stopped => {
                self.replica.stopped = false;
                self.replica.starting = true;
                ctx.set_timer(self.replica.startup_ns, LogConsumerTimer::Startup);
                true
            }
            Msg::Control(ControlMsg::Stop) if !self.replica.stopped => {
                self.stop_gracefully(ctx);
                true
            }
            Msg::Control(_) => true,
            _ => self.idle_replica(),
        }
    }

    /// The start-up delay is over: start as at time 0.
    pub(super) fn started(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if self.replica.starting {
            self.replica.starting = false;
            use crate::engine::Component;
            self.start(ctx);
        }
    }

    fn stop_gracefully(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let was_member = self.generation > 0 && !self.replica.starting;
        if was_member && !self.m.left {
            self.revoke(ctx, None);
            if let Some(to) = self.group_node() {
                ctx.send(to, LogMsg::LeaveGroup { group: self.s.group, session: self.session });
            }
        }
        use crate::engine::Component;
        self.crash();
        self.replica.stopped = true;
        self.replica.starting = false;
        for t in [
            LogConsumerTimer::Tick,
            LogConsumerTimer::Process,
            LogConsumerTimer::PollTimeout,
            LogConsumerTimer::JoinRetry,
            LogConsumerTimer::Routes,
            LogConsumerTimer::SinkRetry,
            LogConsumerTimer::Startup,
            LogConsumerTimer::Retry,
            LogConsumerTimer::Due,
            LogConsumerTimer::Replay,
        ] {
            ctx.cancel_timer(t);
        }
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;

//! A replicated table's controller: it knows its members, counts those it
//! runs, and (with `autoscale`) polls the broker for the group's lag and
//! starts or stops one member per decision of its [`Autoscaler`]. It
//! starts members in order and stops the last started first.

use super::autoscaler::{Autoscaler, Decision};
use super::{member_name, ControllerSpec, CONSUMERS, COST_PER_HOUR};
use crate::broker::{LogGroups, LogSpec};
use crate::engine::{Component, Ctx, Timer};
use crate::kind::Build;
use crate::message::{Msg, NodeId};
use crate::metrics::Gauges;
use crate::protocol::ControlMsg;
use crate::time::{ms_to_ns, Duration, Time};

/// A controller's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerTimer {
    /// Ask the broker for the lag.
    Poll,
}

impl Timer for ControllerTimer {
    fn to_word(self) -> u64 {
        1
    }
    fn from_word(word: u64) -> Option<Self> {
        (word == 1).then_some(ControllerTimer::Poll)
    }
}

/// How a controller reads lag and decides.
pub struct Scaling {
    /// The log broker it asks.
    pub broker: NodeId,
    /// The group's number there.
    pub group: u16,
    /// How often it asks.
    pub poll_ns: Duration,
    /// What it decides.
    pub autoscaler: Autoscaler,
}

/// A replicated table's controller.
pub struct Controller {
    /// Gauge names: `consumers.TABLE`, `consumer_cost_per_hour.TABLE`.
    gauges: (String, String),
    members: Vec<NodeId>,
    /// Durable (the desired count lives outside the controller's memory):
    /// the first `running` members run.
    running: usize,
    price_per_hour: f64,
    scaling: Option<Scaling>,
}

impl Controller {
    /// The controller of table `table` with `members`, the first `running`
    /// of them running, at `price_per_hour` each.
    pub fn new(table: &str, members: Vec<NodeId>, running: usize, price_per_hour: f64) -> Self {
        let gauges = (format!("{CONSUMERS}.{table}"), format!("{COST_PER_HOUR}.{table}"));
        Controller { gauges, members, running, price_per_hour, scaling: None }
    }

    /// The same, autoscaled.
    pub fn with_scaling(mut self, scaling: Scaling) -> Self {
        self.scaling = Some(scaling);
        self
    }

    /// Members running now.
    pub fn running(&self) -> usize {
        self.running
    }

    fn on_lag(&mut self, ctx: &mut Ctx<ControllerTimer>, oldest_ns: u64) {
        let Some(s) = &mut self.scaling else { return };
        match s.autoscaler.observe(ctx.now(), oldest_ns, self.running) {
            Decision::Up if self.running < self.members.len() => {
                ctx.send(self.members[self.running], ControlMsg::Start);
                self.running += 1;
            }
            Decision::Down if self.running > 0 => {
                self.running -= 1;
                ctx.send(self.members[self.running], ControlMsg::Stop);
            }
            _ => {}
        }
    }
}

impl Component for Controller {
    type Timer = ControllerTimer;

    fn start(&mut self, ctx: &mut Ctx<ControllerTimer>) {
        if let Some(s) = &self.scaling {
            ctx.set_background_timer(s.poll_ns, ControllerTimer::Poll);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<ControllerTimer>, _from: NodeId, msg: Msg) {
        if let Msg::Control(ControlMsg::Lag { group, oldest_ns, .. }) = msg {
            if self.scaling.as_ref().is_some_and(|s| s.group == group) {
                self.on_lag(ctx, oldest_ns);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<ControllerTimer>, _timer: ControllerTimer) {
        let Some(s) = &self.scaling else { return };
        ctx.send(s.broker, ControlMsg::LagQuery { group: s.group });
        ctx.set_background_timer(s.poll_ns, ControllerTimer::Poll);
    }

    fn crash(&mut self) {}

    fn gauges(&self, _now: Time, out: &mut Gauges) {
        out.sum(self.gauges.0.clone(), self.running as f64);
        out.sum(self.gauges.1.clone(), self.running as f64 * self.price_per_hour);
    }
}

/// Builds the controller `c`. Its members, of the same section and named
/// `TABLE-N`, are built before it (names order a section's builds, and a
/// digit comes before `c`), so its group is known to the broker.
pub(super) fn build(c: &ControllerSpec, build: &mut Build) -> Controller {
    let members = (1..=c.pool).map(|i| build.id(&member_name(&c.table, i))).collect();
    let controller = Controller::new(&c.table, members, c.running as usize, c.price_per_hour);
    let Some(s) = &c.scaling else { return controller };
    let partitions = build.topology().spec::<LogSpec>(&s.source).map_or(0, |l| l.partitions_of(&s.topic));
    let groups = &build.note::<LogGroups>(&s.source).groups;
    let group = groups.iter().position(|g| g.name == s.group).expect("the members joined the group before");
    controller.with_scaling(Scaling {
        broker: build.id(&s.source),
        group: group as u16,
        poll_ns: ms_to_ns(s.autoscale.poll_interval_ms.0).max(1),
        autoscaler: Autoscaler::new(s.autoscale.policy(partitions)),
    })
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;

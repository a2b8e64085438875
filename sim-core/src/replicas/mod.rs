//! Replicated consumers: `replicas = N` on a `[consumers.NAME]` table (of
//! either kind) makes N identical members, `NAME-1` .. `NAME-N`, each a
//! consumer node of the table's kind with the table's settings, and the
//! group's controller, `NAME-controller` (a node of the
//! `consumer-controller` kind, which no table names). The table's own node
//! `NAME` is only the group's name: it runs nothing, as a queue cluster's
//! table does. Faults, `dedup_store`, domains and expectations see the
//! members by their names; a member with a `group_instance_id` gets
//! `ID-i`.
//!
//! The controller is what a Kubernetes Deployment is to its pods: it counts
//! the members it runs (the gauges `consumers.NAME` and
//! `consumer_cost_per_hour.NAME`, from which the summary's
//! `consumer_hours` and cost come) and, for a log consumer with
//! `autoscale`, adds and removes members on the group's lag
//! ([`autoscaler`]): a member it adds is sent [`ControlMsg::Start`] (it
//! waits out its start-up delay, then joins the group: a rebalance); one it
//! removes is sent [`ControlMsg::Stop`] (it commits what it processed and
//! leaves the group: a rebalance). The pool of members is
//! `max(replicas, max_replicas)`; those beyond `replicas` start stopped.
//!
//! Left out: the controller counts a member it started as running even
//! while a crash fault holds it down (a pod restarting is still billed);
//! queue consumers are replicated but never autoscaled (RabbitMQ's
//! queue-length scaler is not modelled).
//!
//! [`ControlMsg::Start`]: crate::protocol::ControlMsg::Start
//! [`ControlMsg::Stop`]: crate::protocol::ControlMsg::Stop

pub mod autoscaler;
mod controller;
pub mod cost;

pub use autoscaler::{Autoscaler, Decision, Policy};
pub use controller::{Controller, ControllerTimer};

use crate::engine::{boxed, Component, Ctx, DynComponent, NoTimer};
use crate::kind::{Build, Invalid, Kind, KindPlot, Member, Node, PANEL_BREAK};
use crate::message::{Msg, NodeId};
use crate::time::ms_to_ns;
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// The most members a replicated table may have.
pub const MAX_REPLICAS: u32 = 1000;

/// The price of one running consumer per hour, in dollars, by default.
pub const DEFAULT_PRICE_PER_HOUR: f64 = 0.10;

/// Serde's default for `price_per_hour`.
pub fn default_price() -> f64 {
    DEFAULT_PRICE_PER_HOUR
}

/// Which member of a replicated table a node is (set by the table, never
/// written in a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberOf {
    /// Its number, from 1.
    pub index: u32,
    /// Whether it runs from the start (else it waits for the controller).
    pub running: bool,
}

/// How a group's controller adds and removes members
/// (`[consumers.NAME.autoscale]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleSpec {
    /// Never fewer members running.
    #[serde(default = "one")]
    pub min_replicas: u32,
    /// Never more members running (nor more than the topic's partitions,
    /// as KEDA's Kafka scaler caps it).
    pub max_replicas: u32,
    /// A member is added when the group's lag (the age of its oldest
    /// uncommitted record) stays above this...
    #[serde(default = "default_up_lag")]
    pub scale_up_lag_s: f64,
    /// ... for this long.
    #[serde(default = "default_up_window")]
    pub scale_up_window_ms: Millis,
    /// A member is removed when the lag stays below this...
    #[serde(default = "default_down_lag")]
    pub scale_down_lag_s: f64,
    /// ... for this long (Kubernetes' scale-down stabilization, 5 min).
    #[serde(default = "default_down_window")]
    pub scale_down_window_ms: Millis,
    /// The least time between two changes.
    #[serde(default = "default_cooldown")]
    pub cooldown_ms: Millis,
    /// How often the controller asks the broker for the lag (the HPA's
    /// sync period, 15 s).
    #[serde(default = "default_poll")]
    pub poll_interval_ms: Millis,
    /// How long a new member takes to start before it joins the group
    /// (a pod's scheduling and start-up).
    #[serde(default)]
    pub startup_delay_ms: Millis,
}

fn one() -> u32 {
    1
}
fn default_up_lag() -> f64 {
    5.0
}
fn default_up_window() -> Millis {
    Millis(30_000.0)
}
fn default_down_lag() -> f64 {
    1.0
}
fn default_down_window() -> Millis {
    Millis(300_000.0)
}
fn default_cooldown() -> Millis {
    Millis(60_000.0)
}
fn default_poll() -> Millis {
    Millis(15_000.0)
}

impl AutoscaleSpec {
    /// The policy, with `cap` (the topic's partitions) as a further bound.
    pub fn policy(&self, cap: u32) -> Policy {
        let s = |x: f64| (x * 1e9).round().max(0.0) as u64;
        Policy {
            min: self.min_replicas as usize,
            max: self.max_replicas.min(cap).max(self.min_replicas.min(cap)) as usize,
            up_lag_ns: s(self.scale_up_lag_s),
            up_window_ns: ms_to_ns(self.scale_up_window_ms.0),
            down_lag_ns: s(self.scale_down_lag_s),
            down_window_ns: ms_to_ns(self.scale_down_window_ms.0),
            cooldown_ns: ms_to_ns(self.cooldown_ms.0),
        }
    }

    /// Checks the policy's numbers, for a group of `replicas` members
    /// reading `partitions` partitions; paths under `node`'s `autoscale`.
    pub fn check(&self, node: &Node, replicas: u32, partitions: u32) -> Result<(), Invalid> {
        let fail = |field: &str, m: String| Err(node.invalid_at(&["autoscale", field], m));
        if self.min_replicas == 0 {
            return fail("min_replicas", "expected at least 1".into());
        }
        if self.max_replicas < self.min_replicas || self.max_replicas > MAX_REPLICAS {
            let m = format!("expected from min_replicas ({}) to {MAX_REPLICAS}", self.min_replicas);
            return fail("max_replicas", m);
        }
        if self.min_replicas > partitions {
            let m = format!("the topic has {partitions} partitions: a member beyond them would sit idle");
            return fail("min_replicas", m);
        }
        if replicas < self.min_replicas || replicas > self.max_replicas.min(partitions) {
            let m = format!(
                "`replicas` ({replicas}) is where the autoscaler starts: expected from min_replicas ({}) to the smaller of max_replicas ({}) and the topic's partitions ({partitions})",
                self.min_replicas, self.max_replicas
            );
            return Err(node.invalid("replicas", m));
        }
        for (field, v) in [("scale_up_lag_s", self.scale_up_lag_s), ("scale_down_lag_s", self.scale_down_lag_s)] {
            if !(v.is_finite() && v >= 0.0) {
                return fail(field, "expected a number of seconds, 0 or more".into());
            }
        }
        if self.scale_down_lag_s >= self.scale_up_lag_s {
            let m = format!("expected below scale_up_lag_s ({} s), or the group would flap", self.scale_up_lag_s);
            return fail("scale_down_lag_s", m);
        }
        for (field, v) in [
            ("scale_up_window_ms", self.scale_up_window_ms.0),
            ("scale_down_window_ms", self.scale_down_window_ms.0),
            ("cooldown_ms", self.cooldown_ms.0),
            ("startup_delay_ms", self.startup_delay_ms.0),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return fail(field, "expected a duration, 0 or more".into());
            }
        }
        if !(self.poll_interval_ms.0.is_finite() && self.poll_interval_ms.0 > 0.0) {
            return fail("poll_interval_ms", "expected a duration above 0".into());
        }
        Ok(())
    }
}

/// The name of member `index` (from 1) of table `table`.
pub fn member_name(table: &str, index: u32) -> String {
    format!("{table}-{index}")
}

/// The name of table `table`'s controller.
pub fn controller_name(table: &str) -> String {
    format!("{table}-controller")
}

/// The members of a replicated table of kind `K` whose controller is
/// `c`: `c.pool` consumers, the first `c.running` of them running from the
/// start, each with the table's spec as `member` makes it, then the
/// controller.
pub fn members<K: Kind + Clone>(
    c: ControllerSpec,
    kind: K,
    spec: &K::Spec,
    member: impl Fn(&K::Spec, MemberOf) -> K::Spec,
) -> Vec<Member> {
    // Listed before validation: a count out of range must not allocate.
    let pool = c.pool.min(MAX_REPLICAS);
    let table = c.table.clone();
    let mut out: Vec<Member> = (1..=pool)
        .map(|i| {
            let of = MemberOf { index: i, running: i <= c.running };
            Member::new(member_name(&table, i), kind.clone(), member(spec, of))
        })
        .collect();
    if pool > 0 {
        out.push(Member::new(controller_name(&table), ControllerKind, c));
    }
    out
}

/// Checks `replicas` and `price_per_hour` of a table.
pub fn check_replicas(node: &Node, replicas: Option<u32>, price_per_hour: f64) -> Result<(), Invalid> {
    if let Some(n) = replicas {
        if !(1..=MAX_REPLICAS).contains(&n) {
            return node.fail("replicas", format!("expected from 1 to {MAX_REPLICAS}"));
        }
    }
    if !(price_per_hour.is_finite() && price_per_hour >= 0.0) {
        return node.fail("price_per_hour", "expected a price in dollars, 0 or more");
    }
    Ok(())
}

/// The node of a replicated table: the group's name only; it runs nothing.
pub struct GroupName;

impl Component for GroupName {
    type Timer = NoTimer;
    fn start(&mut self, _: &mut Ctx<NoTimer>) {}
    fn on_message(&mut self, _: &mut Ctx<NoTimer>, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, _: &mut Ctx<NoTimer>, _: NoTimer) {}
    fn crash(&mut self) {}
}

/// A controller as its table makes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ControllerSpec {
    /// The replicated table it runs.
    pub table: String,
    /// Its members.
    pub pool: u32,
    /// How many run from the start.
    pub running: u32,
    /// The price of one running member per hour.
    pub price_per_hour: f64,
    /// For an autoscaled log consumer group: how it scales.
    pub scaling: Option<ScalingSpec>,
}

/// What an autoscaling controller reads and decides with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScalingSpec {
    /// The log broker its group reads.
    pub source: String,
    /// The group's name.
    pub group: String,
    /// The topic the group reads.
    pub topic: String,
    /// The policy.
    pub autoscale: AutoscaleSpec,
}

/// The kind of a replicated table's controller (no table names it).
#[derive(Clone, Copy)]
pub struct ControllerKind;

/// The gauges a controller reports.
pub const CONSUMERS: &str = "consumers";
/// See [`CONSUMERS`].
pub const COST_PER_HOUR: &str = "consumer_cost_per_hour";

impl Kind for ControllerKind {
    type Spec = ControllerSpec;
    const NAME: &'static str = "consumer-controller";
    const SECTION: &'static str = "consumers";
    const GAUGES: &'static [&'static str] = &[CONSUMERS, COST_PER_HOUR];
    const PLOTS: &'static [KindPlot] = &[KindPlot {
        name: "lag-consumers",
        title: "Consumer lag against consumer count",
        y_label: "lag (seconds) | consumers running",
        gauges: &["lag_seconds", PANEL_BREAK, CONSUMERS],
    }];

    fn build(&self, _node: &Node, spec: &ControllerSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(controller::build(spec, build))
    }
}

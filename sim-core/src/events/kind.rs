//! The `projection`, `crawler` and `watcher` kinds: their tables, checks
//! and construction.

use super::syncer::{self, Role, Syncer};
use super::{projection, Projection, Setup};
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Invalid, Kind, KindPlot, Node, Topology};
use crate::time::ms_to_ns;
use crate::units::{Millis, Rate};
use serde::{Deserialize, Serialize};

/// How a projection uses its records' versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Each key's events in sequence: a gap waits, a duplicate is skipped.
    #[default]
    Sequence,
    /// The newest version wins: an older one is refused.
    Version,
    /// Whatever comes last wins: no check.
    Arrival,
}

/// A projection as written in a scenario file (`[projections.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionSpec {
    /// How records' versions are used (default `"sequence"`).
    #[serde(default)]
    pub order: Order,
    /// A time-travel projection: applies only records below this offset
    /// (of each partition), and reports what it reached as metrics.
    #[serde(default)]
    pub stop_at_offset: Option<u64>,
    /// The effect domain of its writes (default: its name).
    #[serde(default)]
    pub domain: Option<String>,
    /// How long applying one event takes (default 0).
    #[serde(default)]
    pub apply_ms: Option<Millis>,
    /// Take a snapshot of the state every this many applied events.
    #[serde(default)]
    pub snapshot_every: Option<u64>,
    /// Start from the newest snapshot of this projection.
    #[serde(default)]
    pub restore_from: Option<String>,
    /// Report the catch-up: `replay_events` and `replay_ms`.
    #[serde(default)]
    pub replay: bool,
}

/// The plot of drift every scenario with a projection gets.
const DRIFT: KindPlot = KindPlot {
    name: "drift",
    title: "Drift: replica keys behind the newest write",
    y_label: "keys",
    gauges: &["stale_replicas"],
};

/// The projection kind (`[projections.NAME]`).
pub struct ProjectionKind;

impl Kind for ProjectionKind {
    type Spec = ProjectionSpec;
    const NAME: &'static str = "projection";
    const SECTION: &'static str = "projections";
    const METRICS: &'static [&'static str] = &projection::METRICS;
    const PLOTS: &'static [KindPlot] = &[DRIFT];
    const GAUGES: &'static [&'static str] = &["stale_replicas"];
    const SINK: bool = true;

    fn validate(&self, node: &Node, s: &ProjectionSpec, topology: &Topology) -> Result<(), Invalid> {
        node.check_name("domain", s.domain.as_deref())?;
        if s.stop_at_offset.is_some() && s.domain.is_some() {
            return node
                .fail("domain", "a time-travel projection (`stop_at_offset`) applies no effect: remove `domain`");
        }
        if s.snapshot_every == Some(0) {
            return node.fail("snapshot_every", "expected at least 1 (events between two snapshots)");
        }
        if s.replay && s.stop_at_offset.is_some() {
            return node.fail(
                "replay",
                "a time-travel projection (`stop_at_offset`) stops early: it has no catch-up to measure",
            );
        }
        if s.apply_ms.is_some_and(|a| a.0 < 0.0) {
            return node.fail("apply_ms", "expected a duration of 0 or more");
        }
        check_restore(node, s, topology)
    }

    fn domain(&self, s: &ProjectionSpec, topology: &Topology) -> Option<String> {
        if s.stop_at_offset.is_some() {
            return None;
        }
        let name = || topology.specs::<ProjectionSpec>().find(|(_, x)| std::ptr::eq(*x, s)).map(|(n, _)| n.to_string());
        s.domain.clone().or_else(name)
    }

    fn build(&self, node: &Node, s: &ProjectionSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let snapshots = |build: &mut Build, name: &str| build.store(format!("snapshots of {name}"));
        boxed(Projection::new(Setup {
            order: s.order,
            stop_at: s.stop_at_offset,
            apply: ms_to_ns(s.apply_ms.map_or(0.0, |m| m.0)),
            snapshot: s.snapshot_every.map(|every| (every, snapshots(build, node.name()))),
            restore: s.restore_from.as_deref().map(|from| snapshots(build, from)),
            replay: s.replay,
        }))
    }
}

/// A crawler or a watcher as written in a scenario file (`[syncs.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncerSpec {
    /// The projection its copies go to.
    pub destination: String,
    /// A crawler: when it lists the source's keys and starts copying
    /// them; a watcher: its first round (default 0).
    #[serde(default)]
    pub start_ms: Option<Millis>,
    /// A crawler: keys read per second (default 100).
    #[serde(default)]
    pub rate_per_s: Option<Rate>,
    /// A watcher: time between two rounds (default 5000).
    #[serde(default)]
    pub interval_ms: Option<Millis>,
    /// From reading a key to sending its copy (transforming it; default 0).
    #[serde(default)]
    pub copy_ms: Option<Millis>,
}

impl SyncerSpec {
    fn start(&self) -> f64 {
        self.start_ms.map_or(0.0, |m| m.0)
    }
    fn copy(&self) -> f64 {
        self.copy_ms.map_or(0.0, |m| m.0)
    }
}

/// `restore_from` names another projection that takes snapshots.
fn check_restore(node: &Node, s: &ProjectionSpec, topology: &Topology) -> Result<(), Invalid> {
    let Some(from) = &s.restore_from else { return Ok(()) };
    let takers = || {
        let names = topology.specs::<ProjectionSpec>().filter(|(_, p)| p.snapshot_every.is_some()).map(|(n, _)| n);
        crate::kind::quoted(names)
    };
    match topology.spec::<ProjectionSpec>(from) {
        Some(p) if p.snapshot_every.is_some() && from != node.name() => Ok(()),
        _ => node.fail(
            "restore_from",
            format!("`{from}` is no other projection that takes snapshots (those that do: {})", takers()),
        ),
    }
}

fn check_destination(node: &Node, s: &SyncerSpec, topology: &Topology) -> Result<(), Invalid> {
    match topology.node(&s.destination) {
        Some(d) if d.kind() == ProjectionKind::NAME => Ok(()),
        Some(d) => {
            node.fail("destination", format!("`{}` is a {}: copies go to a projection", s.destination, d.kind()))
        }
        None => node.fail(
            "destination",
            format!("no node named `{}` (projections: {})", s.destination, topology.list("projections")),
        ),
    }
}

/// The crawler kind (`[syncs.NAME] kind = "crawler"`).
pub struct CrawlerKind;

impl Kind for CrawlerKind {
    type Spec = SyncerSpec;
    const NAME: &'static str = "crawler";
    const SECTION: &'static str = "syncs";
    const METRICS: &'static [&'static str] = &syncer::METRICS;

    fn validate(&self, node: &Node, s: &SyncerSpec, topology: &Topology) -> Result<(), Invalid> {
        if s.interval_ms.is_some() {
            return node.fail("interval_ms", "a crawler copies each key once: `interval_ms` is a watcher's");
        }
        if s.rate_per_s.is_some_and(|r| r.0 <= 0.0) {
            return node.fail("rate_per_s", "expected above 0");
        }
        if s.copy_ms.is_some_and(|c| c.0 < 0.0) {
            return node.fail("copy_ms", "expected a duration of 0 or more");
        }
        check_destination(node, s, topology)
    }

    fn build(&self, _node: &Node, s: &SyncerSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let every = 1000.0 / s.rate_per_s.map_or(100.0, |r| r.0);
        boxed(Syncer::new(Role::Crawler, build.id(&s.destination), s.start(), every, s.copy()))
    }
}

/// The watcher kind (`[syncs.NAME] kind = "watcher"`).
pub struct WatcherKind;

impl Kind for WatcherKind {
    type Spec = SyncerSpec;
    const NAME: &'static str = "watcher";
    const SECTION: &'static str = "syncs";
    const METRICS: &'static [&'static str] = &syncer::METRICS;

    fn validate(&self, node: &Node, s: &SyncerSpec, topology: &Topology) -> Result<(), Invalid> {
        if s.rate_per_s.is_some() {
            return node.fail("rate_per_s", "a watcher copies every key each round: `rate_per_s` is a crawler's");
        }
        if s.interval_ms.is_some_and(|i| i.0 < 1.0) {
            return node.fail("interval_ms", "expected at least 1 ms (a round reads every key)");
        }
        check_destination(node, s, topology)
    }

    fn build(&self, _node: &Node, s: &SyncerSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let every = s.interval_ms.map_or(5000.0, |i| i.0);
        boxed(Syncer::new(Role::Watcher, build.id(&s.destination), s.start(), every, s.copy()))
    }
}

//! The `table`, `cache` and `readers` kinds: their tables in a scenario
//! file (`[tables.NAME]`, `[caches.NAME]`, `[readers.NAME]`), defaults,
//! checks and construction.

use super::{cache, readers, table, Cache, Readers, Table};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Invalid, Kind, KindPlot, Node, Topology};
use crate::producer::{check_keys, Arrival, Keys, ProducerSpec};
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// The plot every scenario with a table gets: the observer's gauges of
/// replicated state over time.
const CONSISTENCY_PLOT: KindPlot = KindPlot {
    name: "consistency-over-time",
    title: "Replicas behind the newest write, and writes not yet visible everywhere",
    y_label: "count",
    gauges: &["stale_replicas", "open_windows"],
};

/// The plot every scenario with readers gets: every read's staleness by
/// percentile, fresh reads at 0 (see [`crate::kind::STALENESS`]).
const STALENESS_PLOT: KindPlot = KindPlot {
    name: "staleness-cdf",
    title: "Read staleness by percentile (how long each answer had been out of date)",
    y_label: "ms",
    gauges: &[crate::kind::STALENESS],
};

/// The observer's gauges of replicated state.
const CONSISTENCY_GAUGES: [&str; 2] = ["stale_replicas", "open_windows"];

fn five_ms() -> Dist {
    Dist::constant_ms(5.0)
}

fn one_ms() -> Dist {
    Dist::constant_ms(1.0)
}

fn one_s() -> Millis {
    Millis(1000.0)
}

/// A table as written in a scenario file (`[tables.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The time to answer one read (times the node's slow factor; default
    /// a constant 5 ms).
    #[serde(default = "five_ms")]
    pub read_latency: Dist,
    /// A write older than the one a row holds leaves the row as it is
    /// (default false: the last write to arrive wins).
    #[serde(default)]
    pub versioned: bool,
    /// The effect domain of its writes (default: the table's name).
    #[serde(default)]
    pub domain: Option<String>,
}

/// The table kind (`[tables.NAME]`).
pub struct TableKind;

impl Kind for TableKind {
    type Spec = TableSpec;
    const NAME: &'static str = "table";
    const SECTION: &'static str = "tables";
    const METRICS: &'static [&'static str] = &table::METRICS;
    const GAUGES: &'static [&'static str] = &CONSISTENCY_GAUGES;
    const PLOTS: &'static [KindPlot] = &[CONSISTENCY_PLOT];
    const SINK: bool = true;

    fn validate(&self, node: &Node, s: &TableSpec, _topology: &Topology) -> Result<(), Invalid> {
        s.read_latency.check().map_err(|m| node.invalid("read_latency", m))?;
        node.check_name("domain", s.domain.as_deref())
    }

    fn domain(&self, s: &TableSpec, topology: &Topology) -> Option<String> {
        // The default domain is the table's own name: `s` is the spec its
        // node holds in `topology`, so the node is the one holding it.
        let name = || topology.specs::<TableSpec>().find(|(_, x)| std::ptr::eq(*x, s)).map(|(n, _)| n.to_string());
        s.domain.clone().or_else(name)
    }

    fn build(&self, _node: &Node, s: &TableSpec, _build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Table::new(s))
    }
}

/// A cache as written in a scenario file (`[caches.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// The table behind it: a miss reads it.
    pub table: String,
    /// The time to answer one read, hit or miss (times the node's slow
    /// factor; default a constant 1 ms).
    #[serde(default = "one_ms")]
    pub latency: Dist,
    /// An entry expires this long after it was set (absent: never).
    #[serde(default)]
    pub ttl_ms: Option<Millis>,
}

/// The cache kind (`[caches.NAME]`).
pub struct CacheKind;

impl Kind for CacheKind {
    type Spec = CacheSpec;
    const NAME: &'static str = "cache";
    const SECTION: &'static str = "caches";
    const METRICS: &'static [&'static str] = &cache::METRICS;

    fn validate(&self, node: &Node, s: &CacheSpec, topology: &Topology) -> Result<(), Invalid> {
        if topology.spec::<TableSpec>(&s.table).is_none() {
            return node.fail("table", format!("no table named `{}` (tables: {})", s.table, topology.list("tables")));
        }
        s.latency.check().map_err(|m| node.invalid("latency", m))?;
        if s.ttl_ms.is_some_and(|t| t.0 <= 0.0) {
            return node.fail("ttl_ms", "expected a time above 0 (leave it out for entries that never expire)");
        }
        Ok(())
    }

    fn build(&self, _node: &Node, s: &CacheSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Cache::new(s, build.id(&s.table)))
    }
}

/// Readers as written in a scenario file (`[readers.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadersSpec {
    /// The table or cache they read.
    pub target: String,
    /// When they read someone else's key (absent: only own reads).
    #[serde(default)]
    pub arrival: Option<Arrival>,
    /// Which keys those reads are of.
    #[serde(default)]
    pub keys: Keys,
    /// How long after a user is told their create is made they open it
    /// (absent: no own reads).
    #[serde(default)]
    pub own_delay: Option<Dist>,
    /// How long a read waits for its answer before it is given up
    /// (`read-timeout`; default 1 s).
    #[serde(default = "one_s")]
    pub timeout_ms: Millis,
}

/// The readers kind (`[readers.NAME]`).
pub struct ReadersKind;

impl Kind for ReadersKind {
    type Spec = ReadersSpec;
    const NAME: &'static str = "readers";
    const SECTION: &'static str = "readers";
    const METRICS: &'static [&'static str] = &readers::METRICS;
    const ERRORS: &'static [&'static str] = &readers::ERRORS;
    const PLOTS: &'static [KindPlot] = &[STALENESS_PLOT];

    fn validate(&self, node: &Node, s: &ReadersSpec, topology: &Topology) -> Result<(), Invalid> {
        if topology.spec::<TableSpec>(&s.target).is_none() && topology.spec::<CacheSpec>(&s.target).is_none() {
            let all = format!("{} {}", topology.list("tables"), topology.list("caches"));
            return node.fail("target", format!("no table or cache named `{}` (have: {})", s.target, all.trim()));
        }
        if let Some(a) = &s.arrival {
            a.check().map_err(|m| node.invalid("arrival", m))?;
        }
        check_keys(node, &s.keys)?;
        if let Some(d) = &s.own_delay {
            d.check().map_err(|m| node.invalid("own_delay", m))?;
            let told = topology
                .specs::<ProducerSpec>()
                .any(|(_, p)| p.writes.as_ref().is_some_and(|w| w.users.as_deref() == Some(node.name())));
            if !told {
                return node.fail(
                    "own_delay",
                    format!(
                        "no producer tells these readers of its writes: add `writes.users = \"{}\"` to one",
                        node.name()
                    ),
                );
            }
        }
        if s.arrival.is_none() && s.own_delay.is_none() {
            return node.fail("arrival", "these readers would never read: give `arrival`, `own_delay`, or both");
        }
        if s.timeout_ms.0 <= 0.0 {
            return node.fail("timeout_ms", "expected a time above 0");
        }
        Ok(())
    }

    fn build(&self, _node: &Node, s: &ReadersSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Readers::new(s, build.id(&s.target)))
    }
}

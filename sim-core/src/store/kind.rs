//! The `store` kind: the `[stores.NAME]` table, its defaults, its checks
//! and the construction of a [`Store`].

use super::{Store, METRICS};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Invalid, Kind, Node, Topology};
use serde::{Deserialize, Serialize};

/// A store as written in a scenario file (`[stores.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// The time to serve one call (times the node's slow factor).
    pub latency: Dist,
    /// Calls served at once (a connection pool); 0: unlimited.
    #[serde(default)]
    pub concurrency: u32,
    /// Every successful call is a write: it applies its record's effect in
    /// the store's domain (default true).
    #[serde(default = "yes")]
    pub writes: bool,
    /// The effect domain of its writes (default: the store's name).
    #[serde(default)]
    pub domain: Option<String>,
}

fn yes() -> bool {
    true
}

/// The store kind (`[stores.NAME]`, the only kind of its section).
pub struct StoreKind;

impl Kind for StoreKind {
    type Spec = StoreSpec;
    const NAME: &'static str = "store";
    const SECTION: &'static str = "stores";
    const METRICS: &'static [&'static str] = &METRICS;
    const ACCEPTS_ERRORS_FAULT: bool = true;

    fn validate(&self, node: &Node, s: &StoreSpec, _topology: &Topology) -> Result<(), Invalid> {
        s.latency.check().map_err(|m| node.invalid("latency", m))?;
        node.check_name("domain", s.domain.as_deref())?;
        if s.domain.is_some() && !s.writes {
            return node.fail("domain", "a store with `writes = false` applies no effect: remove `domain`");
        }
        Ok(())
    }

    fn domain(&self, s: &StoreSpec, topology: &Topology) -> Option<String> {
        if !s.writes {
            return None;
        }
        // The default domain is the store's own name: `s` is the spec its
        // node holds in `topology`, so the node is the one holding it.
        let name = || topology.specs::<StoreSpec>().find(|(_, x)| std::ptr::eq(*x, s)).map(|(n, _)| n.to_string());
        s.domain.clone().or_else(name)
    }

    fn build(&self, _node: &Node, s: &StoreSpec, _build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Store::new(s))
    }
}

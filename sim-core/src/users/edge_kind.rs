//! The `edge` kind: the `[edges.NAME]` table, its defaults, its checks
//! (a queue broker without exchanges) and the construction of an [`Edge`].

use super::edge::{Edge, EDGE_METRICS};
use crate::broker::QueueSpec;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Invalid, Kind, Node, Topology};
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// An edge as written in a scenario file (`[edges.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    /// The queue broker it publishes accepted requests to.
    pub queue: String,
    /// How long it waits for the broker's confirm before answering 503
    /// (default 1 s).
    #[serde(default = "default_1s")]
    pub confirm_timeout_ms: Millis,
    /// Whether it calls users back when a job finishes (default false).
    #[serde(default)]
    pub callbacks: bool,
    /// The time between two sends of an unacked callback (default 1 s).
    #[serde(default = "default_1s")]
    pub callback_retry_ms: Millis,
}

fn default_1s() -> Millis {
    Millis(1000.0)
}

/// The edge kind (`[edges.NAME]`).
pub struct EdgeKind;

impl Kind for EdgeKind {
    type Spec = EdgeSpec;
    const NAME: &'static str = "edge";
    const SECTION: &'static str = "edges";
    const METRICS: &'static [&'static str] = &EDGE_METRICS;

    fn validate(&self, node: &Node, e: &EdgeSpec, topology: &Topology) -> Result<(), Invalid> {
        let Some(q) = topology.spec::<QueueSpec>(&e.queue) else {
            let why = format!("no queue broker named `{}` (brokers: {})", e.queue, topology.list("brokers"));
            return node.fail("queue", why);
        };
        if q.routes() {
            let why = format!("`{}` routes through exchanges, and an edge's publishes carry no routing key: use a broker without `queues`", e.queue);
            return node.fail("queue", why);
        }
        if e.confirm_timeout_ms.0 <= 0.0 {
            return node.fail("confirm_timeout_ms", "expected above 0");
        }
        if e.callback_retry_ms.0 <= 0.0 {
            return node.fail("callback_retry_ms", "expected above 0");
        }
        Ok(())
    }

    fn build(&self, _node: &Node, e: &EdgeSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Edge::new(e, build.id(&e.queue)))
    }
}

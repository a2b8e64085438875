//! The `client` kind: the `[clients.NAME]` table, its defaults, its
//! checks (two queue brokers of its own) and the construction of a
//! [`Client`].

use super::{Client, METRICS};
use crate::broker::LogSpec;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, Node, Topology};
use crate::producer::{check_keys, Arrival, Keys};
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// A client as written in a scenario file (`[clients.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// The broker it sends requests to.
    pub target: String,
    /// The broker it reads responses from (its own).
    pub responses: String,
    /// When requests are made.
    pub arrival: Arrival,
    /// How many requests to make; unlimited when absent (then the run
    /// needs a `run.duration_ms`).
    #[serde(default)]
    pub messages: Option<u64>,
    /// Which keys requests carry.
    #[serde(default)]
    pub keys: Keys,
    /// How long an attempt waits for its response (default 1 s).
    #[serde(default = "default_timeout")]
    pub timeout_ms: Millis,
    /// How many times a timed-out request is sent again (default 0).
    #[serde(default)]
    pub retries: u32,
    /// Pause between a timeout and the retry (default 0).
    #[serde(default)]
    pub retry_backoff_ms: Millis,
    /// Unacknowledged responses the response broker may push at once (default 100).
    #[serde(default = "default_prefetch")]
    pub prefetch: u32,
    /// How long to wait for the response broker to confirm the
    /// subscription before asking again (default 1 s).
    #[serde(default = "default_resubscribe")]
    pub resubscribe_ms: Millis,
    /// The effect domain of the client's effect (a response received).
    /// Default: `responses`.
    #[serde(default)]
    pub domain: Option<String>,
}

impl ClientSpec {
    /// The name of this client's effect domain.
    pub fn domain_name(&self) -> String {
        self.domain.clone().unwrap_or_else(|| "responses".to_string())
    }
}

fn default_timeout() -> Millis {
    Millis(1000.0)
}

fn default_prefetch() -> u32 {
    100
}

fn default_resubscribe() -> Millis {
    Millis(1000.0)
}

/// The client kind (`[clients.NAME]`, the default of its section).
pub struct ClientKind;

impl Kind for ClientKind {
    type Spec = ClientSpec;
    const NAME: &'static str = "client";
    const SECTION: &'static str = "clients";
    const METRICS: &'static [&'static str] = &METRICS;

    fn validate(&self, node: &Node, k: &ClientSpec, topology: &Topology) -> Result<(), Invalid> {
        for (field, b) in [("target", &k.target), ("responses", &k.responses)] {
            if !topology.is_in(b, "brokers") {
                return node.fail(field, format!("no broker named `{b}` (brokers: {})", topology.list("brokers")));
            }
            if topology.spec::<crate::broker::QueueSpec>(b).is_some_and(crate::broker::QueueSpec::routes) {
                let why = format!("`{b}` routes through exchanges, and a client's messages carry no routing key: use a broker without `queues`");
                return node.fail(field, why);
            }
        }
        if k.responses == k.target {
            let message = "expected a broker other than `target`: responses need a queue of their own";
            return node.fail("responses", message);
        }
        let earlier = topology.specs::<ClientSpec>().take_while(|(name, _)| *name != node.name());
        if let Some((other, _)) = earlier.into_iter().find(|(_, c)| c.responses == k.responses) {
            return node.fail(
                "responses",
                format!("client `{other}` already reads `{}`: each client needs its own response queue", k.responses),
            );
        }
        k.arrival.check().map_err(|m| node.invalid("arrival", m))?;
        node.check_name("domain", k.domain.as_deref())?;
        if k.messages == Some(0) {
            return node.fail("messages", "expected at least 1 (remove the client to send nothing)");
        }
        if k.prefetch == 0 {
            return node.fail("prefetch", "expected at least 1");
        }
        check_keys(node, &k.keys)?;
        // Requests are publishes: a log broker takes produce requests to a topic instead.
        for (field, b) in [("target", &k.target), ("responses", &k.responses)] {
            if topology.spec::<LogSpec>(b).is_some() {
                return node.fail(field, format!("`{b}` is a log broker: clients talk to queue brokers"));
            }
        }
        Ok(())
    }

    fn domain(&self, k: &ClientSpec, _topology: &Topology) -> Option<String> {
        Some(k.domain_name())
    }

    fn messages(&self, k: &ClientSpec) -> Option<Option<u64>> {
        Some(k.messages)
    }

    fn footprint(&self, p: &ClientSpec) -> Footprint {
        Footprint { produces_per_s: p.arrival.mean_rate_per_s(), ..Footprint::default() }
    }

    fn build(&self, _node: &Node, k: &ClientSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Client::new(k, build.id(&k.target), build.id(&k.responses)))
    }
}

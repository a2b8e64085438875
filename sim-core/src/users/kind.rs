//! The `users` kind: the `[users.NAME]` table, its defaults, its checks
//! (open or closed loop, a target that answers calls, an edge for an
//! asynchronous outcome) and the construction of [`Users`].

use super::{Users, METRICS};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, KindPlot, Node, Topology};
use crate::producer::{check_keys, Arrival, Keys};
pub use crate::reliable::Jitter;
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// How a user learns the outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The reply is the outcome (a synchronous call).
    Response,
    /// After a 202, poll the target's status endpoint until it is Finished.
    Poll,
    /// After a 202, wait for the edge's callback (`Done`), and ack it.
    Callback,
}

/// Users as written in a scenario file (`[users.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSpec {
    /// The node they call: a service, a store, or an edge.
    pub target: String,
    /// Open loop: when requests are made (exclusive with `users`).
    #[serde(default)]
    pub arrival: Option<Arrival>,
    /// Closed loop: how many users, each requesting, waiting for the
    /// answer, thinking, and requesting again (exclusive with `arrival`).
    #[serde(default)]
    pub users: Option<u32>,
    /// Closed loop: a user's think time between an answer and its next
    /// request (default 0).
    #[serde(default)]
    pub think: Option<Dist>,
    /// How many requests to make; unlimited when absent (then the run
    /// needs a `run.duration_ms`).
    #[serde(default)]
    pub messages: Option<u64>,
    /// Which keys requests carry.
    #[serde(default)]
    pub keys: Keys,
    /// How long a user waits for the reply to one attempt (default 1 s).
    #[serde(default = "default_1s")]
    pub timeout_ms: Millis,
    /// How many times a failed attempt (timeout, 500, 503, 504) is retried
    /// (default 0).
    #[serde(default)]
    pub retries: u32,
    /// The first backoff before a retry, doubled at each further retry
    /// (default 100 ms).
    #[serde(default = "default_backoff")]
    pub retry_backoff_ms: Millis,
    /// How the backoff is spread: `none` or `full` (default `none`).
    #[serde(default)]
    pub jitter: Jitter,
    /// How the outcome is learnt: `response`, `poll` or `callback`.
    #[serde(default = "default_outcome")]
    pub outcome: Outcome,
    /// With `outcome = "poll"`: the time between two polls (default 1 s).
    #[serde(default = "default_1s")]
    pub poll_interval_ms: Millis,
    /// The users' effect domain: a request's effect is applied there when
    /// the user learns it succeeded. Default: `responses`.
    #[serde(default)]
    pub domain: Option<String>,
}

impl UsersSpec {
    /// The name of the users' effect domain.
    pub fn domain_name(&self) -> String {
        self.domain.clone().unwrap_or_else(|| "responses".to_string())
    }
}

fn default_1s() -> Millis {
    Millis(1000.0)
}

fn default_backoff() -> Millis {
    Millis(100.0)
}

fn default_outcome() -> Outcome {
    Outcome::Response
}

/// The kinds a user may call.
const TARGETS: [&str; 3] = ["service", "store", "edge"];

/// The users kind (`[users.NAME]`).
pub struct UsersKind;

impl Kind for UsersKind {
    type Spec = UsersSpec;
    const NAME: &'static str = "users";
    const SECTION: &'static str = "users";
    const METRICS: &'static [&'static str] = &METRICS;
    const ERRORS: &'static [&'static str] =
        &["timeout", "server-error", "unavailable", "gateway-timeout", "job-failed"];
    const GAUGES: &'static [&'static str] =
        &["response_mean_ms", "response_p99_ms", "completion_mean_ms", "completion_p99_ms", "error_rate"];
    const PLOTS: &'static [KindPlot] = &[
        KindPlot {
            name: "response-time",
            title: "User-visible response time (mean and p99 per interval)",
            y_label: "response time (ms)",
            gauges: &["response_mean_ms", "response_p99_ms"],
        },
        KindPlot {
            name: "completion-time",
            title: "Time to the outcome known to the user (mean and p99 of those known in the interval)",
            y_label: "completion time (ms)",
            gauges: &["completion_mean_ms", "completion_p99_ms"],
        },
        KindPlot {
            name: "error-rate",
            title: "Requests that failed, of those settled in the interval",
            y_label: "error rate (fraction)",
            gauges: &["error_rate"],
        },
    ];

    fn validate(&self, node: &Node, u: &UsersSpec, topology: &Topology) -> Result<(), Invalid> {
        check_target(node, u, topology)?;
        check_load(node, u)?;
        if u.timeout_ms.0 <= 0.0 {
            return node.fail("timeout_ms", "expected above 0: a user waits a while for each attempt");
        }
        if u.outcome == Outcome::Poll && u.poll_interval_ms.0 <= 0.0 {
            return node.fail("poll_interval_ms", "expected above 0");
        }
        node.check_name("domain", u.domain.as_deref())?;
        check_keys(node, &u.keys)
    }

    fn domain(&self, u: &UsersSpec, _topology: &Topology) -> Option<String> {
        Some(u.domain_name())
    }

    fn messages(&self, u: &UsersSpec) -> Option<Option<u64>> {
        Some(u.messages)
    }

    fn footprint(&self, u: &UsersSpec) -> Footprint {
        let produces_per_s = match (&u.arrival, u.users) {
            (Some(a), _) => a.mean_rate_per_s(),
            // At most one request per user per think time (and per ms).
            (None, n) => {
                let think = u.think.as_ref().map_or(0.0, Dist::mean_ms);
                f64::from(n.unwrap_or(0)) * 1000.0 / think.max(1.0)
            }
        };
        Footprint { produces_per_s, ..Footprint::default() }
    }

    fn build(&self, _node: &Node, u: &UsersSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Users::new(u, build.id(&u.target)))
    }
}

/// The target answers calls, and an asynchronous outcome needs an edge.
fn check_target(node: &Node, u: &UsersSpec, topology: &Topology) -> Result<(), Invalid> {
    let Some(target) = topology.node(&u.target) else {
        return node.fail("target", format!("no node named `{}` (nodes: {})", u.target, topology.list_all()));
    };
    if !TARGETS.contains(&target.kind()) {
        let why = format!("`{}` is a {}: users call a service, a store or an edge", u.target, target.kind());
        return node.fail("target", why);
    }
    let edge = topology.spec::<crate::users::EdgeSpec>(&u.target);
    match (u.outcome, edge) {
        (Outcome::Response, Some(_)) => node.fail(
            "outcome",
            format!("`{}` is an edge, which answers 202 Accepted: use outcome = \"poll\" or \"callback\"", u.target),
        ),
        (Outcome::Poll | Outcome::Callback, None) => node.fail(
            "outcome",
            format!("`{}` is not an edge: only an edge has a status endpoint and calls back", u.target),
        ),
        (Outcome::Callback, Some(e)) if !e.callbacks => {
            node.fail("outcome", format!("edge `{}` makes no callbacks: set its `callbacks = true`, or poll", u.target))
        }
        _ => Ok(()),
    }
}

/// The most closed-loop users one table may hold (each costs its own
/// state and timer).
const MAX_USERS: u32 = 1_000_000;

/// Exactly one of an open loop (`arrival`) and a closed loop (`users`).
fn check_load(node: &Node, u: &UsersSpec) -> Result<(), Invalid> {
    match (&u.arrival, u.users) {
        (Some(_), Some(_)) => {
            node.fail("users", "`arrival` (an open loop) and `users` (a closed loop) exclude each other: keep one")
        }
        (None, None) => node.fail("arrival", "expected `arrival` (an open loop) or `users` (a closed loop)"),
        (Some(a), None) => {
            if u.think.is_some() {
                return node.fail("think", "think time belongs to a closed loop (`users`), not to `arrival`");
            }
            a.check().map_err(|m| node.invalid("arrival", m))
        }
        (None, Some(n)) if n > MAX_USERS => node.fail("users", format!("expected at most {MAX_USERS}")),
        (None, Some(_)) => match &u.think {
            Some(d) => d.check().map_err(|m| node.invalid("think", m)),
            None => Ok(()),
        },
    }
}

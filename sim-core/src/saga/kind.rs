//! The `saga` and `saga-step` kinds: the `[sagas.NAME]` and
//! `[participants.NAME]` tables, their defaults, their checks, and the
//! wiring of each participant into its saga (who comes before and after it
//! in a choreographed flow).

use super::{coordinator, step, Saga, Step};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, Node, Topology};
use crate::message::NodeId;
use crate::producer::{check_keys, Arrival, Keys};
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// How a saga's steps are coordinated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// A central coordinator calls each step.
    #[default]
    Orchestration,
    /// Each step reacts to the previous step's event.
    Choreography,
    /// A coordinator hands the last steps to a choreographed sub-flow.
    Hybrid,
}

/// A saga as written in a scenario file (`[sagas.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SagaSpec {
    /// How the steps are coordinated (default orchestration).
    #[serde(default)]
    pub style: Style,
    /// The participants, in workflow order.
    pub steps: Vec<String>,
    /// Hybrid only: the first step of the choreographed sub-flow (default
    /// the last step).
    #[serde(default)]
    pub subflow_from: Option<String>,
    /// When workflows start.
    pub arrival: Arrival,
    /// How many workflows to start; unlimited when absent.
    #[serde(default)]
    pub messages: Option<u64>,
    /// Which keys workflows carry.
    #[serde(default)]
    pub keys: Keys,
    /// How long the coordinator waits for one call's reply (default 100 ms).
    #[serde(default = "default_timeout")]
    pub timeout_ms: Millis,
    /// How many times a step's call is retried before the saga gives the
    /// step up and compensates (default 3; compensations retry forever).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Pause before a retry (default 10 ms).
    #[serde(default = "default_backoff")]
    pub retry_backoff_ms: Millis,
    /// How often an unacknowledged event is sent again (default 100 ms).
    #[serde(default = "default_resend")]
    pub resend_ms: Millis,
    /// The effect domain where an ended workflow applies (default `workflows`).
    #[serde(default)]
    pub domain: Option<String>,
}

/// A participant as written in a scenario file (`[participants.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// How long doing (or compensating) the step takes.
    pub processing: Dist,
    /// Probability that the step refuses (a business failure: the saga
    /// compensates). Default 0.
    #[serde(default)]
    pub failure_probability: f64,
    /// Probability that one compensation attempt fails (transient: it is
    /// retried). Default 0.
    #[serde(default)]
    pub compensation_failure_probability: f64,
    /// How often an unacknowledged event is sent again (default 100 ms).
    #[serde(default = "default_resend")]
    pub resend_ms: Millis,
}

fn default_timeout() -> Millis {
    Millis(100.0)
}

fn default_retries() -> u32 {
    3
}

fn default_backoff() -> Millis {
    Millis(10.0)
}

fn default_resend() -> Millis {
    Millis(100.0)
}

impl SagaSpec {
    /// The index of the first choreographed step (the number of steps for
    /// orchestration: none is).
    pub fn chain_start(&self) -> usize {
        match self.style {
            Style::Orchestration => self.steps.len(),
            Style::Choreography => 0,
            Style::Hybrid => match &self.subflow_from {
                Some(s) => self.steps.iter().position(|x| x == s).unwrap_or(self.steps.len()),
                None => self.steps.len().saturating_sub(1),
            },
        }
    }

    /// How many places hold a workflow's state: the coordinator when it
    /// orchestrates any step, plus each choreographed participant.
    pub fn state_locations(&self) -> usize {
        let k = self.chain_start();
        usize::from(k > 0) + (self.steps.len() - k)
    }

    /// The name of its effect domain.
    pub fn domain_name(&self) -> String {
        self.domain.clone().unwrap_or_else(|| "workflows".to_string())
    }
}

/// The saga kind (`[sagas.NAME]`).
pub struct SagaKind;

impl SagaKind {
    fn check_steps(node: &Node, k: &SagaSpec, topology: &Topology) -> Result<(), Invalid> {
        if k.steps.is_empty() {
            return node.fail("steps", "expected at least one participant");
        }
        for (i, s) in k.steps.iter().enumerate() {
            if topology.spec::<StepSpec>(s).is_none() {
                return node.fail(
                    "steps",
                    format!("no participant named `{s}` (participants: {})", topology.list("participants")),
                );
            }
            if k.steps[..i].contains(s) {
                return node.fail("steps", format!("`{s}` is named twice: a participant does one step"));
            }
            let earlier = topology.specs::<SagaSpec>().take_while(|(name, _)| *name != node.name());
            if let Some((other, _)) = earlier.into_iter().find(|(_, o)| o.steps.contains(s)) {
                return node
                    .fail("steps", format!("saga `{other}` already uses `{s}`: each participant serves one saga"));
            }
        }
        match (&k.subflow_from, k.style) {
            (Some(_), Style::Orchestration | Style::Choreography) => {
                node.fail("subflow_from", "expected only with style = \"hybrid\"")
            }
            (Some(s), Style::Hybrid) if !k.steps.contains(s) => {
                node.fail("subflow_from", format!("`{s}` is not one of `steps`"))
            }
            (Some(s), Style::Hybrid) if k.steps[0] == *s => {
                node.fail("subflow_from", "expected a later step than the first: the coordinator keeps at least one")
            }
            (None, Style::Hybrid) if k.steps.len() < 2 => {
                node.fail("steps", "expected at least two steps for a hybrid saga")
            }
            _ => Ok(()),
        }
    }
}

impl Kind for SagaKind {
    type Spec = SagaSpec;
    const NAME: &'static str = "saga";
    const SECTION: &'static str = "sagas";
    const METRICS: &'static [&'static str] = &coordinator::METRICS;

    fn validate(&self, node: &Node, k: &SagaSpec, topology: &Topology) -> Result<(), Invalid> {
        Self::check_steps(node, k, topology)?;
        k.arrival.check().map_err(|m| node.invalid("arrival", m))?;
        node.check_name("domain", k.domain.as_deref())?;
        if k.messages == Some(0) {
            return node.fail("messages", "expected at least 1 (remove the saga to start nothing)");
        }
        for (field, v) in [("timeout_ms", k.timeout_ms.0), ("resend_ms", k.resend_ms.0)] {
            if v <= 0.0 {
                return node.fail(field, "expected above 0");
            }
        }
        check_keys(node, &k.keys)
    }

    fn domain(&self, k: &SagaSpec, _topology: &Topology) -> Option<String> {
        Some(k.domain_name())
    }

    fn messages(&self, k: &SagaSpec) -> Option<Option<u64>> {
        Some(k.messages)
    }

    fn footprint(&self, k: &SagaSpec) -> Footprint {
        Footprint { produces_per_s: k.arrival.mean_rate_per_s(), ..Footprint::default() }
    }

    fn build(&self, _node: &Node, k: &SagaSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let steps: Vec<NodeId> = k.steps.iter().map(|s| build.id(s)).collect();
        boxed(Saga::new(k, steps))
    }
}

/// The participant kind (`[participants.NAME]`).
pub struct StepKind;

/// Where a choreographed participant's events go: (upstream, downstream).
fn links(name: &str, build: &Build) -> Option<(NodeId, NodeId)> {
    let (saga, k) = build.topology().specs::<SagaSpec>().find(|(_, k)| k.steps.iter().any(|s| s == name))?;
    let i = k.steps.iter().position(|s| s == name)?;
    let start = k.chain_start();
    if i < start {
        return None;
    }
    let up = if i == start { build.id(saga) } else { build.id(&k.steps[i - 1]) };
    let down = k.steps.get(i + 1).map_or_else(|| build.id(saga), |s| build.id(s));
    Some((up, down))
}

impl Kind for StepKind {
    type Spec = StepSpec;
    const NAME: &'static str = "saga-step";
    const SECTION: &'static str = "participants";
    const METRICS: &'static [&'static str] = &step::METRICS;

    fn validate(&self, node: &Node, k: &StepSpec, _topology: &Topology) -> Result<(), Invalid> {
        k.processing.check().map_err(|m| node.invalid("processing", m))?;
        if !(0.0..=1.0).contains(&k.failure_probability) {
            return node.fail("failure_probability", "expected a probability from 0 to 1");
        }
        if !(0.0..1.0).contains(&k.compensation_failure_probability) {
            let why = "expected a probability from 0 to below 1: a compensation that always fails never ends";
            return node.fail("compensation_failure_probability", why);
        }
        if k.resend_ms.0 <= 0.0 {
            return node.fail("resend_ms", "expected above 0");
        }
        Ok(())
    }

    fn build(&self, node: &Node, k: &StepSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Step::new(k, links(node.name(), build)))
    }
}

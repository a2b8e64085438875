//! The `aggregator` kind: the `[processors.NAME]` table, its defaults, its
//! checks and the construction of an [`Aggregator`].

use super::{Aggregator, WindowRules, DEFAULT_WINDOW_MS, METRICS};
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Invalid, Kind, Node, Topology};
use crate::time::ms_to_ns;
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// Which clock puts an event in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowTime {
    /// When the event happened (its event time), with a watermark.
    #[default]
    Event,
    /// When the aggregator received it.
    Processing,
}

/// An aggregator as written in a scenario file (`[processors.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatorSpec {
    /// The length of a tumbling window (default 60,000: a minute).
    #[serde(default = "default_window")]
    pub window_ms: Millis,
    /// `"event"` (default) or `"processing"` time.
    #[serde(default)]
    pub time: WindowTime,
    /// Event time: how long after a window's end (by the watermark) an
    /// event still updates it (default 0, Flink's).
    #[serde(default)]
    pub allowed_lateness_ms: Millis,
    /// Event time: how far behind the highest event time seen the
    /// watermark stays (default 0).
    #[serde(default)]
    pub max_out_of_orderness_ms: Millis,
    /// Drop an event whose id was already counted (default false).
    #[serde(default)]
    pub dedup: bool,
    /// In the drain, how long without a record before the input counts as
    /// ended and every window fires (default 5,000).
    #[serde(default = "default_end")]
    pub end_of_input_ms: Millis,
    /// The effect domain of its counts (default: its name).
    #[serde(default)]
    pub domain: Option<String>,
}

fn default_window() -> Millis {
    Millis(DEFAULT_WINDOW_MS)
}

fn default_end() -> Millis {
    Millis(5_000.0)
}

impl AggregatorSpec {
    /// The windowing rules it describes.
    pub fn rules(&self) -> WindowRules {
        WindowRules {
            size: ms_to_ns(self.window_ms.0).max(1),
            event_time: self.time == WindowTime::Event,
            lateness: ms_to_ns(self.allowed_lateness_ms.0),
            out_of_order: ms_to_ns(self.max_out_of_orderness_ms.0),
            dedup: self.dedup,
        }
    }
}

/// The aggregator kind (`[processors.NAME]`).
pub struct AggregatorKind;

impl Kind for AggregatorKind {
    type Spec = AggregatorSpec;
    const NAME: &'static str = "aggregator";
    const SECTION: &'static str = "processors";
    const METRICS: &'static [&'static str] = &METRICS;
    const SINK: bool = true;

    fn validate(&self, node: &Node, s: &AggregatorSpec, topology: &Topology) -> Result<(), Invalid> {
        if ms_to_ns(s.window_ms.0) == 0 {
            return node.fail("window_ms", "a window must last at least a nanosecond");
        }
        if s.time == WindowTime::Processing {
            if s.allowed_lateness_ms.0 > 0.0 {
                return node.fail("allowed_lateness_ms", "processing-time windows have no lateness: remove it");
            }
            if s.max_out_of_orderness_ms.0 > 0.0 {
                return node.fail("max_out_of_orderness_ms", "processing-time windows have no watermark: remove it");
            }
        }
        node.check_name("domain", s.domain.as_deref())?;
        // The truth is bucketed by one window length: the click sources
        // cannot count by two.
        let first = topology.specs::<AggregatorSpec>().next();
        if let Some((other, o)) = first.filter(|(_, o)| o.window_ms != s.window_ms) {
            let msg = format!("every aggregator of a scenario has one window length (`{other}` has {})", o.window_ms.0);
            return node.fail("window_ms", msg);
        }
        Ok(())
    }

    fn domain(&self, s: &AggregatorSpec, topology: &Topology) -> Option<String> {
        let name = || topology.specs::<AggregatorSpec>().find(|(_, x)| std::ptr::eq(*x, s)).map(|(n, _)| n.to_string());
        s.domain.clone().or_else(name)
    }

    fn build(&self, _node: &Node, s: &AggregatorSpec, _build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Aggregator::new(s.rules(), ms_to_ns(s.end_of_input_ms.0)))
    }
}

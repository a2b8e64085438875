//! The summary's lag and cost keys, read off the time series (so at
//! `run.sample_interval_ms` resolution, as a monitoring system scraping at
//! that interval would see them):
//!
//! - `max_lag_s`: the highest `lag_seconds.GROUP` of any group in any
//!   sample (present when the scenario has a log consumer group);
//! - `max_consumers`: the most members running at once, over every
//!   replicated table (`consumers.NAME` summed);
//! - `consumer_hours`: members running, integrated over the run (each
//!   interval counted at its closing sample's count, as alarms are);
//! - `consumer_cost_usd`: the same with each table's price per hour
//!   (`consumer_cost_per_hour.NAME`).
//!
//! The last three are present when the scenario has a replicated table.
//! A count that changes inside an interval is counted from the interval's
//! start: the error is at most one interval per change.

use super::{CONSUMERS, COST_PER_HOUR};
use crate::metrics::Sample;
use serde::Serialize;

/// The keys, each absent where it does not apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScalingSummary {
    /// The highest consumer lag of any group, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lag_s: Option<f64>,
    /// The most consumers running at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_consumers: Option<u64>,
    /// Consumers running, integrated over time, in hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_hours: Option<f64>,
    /// What they cost, in dollars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_cost_usd: Option<f64>,
}

impl ScalingSummary {
    /// Every key present (for the list of keys expectations may name).
    pub fn every() -> Self {
        ScalingSummary {
            max_lag_s: Some(0.0),
            max_consumers: Some(0),
            consumer_hours: Some(0.0),
            consumer_cost_usd: Some(0.0),
        }
    }

    /// The keys of a run whose time series is `samples`.
    pub fn of(samples: &[Sample]) -> Self {
        let in_family = |name: &str, family: &str| name.strip_prefix(family).is_some_and(|r| r.starts_with('.'));
        let total = |s: &Sample, family: &str| -> Option<f64> {
            let mut values = s.gauges.iter().filter(|(g, _)| in_family(g, family)).map(|(_, v)| *v).peekable();
            values.peek().is_some().then(|| values.sum())
        };
        let mut out = ScalingSummary::default();
        let mut prev_s = 0.0;
        for s in samples {
            for (_, v) in s.gauges.iter().filter(|(g, _)| in_family(g, "lag_seconds")) {
                out.max_lag_s = Some(out.max_lag_s.unwrap_or(0.0).max(*v));
            }
            let dt_h = (s.time_s - prev_s) / 3600.0;
            prev_s = s.time_s;
            if let Some(n) = total(s, CONSUMERS) {
                out.max_consumers = Some(out.max_consumers.unwrap_or(0).max(n.round() as u64));
                *out.consumer_hours.get_or_insert(0.0) += n * dt_h;
            }
            if let Some(c) = total(s, COST_PER_HOUR) {
                *out.consumer_cost_usd.get_or_insert(0.0) += c * dt_h;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, gauges: &[(&str, f64)]) -> Sample {
        let gauges = gauges.iter().map(|(g, v)| (g.to_string(), *v)).collect();
        Sample { time_s: t, gauges, ..Sample::default() }
    }

    #[test]
    fn consumer_hours_integrate_the_count_and_cost_its_price() {
        // 3 consumers for 1800 s, then 5 for 1800 s: 1.5 + 2.5 = 4 hours.
        let samples = [
            sample(1800.0, &[("consumers.w", 3.0), ("consumer_cost_per_hour.w", 0.3), ("lag_seconds.g", 2.0)]),
            sample(3600.0, &[("consumers.w", 5.0), ("consumer_cost_per_hour.w", 0.5), ("lag_seconds.g", 7.5)]),
        ];
        let s = ScalingSummary::of(&samples);
        assert_eq!(s.max_consumers, Some(5));
        assert!((s.consumer_hours.unwrap() - 4.0).abs() < 1e-9);
        assert!((s.consumer_cost_usd.unwrap() - 0.4).abs() < 1e-9);
        assert_eq!(s.max_lag_s, Some(7.5));
    }

    #[test]
    fn keys_that_do_not_apply_are_absent() {
        let s = ScalingSummary::of(&[sample(1.0, &[("lag_records.g", 3.0), ("consumers_x", 1.0)])]);
        assert_eq!(s, ScalingSummary::default());
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "{}");
    }
}

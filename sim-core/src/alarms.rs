//! Alarms: thresholds on gauges, as an operator's monitoring sets them
//! ("under-replicated partitions above 0 is critical"). A scenario lists
//! them in `[[alarms]]`; after the run, each is judged on the time series
//! and reported in the summary: how often it fired, when first, for how
//! long in all, the highest value seen, and each period it was on
//! (`events`: when it went on and off).
//!
//! An alarm is judged on the gauges as sampled at the end of each
//! sampling interval (`run.sample_interval_ms`): it is on during an
//! interval whose closing sample is above the threshold. So a breach
//! shorter than an interval, that begins and ends between two samples, is
//! not seen, as a scraper polling at that interval would miss it.
//!
//! Besides the gauges the scenario's kinds declare, one is built in and
//! may be watched in every scenario: [`QUEUE_DEPTH`], the messages waiting
//! in every broker's queues at the sample (the time series' `queue_depth`
//! column), as an operator watches RabbitMQ's `messages_ready`.
//!
//! Left out: alarms on rates (a counter's increase per interval), on
//! combinations of gauges, and a minimum duration before firing (the
//! `for:` clause of Prometheus rules).

use crate::metrics::Sample;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The built-in gauge every scenario has: the total queue depth of a
/// sample ([`Sample::queue_depth`]).
pub const QUEUE_DEPTH: &str = "queue_depth";

/// How grave an alarm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth a look.
    Warning,
    /// Wake someone up.
    Critical,
}

/// One alarm as a scenario writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSpec {
    /// Its name in the summary (`alarms.NAME`); by default the gauge's
    /// name, a family's `.` made `_` (`lag_seconds_orders`).
    #[serde(default)]
    pub name: Option<String>,
    /// The gauge it watches (`under_replicated_partitions`, or one of a
    /// family: `lag_seconds.orders`).
    pub gauge: String,
    /// It is on while the gauge is above this.
    pub above: f64,
    /// How grave it is.
    #[serde(default = "warning")]
    pub level: Level,
}

fn warning() -> Level {
    Level::Warning
}

impl AlarmSpec {
    /// Its name in the summary.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.gauge.replace('.', "_"))
    }
}

/// What an alarm did during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmOutcome {
    /// How grave it is.
    pub level: Level,
    /// The gauge and the threshold, as `GAUGE > N`.
    pub condition: String,
    /// How many times it went on.
    pub fired: u64,
    /// When it first went on, in simulated seconds (absent if it never did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_s: Option<f64>,
    /// How long it was on in all, in simulated seconds.
    pub active_s: f64,
    /// The highest value the gauge had in a sample (0 if never reported).
    pub peak: f64,
    /// Each time it was on: when it went on and when it went off, in
    /// simulated seconds (`off_s` absent if it was still on at the end).
    pub events: Vec<AlarmEvent>,
}

/// One period during which an alarm was on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmEvent {
    /// When it went on (the start of the first interval it was on in).
    pub on_s: f64,
    /// When it went off (the end of the last interval it was on in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off_s: Option<f64>,
}

/// The keys of an alarm's outcome that an expectation may compare.
pub const OUTCOME_KEYS: [&str; 4] = ["fired", "first_s", "active_s", "peak"];

/// Judges each alarm on `samples`, by name.
pub fn judge(alarms: &[AlarmSpec], samples: &[Sample]) -> BTreeMap<String, AlarmOutcome> {
    alarms.iter().map(|a| (a.name(), judge_one(a, samples))).collect()
}

fn judge_one(a: &AlarmSpec, samples: &[Sample]) -> AlarmOutcome {
    let mut out = AlarmOutcome {
        level: a.level,
        condition: format!("{} > {}", a.gauge, a.above),
        fired: 0,
        first_s: None,
        active_s: 0.0,
        peak: 0.0,
        events: Vec::new(),
    };
    let (mut on, mut prev_s) = (false, 0.0);
    for s in samples {
        let v = if a.gauge == QUEUE_DEPTH {
            s.queue_depth as f64
        } else {
            s.gauges.iter().find(|(g, _)| *g == a.gauge).map_or(0.0, |&(_, v)| v)
        };
        out.peak = out.peak.max(v);
        let now_on = v > a.above;
        if now_on {
            out.active_s += s.time_s - prev_s;
            if !on {
                out.fired += 1;
                out.first_s.get_or_insert(prev_s);
                out.events.push(AlarmEvent { on_s: prev_s, off_s: None });
            }
        } else if let Some(e) = out.events.last_mut().filter(|_| on) {
            e.off_s = Some(prev_s);
        }
        on = now_on;
        prev_s = s.time_s;
    }
    out
}

/// Checks `alarms` against the gauges the scenario's nodes can report
/// (`known`: names and family prefixes), with `suggest` naming the known
/// gauge closest to a wrong one: returns the index of the first wrong
/// alarm, its field, and why.
pub fn check(
    alarms: &[AlarmSpec],
    known: &[&str],
    suggest: impl Fn(&str, &[&str]) -> Option<String>,
) -> Result<(), (usize, &'static str, String)> {
    let mut names = std::collections::BTreeSet::new();
    for (i, a) in alarms.iter().enumerate() {
        if !a.above.is_finite() {
            return Err((i, "above", "expected a finite number".into()));
        }
        let family = a.gauge.split('.').next().unwrap_or("");
        if !known.contains(&a.gauge.as_str()) && !known.contains(&family) {
            let hint = suggest(&a.gauge, known).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
            let list = if known.is_empty() { "none".to_string() } else { crate::kind::quoted(known.iter().copied()) };
            let message = format!("no node of this scenario reports gauge `{}`{hint} (gauges: {list})", a.gauge);
            return Err((i, "gauge", message));
        }
        let name = a.name();
        crate::names::check("an alarm's name", &name).map_err(|m| (i, "name", m))?;
        if !names.insert(name.clone()) {
            return Err((i, "name", format!("two alarms are named `{name}`: name one of them")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, v: Option<f64>) -> Sample {
        Sample { time_s: t, gauges: v.map(|v| vec![("g".to_string(), v)]).unwrap_or_default(), ..Sample::default() }
    }

    fn alarm(above: f64) -> AlarmSpec {
        AlarmSpec { name: None, gauge: "g".into(), above, level: Level::Critical }
    }

    #[test]
    fn an_alarm_counts_each_time_it_goes_on_and_how_long_it_stays() {
        let v = [0.0, 2.0, 3.0, 0.0, 1.0, 0.0];
        let samples: Vec<Sample> = v.iter().enumerate().map(|(i, &x)| sample((i + 1) as f64, Some(x))).collect();
        let o = judge_one(&alarm(0.0), &samples);
        assert_eq!(o.fired, 2);
        assert_eq!(o.first_s, Some(1.0), "on during the interval from 1 s to 2 s");
        assert_eq!(o.active_s, 3.0);
        assert_eq!(o.peak, 3.0);
        let periods: Vec<(f64, Option<f64>)> = o.events.iter().map(|e| (e.on_s, e.off_s)).collect();
        assert_eq!(periods, [(1.0, Some(3.0)), (4.0, Some(5.0))], "on from 1 s to 3 s, and from 4 s to 5 s");
        let o = judge_one(&alarm(2.0), &samples);
        assert_eq!((o.fired, o.active_s, o.first_s), (1, 1.0, Some(2.0)));
    }

    #[test]
    fn the_built_in_queue_depth_is_watched_from_every_samples_depth() {
        let samples: Vec<Sample> = [0, 5, 20, 3]
            .iter()
            .enumerate()
            .map(|(i, &d)| Sample { queue_depth: d, ..sample((i + 1) as f64, None) })
            .collect();
        let mut a = alarm(10.0);
        a.gauge = QUEUE_DEPTH.into();
        let o = judge_one(&a, &samples);
        assert_eq!((o.fired, o.first_s, o.active_s, o.peak), (1, Some(2.0), 1.0, 20.0));
        assert_eq!(o.condition, "queue_depth > 10");
        let none = |_: &str, _: &[&str]| None;
        assert!(check(&[a], &[QUEUE_DEPTH], none).is_ok(), "known once the scenario's list has it");
    }

    #[test]
    fn an_alarm_still_on_at_the_end_has_no_off_time() {
        let samples = [sample(1.0, Some(0.0)), sample(2.0, Some(5.0)), sample(3.0, Some(5.0))];
        let o = judge_one(&alarm(1.0), &samples);
        assert_eq!(o.events, [AlarmEvent { on_s: 1.0, off_s: None }]);
    }

    #[test]
    fn a_gauge_never_reported_never_fires() {
        let samples = [sample(1.0, None), sample(2.0, None)];
        let o = judge_one(&alarm(0.0), &samples);
        assert_eq!((o.fired, o.first_s, o.active_s, o.peak), (0, None, 0.0, 0.0));
    }

    #[test]
    fn check_names_the_unknown_gauge_with_a_suggestion() {
        let mut a = alarm(0.0);
        a.gauge = "under_replicated_partition".into();
        let near = |_: &str, k: &[&str]| Some(k[0].to_string());
        let (i, field, message) = check(&[a], &["under_replicated_partitions", "lag_seconds"], near).unwrap_err();
        assert_eq!((i, field), (0, "gauge"));
        assert!(message.contains("did you mean `under_replicated_partitions`?"), "{message}");
        let mut family = alarm(0.0);
        family.gauge = "lag_seconds.orders".into();
        assert!(check(&[family], &["lag_seconds"], near).is_ok(), "a member of a gauge family");
        let twice = [alarm(0.0), alarm(1.0)];
        assert_eq!(check(&twice, &["g"], near).unwrap_err().1, "name");
    }
}

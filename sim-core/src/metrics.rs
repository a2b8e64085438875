//! Measurements that are not the ledger's verdicts: latency histograms,
//! error counters, the queue-depth gauge and the per-interval time series.
//! Everything here is fixed-size or grows with simulated time (one row per
//! sampling interval), never with the number of messages.

use crate::time::{ns_to_ms, Time};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Most rows a time series keeps; later intervals are not sampled (the
/// summary's counts are unaffected). A million rows is 11.6 days of
/// simulated time at the default 1 s interval.
pub const MAX_SAMPLES: usize = 1_000_000;

/// Highest latency a histogram resolves (2^50 ns, about 13 days); longer
/// values are counted at this value, but `max` and `mean` stay exact.
const HIST_HIGH_NS: u64 = 1 << 50;

/// Latency percentiles in milliseconds. Percentiles come from an HDR
/// histogram with 3 significant digits: each is rounded up to the top of
/// its bucket (at most 0.1% above the true value), then clamped to the
/// exact maximum, so no percentile ever exceeds `max`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Exact mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Exact maximum.
    pub max: f64,
    /// How many latencies were measured: messages still unfinished at
    /// the end are not among them.
    pub count: u64,
}

/// A latency distribution: percentiles from an HDR histogram (3 significant
/// digits), mean and maximum exact.
pub struct LatencyStats {
    hist: Histogram<u64>,
    sum_ns: u128,
    count: u64,
    max_ns: u64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            hist: Histogram::new_with_bounds(1, HIST_HIGH_NS, 3).expect("valid histogram bounds"),
            sum_ns: 0,
            count: 0,
            max_ns: 0,
        }
    }
}

impl LatencyStats {
    /// Records one latency.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.min(HIST_HIGH_NS));
        self.sum_ns += u128::from(ns);
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean, percentiles and maximum in milliseconds; all zero when empty.
    pub fn summary(&self) -> LatencySummary {
        if self.count == 0 {
            return LatencySummary::default();
        }
        // Rounded up to the top of its bucket, a percentile may pass the
        // exact maximum: clamp it.
        let q = |p: f64| ns_to_ms(self.hist.value_at_quantile(p).min(self.max_ns));
        LatencySummary {
            mean: self.sum_ns as f64 / self.count as f64 / 1e6,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: ns_to_ms(self.max_ns),
            count: self.count,
        }
    }
}

/// One row of the time series: what happened during the interval that ends
/// at `time_s`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// End of the interval, in simulated seconds.
    pub time_s: f64,
    /// Messages produced per second during the interval.
    pub produced_per_s: f64,
    /// Effects applied for the first time per second (throughput).
    pub processed_per_s: f64,
    /// Errors per second.
    pub errors_per_s: f64,
    /// Messages waiting in broker queues at the end of the interval.
    pub queue_depth: u64,
    /// Consumer lag: produced messages whose effect is not yet applied
    /// (lost ones included, once lost: the ledger only knows at the end).
    pub lag: u64,
}

/// Counters and gauges that components feed through the context.
#[derive(Default)]
pub struct Metrics {
    /// Errors by kind ("rejected", "ack-timeout", ...).
    pub errors: BTreeMap<&'static str, u64>,
    /// Sum of `errors`.
    pub errors_total: u64,
    depth_by_node: Vec<u64>,
    /// Sum of queue depths over all nodes that report one.
    pub depth_total: u64,
    /// Highest `depth_total` ever reached.
    pub depth_max: u64,
    /// The time series.
    pub samples: Vec<Sample>,
    /// Named figures a component reports for its domain (a broker's
    /// truncated records, a client's late responses...).
    pub named: BTreeMap<&'static str, f64>,
    last_sample: (Time, u64, u64, u64),
}

impl Metrics {
    /// Metrics for `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Metrics { depth_by_node: vec![0; nodes], ..Default::default() }
    }

    /// Counts one error of `kind`.
    pub fn error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_insert(0) += 1;
        self.errors_total += 1;
    }

    /// Adds `v` to the named figure `name`.
    pub fn add(&mut self, name: &'static str, v: f64) {
        *self.named.entry(name).or_insert(0.0) += v;
    }

    /// Sets the named figure `name` to `v` (a gauge: the last value stays).
    pub fn set(&mut self, name: &'static str, v: f64) {
        self.named.insert(name, v);
    }

    /// Raises the named figure `name` to `v` if it is lower.
    pub fn max(&mut self, name: &'static str, v: f64) {
        let e = self.named.entry(name).or_insert(v);
        *e = e.max(v);
    }

    /// Sets `node`'s queue depth.
    #[inline]
    pub fn set_depth(&mut self, node: usize, depth: u64) {
        let old = std::mem::replace(&mut self.depth_by_node[node], depth);
        self.depth_total = self.depth_total - old + depth;
        self.depth_max = self.depth_max.max(self.depth_total);
    }

    /// Appends a time-series row for the interval ending at `now`, given the
    /// cumulative produced and processed counts and the current lag.
    pub fn sample(&mut self, now: Time, produced: u64, processed: u64, lag: u64) {
        let (t0, p0, c0, e0) = self.last_sample;
        if (now <= t0 && !self.samples.is_empty()) || self.samples.len() >= MAX_SAMPLES {
            return;
        }
        let dt = (now - t0) as f64 / 1e9;
        let per_s = |d: u64| if dt > 0.0 { d as f64 / dt } else { 0.0 };
        self.samples.push(Sample {
            time_s: now as f64 / 1e9,
            produced_per_s: per_s(produced - p0),
            processed_per_s: per_s(processed - c0),
            errors_per_s: per_s(self.errors_total - e0),
            queue_depth: self.depth_total,
            lag,
        });
        self.last_sample = (now, produced, processed, self.errors_total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defect_5_a_percentile_rounded_up_to_its_bucket_is_clamped_to_the_maximum() {
        // 10,010 ms sits in a histogram bucket whose top is about 10,016 ms.
        let mut s = LatencyStats::default();
        for _ in 0..100 {
            s.record(10_010_000_000);
        }
        let l = s.summary();
        assert_eq!(l.max, 10_010.0);
        assert_eq!((l.p50, l.p99, l.p999), (l.max, l.max, l.max));
        assert_eq!(l.count, 100);
    }

    #[test]
    fn an_empty_distribution_reads_zero_and_counts_nothing() {
        assert_eq!(LatencyStats::default().summary(), LatencySummary::default());
    }
}

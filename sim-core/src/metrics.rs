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

/// Most points [`LatencyStats::cdf`] returns for the body of a
/// distribution (the tail beyond p99 is kept whole).
pub const CDF_POINTS: usize = 1_000;

/// Highest latency a histogram resolves (2^50 ns, about 13 days); longer
/// values are counted at this value, but `max` and `mean` stay exact.
const HIST_HIGH_NS: u64 = 1 << 50;

/// The user-facing durations a run measures besides the ledger's latency,
/// each reported in the summary under its own top-level key when some
/// component measured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// From a user's request to the answer the user sees (success, error
    /// or timeout, including the client's own retries): `response_ms`.
    Response,
    /// From a user's request to its outcome being known to the user (for
    /// a synchronous call, its response; for an asynchronous one, the
    /// poll or callback that brings the outcome): `completion_ms`.
    Completion,
    /// From a message's production to its queue broker's confirm (to its
    /// leaving the producer when fire-and-forget): the producer-side
    /// latency back-pressure adds to (`send_ms`; see [`crate::producer`]).
    Send,
}

impl Timing {
    /// Every timing, in summary order.
    pub const ALL: [Timing; 3] = [Timing::Response, Timing::Completion, Timing::Send];
}

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

/// The HDR histogram's layout (lowest value 1, highest [`HIST_HIGH_NS`], 3
/// significant digits): 2,048 sub-buckets, of which buckets above the first
/// use the upper half (1,024), each bucket twice as wide as the one before.
const SUB_BUCKET_HALF_MAGNITUDE: u32 = 10;
const SUB_BUCKET_MASK: u64 = (1 << (SUB_BUCKET_HALF_MAGNITUDE + 1)) - 1;
/// 64 minus the unit magnitude (0) minus the sub-bucket count's magnitude (11).
const LEADING_ZERO_COUNT_BASE: u32 = 53;
/// Counts the layout needs to reach [`HIST_HIGH_NS`]: (41 buckets + 1) x 1,024.
#[cfg(test)]
const HIST_COUNTS: usize = 42 << SUB_BUCKET_HALF_MAGNITUDE;
/// Counts the layout needs to reach `u64::MAX` (54 buckets + 1): a value
/// above [`HIST_HIGH_NS`] is counted at its own index, and folded into the
/// highest value's bucket only when the histogram is built, so recording
/// need not clamp it.
const HIST_SLOTS: usize = 55 << SUB_BUCKET_HALF_MAGNITUDE;

/// One bucket's count in [`LatencyStats`], less its spilled excess (a
/// byte: see there why).
type Count = u8;

/// The index of `value`'s count, as the HDR histogram computes it.
#[inline]
fn hist_index(value: u64) -> usize {
    let bucket = LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub = (value >> bucket) as usize;
    ((bucket as usize + 1) << SUB_BUCKET_HALF_MAGNITUDE) + sub - (1 << SUB_BUCKET_HALF_MAGNITUDE)
}

/// The lowest value counted at `index` (the HDR histogram's `value_for`).
fn hist_value(index: usize) -> u64 {
    let half = 1usize << SUB_BUCKET_HALF_MAGNITUDE;
    let bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) as i64 - 1;
    let sub = (index & (half - 1)) + half;
    if bucket < 0 {
        (sub - half) as u64
    } else {
        (sub as u64) << bucket
    }
}

/// A latency distribution: percentiles from an HDR histogram (3 significant
/// digits), mean and maximum exact.
///
/// Recording only counts the value in its bucket, in an array laid out as
/// the HDR histogram lays out its own (about 15 instructions inlined, one
/// bounds check doubling as the test for the first value, against 60 for
/// the crate's `saturating_record`, which also tracks a minimum, a
/// maximum and a total, and checks bounds on the way); the histogram itself
/// is built from the counts when a summary asks, each bucket's count
/// recorded at the bucket's lowest value. Percentiles and CDF points depend
/// only on the counts per bucket, so they come out exactly as if every value
/// had been recorded in the histogram directly.
///
/// The counts are bytes (`Count`), far narrower than a count can grow,
/// so that the slots a run's latencies fall in stay in the first-level
/// cache: on M/M/1 the latency and the wait each touch about 10,000 slots
/// at random, 80 KB each as `u64`s, 10 KB as bytes. A count that would
/// pass `Count::MAX` goes back to zero and adds `Count::MAX + 1` to its
/// slot's entry in a side table (`record_rare`, at most once per 256
/// values in a slot), which the histogram adds back: every count comes
/// out whole, so percentiles and CDF points are exactly the same.
#[derive(Default)]
pub struct LatencyStats {
    /// Counts by bucket (allocated at the first value), less the excess
    /// in `spilled`.
    counts: Vec<Count>,
    /// The counts beyond what `counts` holds, by bucket (in multiples of
    /// `Count::MAX + 1`): empty unless one bucket counts more than
    /// `Count::MAX`.
    spilled: BTreeMap<usize, u64>,
    sum_ns: u128,
    count: u64,
    max_ns: u64,
}

impl LatencyStats {
    /// Records one latency.
    #[inline(always)]
    pub fn record(&mut self, ns: u64) {
        let i = hist_index(ns);
        match self.counts.get_mut(i) {
            Some(n) if *n < Count::MAX => *n += 1,
            _ => self.record_rare(i),
        }
        self.sum_ns += u128::from(ns);
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// Counts one value at `i` when [`LatencyStats::record`] cannot: at
    /// the first value (it makes the counts), or when the count at `i` is
    /// full (it moves the count to `spilled`).
    #[cold]
    #[inline(never)]
    fn record_rare(&mut self, i: usize) {
        if self.counts.is_empty() {
            self.counts = vec![0; HIST_SLOTS];
        }
        if self.counts[i] == Count::MAX {
            self.counts[i] = 0;
            *self.spilled.entry(i).or_insert(0) += u64::from(Count::MAX) + 1;
        } else {
            self.counts[i] += 1;
        }
    }

    /// The HDR histogram of the values recorded (the counts up to the
    /// maximum's bucket: none is above it), those above [`HIST_HIGH_NS`]
    /// at that value.
    fn histogram(&self) -> Histogram<u64> {
        let mut hist = Histogram::new_with_bounds(1, HIST_HIGH_NS, 3).expect("valid histogram bounds");
        let top = if self.count == 0 { 0 } else { hist_index(self.max_ns) + 1 };
        // A spilled bucket is recorded twice, its count then its excess:
        // the histogram adds them up.
        let counts = self.counts[..top].iter().enumerate().map(|(i, &n)| (i, u64::from(n)));
        for (i, n) in counts.chain(self.spilled.iter().map(|(&i, &n)| (i, n))).filter(|&(_, n)| n > 0) {
            hist.record_n(hist_value(i).min(HIST_HIGH_NS), n).expect("a bucket's lowest value is in range");
        }
        hist
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the latencies recorded (ns) and their count.
    pub fn totals(&self) -> (u128, u64) {
        (self.sum_ns, self.count)
    }

    /// The distribution as (latency in ms, fraction at or below it), one
    /// point per histogram bucket that holds a value, thinned to at most
    /// [`CDF_POINTS`] (the last point, the maximum at 1.0, always kept).
    /// Empty when nothing was recorded.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        if self.count == 0 {
            return Vec::new();
        }
        let hist = self.histogram();
        let total = hist.len() as f64;
        let mut points: Vec<(f64, f64)> = hist
            .iter_recorded()
            .map(|v| (ns_to_ms(v.value_iterated_to().min(self.max_ns)), v.count_since_last_iteration()))
            .scan(0u64, |seen, (ms, n)| {
                *seen += n;
                Some((ms, *seen as f64 / total))
            })
            .collect();
        if points.len() > CDF_POINTS {
            // Keep the tail whole (it is what a log axis shows), thin the body.
            let step = points.len().div_ceil(CDF_POINTS);
            let last = *points.last().expect("not empty");
            points =
                points.into_iter().enumerate().filter(|(i, p)| i % step == 0 || p.1 > 0.99).map(|(_, p)| p).collect();
            if points.last() != Some(&last) {
                points.push(last);
            }
        }
        points
    }

    /// Mean, percentiles and maximum in milliseconds; all zero when empty.
    pub fn summary(&self) -> LatencySummary {
        if self.count == 0 {
            return LatencySummary::default();
        }
        // Rounded up to the top of its bucket, a percentile may pass the
        // exact maximum: clamp it.
        let hist = self.histogram();
        let q = |p: f64| ns_to_ms(hist.value_at_quantile(p).min(self.max_ns));
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
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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
    /// Errors per second during the interval, by kind (kinds with none
    /// left out), sorted by kind.
    pub errors_by_kind: Vec<(&'static str, f64)>,
    /// The gauges components reported at the interval's end
    /// ([`crate::engine::Component::gauges`]), sorted by name.
    pub gauges: Vec<(String, f64)>,
    /// Mean latency (production to first application, ms) of the effects
    /// first applied during the interval; 0 when none was. Not in
    /// `timeseries.csv`: the steady-state analysis reads it
    /// ([`crate::stats::steady`]).
    pub latency_ms_mean: f64,
    /// How many latencies `latency_ms_mean` averages.
    pub latency_count: u64,
}

/// How long the backlog took to drain, in simulated seconds: from the
/// first sample where the total queue depth peaked to the first later
/// sample whose depth is at most 1% of that peak (floored, so 0 for a peak
/// below 100). `None` when nothing ever waited, or the backlog never
/// drained. At the resolution of the sampling interval.
pub fn time_to_drain_s(samples: &[Sample]) -> Option<f64> {
    let (at, peak) =
        samples
            .iter()
            .enumerate()
            .fold((0, 0), |(at, peak), (i, s)| if s.queue_depth > peak { (i, s.queue_depth) } else { (at, peak) });
    if peak == 0 {
        return None;
    }
    let low = peak / 100;
    let drained = samples[at..].iter().find(|s| s.queue_depth <= low)?;
    Some(drained.time_s - samples[at].time_s)
}

/// The gauges the nodes report at one sampling instant, by name. Several
/// nodes may report the same name: [`Gauges::sum`] adds (records waiting),
/// [`Gauges::max`] keeps the highest (the age of the oldest).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Gauges(BTreeMap<String, f64>);

impl Gauges {
    /// Adds `v` to gauge `name`.
    pub fn sum(&mut self, name: impl Into<String>, v: f64) {
        *self.0.entry(name.into()).or_insert(0.0) += v;
    }

    /// Raises gauge `name` to `v`.
    pub fn max(&mut self, name: impl Into<String>, v: f64) {
        let e = self.0.entry(name.into()).or_insert(v);
        *e = e.max(v);
    }

    /// The gauges, sorted by name.
    pub fn into_vec(self) -> Vec<(String, f64)> {
        self.0.into_iter().collect()
    }
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
    /// The user-facing durations, by [`Timing`] (a kind with no value
    /// recorded was not measured: most runs measure none).
    timings: [LatencyStats; 3],
    last_sample: (Time, u64, u64, u64),
    /// The ledger's latency totals (sum in ns, count) as of the last sample.
    last_latency: (u128, u64),
    /// `errors` as of the last sample.
    last_errors: BTreeMap<&'static str, u64>,
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

    /// Records one user-facing duration.
    #[inline]
    pub fn timing(&mut self, kind: Timing, ns: u64) {
        let i = match kind {
            Timing::Response => 0,
            Timing::Completion => 1,
            Timing::Send => 2,
        };
        debug_assert_eq!(Timing::ALL[i], kind);
        self.timings[i].record(ns);
    }

    /// The user-facing durations measured, in [`Timing::ALL`] order.
    pub fn timing_summaries(&self) -> [Option<LatencySummary>; 3] {
        [0, 1, 2].map(|i| (self.timings[i].count() > 0).then(|| self.timings[i].summary()))
    }

    /// Sets `node`'s queue depth.
    #[inline]
    pub fn set_depth(&mut self, node: usize, depth: u64) {
        let old = std::mem::replace(&mut self.depth_by_node[node], depth);
        self.depth_total = self.depth_total - old + depth;
        self.depth_max = self.depth_max.max(self.depth_total);
    }

    /// True when a row for an interval ending at `now` would be kept.
    pub fn wants_sample(&self, now: Time) -> bool {
        !((now <= self.last_sample.0 && !self.samples.is_empty()) || self.samples.len() >= MAX_SAMPLES)
    }

    /// Appends a time-series row for the interval ending at `now`, given the
    /// cumulative produced and processed counts, the current lag, the
    /// nodes' gauges and the latency totals ([`LatencyStats::totals`]).
    pub fn sample(&mut self, now: Time, produced: u64, processed: u64, lag: u64, gauges: Gauges, latency: (u128, u64)) {
        if !self.wants_sample(now) {
            return;
        }
        let (t0, p0, c0, e0) = self.last_sample;
        let dt = (now - t0) as f64 / 1e9;
        let per_s = |d: u64| if dt > 0.0 { d as f64 / dt } else { 0.0 };
        let errors_by_kind = self
            .errors
            .iter()
            .filter_map(|(&k, &n)| {
                let d = n - self.last_errors.get(k).copied().unwrap_or(0);
                (d > 0).then(|| (k, per_s(d)))
            })
            .collect();
        self.last_errors.clone_from(&self.errors);
        let (sum, count) = (latency.0 - self.last_latency.0, latency.1 - self.last_latency.1);
        self.last_latency = latency;
        self.samples.push(Sample {
            time_s: now as f64 / 1e9,
            produced_per_s: per_s(produced - p0),
            processed_per_s: per_s(processed - c0),
            errors_per_s: per_s(self.errors_total - e0),
            queue_depth: self.depth_total,
            lag,
            errors_by_kind,
            gauges: gauges.into_vec(),
            latency_ms_mean: if count > 0 { sum as f64 / count as f64 / 1e6 } else { 0.0 },
            latency_count: count,
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
    fn the_cdf_rises_to_one_at_the_maximum_and_matches_the_percentiles() {
        let mut s = LatencyStats::default();
        for ms in 1..=1000u64 {
            s.record(ms * 1_000_000);
        }
        let cdf = s.cdf();
        assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "strictly rising");
        assert_eq!(*cdf.last().unwrap(), (1000.0, 1.0));
        // The point at the median's bucket holds half the values, to the
        // histogram's 3 significant digits.
        let median = cdf.iter().find(|p| p.1 >= 0.5).unwrap();
        assert!((median.0 - s.summary().p50).abs() <= 1.0, "{median:?} vs {}", s.summary().p50);
        assert!(LatencyStats::default().cdf().is_empty());
    }

    fn depths(depths: &[u64]) -> Vec<Sample> {
        let row = |(i, &d): (usize, &u64)| Sample { time_s: i as f64 + 1.0, queue_depth: d, ..Sample::default() };
        depths.iter().enumerate().map(row).collect()
    }

    #[test]
    fn the_drain_time_runs_from_the_first_peak_to_one_percent_of_it() {
        // Peak 1,000 at 3 s (the first of two); 1% is 10, first reached at 7 s.
        assert_eq!(time_to_drain_s(&depths(&[0, 400, 1000, 1000, 300, 11, 10, 0])), Some(4.0));
        // A peak below 100 must drain to 0.
        assert_eq!(time_to_drain_s(&depths(&[3, 50, 1, 0, 2])), Some(2.0));
        // Never drained, and never any backlog.
        assert_eq!(time_to_drain_s(&depths(&[5, 500, 400])), None);
        assert_eq!(time_to_drain_s(&depths(&[0, 0])), None);
        assert_eq!(time_to_drain_s(&[]), None);
    }

    /// The bucket of every value, and its lowest value, are the HDR
    /// histogram's own: values at and around every bucket boundary, and
    /// random ones.
    #[test]
    fn buckets_are_the_hdr_histograms_own() {
        let hist = Histogram::<u64>::new_with_bounds(1, HIST_HIGH_NS, 3).unwrap();
        assert_eq!(hist.distinct_values(), HIST_COUNTS);
        let mut values: Vec<u64> = vec![0, 1, 2, 1023, 1024, 2047, 2048, 2049, HIST_HIGH_NS - 1, HIST_HIGH_NS];
        for shift in 0..=50 {
            let b = 1u64 << shift;
            values.extend([b - 1, b, b + 1, b + b / 3]);
        }
        let mut rng = crate::rng::stream(5, "hist");
        values.extend(
            (0..100_000).map(|_| rand::RngCore::next_u64(&mut rng) >> (14 + rand::RngCore::next_u64(&mut rng) % 50)),
        );
        for v in values.into_iter().map(|v| v.min(HIST_HIGH_NS)) {
            let i = hist_index(v);
            assert!(i < HIST_COUNTS, "{v}");
            assert_eq!(hist_value(i), hist.lowest_equivalent(v), "value {v} at index {i}");
            assert_eq!(hist_index(hist_value(i)), i, "{v}");
        }
    }

    /// Percentiles and the CDF as the HDR histogram gives them when every
    /// value is recorded in it.
    #[test]
    fn percentiles_and_cdf_are_the_hdr_histograms() {
        let mut direct = Histogram::<u64>::new_with_bounds(1, HIST_HIGH_NS, 3).unwrap();
        let mut ours = LatencyStats::default();
        let mut rng = crate::rng::stream(9, "latencies");
        for _ in 0..50_000 {
            let ns = (crate::dist::standard_exponential(&mut rng) * 3e6) as u64;
            direct.saturating_record(ns.min(HIST_HIGH_NS));
            ours.record(ns);
        }
        let built = ours.histogram();
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(built.value_at_quantile(q), direct.value_at_quantile(q), "quantile {q}");
        }
        let it = |h: &Histogram<u64>| {
            h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_since_last_iteration())).collect::<Vec<_>>()
        };
        assert_eq!(it(&built), it(&direct));
        assert_eq!(built.len(), direct.len());
    }

    /// Values beyond the histogram's highest are counted at it, as the
    /// HDR histogram's saturating record counts them, up to `u64::MAX`;
    /// the maximum and the mean stay exact.
    #[test]
    fn values_beyond_the_highest_count_at_it() {
        let mut direct = Histogram::<u64>::new_with_bounds(1, HIST_HIGH_NS, 3).unwrap();
        let mut ours = LatencyStats::default();
        let values = [5, 3_000, HIST_HIGH_NS, HIST_HIGH_NS + 7, 3 << 50, 1 << 52, u64::MAX / 3, u64::MAX];
        for v in values {
            direct.saturating_record(v.min(HIST_HIGH_NS));
            ours.record(v);
        }
        let built = ours.histogram();
        for q in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0] {
            assert_eq!(built.value_at_quantile(q), direct.value_at_quantile(q), "quantile {q}");
        }
        assert_eq!(built.len(), direct.len());
        assert_eq!(ours.summary().max, ns_to_ms(u64::MAX));
        assert_eq!(ours.totals().0, values.iter().map(|&v| u128::from(v)).sum::<u128>());
    }

    /// A bucket that counts past `Count::MAX` spills its excess and still
    /// comes out whole: percentiles, CDF and totals as the HDR histogram
    /// gives them, for a count that wraps several times, one that ends at
    /// exactly a multiple of `Count::MAX + 1` (nothing left in the slot),
    /// and one one short of wrapping.
    #[test]
    fn counts_past_the_narrow_maximum_spill_and_stay_whole() {
        let mut direct = Histogram::<u64>::new_with_bounds(1, HIST_HIGH_NS, 3).unwrap();
        let mut ours = LatencyStats::default();
        let wrap = u64::from(Count::MAX) + 1;
        for (ns, n) in [(7_000, 3 * wrap + 5), (2_000_000, 2 * wrap), (90_000_000, wrap - 1), (3, 1)] {
            for _ in 0..n {
                ours.record(ns);
            }
            direct.record_n(ns, n).unwrap();
        }
        assert_eq!(ours.spilled.len(), 2, "{:?}", ours.spilled);
        assert_eq!(ours.counts[hist_index(2_000_000)], 0);
        let built = ours.histogram();
        for q in [0.0, 0.1, 0.5, 0.6, 0.9, 0.99, 1.0] {
            assert_eq!(built.value_at_quantile(q), direct.value_at_quantile(q), "quantile {q}");
        }
        let it = |h: &Histogram<u64>| {
            h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_since_last_iteration())).collect::<Vec<_>>()
        };
        assert_eq!(it(&built), it(&direct));
        assert_eq!(built.len(), direct.len());
        assert_eq!(ours.count(), direct.len());
    }

    #[test]
    fn an_empty_distribution_reads_zero_and_counts_nothing() {
        assert_eq!(LatencyStats::default().summary(), LatencySummary::default());
    }
}

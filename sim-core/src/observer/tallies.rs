//! Counts against the truth: a system that aggregates events (a stream
//! processor counting clicks per key per minute) reports its count per
//! bucket, and the sources report, once per event, the bucket the event
//! truly belongs to. The difference per bucket is the aggregation's error:
//! double counts of duplicates, events put in the wrong window, events
//! dropped as too late.
//!
//! Left out: buckets are (key, window index) pairs; what a window is (its
//! length, event or processing time) is the reporting component's, and
//! the truth is always by the event's own bucket.

use serde::Serialize;
use std::collections::BTreeMap;

/// The aggregation figures of a run (the summary's `aggregation`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AggregationSummary {
    /// Buckets with a true count or a result.
    pub buckets: u64,
    /// Buckets whose result equals the truth.
    pub exact: u64,
    /// Buckets counted too high.
    pub overcounted: u64,
    /// Buckets counted too low (or never reported).
    pub undercounted: u64,
    /// Events that happened.
    pub true_events: u64,
    /// The results, summed.
    pub counted_events: u64,
    /// Σ |result − truth| over buckets.
    pub abs_error: u64,
    /// The largest error of one bucket.
    pub max_abs_error: u64,
    /// `abs_error / true_events` (0 with no events).
    pub relative_error: f64,
}

/// The observer's part for aggregates.
#[derive(Default)]
pub struct Tallies {
    /// Per bucket: (true count, reported count).
    buckets: BTreeMap<(u64, u64), (u64, u64)>,
}

impl Tallies {
    /// One event belongs to `bucket`.
    pub fn happened(&mut self, bucket: (u64, u64)) {
        self.buckets.entry(bucket).or_default().0 += 1;
    }

    /// The system's count for `bucket` is now `count`.
    pub fn counted(&mut self, bucket: (u64, u64), count: u64) {
        self.buckets.entry(bucket).or_default().1 = count;
    }

    /// Estimated bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * 48
    }

    /// The figures so far.
    pub fn summary(&self) -> AggregationSummary {
        let mut s = AggregationSummary { buckets: self.buckets.len() as u64, ..Default::default() };
        for &(truth, got) in self.buckets.values() {
            s.true_events += truth;
            s.counted_events += got;
            let err = truth.abs_diff(got);
            s.abs_error += err;
            s.max_abs_error = s.max_abs_error.max(err);
            match got.cmp(&truth) {
                std::cmp::Ordering::Equal => s.exact += 1,
                std::cmp::Ordering::Greater => s.overcounted += 1,
                std::cmp::Ordering::Less => s.undercounted += 1,
            }
        }
        s.relative_error = if s.true_events > 0 { s.abs_error as f64 / s.true_events as f64 } else { 0.0 };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bucket_is_judged_against_its_true_count() {
        let mut t = Tallies::default();
        for _ in 0..3 {
            t.happened((1, 0));
        }
        t.happened((1, 1));
        t.happened((2, 0));
        t.counted((1, 0), 2);
        t.counted((1, 0), 4);
        t.counted((1, 1), 1);
        t.counted((3, 0), 2);
        let s = t.summary();
        assert_eq!((s.buckets, s.exact, s.overcounted, s.undercounted), (4, 1, 2, 1));
        assert_eq!((s.true_events, s.counted_events, s.abs_error, s.max_abs_error), (5, 7, 4, 2));
        assert_eq!(s.relative_error, 0.8);
    }
}

//! What users saw over one sampling interval: the response times and the
//! requests settled, failed or not, for the report's gauges. Read and
//! reset at each sample.

use crate::metrics::{Gauges, LatencyStats};

/// Responses and settled requests since the last sample.
#[derive(Default)]
pub(super) struct Window {
    /// Response times of the interval (a histogram: bounded memory even
    /// when no sample is kept for a long while).
    responses: LatencyStats,
    /// Completion times of the requests whose outcome became known in
    /// the interval.
    completions: LatencyStats,
    settled: u64,
    failed: u64,
}

impl Window {
    /// A response after `ns` from the request's first attempt.
    pub(super) fn response(&mut self, ns: u64) {
        self.responses.record(ns);
    }

    /// A request whose outcome became known after `ns` from its first attempt.
    pub(super) fn completion(&mut self, ns: u64) {
        self.completions.record(ns);
    }

    /// A request whose outcome became known (`failed` or not).
    pub(super) fn settled(&mut self, failed: bool) {
        self.settled += 1;
        self.failed += u64::from(failed);
    }

    /// Reports the interval's gauges, each the highest over the users
    /// nodes that report it, and starts a new interval. A gauge with
    /// nothing behind it in the interval is not reported.
    pub(super) fn report(&mut self, out: &mut Gauges) {
        if self.responses.count() > 0 {
            let s = self.responses.summary();
            out.max("response_mean_ms", s.mean);
            out.max("response_p99_ms", s.p99);
        }
        if self.completions.count() > 0 {
            let s = self.completions.summary();
            out.max("completion_mean_ms", s.mean);
            out.max("completion_p99_ms", s.p99);
        }
        if self.settled > 0 {
            out.max("error_rate", self.failed as f64 / self.settled as f64);
        }
        *self = Window::default();
    }
}

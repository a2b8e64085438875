//! What users saw over one sampling interval: the response times and the
//! requests settled, failed or not, for the report's gauges. Read and
//! reset at each sample.

use crate::metrics::Gauges;

/// Responses and settled requests since the last sample.
#[derive(Debug, Default)]
pub(super) struct Window {
    /// Response times (ns) of the interval.
    responses: Vec<u64>,
    settled: u64,
    failed: u64,
}

impl Window {
    /// A response after `ns` from the request's first attempt.
    pub(super) fn response(&mut self, ns: u64) {
        self.responses.push(ns);
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
        const MS: f64 = crate::time::NS_PER_MS as f64;
        if !self.responses.is_empty() {
            self.responses.sort_unstable();
            let n = self.responses.len();
            let mean = self.responses.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
            // The nearest-rank p99.
            let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n);
            out.max("response_mean_ms", mean / MS);
            out.max("response_p99_ms", self.responses[rank - 1] as f64 / MS);
        }
        if self.settled > 0 {
            out.max("error_rate", self.failed as f64 / self.settled as f64);
        }
        *self = Window::default();
    }
}

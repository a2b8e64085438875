//! Steady-state output analysis of one run: warm-up deletion by MSER-5
//! (White 1997; Franklin and White 2008) and non-overlapping batch means,
//! applied to the per-interval time series ([`crate::metrics::Sample`]) of
//! the run phase when a scenario asks for it (`[run] steady_state`).
//!
//! What is measured: the mean latency of the effects first applied during
//! each sampling interval (weighted by how many there were) and the
//! throughput of each interval. Intervals of the drain are left out (no
//! arrivals: not the steady state), and so is a last, partial interval.
//! Left out: overlapping batch means, standardized time series, and any
//! test of the batches' independence (choose long runs: see
//! `docs/statistics.md`).

use super::{estimate, Estimate};
use crate::metrics::Sample;
use serde::{Deserialize, Serialize};

/// How many observations MSER-5 averages into each of its batches.
const MSER_BATCH: usize = 5;

/// The samples to delete from the start of `series` as warm-up, by MSER-5:
/// the series is averaged in batches of 5 (a last, partial batch left
/// out), and the truncation point d (in batches) that minimises the
/// marginal standard error `Σ_{j>d} (Z_j - Z̄_d)² / (k - d)²` is chosen,
/// searching only the first half of the k batches (beyond it the
/// statistic is unreliable); ties go to the earliest. Returns 5 d, and 0
/// for a series of fewer than 10 observations.
pub fn mser5(series: &[f64]) -> usize {
    let z: Vec<f64> = series.chunks_exact(MSER_BATCH).map(|c| c.iter().sum::<f64>() / MSER_BATCH as f64).collect();
    let k = z.len();
    if k < 2 {
        return 0;
    }
    // Suffix sums, about the overall mean to keep the squares small.
    let centre = z.iter().sum::<f64>() / k as f64;
    let (mut s1, mut s2) = (vec![0.0; k + 1], vec![0.0; k + 1]);
    for j in (0..k).rev() {
        let x = z[j] - centre;
        s1[j] = s1[j + 1] + x;
        s2[j] = s2[j + 1] + x * x;
    }
    let mut best = (0, f64::INFINITY);
    for d in 0..=k / 2 {
        let m = (k - d) as f64;
        let sse = (s2[d] - s1[d] * s1[d] / m).max(0.0);
        let mser = sse / (m * m);
        if mser < best.1 {
            best = (d, mser);
        }
    }
    best.0 * MSER_BATCH
}

/// Non-overlapping batch means of `series`: it is cut into `batches`
/// consecutive batches of equal size (the remainder of the division left
/// out at the start, where the warm-up was), and the t interval of the
/// batch means is returned (`batches - 1` degrees of freedom; `n` is the
/// number of batches). With fewer observations than batches, each
/// observation is a batch.
pub fn batch_means(series: &[f64], batches: usize, level: f64) -> Estimate {
    batch_means_weighted(series, &vec![1.0; series.len()], batches, level)
}

/// [`batch_means`] of a series of means, each weighing `weights[i]` (how
/// many observations it averages): each batch's mean is the weighted mean
/// of its values, so a batch mean is the mean of every observation in it.
/// Batches of no weight are left out.
pub fn batch_means_weighted(values: &[f64], weights: &[f64], batches: usize, level: f64) -> Estimate {
    let n = values.len().min(weights.len());
    let batches = batches.clamp(1, n.max(1));
    let size = n / batches;
    if size == 0 {
        return estimate(&[], level);
    }
    let skip = n - size * batches;
    let means: Vec<f64> = values[skip..n]
        .chunks_exact(size)
        .zip(weights[skip..n].chunks_exact(size))
        .filter_map(|(v, w)| {
            let total: f64 = w.iter().sum();
            (total > 0.0).then(|| v.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / total)
        })
        .collect();
    estimate(&means, level)
}

/// True when `e` is precise to `relative` (0.02 for 2%): its half-width is
/// at most `relative × |mean|`. False for an unbounded or undefined one.
pub fn within(e: &Estimate, relative: f64) -> bool {
    e.half_width.is_finite() && e.mean.is_finite() && e.half_width <= relative * e.mean.abs()
}

/// How the warm-up is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Warmup {
    /// MSER-5 on each series; the later truncation point of the two.
    #[default]
    #[serde(rename = "mser-5")]
    Mser5,
    /// Keep every interval (the run starts in steady state).
    #[serde(rename = "none")]
    None,
}

/// `[run] steady_state`: what a scenario asks of the steady-state analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteadyStateSpec {
    /// How the warm-up is deleted.
    #[serde(default)]
    pub warmup: Warmup,
    /// How many batches (at least 2): the interval has `batches - 1`
    /// degrees of freedom.
    #[serde(default = "default_batches")]
    pub batches: usize,
    /// Confidence level of the intervals, between 0 and 1 (exclusive).
    #[serde(default = "default_level")]
    pub level: f64,
}

fn default_batches() -> usize {
    20
}
fn default_level() -> f64 {
    0.95
}

impl Default for SteadyStateSpec {
    fn default() -> Self {
        SteadyStateSpec { warmup: Warmup::Mser5, batches: default_batches(), level: default_level() }
    }
}

impl SteadyStateSpec {
    /// What is wrong with the spec, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.batches < 2 {
            return Some(format!("`batches` must be at least 2 (got {})", self.batches));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Some(format!("`level` must lie between 0 and 1, exclusive, such as 0.95 (got {})", self.level));
        }
        None
    }
}

/// The summary's `steady_state`: batch-means intervals of the steady
/// state, after the warm-up.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SteadyState {
    /// Simulated seconds deleted as warm-up, from the start.
    pub warmup_s: f64,
    /// Sampling intervals of the run phase analysed (after the warm-up).
    pub intervals: usize,
    /// Mean latency of the effects first applied (production to first
    /// application), ms: the interval of the mean over the batches.
    pub latency_ms: Estimate,
    /// First applications per second.
    pub throughput_per_s: Estimate,
}

/// The steady-state analysis of `samples` (a run's time series at
/// `sample_ns`), keeping the full intervals that end by `run_end_ns`.
pub fn analyse(spec: &SteadyStateSpec, samples: &[Sample], sample_ns: u64, run_end_ns: u64) -> SteadyState {
    let full = usize::try_from(run_end_ns / sample_ns.max(1)).unwrap_or(usize::MAX).min(samples.len());
    let rows = &samples[..full];
    let rate: Vec<f64> = rows.iter().map(|s| s.processed_per_s).collect();
    // Intervals where something was applied, for MSER-5 on the latency.
    let applied: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].latency_count > 0).collect();
    let cut = match spec.warmup {
        Warmup::None => 0,
        Warmup::Mser5 => {
            let means: Vec<f64> = applied.iter().map(|&i| rows[i].latency_ms_mean).collect();
            let by_latency = applied.get(mser5(&means)).copied().unwrap_or(0);
            by_latency.max(mser5(&rate))
        }
    };
    let kept = &rows[cut..];
    let values: Vec<f64> = kept.iter().map(|s| s.latency_ms_mean).collect();
    let weights: Vec<f64> = kept.iter().map(|s| s.latency_count as f64).collect();
    SteadyState {
        warmup_s: cut as f64 * sample_ns as f64 / 1e9,
        intervals: kept.len(),
        latency_ms: batch_means_weighted(&values, &weights, spec.batches, spec.level),
        throughput_per_s: batch_means(&rate[cut..], spec.batches, spec.level),
    }
}

#[cfg(test)]
#[path = "steady_tests.rs"]
mod tests;

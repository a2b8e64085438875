//! Output analysis over many runs: confidence intervals of a mean over
//! independent replications (Student's t), of a paired difference (common
//! random numbers), and of an unpaired one (Welch), for `sweep`, interval
//! expectations and the tests that check the simulator against theory.
//!
//! What it leaves out: intervals of quantiles across runs (a p99 over seeds
//! is treated as a mean of per-run p99s, which is what it is) and
//! multiple-comparison corrections.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A mean with its confidence interval.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Estimate {
    /// Samples.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (n - 1); 0 with fewer than 2.
    pub std_dev: f64,
    /// Half the interval's width; infinite with fewer than 2 samples.
    pub half_width: f64,
    /// mean - half_width.
    pub low: f64,
    /// mean + half_width.
    pub high: f64,
    /// The confidence level, 0 to 1 (0.95).
    pub level: f64,
}

/// The `p` quantile of Student's t with `df` degrees of freedom (`df` may be
/// fractional, as Welch's is).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => f64::INFINITY,
    }
}

fn mean_var(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    if samples.is_empty() {
        return (f64::NAN, 0.0);
    }
    let mean = samples.iter().sum::<f64>() / n;
    let var = if samples.len() > 1 { samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var)
}

fn interval(n: usize, mean: f64, std_dev: f64, se: f64, df: f64, level: f64) -> Estimate {
    let half_width = if n < 2 {
        f64::INFINITY
    } else if se == 0.0 {
        0.0
    } else {
        t_quantile(0.5 + level / 2.0, df) * se
    };
    Estimate { n, mean, std_dev, half_width, low: mean - half_width, high: mean + half_width, level }
}

/// The mean of independent `samples` with its `level` (0.95) Student t
/// interval.
pub fn estimate(samples: &[f64], level: f64) -> Estimate {
    let n = samples.len();
    let (mean, var) = mean_var(samples);
    let sd = var.sqrt();
    interval(n, mean, sd, sd / (n as f64).sqrt(), n.saturating_sub(1) as f64, level)
}

/// The mean of the differences `a[i] - b[i]` (runs paired by seed) with
/// its interval. Pairs beyond the shorter slice are ignored.
pub fn paired(a: &[f64], b: &[f64], level: f64) -> Estimate {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    estimate(&d, level)
}

/// `mean(a) - mean(b)` for independent samples, with Welch's interval
/// (Welch-Satterthwaite degrees of freedom). `std_dev` is the standard
/// error of the difference.
pub fn unpaired(a: &[f64], b: &[f64], level: f64) -> Estimate {
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (qa, qb) = (va / na, vb / nb);
    let se = (qa + qb).sqrt();
    let df =
        if qa + qb == 0.0 { na + nb - 2.0 } else { (qa + qb).powi(2) / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0)) };
    interval(a.len().min(b.len()), ma - mb, se, se, df, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Tabled two-sided 95% values: df 1, 9, 19, and the normal limit.
        for (df, q) in [(1.0, 12.706), (9.0, 2.262), (19.0, 2.093), (1e6, 1.960)] {
            assert!((t_quantile(0.975, df) - q).abs() < 5e-4, "df {df}");
        }
    }

    #[test]
    fn an_interval_is_the_mean_plus_or_minus_t_times_the_standard_error() {
        let e = estimate(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
        assert_eq!(e.mean, 3.0);
        let se = (2.5f64).sqrt() / 5f64.sqrt();
        assert!((e.half_width - t_quantile(0.975, 4.0) * se).abs() < 1e-12);
        assert!(estimate(&[7.0], 0.95).half_width.is_infinite());
        assert_eq!(estimate(&[2.0, 2.0], 0.95).half_width, 0.0);
    }

    #[test]
    fn pairing_removes_the_variation_the_two_sides_share() {
        // b is a plus a constant plus a little: the paired interval is tight,
        // the unpaired one as wide as a's own spread.
        let a: Vec<f64> = (0..20).map(|i| (i * 37 % 11) as f64 * 10.0).collect();
        let b: Vec<f64> = a.iter().enumerate().map(|(i, x)| x + 5.0 + (i % 3) as f64 * 0.1).collect();
        let p = paired(&b, &a, 0.95);
        let u = unpaired(&b, &a, 0.95);
        assert!((p.mean - u.mean).abs() < 1e-9);
        assert!(p.half_width * 50.0 < u.half_width, "{p:?} {u:?}");
    }
}

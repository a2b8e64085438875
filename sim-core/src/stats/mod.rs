//! Statistics of many runs: Student t confidence intervals of a mean, of
//! paired and unpaired differences, and (in [`steady`]) steady-state output
//! analysis of one run's time series: MSER-5 warm-up deletion and batch
//! means. What each interval means: `docs/statistics.md`.
//!
//! Left out: intervals of quantiles (a p99 over seeds is estimated as the
//! mean of each seed's p99, a different quantity from the p99 of all the
//! messages), and any correction for multiple comparisons.

use serde::Serialize;

pub mod steady;

pub use steady::{batch_means, batch_means_weighted, mser5, within, SteadyState, SteadyStateSpec, Warmup};

/// A confidence interval of a mean: `mean ± half_width` = `[low, high]`
/// at confidence `level` (0.95), from `n` samples whose standard deviation
/// is `std_dev`. With fewer than two samples the interval is unbounded
/// (`half_width` infinite; null in JSON).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Estimate {
    /// How many samples (replications, batches, pairs).
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (n - 1 in the denominator).
    pub std_dev: f64,
    /// Half the interval's width.
    pub half_width: f64,
    /// `mean - half_width`.
    pub low: f64,
    /// `mean + half_width`.
    pub high: f64,
    /// The confidence level, 0 to 1.
    pub level: f64,
}

/// The Student t interval of the mean of `samples` at `level` (0.95): with
/// n samples, `mean ± t(1 - (1 - level)/2, n - 1) × s / √n`.
pub fn estimate(samples: &[f64], level: f64) -> Estimate {
    let n = samples.len();
    let mean = if n == 0 { f64::NAN } else { samples.iter().sum::<f64>() / n as f64 };
    if n < 2 {
        return Estimate {
            n,
            mean,
            std_dev: f64::NAN,
            half_width: f64::INFINITY,
            low: f64::NEG_INFINITY,
            high: f64::INFINITY,
            level,
        };
    }
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std_dev = var.sqrt();
    let half_width = t_quantile(1.0 - (1.0 - level) / 2.0, (n - 1) as f64) * std_dev / (n as f64).sqrt();
    Estimate { n, mean, std_dev, half_width, low: mean - half_width, high: mean + half_width, level }
}

/// The interval of the mean of `a_i - b_i` (common random numbers: run `i`
/// of both with the same seed). Uses the shorter length when they differ.
pub fn paired(a: &[f64], b: &[f64], level: f64) -> Estimate {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    estimate(&d, level)
}

/// Welch's interval of `mean(a) - mean(b)` for independent samples, with
/// the Welch-Satterthwaite degrees of freedom.
pub fn unpaired(a: &[f64], b: &[f64], level: f64) -> Estimate {
    let (ea, eb) = (estimate(a, level), estimate(b, level));
    let (va, vb) = (ea.std_dev.powi(2) / a.len() as f64, eb.std_dev.powi(2) / b.len() as f64);
    let se = (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va.powi(2) / (a.len() as f64 - 1.0) + vb.powi(2) / (b.len() as f64 - 1.0));
    let mean = ea.mean - eb.mean;
    let half_width = if se > 0.0 && df.is_finite() {
        t_quantile(1.0 - (1.0 - level) / 2.0, df) * se
    } else if se == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    Estimate {
        n: a.len().min(b.len()),
        mean,
        std_dev: se,
        half_width,
        low: mean - half_width,
        high: mean + half_width,
        level,
    }
}

/// The `p`-quantile of Student's t with `df` degrees of freedom: the t with
/// P(T ≤ t) = p. Bisection on the distribution function (through the
/// regularized incomplete beta function), to about 1e-12.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() || p <= 0.0 || p >= 1.0 || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    while t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * incomplete_beta(0.5 * df, 0.5, x);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The regularized incomplete beta function I_x(a, b), by its continued
/// fraction (modified Lentz), using the symmetry I_x(a,b) = 1 - I_{1-x}(b,a)
/// where the fraction converges slowly.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_gamma = libm::lgamma;
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    d = if d.abs() < TINY { TINY } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = m as f64;
        for num in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            d = if d.abs() < TINY { TINY } else { d };
            c = 1.0 + num / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95% and 99.9% values from any table of Student's t.
        for (df, t975) in [(1.0, 12.706), (2.0, 4.303), (9.0, 2.262), (19.0, 2.093), (30.0, 2.042), (1e6, 1.960)] {
            assert!((t_quantile(0.975, df) - t975).abs() < 1e-3, "df {df}: {}", t_quantile(0.975, df));
        }
        assert!((t_quantile(0.9995, 9.0) - 4.781).abs() < 1e-3);
        assert!((t_quantile(0.025, 9.0) + 2.262).abs() < 1e-3, "symmetric");
        assert!(t_quantile(0.5, 5.0).abs() < 1e-9);
    }

    #[test]
    fn an_estimate_is_a_t_interval_of_the_mean() {
        let e = estimate(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
        assert_eq!((e.n, e.mean), (5, 3.0));
        assert!((e.std_dev - 2.5f64.sqrt()).abs() < 1e-12);
        let hw = 2.776_445 * 2.5f64.sqrt() / 5f64.sqrt();
        assert!((e.half_width - hw).abs() < 1e-5, "{}", e.half_width);
        assert!(estimate(&[1.0], 0.95).half_width.is_infinite());
    }

    #[test]
    fn pairing_removes_what_two_samples_share() {
        let a = [10.0, 20.0, 30.0, 40.0];
        let b = [9.0, 19.5, 29.0, 39.5];
        let p = paired(&a, &b, 0.95);
        let u = unpaired(&a, &b, 0.95);
        assert!((p.mean - 0.75).abs() < 1e-12 && (u.mean - 0.75).abs() < 1e-12);
        assert!(p.half_width * 10.0 < u.half_width, "{p:?} {u:?}");
    }
}

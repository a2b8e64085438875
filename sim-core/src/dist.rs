//! Probability distributions of durations: network latency, processing time.
//!
//! A [`Dist`] is what a scenario file says (`{ dist = "exponential",
//! mean_ms = 1 }`); a [`Sampler`] is the same thing made ready to draw
//! integer nanoseconds quickly in the hot loop.
//!
//! Simplification: the normal distribution is clamped at zero (a negative
//! duration has no meaning), which raises its mean slightly when the standard
//! deviation is large compared with the mean; use lognormal for that shape.
//!
//! Every transcendental function here (log, exp, pow, cos) comes from the
//! pure-Rust `libm` crate, never from the platform's math library, whose last
//! bit may differ between systems: a seed gives the same draws on any machine.

use crate::rng::{unit, SimRng};
use crate::units::{Millis, Positive};
use serde::{Deserialize, Serialize};

/// A distribution of durations, as written in a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", try_from = "DistTable")]
pub enum Dist {
    /// Always the same duration.
    Constant {
        /// The duration.
        ms: Millis,
    },
    /// Uniform between `min_ms` and `max_ms`.
    Uniform {
        /// Shortest.
        min_ms: Millis,
        /// Longest.
        max_ms: Millis,
    },
    /// Exponential (memoryless) with the given mean.
    Exponential {
        /// Mean.
        mean_ms: Millis,
    },
    /// Normal with the given mean and standard deviation, clamped at zero.
    Normal {
        /// Mean.
        mean_ms: Millis,
        /// Standard deviation.
        stddev_ms: Millis,
    },
    /// Lognormal with the given mean and standard deviation (of the duration
    /// itself, not of its logarithm): a right-skewed, always-positive shape.
    Lognormal {
        /// Mean.
        mean_ms: Millis,
        /// Standard deviation.
        stddev_ms: Millis,
    },
    /// Pareto (heavy tail): never below `scale_ms`; a smaller `shape` means a
    /// heavier tail (the mean is infinite when `shape` <= 1).
    Pareto {
        /// The minimum duration.
        scale_ms: Millis,
        /// The tail index.
        shape: Positive,
    },
}

/// A `dist` table as written, every field optional, so that serde can name
/// the exact field of an error; [`Dist::try_from`] then checks the fields
/// against the tag.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistTable {
    dist: DistKind,
    ms: Option<Millis>,
    min_ms: Option<Millis>,
    max_ms: Option<Millis>,
    mean_ms: Option<Millis>,
    stddev_ms: Option<Millis>,
    scale_ms: Option<Millis>,
    shape: Option<Positive>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum DistKind {
    Constant,
    Uniform,
    Exponential,
    Normal,
    Lognormal,
    Pareto,
}

impl TryFrom<DistTable> for Dist {
    type Error = String;

    fn try_from(t: DistTable) -> Result<Self, String> {
        use crate::tagged::{need, only, present};
        let p = present!(t, ms, min_ms, max_ms, mean_ms, stddev_ms, scale_ms, shape);
        let mean_sd = ["mean_ms", "stddev_ms"];
        Ok(match t.dist {
            DistKind::Constant => {
                let w = "a constant `dist`";
                only(&p, &["ms"], w)?;
                Dist::Constant { ms: need(t.ms, "ms", w)? }
            }
            DistKind::Uniform => {
                let w = "a uniform `dist`";
                only(&p, &["min_ms", "max_ms"], w)?;
                Dist::Uniform { min_ms: need(t.min_ms, "min_ms", w)?, max_ms: need(t.max_ms, "max_ms", w)? }
            }
            DistKind::Exponential => {
                let w = "an exponential `dist`";
                only(&p, &["mean_ms"], w)?;
                Dist::Exponential { mean_ms: need(t.mean_ms, "mean_ms", w)? }
            }
            DistKind::Normal => {
                let w = "a normal `dist`";
                only(&p, &mean_sd, w)?;
                Dist::Normal { mean_ms: need(t.mean_ms, "mean_ms", w)?, stddev_ms: need(t.stddev_ms, "stddev_ms", w)? }
            }
            DistKind::Lognormal => {
                let w = "a lognormal `dist`";
                only(&p, &mean_sd, w)?;
                Dist::Lognormal {
                    mean_ms: need(t.mean_ms, "mean_ms", w)?,
                    stddev_ms: need(t.stddev_ms, "stddev_ms", w)?,
                }
            }
            DistKind::Pareto => {
                let w = "a pareto `dist`";
                only(&p, &["scale_ms", "shape"], w)?;
                Dist::Pareto { scale_ms: need(t.scale_ms, "scale_ms", w)?, shape: need(t.shape, "shape", w)? }
            }
        })
    }
}

impl Default for Dist {
    fn default() -> Self {
        Dist::Constant { ms: Millis(0.0) }
    }
}

impl Dist {
    /// A constant duration of `ms` milliseconds.
    pub fn constant_ms(ms: f64) -> Self {
        Dist::Constant { ms: Millis(ms) }
    }

    /// Checks relations between fields that a single field cannot check.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Dist::Uniform { min_ms, max_ms } if min_ms.0 > max_ms.0 => {
                Err(format!("min_ms ({}) must not exceed max_ms ({})", min_ms.0, max_ms.0))
            }
            Dist::Lognormal { mean_ms, .. } if mean_ms.0 <= 0.0 => Err("a lognormal mean_ms must be above 0".into()),
            Dist::Pareto { scale_ms, .. } if scale_ms.0 <= 0.0 => Err("a pareto scale_ms must be above 0".into()),
            _ => Ok(()),
        }
    }

    /// The mean in milliseconds (infinite for a Pareto with shape <= 1).
    pub fn mean_ms(&self) -> f64 {
        match self {
            Dist::Constant { ms } => ms.0,
            Dist::Uniform { min_ms, max_ms } => (min_ms.0 + max_ms.0) / 2.0,
            Dist::Exponential { mean_ms } => mean_ms.0,
            Dist::Normal { mean_ms, .. } => mean_ms.0,
            Dist::Lognormal { mean_ms, .. } => mean_ms.0,
            Dist::Pareto { scale_ms, shape } => {
                if shape.0 <= 1.0 {
                    f64::INFINITY
                } else {
                    shape.0 * scale_ms.0 / (shape.0 - 1.0)
                }
            }
        }
    }

    /// Prepares a sampler. Call [`Dist::check`] first: an unchecked invalid
    /// distribution may sample nonsense (but never panics).
    pub fn sampler(&self) -> Sampler {
        const NS: f64 = crate::time::NS_PER_MS as f64;
        match *self {
            Dist::Constant { ms } => Sampler::Constant(crate::time::ms_to_ns(ms.0)),
            Dist::Uniform { min_ms, max_ms } => {
                Sampler::Uniform { low_ns: min_ms.0 * NS, span_ns: (max_ms.0 - min_ms.0).max(0.0) * NS }
            }
            Dist::Exponential { mean_ms } => Sampler::Exponential { mean_ns: mean_ms.0 * NS },
            Dist::Normal { mean_ms, stddev_ms } => Sampler::Normal { mean_ns: mean_ms.0 * NS, sd_ns: stddev_ms.0 * NS },
            Dist::Lognormal { mean_ms, stddev_ms } => {
                // Solve for the parameters of the underlying normal from the
                // mean and standard deviation of the duration itself.
                let m = (mean_ms.0 * NS).max(f64::MIN_POSITIVE);
                let s = stddev_ms.0 * NS;
                let sigma2 = libm::log(1.0 + (s * s) / (m * m));
                Sampler::LogNormal { mu: libm::log(m) - sigma2 / 2.0, sigma: libm::sqrt(sigma2) }
            }
            Dist::Pareto { scale_ms, shape } => Sampler::Pareto { scale_ns: scale_ms.0 * NS, shape: shape.0 },
        }
    }
}

/// A distribution ready to draw durations in integer nanoseconds.
#[derive(Debug, Clone)]
pub enum Sampler {
    /// Always this many nanoseconds.
    Constant(u64),
    /// Uniform in [low, low + span).
    Uniform {
        /// Low end.
        low_ns: f64,
        /// Width.
        span_ns: f64,
    },
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean_ns: f64,
    },
    /// Normal, clamped at zero.
    Normal {
        /// Mean.
        mean_ns: f64,
        /// Standard deviation.
        sd_ns: f64,
    },
    /// Lognormal: exp of a normal with these parameters.
    LogNormal {
        /// Mean of the logarithm.
        mu: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Pareto with this minimum and tail index.
    Pareto {
        /// Minimum.
        scale_ns: f64,
        /// Tail index.
        shape: f64,
    },
}

/// A draw in (0, 1]: safe to take the logarithm of.
#[inline]
fn open_unit(rng: &mut SimRng) -> f64 {
    1.0 - unit(rng)
}

/// A standard exponential draw, by inverse transform.
#[inline]
pub fn standard_exponential(rng: &mut SimRng) -> f64 {
    -ln_open_unit(open_unit(rng))
}

/// A standard normal draw, by the Box-Muller transform.
#[inline]
pub fn standard_normal(rng: &mut SimRng) -> f64 {
    let r = libm::sqrt(-2.0 * ln_open_unit(open_unit(rng)));
    r * libm::cos(std::f64::consts::TAU * unit(rng))
}

impl Sampler {
    /// Draws one duration in nanoseconds. A constant draws no random numbers.
    /// The exponential (the processing time of M/M/1) is drawn inline; the
    /// other shapes in [`Sampler::sample_other_ns`].
    #[inline(always)]
    pub fn sample_ns(&self, rng: &mut SimRng) -> u64 {
        match *self {
            Sampler::Exponential { mean_ns } => to_ns(standard_exponential(rng) * mean_ns),
            _ => self.sample_other_ns(rng),
        }
    }

    /// [`Sampler::sample_ns`] of every shape (out of line).
    #[inline(never)]
    fn sample_other_ns(&self, rng: &mut SimRng) -> u64 {
        let ns = match *self {
            Sampler::Constant(ns) => return ns,
            Sampler::Uniform { low_ns, span_ns } => low_ns + unit(rng) * span_ns,
            Sampler::Exponential { mean_ns } => standard_exponential(rng) * mean_ns,
            Sampler::Normal { mean_ns, sd_ns } => mean_ns + sd_ns * standard_normal(rng),
            Sampler::LogNormal { mu, sigma } => libm::exp(mu + sigma * standard_normal(rng)),
            Sampler::Pareto { scale_ns, shape } => scale_ns * libm::pow(open_unit(rng), -1.0 / shape),
        };
        to_ns(ns)
    }

    /// Draws one duration, stretched by `factor` (a slow node's multiplier).
    #[inline(always)]
    pub fn sample_scaled_ns(&self, rng: &mut SimRng, factor: f64) -> u64 {
        let ns = self.sample_ns(rng);
        if factor == 1.0 {
            ns
        } else {
            to_ns(ns as f64 * factor)
        }
    }
}

/// `libm::log(x)`, bit for bit, for a draw of [`open_unit`]: `x` in
/// [2^-53, 1], a normal double. It is libm's port of msun's `e_log.c`
/// (Sun Microsystems, 1993; "permission to use, copy, modify, and
/// distribute this software is freely granted, provided that this notice
/// is preserved") with the same operations in the same order, less the
/// checks such an `x` never needs (zero, negative, subnormal, infinite,
/// NaN, and exactly 1, which the general path maps to +0 too), inlined
/// into the draw: about 15 instructions fewer per draw than the call
/// (two draws per message on M/M/1). `ln_open_unit_is_libm_log` checks it.
#[inline(always)]
#[allow(clippy::excessive_precision)] // msun's constants, digit for digit
fn ln_open_unit(x: f64) -> f64 {
    const LN2_HI: f64 = 6.93147180369123816490e-01; /* 3fe62e42 fee00000 */
    const LN2_LO: f64 = 1.90821492927058770002e-10; /* 3dea39ef 35793c76 */
    const LG1: f64 = 6.666666666666735130e-01; /* 3FE55555 55555593 */
    const LG2: f64 = 3.999999999940941908e-01; /* 3FD99999 9997FA04 */
    const LG3: f64 = 2.857142874366239149e-01; /* 3FD24924 94229359 */
    const LG4: f64 = 2.222219843214978396e-01; /* 3FCC71C5 1D8E78AF */
    const LG5: f64 = 1.818357216161805012e-01; /* 3FC74664 96CB03DE */
    const LG6: f64 = 1.531383769920937332e-01; /* 3FC39A09 D078C69F */
    const LG7: f64 = 1.479819860511658591e-01; /* 3FC2F112 DF3E5244 */
    debug_assert!((f64::MIN_POSITIVE..=1.0).contains(&x), "{x}");
    let ui = x.to_bits();
    // Reduce x into [sqrt(2)/2, sqrt(2)]: x = 2^k * (1 + f).
    let mut hx = (ui >> 32) as u32;
    hx = hx.wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
    let k = ((hx >> 20) as i32) - 0x3ff;
    hx = (hx & 0x000f_ffff) + 0x3fe6_a09e;
    let x = f64::from_bits((u64::from(hx) << 32) | (ui & 0xffff_ffff));
    let f = x - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let dk = f64::from(k);
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

#[inline]
fn to_ns(ns: f64) -> u64 {
    if ns > 0.0 && ns < TWO_52 {
        // The common case (below 52 days), in a few instructions.
        round_below_2_52(ns)
    } else if ns <= 0.0 || ns.is_nan() {
        0
    } else if ns >= 1.0e18 {
        // Bound every duration (about 31 years) so time arithmetic cannot overflow.
        1_000_000_000_000_000_000
    } else {
        round_positive(ns)
    }
}

/// 2^52: from here up every double is an integer, and between it and 2^53
/// the integers are exactly the doubles.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// `x.round() as u64` (half away from zero) for `x` in (0, 2^52), bit for
/// bit, with no conversion instruction: Rust's float-to-integer `as`
/// saturates, which costs a compare and a conditional move per bound and
/// one for NaN around the conversion (about 12 instructions with
/// [`round_positive`]'s, against 8 here). `y = x + 2^52` is rounded to
/// the nearest integer, ties to even (the rounding mode is always to
/// nearest), and that integer `r` sits in `y`'s low mantissa bits: `y`'s
/// bits less 2^52's are `r` (at `x` just below 2^52 `y` may reach 2^53,
/// whose bits are 2^52's plus 2^52: still `r`). `y - 2^52` is exact
/// (Sterbenz's lemma: `y` is within a factor of two of 2^52), and so is
/// `x - r` (for `x` >= 1/2 the two are within a factor of two, below that
/// `r` is 0), which lies in [-1/2, 1/2]: it is 1/2 just when `x` was a
/// tie rounded down to even, which half away from zero rounds up.
#[inline]
fn round_below_2_52(x: f64) -> u64 {
    debug_assert!(x > 0.0 && x < TWO_52, "{x}");
    let y = x + TWO_52;
    let r = y.to_bits() - TWO_52.to_bits();
    r + u64::from(x - (y - TWO_52) >= 0.5)
}

/// `x.round() as u64` (half away from zero) for `x` in (0, 2^63), bit for
/// bit, in a few instructions: without SSE4.1, `f64::round` is a call into
/// a software routine of about 24 instructions. Exact: `t`, `x` truncated,
/// is a double (below 2^53 every integer is; above, `x` is an integer and
/// `t` is `x`), and `x - t` is exact (for `x` >= 1 the two are within a
/// factor of two of each other, Sterbenz's lemma; below 1, `t` is 0).
/// Below 2^63 the signed conversions give the unsigned ones' values in
/// about half the instructions (x86-64 converts signed integers only).
#[inline]
pub fn round_positive(x: f64) -> u64 {
    debug_assert!(x > 0.0 && x < 9.2e18, "{x}");
    let t = x as i64;
    (t + i64::from(x - t as f64 >= 0.5)) as u64
}

/// `x.round() as u64` for any `x` (0 for NaN and below 0.5, saturating
/// at `u64::MAX`), without the libm call in the common case.
#[inline]
pub fn round_to_u64(x: f64) -> u64 {
    if x > 0.0 && x < TWO_52 {
        round_below_2_52(x)
    } else if x > 0.0 && x < 9.2e18 {
        round_positive(x)
    } else {
        x.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_open_unit_is_libm_log() {
        // Every value `open_unit` can draw is k * 2^-53 for k in 1..=2^53:
        // the ends, the reduction's boundaries near sqrt(2)/2 and 1, each
        // power of two with its neighbours, and a million draws.
        let mut xs = vec![1.0, 1.0 - 1.0 / (1u64 << 53) as f64, 0.5, std::f64::consts::FRAC_1_SQRT_2];
        for e in 1..=53 {
            let p = 1.0 / (1u64 << e) as f64;
            xs.extend([p, f64::from_bits(p.to_bits() + 1), f64::from_bits(p.to_bits() - 1)]);
        }
        let r = std::f64::consts::FRAC_1_SQRT_2;
        xs.extend((-50..50).map(|d: i64| f64::from_bits(r.to_bits().wrapping_add_signed(d))));
        let mut rng = crate::rng::stream(11, "log");
        xs.extend((0..1_000_000).map(|_| open_unit(&mut rng)));
        for x in xs {
            assert_eq!(ln_open_unit(x).to_bits(), libm::log(x).to_bits(), "{x:e}");
        }
    }

    #[test]
    fn round_to_u64_is_round_as_u64() {
        let xs = [
            -1.0,
            -0.5,
            -0.0,
            0.0,
            0.3,
            0.5,
            2.5,
            4503599627370496.0,
            4.6e15,
            9.2e18,
            1.0e19,
            2.0e19,
            f64::INFINITY,
            f64::NAN,
        ];
        for x in xs {
            assert_eq!(round_to_u64(x), x.round() as u64, "{x}");
        }
    }

    fn mean_of(d: &Dist, n: usize) -> f64 {
        let s = d.sampler();
        let mut rng = crate::rng::stream(3, "dist-test");
        (0..n).map(|_| s.sample_ns(&mut rng) as f64).sum::<f64>() / n as f64 / 1e6
    }

    #[test]
    fn sample_means_match_the_stated_means() {
        // With n draws the sample mean's standard error is sd/sqrt(n); allow 5 of them.
        let n = 200_000;
        let cases = [
            (Dist::Exponential { mean_ms: Millis(2.0) }, 2.0),
            (Dist::Uniform { min_ms: Millis(1.0), max_ms: Millis(3.0) }, 2.0 / 12f64.sqrt()),
            (Dist::Normal { mean_ms: Millis(10.0), stddev_ms: Millis(1.0) }, 1.0),
            (Dist::Lognormal { mean_ms: Millis(5.0), stddev_ms: Millis(2.0) }, 2.0),
            (Dist::Pareto { scale_ms: Millis(1.0), shape: Positive(3.0) }, 3f64.sqrt() / 2.0),
        ];
        for (d, sd) in cases {
            let got = mean_of(&d, n);
            let bound = 5.0 * sd / (n as f64).sqrt();
            assert!((got - d.mean_ms()).abs() < bound, "{d:?}: mean {got} vs {}", d.mean_ms());
        }
    }

    #[test]
    fn constant_draws_exactly() {
        let s = Dist::constant_ms(1.25).sampler();
        let mut rng = crate::rng::stream(1, "x");
        assert_eq!(s.sample_ns(&mut rng), 1_250_000);
        assert_eq!(s.sample_scaled_ns(&mut rng, 2.0), 2_500_000);
    }

    #[test]
    fn round_positive_rounds_as_f64_round_does() {
        let edges = [
            f64::MIN_POSITIVE,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            4503599627370495.5,
            4503599627370497.0,
            9007199254740993.0,
            1.0e18,
            9.0e18,
        ];
        for x in edges {
            assert_eq!(round_positive(x), x.round() as u64, "{x}");
        }
        // Bit patterns spread over every exponent from 2^-60 to 2^62, and
        // the halves just below, at and above an integer.
        let mut rng = crate::rng::stream(5, "round");
        for _ in 0..200_000 {
            let x = libm::exp2(crate::rng::unit(&mut rng) * 122.0 - 60.0);
            let near_half = (x.trunc() + 0.5).max(f64::MIN_POSITIVE);
            for y in [x, near_half, f64::from_bits(near_half.to_bits() - 1), f64::from_bits(near_half.to_bits() + 1)] {
                if y > 0.0 && y < 9.2e18 {
                    assert_eq!(round_positive(y), y.round() as u64, "{y}");
                }
            }
        }
    }

    #[test]
    fn round_below_2_52_rounds_as_f64_round_does() {
        let edges = [
            f64::MIN_POSITIVE,
            0.49999999999999994,
            0.5,
            0.5000000000000001,
            1.0 - f64::EPSILON / 2.0,
            1.5,
            2.5,
            3.5,
            4503599627370494.5,
            4503599627370495.0,
            4503599627370495.5,
            f64::from_bits(TWO_52.to_bits() - 1),
        ];
        for x in edges {
            assert_eq!(round_below_2_52(x), x.round() as u64, "{x}");
            assert_eq!(round_to_u64(x), x.round() as u64, "{x}");
        }
        // Every exponent from 2^-60 to 2^52, and the halves just below, at
        // and above an integer, through both roundings' callers too.
        let mut rng = crate::rng::stream(6, "round-52");
        for _ in 0..200_000 {
            let x = libm::exp2(crate::rng::unit(&mut rng) * 112.0 - 60.0);
            let near_half = (x.trunc() + 0.5).max(f64::MIN_POSITIVE);
            for y in [x, near_half, f64::from_bits(near_half.to_bits() - 1), f64::from_bits(near_half.to_bits() + 1)] {
                if y > 0.0 && y < TWO_52 {
                    assert_eq!(round_below_2_52(y), y.round() as u64, "{y}");
                    assert_eq!(round_below_2_52(y), round_positive(y), "{y}");
                }
                assert_eq!(to_ns(y), if y >= 1.0e18 { 1_000_000_000_000_000_000 } else { y.round() as u64 }, "{y}");
            }
        }
    }

    #[test]
    fn uniform_with_min_above_max_is_refused() {
        let d = Dist::Uniform { min_ms: Millis(3.0), max_ms: Millis(1.0) };
        assert!(d.check().is_err());
    }
}

//! Rate profiles: arrivals whose rate changes over time (a `step`, a
//! `ramp`, a `spike`, a `daily` cycle), as a non-homogeneous Poisson
//! process.
//!
//! A profile's rate is piecewise linear in time (a step is a segment of
//! zero width), constant after its last change. The next arrival after
//! `now` is drawn exactly by the time-change method: draw a unit
//! exponential E and find the time t at which the integrated rate from
//! `now` reaches E (segment by segment: a constant rate gives
//! t = now + E / rate, a linear one the root of a quadratic). The
//! process is memoryless, so a producer that draws its next arrival at the
//! time of its last (or at a restart) follows the profile exactly. Times
//! are counted from the start of the run (0), as faults' are.
//!
//! A daily cycle ([`Cycle`]) is smooth rather than piecewise linear: a
//! cosine between a trough and a peak, repeating every period. Its
//! integral has a closed form (the mean rate times the time, plus a sine
//! term), so the next arrival is found the same way: whole periods are
//! skipped at once (each holds the mean rate times the period), and the
//! rest is the root of the integral within one period, found by Newton's
//! method kept inside a bracket (bisection where a step would leave it),
//! to a tenth of a nanosecond or the float's resolution. Each draw costs
//! a handful of sines however long the quiet time before it: an idle
//! night is one arrival's work, not a night's.
//!
//! Left out: arrival times are rounded to the nanosecond and two arrivals
//! are at least 1 ns apart, as for every arrival process.

use crate::rng::SimRng;
use crate::time::{Duration, Time, NS_PER_S};

/// Knots of a piecewise-linear rate: (time in seconds, rate per second),
/// in time order; the rate is linear between two knots and constant after
/// the last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Knots {
    points: [(f64, f64); 5],
    len: usize,
}

impl Knots {
    /// A rate through `points` (at most 5), starting at time 0.
    pub(crate) fn new(points: &[(f64, f64)]) -> Knots {
        let mut k = Knots { points: [(0.0, 0.0); 5], len: points.len() };
        k.points[..points.len()].copy_from_slice(points);
        k
    }

    fn points(&self) -> &[(f64, f64)] {
        &self.points[..self.len]
    }

    /// The time (seconds) at which the rate integrated from `from` reaches
    /// `mass` (a unit exponential draw).
    pub(crate) fn inverse(&self, from: f64, mut mass: f64) -> f64 {
        let mut t = from;
        for w in self.points().windows(2) {
            let ((a, ra), (b, rb)) = (w[0], w[1]);
            if b <= t || b <= a {
                continue;
            }
            let x = t.max(a);
            let slope = (rb - ra) / (b - a);
            let rx = ra + slope * (x - a);
            let here = (rx + rb) / 2.0 * (b - x);
            if here >= mass {
                return x + solve(rx, slope, mass);
            }
            mass -= here;
            t = b;
        }
        let (last, rate) = self.points()[self.len - 1];
        t.max(last) + mass / rate
    }

    /// The expected number of arrivals between times `a` and `b` (seconds).
    #[cfg(test)]
    pub(crate) fn integral(&self, a: f64, b: f64) -> f64 {
        let upto = |t: f64| {
            let mut sum = 0.0;
            for w in self.points().windows(2) {
                let ((x0, r0), (x1, r1)) = (w[0], w[1]);
                if x1 <= x0 || t <= x0 {
                    continue;
                }
                let end = t.min(x1);
                let r_end = r0 + (r1 - r0) * (end - x0) / (x1 - x0);
                sum += (r0 + r_end) / 2.0 * (end - x0);
            }
            let (last, rate) = self.points()[self.len - 1];
            sum + rate * (t - last).max(0.0)
        };
        upto(b) - upto(a)
    }

    /// The time from `now` to the next arrival.
    pub(crate) fn next_gap(&self, now: Time, rng: &mut SimRng) -> Duration {
        let e = crate::dist::standard_exponential(rng);
        to_gap(self.inverse(now as f64 / NS_PER_S as f64, e), now)
    }
}

/// A daily cycle: a rate that swings as a cosine between `trough` and
/// `peak` (per second) every `period` seconds, highest at `peak_at`
/// seconds into each period (counted from time 0) and lowest half a
/// period away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cycle {
    trough: f64,
    peak: f64,
    peak_at: f64,
    period: f64,
}

impl Cycle {
    /// A cycle; `peak >= trough >= 0`, `peak > 0` and `period > 0` (the
    /// arrival table checks them).
    pub(crate) fn new(trough: f64, peak: f64, peak_at: f64, period: f64) -> Cycle {
        Cycle { trough, peak, peak_at, period }
    }

    /// The mean rate over a period.
    pub(crate) fn mean(&self) -> f64 {
        (self.peak + self.trough) / 2.0
    }

    /// The angle of time `t` (seconds) in the cycle, 0 at a peak.
    fn angle(&self, t: f64) -> f64 {
        std::f64::consts::TAU * (t - self.peak_at).rem_euclid(self.period) / self.period
    }

    /// The rate at time `t` (seconds).
    pub(crate) fn rate(&self, t: f64) -> f64 {
        self.mean() + (self.peak - self.trough) / 2.0 * libm::cos(self.angle(t))
    }

    /// The expected number of arrivals between times `a` and `b` (seconds).
    pub(crate) fn integral(&self, a: f64, b: f64) -> f64 {
        let swing = (self.peak - self.trough) / 2.0 * self.period / std::f64::consts::TAU;
        self.mean() * (b - a) + swing * (libm::sin(self.angle(b)) - libm::sin(self.angle(a)))
    }

    /// The time (seconds) at which the rate integrated from `from` reaches
    /// `mass`: whole periods at once, then Newton's method within a
    /// bracket of the rest.
    pub(crate) fn inverse(&self, from: f64, mass: f64) -> f64 {
        let per_period = self.mean() * self.period;
        if mass <= 0.0 {
            return from;
        }
        let whole = (mass / per_period).floor();
        let start = from + whole * self.period;
        let rest = (mass - whole * per_period).max(0.0);
        // The integral from `start` grows from 0 to `per_period` over one
        // period; two keep the root inside when rounding put `rest` at the top.
        let (mut lo, mut hi) = (start, start + 2.0 * self.period);
        let mut t = start + rest / self.mean();
        for _ in 0..200 {
            if !(t > lo && t < hi) {
                t = lo + (hi - lo) / 2.0;
            }
            let f = self.integral(start, t) - rest;
            if f > 0.0 {
                hi = t;
            } else {
                lo = t;
            }
            let r = self.rate(t);
            let newton = if r > 0.0 { t - f / r } else { f64::NAN };
            let next = if newton > lo && newton < hi { newton } else { lo + (hi - lo) / 2.0 };
            let tolerance = (4.0 * f64::EPSILON * next.abs()).max(1e-10);
            if (next - t).abs() <= tolerance || hi - lo <= tolerance {
                return next;
            }
            t = next;
        }
        t
    }

    /// The time from `now` to the next arrival.
    pub(crate) fn next_gap(&self, now: Time, rng: &mut SimRng) -> Duration {
        let e = crate::dist::standard_exponential(rng);
        to_gap(self.inverse(now as f64 / NS_PER_S as f64, e), now)
    }
}

/// The gap from `now` (ns) to time `at` (seconds), rounded to the
/// nanosecond, at least 1 ns.
fn to_gap(at: f64, now: Time) -> Duration {
    let at_ns = (at * NS_PER_S as f64).round();
    let at_ns = if at_ns >= u64::MAX as f64 { u64::MAX } else { at_ns as u64 };
    at_ns.saturating_sub(now).max(1)
}

/// The d at which a rate `rate + slope * s` integrated over [0, d] reaches
/// `mass`, in the form that stays exact when `slope` is near 0.
fn solve(rate: f64, slope: f64, mass: f64) -> f64 {
    if mass <= 0.0 {
        return 0.0;
    }
    let disc = (rate * rate + 2.0 * slope * mass).max(0.0);
    2.0 * mass / (rate + disc.sqrt())
}

#[cfg(test)]
mod tests {
    use super::super::Arrival;
    use crate::rng::stream;
    use crate::time::NS_PER_MS;

    fn arrival(table: &str) -> Arrival {
        toml::from_str::<toml::Table>(&format!("a = {table}")).unwrap()["a"].clone().try_into().expect("valid")
    }

    /// Every arrival time of `a` before `end_ns`, from seed `seed`.
    fn arrivals(a: &Arrival, seed: u64, end_ns: u64) -> Vec<u64> {
        let mut rng = stream(seed, "node:p");
        let (mut t, mut out) = (0, Vec::new());
        loop {
            t += a.next_gap(t, &mut rng);
            if t >= end_ns {
                return out;
            }
            out.push(t);
        }
    }

    /// Over `seeds` seeds, the arrivals in each phase [from, to) (ms) of
    /// `a` against `expected` (the rate's integral over the phase, worked
    /// out by hand): the total over seeds is Poisson with mean
    /// seeds * expected, so it lies within 5 standard deviations
    /// (sqrt(mean)) of it but for a chance of 6 in 10 million; and the
    /// counts' index of dispersion (sum of (n - m)^2 / m over seeds: mean
    /// `seeds` for Poisson counts) is within 5 of its sds too, which a
    /// process with the right mean but the wrong variance (evenly spaced
    /// arrivals) fails.
    fn check_phases(table: &str, phases: &[(f64, f64, f64)]) {
        check_phases_over(table, phases, 400);
    }

    /// [`check_phases`] over `seeds` seeds.
    fn check_phases_over(table: &str, phases: &[(f64, f64, f64)], seeds: u64) {
        let a = arrival(table);
        let end = phases.iter().map(|p| p.1).fold(0.0, f64::max);
        let runs: Vec<Vec<u64>> = (1..=seeds).map(|s| arrivals(&a, s, (end * NS_PER_MS as f64) as u64)).collect();
        for &(from, to, expected) in phases {
            let (lo, hi) = ((from * NS_PER_MS as f64) as u64, (to * NS_PER_MS as f64) as u64);
            let counts: Vec<f64> =
                runs.iter().map(|r| r.iter().filter(|&&t| t >= lo && t < hi).count() as f64).collect();
            let total: f64 = counts.iter().sum();
            let mean = seeds as f64 * expected;
            assert!(
                (total - mean).abs() < 5.0 * mean.sqrt(),
                "{table} [{from}, {to}) ms: {total} arrivals over {seeds} seeds, expected {mean} ± {:.0}",
                5.0 * mean.sqrt()
            );
            let dispersion: f64 = counts.iter().map(|n| (n - expected).powi(2) / expected).sum();
            // Each term has mean 1 and variance 2 + 1/m (a Poisson's fourth
            // central moment is m(1 + 3m)).
            let (k, sd) = (seeds as f64, (seeds as f64 * (2.0 + 1.0 / expected)).sqrt());
            assert!(
                (dispersion - k).abs() < 5.0 * sd,
                "{table} [{from}, {to}) ms: index of dispersion {dispersion:.0}, expected {k} ± {:.0}",
                5.0 * sd
            );
        }
    }

    #[test]
    fn a_step_has_the_poisson_count_of_each_rate_in_each_phase() {
        // 100/s for 1 s, then 500/s: 100 arrivals expected before, 500 in the second after.
        let step = "{ process = \"step\", rate_per_s = 100, to_rate_per_s = 500, at_ms = 1000 }";
        check_phases(step, &[(0.0, 1000.0, 100.0), (1000.0, 2000.0, 500.0), (2000.0, 2200.0, 100.0)]);
    }

    #[test]
    fn a_ramp_has_the_poisson_count_of_its_integrated_rate_in_each_phase() {
        // 100/s until 500 ms, rising linearly to 500/s at 1500 ms, then 500/s.
        // First half of the ramp: rates 100 -> 300 over 0.5 s = 100 expected;
        // second half 300 -> 500 over 0.5 s = 200; the rate after, 500/s.
        let ramp = "{ process = \"ramp\", rate_per_s = 100, to_rate_per_s = 500, from_ms = 500, until_ms = 1500 }";
        let phases = [(0.0, 500.0, 50.0), (500.0, 1000.0, 100.0), (1000.0, 1500.0, 200.0), (1500.0, 1800.0, 150.0)];
        check_phases(ramp, &phases);
        // A falling ramp solves the same quadratic with a negative slope.
        let down = "{ process = \"ramp\", rate_per_s = 500, to_rate_per_s = 100, until_ms = 1000 }";
        check_phases(down, &[(0.0, 500.0, 200.0), (500.0, 1000.0, 100.0), (1000.0, 1500.0, 50.0)]);
    }

    #[test]
    fn a_spike_raises_the_rate_for_its_window_only() {
        let spike = "{ process = \"spike\", rate_per_s = 100, spike_rate_per_s = 1000, at_ms = 500, until_ms = 700 }";
        check_phases(spike, &[(0.0, 500.0, 50.0), (500.0, 700.0, 200.0), (700.0, 1200.0, 50.0)]);
    }

    #[test]
    fn the_integrated_rate_inverts_exactly() {
        let a =
            arrival("{ process = \"spike\", rate_per_s = 100, spike_rate_per_s = 1000, at_ms = 500, until_ms = 700 }");
        let k = a.knots().expect("a profile");
        for from in [0.0, 0.3, 0.5, 0.6, 0.7, 2.0] {
            for mass in [0.0, 0.5, 10.0, 60.0, 250.0] {
                let t = k.inverse(from, mass);
                assert!((k.integral(from, t) - mass).abs() < 1e-9, "from {from} mass {mass}: t {t}");
            }
        }
        let r = arrival("{ process = \"ramp\", rate_per_s = 1, to_rate_per_s = 1000, from_ms = 10, until_ms = 20 }");
        let k = r.knots().expect("a profile");
        for mass in [0.001, 1.0, 5.0, 9.9, 20.0] {
            assert!((k.integral(0.0, k.inverse(0.0, mass)) - mass).abs() < 1e-9, "mass {mass}");
        }
    }

    /// The rate of a daily cycle written out again, independently of
    /// [`super::Cycle`]: a cosine from `lo` to `hi` peaking at `peak_s`.
    fn cosine(lo: f64, hi: f64, peak_s: f64, period_s: f64) -> impl Fn(f64) -> f64 {
        move |t| lo + (hi - lo) * (1.0 + (std::f64::consts::TAU * (t - peak_s) / period_s).cos()) / 2.0
    }

    /// The integral of `rate` over [a, b] by Simpson's rule (2,000 steps:
    /// exact to far below a count's Poisson spread for a smooth rate).
    fn simpson(rate: &impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
        let n = 2000;
        let h = (b - a) / n as f64;
        let inner: f64 = (1..n).map(|i| rate(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 }).sum();
        (rate(a) + inner + rate(b)) * h / 3.0
    }

    const DAILY: &str =
        "{ process = \"daily\", trough_rate_per_s = 0.02, peak_rate_per_s = 0.2, peak_at_ms = 50_400_000 }";

    #[test]
    fn a_daily_cycle_peaks_at_its_hour_and_bottoms_out_half_a_day_later() {
        let c = arrival(DAILY).cycle().expect("a cycle");
        let hour = 3600.0;
        assert!((c.rate(14.0 * hour) - 0.2).abs() < 1e-12);
        assert!((c.rate(2.0 * hour) - 0.02).abs() < 1e-12, "the trough at 02:00");
        assert!((c.rate(26.0 * hour) - 0.02).abs() < 1e-12, "and again the next night");
        assert!((c.rate(3.0 * 86_400.0 + 14.0 * hour) - 0.2).abs() < 1e-12, "three days on");
        // The default peak is half a period in: noon, with the trough at midnight.
        let noon = arrival("{ process = \"daily\", trough_rate_per_s = 0, peak_rate_per_s = 1 }");
        let c = noon.cycle().expect("a cycle");
        assert_eq!((c.rate(12.0 * hour), c.rate(0.0)), (1.0, 0.0));
        assert_eq!(noon.mean_rate_per_s(), 0.5, "the estimate counts the mean of a period");
    }

    #[test]
    fn a_daily_cycles_integral_is_the_area_under_its_rate_and_inverts_exactly() {
        let c = arrival(DAILY).cycle().expect("a cycle");
        let rate = cosine(0.02, 0.2, 14.0 * 3600.0, 86_400.0);
        for (a, b) in [(0.0, 3600.0), (5000.0, 50_400.0), (40_000.0, 200_000.0), (86_000.0, 86_800.0)] {
            let (got, want) = (c.integral(a, b), simpson(&rate, a, b));
            assert!((got - want).abs() < 1e-6 * want.max(1.0), "[{a}, {b}]: {got} against {want}");
        }
        assert!((c.integral(0.0, 86_400.0) - 0.11 * 86_400.0).abs() < 1e-6, "a day holds the mean rate's count");
        for from in [0.0, 7_200.0, 50_400.0, 86_399.0, 1_000_000.0] {
            for mass in [0.0, 1e-9, 0.3, 1.0, 17.0, 9_504.0, 9_504.5, 40_000.0] {
                let t = c.inverse(from, mass);
                assert!(t >= from, "from {from} mass {mass}: t {t}");
                assert!((c.integral(from, t) - mass).abs() < 1e-6, "from {from} mass {mass}: t {t}");
            }
        }
        // A trough at 0: the rate touches 0 for an instant and the inverse
        // still lands past it.
        let zero = arrival("{ process = \"daily\", trough_rate_per_s = 0, peak_rate_per_s = 1 }");
        let z = zero.cycle().expect("a cycle");
        for mass in [1e-12, 0.001, 1.0, 43_200.0] {
            assert!((z.integral(0.0, z.inverse(0.0, mass)) - mass).abs() < 1e-6, "mass {mass}");
        }
    }

    #[test]
    fn a_daily_cycle_has_the_poisson_count_of_its_rate_in_every_hour() {
        // 0.02/s at 02:00 to 0.2/s at 14:00: 72 to 720 arrivals an hour,
        // each hour's expectation the area under the cosine (Simpson).
        let rate = cosine(0.02, 0.2, 14.0 * 3600.0, 86_400.0);
        let hours: Vec<(f64, f64, f64)> = (0..24)
            .map(|h| {
                let (a, b) = (h as f64 * 3600.0, (h + 1) as f64 * 3600.0);
                (a * 1000.0, b * 1000.0, simpson(&rate, a, b))
            })
            .collect();
        check_phases_over(DAILY, &hours, 60);
        // The second day repeats the first.
        let day2: Vec<(f64, f64, f64)> =
            hours.iter().step_by(6).map(|&(a, b, m)| (a + 86_400_000.0, b + 86_400_000.0, m)).collect();
        check_phases_over(DAILY, &day2, 60);
    }

    #[test]
    fn a_daily_cycle_refuses_a_peak_below_its_trough_or_outside_its_period() {
        let low = arrival("{ process = \"daily\", trough_rate_per_s = 2, peak_rate_per_s = 1 }");
        assert!(low.check().unwrap_err().contains("peak_rate_per_s"), "{:?}", low.check());
        let out =
            arrival("{ process = \"daily\", trough_rate_per_s = 0, peak_rate_per_s = 1, peak_at_ms = 90_000_000 }");
        assert!(out.check().unwrap_err().contains("peak_at_ms"), "{:?}", out.check());
        let ok =
            "{ process = \"daily\", trough_rate_per_s = 1, peak_rate_per_s = 1, period_ms = 1000, peak_at_ms = 0 }";
        assert_eq!(arrival(ok).check(), Ok(()), "a flat cycle is a Poisson process");
        let bad = "a = { process = \"daily\", trough_rate_per_s = 1 }";
        let err = toml::from_str::<toml::Table>(bad).unwrap()["a"].clone().try_into::<Arrival>().unwrap_err();
        assert!(err.to_string().contains("peak_rate_per_s"), "{err}");
        let extra = "a = { process = \"daily\", trough_rate_per_s = 1, peak_rate_per_s = 2, at_ms = 5 }";
        let err = toml::from_str::<toml::Table>(extra).unwrap()["a"].clone().try_into::<Arrival>().unwrap_err();
        assert!(err.to_string().contains("at_ms"), "{err}");
    }

    #[test]
    fn profiles_refuse_windows_that_end_before_they_begin() {
        let ramp = arrival("{ process = \"ramp\", rate_per_s = 1, to_rate_per_s = 2, from_ms = 100, until_ms = 100 }");
        assert_eq!(ramp.check(), Err("a ramp's `until_ms` (100 ms) must be after its `from_ms` (100 ms)".to_string()));
        let spike = arrival("{ process = \"spike\", rate_per_s = 1, spike_rate_per_s = 2, at_ms = 50, until_ms = 10 }");
        assert_eq!(spike.check(), Err("a spike's `until_ms` (10 ms) must be after its `at_ms` (50 ms)".to_string()));
        let bad = "a = { process = \"step\", rate_per_s = 1, to_rate_per_s = 2 }";
        let err = toml::from_str::<toml::Table>(bad).unwrap()["a"].clone().try_into::<Arrival>().unwrap_err();
        assert!(err.to_string().contains("at_ms"), "{err}");
        let extra = "a = { process = \"step\", rate_per_s = 1, to_rate_per_s = 2, at_ms = 5, until_ms = 6 }";
        let err = toml::from_str::<toml::Table>(extra).unwrap()["a"].clone().try_into::<Arrival>().unwrap_err();
        assert!(err.to_string().contains("until_ms"), "{err}");
    }

    #[test]
    fn a_profile_counts_as_its_long_run_rate_in_the_estimate() {
        let step = arrival("{ process = \"step\", rate_per_s = 100, to_rate_per_s = 500, at_ms = 1000 }");
        assert_eq!(step.mean_rate_per_s(), 500.0);
        let spike =
            arrival("{ process = \"spike\", rate_per_s = 100, spike_rate_per_s = 900, at_ms = 0, until_ms = 10 }");
        assert_eq!(spike.mean_rate_per_s(), 100.0);
    }
}

//! The confidence-interval machinery ([`sim_core::stats`]) against closed
//! forms it has not seen: each test builds M intervals of a figure whose
//! true value queueing theory gives, counts how many cover it, and accepts
//! when the count is not below the lower binomial quantile: if the
//! intervals are right, the count is Binomial(M, level), and
//! [`lowest_acceptable`] is the smallest count c with P(Binomial < c) ≤ α
//! for α = 0.001, so a correct machinery fails a test less than once in a
//! thousand seed sets, and one whose true coverage is well below the level
//! fails most of the time (with M = 100 at 95%, the bound is 87: P(X ≤ 86)
//! = 0.00046; a true coverage of 85% fails with probability 0.65, one of
//! 80% with 0.95).
//!
//! - M/G/1 with a lognormal service (Pollaczek-Khinchine), by steady-state
//!   analysis of one run each: MSER-5 warm-up deletion, then batch means
//!   (`[run] steady_state`). The warm-up is the bias of a run that starts
//!   empty; MSER-5 deletes it.
//! - M/M/1/K blocking, by independent replications (the interval of the
//!   mean over seeds, as interval expectations use).
//! - A Jackson tandem of two M/M/1 stations, mean sojourn, by independent
//!   replications.
//!
//! In the replication tests, each run's figure is its whole-run mean, which
//! starts empty: the bias this leaves is bounded in each test's comment
//! (well under a tenth of the intervals' half-width), not hidden by a wider
//! tolerance. Coverage figures measured: `docs/statistics.md`.

use sim_core::scenario::{run_config, Scenario};
use sim_core::stats::steady::{self, SteadyState, SteadyStateSpec, Warmup};
use sim_core::stats::{estimate, Estimate};
use sim_core::summary::VariantSummary;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The confidence level of every interval here.
const LEVEL: f64 = 0.95;
/// The chance that a correct machinery fails one of these tests.
const ALPHA: f64 = 0.001;

/// The smallest count c such that P(X < c) ≤ `alpha` for X ~ Binomial(m, p):
/// a count below it is evidence, at level `alpha`, that the coverage is
/// below p.
fn lowest_acceptable(m: u64, p: f64, alpha: f64) -> u64 {
    // P(X = k) by the recurrence pmf(k+1) = pmf(k) (m-k)/(k+1) p/(1-p).
    let mut pmf = (1.0 - p).powi(m as i32);
    let mut below = 0.0; // P(X < k)
    for k in 0..=m {
        if below + pmf > alpha {
            return k;
        }
        below += pmf;
        pmf *= (m - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
    }
    m
}

/// Runs `count` jobs on both cores, results in job order.
fn parallel<T: Send>(count: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, T)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break mine;
                        }
                        mine.push((i, job(i)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn summary(text: &str, seed: u64) -> VariantSummary {
    let s = Scenario::parse("theory.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let config = s.configs().unwrap().remove(0).1;
    let out = run_config(&config, seed, 0).completed().unwrap();
    VariantSummary::new("", &out, &[], &[])
}

/// How the intervals did: how many of `intervals` cover `truth`, and their
/// mean half-width relative to it. Asserts the coverage test.
fn judge(name: &str, intervals: &[Estimate], truth: f64) -> (u64, f64) {
    let m = intervals.len() as u64;
    let covered = intervals.iter().filter(|e| e.low <= truth && truth <= e.high).count() as u64;
    let width = intervals.iter().map(|e| e.half_width / truth).sum::<f64>() / m as f64;
    let mean = intervals.iter().map(|e| e.mean).sum::<f64>() / m as f64;
    let bound = lowest_acceptable(m, LEVEL, ALPHA);
    eprintln!(
        "{name}: {covered} of {m} intervals cover {truth:.6} (at least {bound} needed); \
         mean half-width {:.2}%; mean estimate {:+.2}% from the truth",
        100.0 * width,
        100.0 * (mean / truth - 1.0)
    );
    assert!(
        covered >= bound,
        "{name}: {covered} of {m} {LEVEL} intervals cover the truth {truth}; at least {bound} needed"
    );
    (covered, width)
}

#[test]
fn the_binomial_bound_is_the_lower_quantile() {
    // With M = 100 at 95%, P(X <= 86) = 0.00046 and P(X <= 87) = 0.0015.
    assert_eq!(lowest_acceptable(100, 0.95, 0.001), 87);
    // With M = 200, P(X <= 179) = 0.00116: the bound is 179.
    assert_eq!(lowest_acceptable(200, 0.95, 0.001), 179);
    assert_eq!(lowest_acceptable(10, 0.5, 0.001), 1, "P(X = 0) = 1/1024");
    assert_eq!(lowest_acceptable(10, 0.5, 0.0009), 0);
}

/// M/G/1: Poisson arrivals at `lambda` per ms, lognormal service of mean
/// `mean` and standard deviation `sd` ms.
fn mg1(lambda: f64, mean: f64, sd: f64, messages: u64) -> String {
    format!(
        r#"
name = "mg1-lognormal"
concept = "M/G/1, steady state"
[run]
sample_interval_ms = 100
steady_state = {{ warmup = "mser-5", batches = 20, level = {LEVEL} }}
[network]
latency = {{ dist = "constant", ms = 0 }}
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
messages = {messages}
[brokers.b]
kind = "queue"
[consumers.c]
source = "b"
prefetch = 1
processing = {{ dist = "lognormal", mean_ms = {mean}, stddev_ms = {sd} }}
"#,
        rate = lambda * 1000.0
    )
}

#[test]
fn mg1_lognormal_batch_means_cover_pollaczek_khinchine() {
    // Service coefficient of variation 1.5: far from exponential (the
    // mean wait is 1.6 times M/M/1's at the same load).
    let (lambda, mean, sd) = (0.5, 1.0, 1.5);
    // P-K: Wq = lambda E[S^2] / (2 (1 - rho)), E[S^2] = sd^2 + mean^2.
    let rho = lambda * mean;
    let sojourn = lambda * (sd * sd + mean * mean) / (2.0 * (1.0 - rho)) + mean;
    // 50,000 messages: about 1,000 intervals of 100 ms, batches of 2,500
    // messages. Shorter runs (20,000, sd 2) covered only 85 of 100: the
    // batch means of a skewed, correlated series need long batches.
    let text = mg1(lambda, mean, sd, 50_000);
    let config = Scenario::parse("mg1.toml", &text).unwrap().configs().unwrap().remove(0).1;
    let spec = config.run.steady_state.clone().expect("asked for");
    let sample_ns = (config.run.sample_interval_ms.0 * 1e6) as u64;
    // Each run analysed twice: as asked (MSER-5), and keeping every
    // interval (at this load the empty start relaxes within some 10 ms,
    // so the run is in steady state almost at once).
    let none = SteadyStateSpec { warmup: Warmup::None, ..spec.clone() };
    let both = parallel(100, |i| {
        let out = run_config(&config, 1000 + i as u64, 0).completed().unwrap();
        let s = VariantSummary::new("", &out, &[], &[]).steady_state.expect("asked for");
        (s, steady::analyse(&none, &out.samples, sample_ns, out.run_end).latency_ms)
    });
    let (mser, kept): (Vec<SteadyState>, Vec<Estimate>) = both.into_iter().unzip();
    let warmup = mser.iter().map(|s| s.warmup_s).sum::<f64>() / mser.len() as f64;
    eprintln!("M/G/1: MSER-5 deleted {warmup:.2} s on average, of about 100 s");
    let intervals: Vec<Estimate> = mser.iter().map(|s| s.latency_ms).collect();
    assert!(intervals.iter().all(|e| e.n == 20), "20 batches each");
    let (_, width) = judge("M/G/1 lognormal, MSER-5 and batch means", &intervals, sojourn);
    assert!(width < 0.15, "informative intervals: mean half-width {width}");
    judge("M/G/1 lognormal, batch means, no warm-up deleted", &kept, sojourn);
}

/// M/M/1/K: at most `k` messages in the system (one in service, `k - 1`
/// ready in the queue: RabbitMQ's `x-max-length` counts ready messages),
/// arrivals beyond that refused.
fn mm1k(lambda: f64, mu: f64, k: u32, messages: u64) -> String {
    format!(
        r#"
name = "mm1k"
concept = "M/M/1/K blocking"
[network]
latency = {{ dist = "constant", ms = 0 }}
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
messages = {messages}
[brokers.b]
kind = "queue"
capacity = {cap}
overflow = "reject-publish"
[consumers.c]
source = "b"
prefetch = 1
processing = {{ dist = "exponential", mean_ms = {service} }}
"#,
        rate = lambda * 1000.0,
        cap = k - 1,
        service = 1.0 / mu
    )
}

#[test]
fn mm1k_blocking_replication_intervals_cover_theory() {
    let (lambda, mu, k, n, messages) = (0.9, 1.0, 5u32, 5, 4_000);
    let rho: f64 = lambda / mu;
    let blocking = (1.0 - rho) * rho.powi(k as i32) / (1.0 - rho.powi(k as i32 + 1));
    // Bias: a run starts empty, and the first arrivals are refused less
    // often. The chain has K + 1 = 6 states and mixes within a few dozen
    // arrivals; even if the first 50 arrivals were never refused, the
    // fraction of 4,000 would be low by 50 x 0.126 / 4000 = 0.0016, a
    // quarter of the interval's half-width (about 6% of 0.126), and the real
    // deficit is a fraction of that.
    let text = mm1k(lambda, mu, k, messages);
    let m = 100;
    let fractions = parallel(m * n, |i| {
        let s = summary(&text, 5000 + i as u64);
        assert_eq!(s.counts.produced, messages);
        s.counts.lost as f64 / s.counts.produced as f64
    });
    let intervals: Vec<Estimate> = fractions.chunks(n).map(|c| estimate(c, LEVEL)).collect();
    let (_, width) = judge("M/M/1/K blocking, replications", &intervals, blocking);
    assert!(width < 0.15, "informative intervals: mean half-width {width}");
}

/// Two M/M/1 stations in series: Poisson arrivals at `lambda`, exponential
/// services at `mu1` then `mu2` (per ms); station 1 forwards each message
/// to station 2's queue when done.
fn tandem(lambda: f64, mu1: f64, mu2: f64, messages: u64) -> String {
    format!(
        r#"
name = "tandem"
concept = "Jackson tandem of two M/M/1 stations"
[network]
latency = {{ dist = "constant", ms = 0 }}
[producers.p]
target = "q1"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
messages = {messages}
[brokers.q1]
kind = "queue"
[brokers.q2]
kind = "queue"
[consumers.s1]
source = "q1"
domain = "first"
prefetch = 1
processing = {{ dist = "exponential", mean_ms = {m1} }}
forward_to = "q2"
[consumers.s2]
source = "q2"
domain = "second"
prefetch = 1
processing = {{ dist = "exponential", mean_ms = {m2} }}
"#,
        rate = lambda * 1000.0,
        m1 = 1.0 / mu1,
        m2 = 1.0 / mu2
    )
}

#[test]
fn jackson_tandem_sojourn_replication_intervals_cover_theory() {
    let (lambda, mu1, mu2, n, messages) = (0.5, 1.0, 0.8, 5, 10_000);
    // Jackson (and Burke: the first station's departures are Poisson):
    // the mean sojourn is the sum of two M/M/1 sojourns.
    let sojourn = 1.0 / (mu1 - lambda) + 1.0 / (mu2 - lambda);
    // Bias: both stations start empty. Each relaxes in about
    // 1 / (mu (1 - sqrt(rho))^2): 12 ms and 29 ms, some 20 arrivals; over
    // 10,000 messages that shortens the mean by well under 0.1%, against a
    // half-width of about 3%.
    let text = tandem(lambda, mu1, mu2, messages);
    let m = 100;
    let means = parallel(m * n, |i| {
        let s = summary(&text, 9000 + i as u64);
        assert_eq!(s.domains["second"].processed, messages);
        s.domains["second"].latency_ms.mean
    });
    let intervals: Vec<Estimate> = means.chunks(n).map(|c| estimate(c, LEVEL)).collect();
    let (_, width) = judge("Jackson tandem sojourn, replications", &intervals, sojourn);
    assert!(width < 0.15, "informative intervals: mean half-width {width}");
}

use super::*;
use rand::{Rng, SeedableRng};

/// The marginal standard error of truncating d batches, from its
/// definition (no running sums), for checking [`mser5`].
fn mser_by_definition(series: &[f64]) -> usize {
    let z: Vec<f64> = series.chunks_exact(5).map(|c| c.iter().sum::<f64>() / 5.0).collect();
    let k = z.len();
    let stat = |d: usize| {
        let rest = &z[d..];
        let mean = rest.iter().sum::<f64>() / rest.len() as f64;
        rest.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (rest.len() as f64).powi(2)
    };
    (0..=k / 2).fold(0, |best, d| if stat(d) < stat(best) { d } else { best }) * 5
}

fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f64>() - 0.5).collect()
}

#[test]
fn mser5_picks_the_batch_after_which_the_marginal_standard_error_is_least() {
    // Batch means 10, 0, 1, 0, 1, 0: the statistic is 78/36 at d = 0,
    // 1.2/25 at d = 1, 1/16 at d = 2, (2/3)/9 at d = 3: d = 1, 5 samples.
    let z = [10.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    let series: Vec<f64> = z.iter().flat_map(|&v| [v; 5]).collect();
    assert_eq!(mser5(&series), 5);
    // A leftover partial batch is ignored.
    let mut longer = series.clone();
    longer.extend([1000.0, 1000.0]);
    assert_eq!(mser5(&longer), 5);
    assert_eq!(mser5(&[1.0; 9]), 0, "fewer than two batches: nothing to choose");
    assert_eq!(mser5(&[]), 0);
}

#[test]
fn mser5_truncates_at_the_end_of_an_obvious_transient() {
    // 60 observations relaxing from 20 towards 0, then 940 of noise.
    let mut series: Vec<f64> = (0..60).map(|i| 20.0 * (1.0 - i as f64 / 60.0)).collect();
    series.extend(noise(940, 7));
    let d = mser5(&series);
    assert!((45..=75).contains(&d), "truncated {d}, the transient ends at 60");
    assert_eq!(d, mser_by_definition(&series));
}

#[test]
fn mser5_truncates_little_of_iid_data() {
    for seed in 1..=20 {
        let series = noise(1000, seed);
        let d = mser5(&series);
        assert_eq!(d, mser_by_definition(&series), "seed {seed}");
        assert!(d <= 100, "seed {seed}: truncated {d} of 1000 stationary observations");
    }
}

#[test]
fn mser5_never_looks_past_the_first_half() {
    // A series whose last batches are flat: truncating there would give
    // a zero statistic, but only the first half is searched.
    let mut series = noise(500, 3);
    series.extend([0.0; 500]);
    assert!(mser5(&series) <= 500);
}

#[test]
fn batch_means_is_the_t_interval_of_equal_consecutive_batches() {
    let series: Vec<f64> = (1..=20).map(f64::from).collect();
    let e = batch_means(&series, 4, 0.95);
    // Batches 1-5, 6-10, 11-15, 16-20: means 3, 8, 13, 18.
    assert_eq!(e, estimate(&[3.0, 8.0, 13.0, 18.0], 0.95));
    assert_eq!(e.n, 4);
    assert!((e.half_width - 3.182_446 * (125.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-4);
    // Two more at the start are left out, not at the end.
    let longer: Vec<f64> = [100.0, 100.0].into_iter().chain(series.iter().copied()).collect();
    assert_eq!(batch_means(&longer, 4, 0.95), e);
    // Fewer observations than batches: one batch each.
    assert_eq!(batch_means(&[1.0, 2.0, 3.0], 20, 0.95).n, 3);
}

#[test]
fn weighted_batch_means_average_every_observation_in_a_batch() {
    // Intervals of 1 and 3 messages, mean 1 and 3: the batch's mean is
    // (1 + 9) / 4, not (1 + 3) / 2.
    let e = batch_means_weighted(&[1.0, 3.0, 5.0, 5.0], &[1.0, 3.0, 2.0, 2.0], 2, 0.95);
    assert_eq!(e.n, 2);
    assert!((e.mean - (2.5 + 5.0) / 2.0).abs() < 1e-12);
    // An empty interval does not count.
    let e = batch_means_weighted(&[0.0, 4.0], &[0.0, 2.0], 1, 0.95);
    assert_eq!(e.mean, 4.0);
}

#[test]
fn within_compares_the_half_width_with_the_mean() {
    let e = estimate(&[9.9, 10.0, 10.1], 0.95);
    assert!(within(&e, 0.03));
    assert!(!within(&e, 0.01));
    assert!(!within(&estimate(&[10.0], 0.95), 0.5), "an unbounded interval is never precise");
}

fn row(t: f64, latency: f64, count: u64) -> Sample {
    Sample {
        time_s: t,
        processed_per_s: count as f64,
        latency_ms_mean: latency,
        latency_count: count,
        ..Sample::default()
    }
}

#[test]
fn the_analysis_drops_the_warm_up_the_drain_and_a_partial_interval() {
    // 1 s intervals; the run phase ends at 400.5 s: 400 full intervals.
    // The first 50 carry a transient latency; then alternating 4 and 6 ms.
    let mut samples: Vec<Sample> = (0..400)
        .map(|i| {
            let latency = if i < 50 {
                50.0 - i as f64
            } else if i % 2 == 0 {
                4.0
            } else {
                6.0
            };
            row(i as f64 + 1.0, latency, 100)
        })
        .collect();
    samples.push(row(400.5, 1000.0, 100)); // partial
    samples.push(row(401.0, 1000.0, 100)); // drain
    let spec = SteadyStateSpec { batches: 10, ..SteadyStateSpec::default() };
    let s = analyse(&spec, &samples, 1_000_000_000, 400_500_000_000);
    assert!((45.0..=55.0).contains(&s.warmup_s), "{s:?}");
    assert_eq!(s.intervals as f64, 400.0 - s.warmup_s);
    assert_eq!(s.latency_ms.n, 10);
    assert!((s.latency_ms.mean - 5.0).abs() < 0.1, "{s:?}");
    assert_eq!(s.throughput_per_s.mean, 100.0);
    assert_eq!(s.throughput_per_s.half_width, 0.0);
    let none = SteadyStateSpec { warmup: Warmup::None, ..spec };
    assert_eq!(analyse(&none, &samples, 1_000_000_000, 400_500_000_000).warmup_s, 0.0);
}

#[test]
fn a_spec_needs_two_batches_and_a_level_below_one() {
    assert!(SteadyStateSpec::default().problem().is_none());
    assert!(SteadyStateSpec { batches: 1, ..Default::default() }.problem().is_some());
    assert!(SteadyStateSpec { level: 95.0, ..Default::default() }.problem().is_some());
}

//! The autoscaler against a fluid model of a consumer group: whatever the
//! arrival rates, thresholds and partition count, it never runs more
//! consumers than partitions nor fewer than its minimum.

use proptest::prelude::*;
use sim_core::replicas::{AutoscaleSpec, Autoscaler, Decision};
use sim_core::units::Millis;

const S: u64 = 1_000_000_000;

fn spec(min: u32, max: u32, up_lag_s: f64, down_lag_s: f64, windows_s: (f64, f64), cooldown_s: f64) -> AutoscaleSpec {
    AutoscaleSpec {
        min_replicas: min,
        max_replicas: max,
        scale_up_lag_s: up_lag_s,
        scale_up_window_ms: Millis(windows_s.0 * 1000.0),
        scale_down_lag_s: down_lag_s,
        scale_down_window_ms: Millis(windows_s.1 * 1000.0),
        cooldown_ms: Millis(cooldown_s * 1000.0),
        poll_interval_ms: Millis(5000.0),
        startup_delay_ms: Millis(0.0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_autoscaler_never_runs_more_consumers_than_partitions_nor_fewer_than_its_minimum(
        partitions in 1u32..24,
        min in 1u32..6,
        max in 1u32..40,
        up_lag_s in 0.5f64..30.0,
        down_frac in 0.0f64..0.99,
        windows_s in (0.0f64..60.0, 0.0f64..300.0),
        cooldown_s in 0.0f64..120.0,
        rates in proptest::collection::vec(0.0f64..5000.0, 1..20),
        per_consumer in 50.0f64..1000.0,
    ) {
        let min = min.min(partitions);
        let a = spec(min, max.max(min), up_lag_s, up_lag_s * down_frac, windows_s, cooldown_s);
        let policy = a.policy(partitions);
        let mut scaler = Autoscaler::new(policy);
        let mut running = min as usize;
        // A fluid backlog: each 5 s poll adds (rate - capacity) x 5 s of
        // records; lag in seconds is the backlog over the capacity.
        let mut backlog = 0.0f64;
        for (i, &rate) in rates.iter().cycle().take(rates.len() * 40).enumerate() {
            let capacity = per_consumer * running as f64;
            backlog = (backlog + (rate - capacity) * 5.0).max(0.0);
            let lag_ns = (backlog / capacity.max(1.0) * S as f64) as u64;
            match scaler.observe(i as u64 * 5 * S, lag_ns, running) {
                Decision::Up => running += 1,
                Decision::Down => running -= 1,
                Decision::Hold => {}
            }
            prop_assert!(running <= partitions as usize, "{running} consumers for {partitions} partitions");
            prop_assert!(running >= min as usize, "{running} consumers, below the minimum {min}");
        }
    }

    #[test]
    fn the_partition_rule_gives_enough_for_the_rate_and_one_per_consumer(
        expected in 0.0f64..1e6, per in 1.0f64..1e4, consumers in 0u32..1000,
    ) {
        let n = sim_core::broker::partitions_needed(expected, per, consumers);
        prop_assert!(n >= consumers);
        prop_assert!(f64::from(n) * per >= expected, "{n} partitions of {per}/s carry {expected}/s");
        prop_assert!(n == consumers || f64::from(n - 1) * per < expected, "no more than needed");
    }
}

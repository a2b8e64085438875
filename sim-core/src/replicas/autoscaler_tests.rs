use super::*;

const S: u64 = 1_000_000_000;

fn policy() -> Policy {
    Policy {
        min: 1,
        max: 4,
        up_lag_ns: 5 * S,
        up_window_ns: 10 * S,
        down_lag_ns: S,
        down_window_ns: 30 * S,
        cooldown_ns: 20 * S,
    }
}

#[test]
fn a_lag_above_the_threshold_for_the_window_adds_one_member() {
    let mut a = Autoscaler::new(policy());
    assert_eq!(a.observe(0, 6 * S, 2), Decision::Hold, "the window starts");
    assert_eq!(a.observe(5 * S, 9 * S, 2), Decision::Hold, "5 s of 10");
    assert_eq!(a.observe(10 * S, 9 * S, 2), Decision::Up, "10 s above 5 s");
}

#[test]
fn a_dip_below_the_threshold_restarts_the_window() {
    let mut a = Autoscaler::new(policy());
    a.observe(0, 6 * S, 2);
    assert_eq!(a.observe(5 * S, 4 * S, 2), Decision::Hold);
    assert_eq!(a.observe(10 * S, 6 * S, 2), Decision::Hold, "above again only since 10 s");
    assert_eq!(a.observe(20 * S, 6 * S, 2), Decision::Up);
}

#[test]
fn the_cooldown_spaces_changes_and_the_windows_start_again_after_one() {
    let mut a = Autoscaler::new(policy());
    a.observe(0, 9 * S, 2);
    assert_eq!(a.observe(10 * S, 9 * S, 2), Decision::Up);
    // Above all along, but 20 s of cooldown from 10 s, and a new window.
    assert_eq!(a.observe(15 * S, 9 * S, 3), Decision::Hold);
    assert_eq!(a.observe(25 * S, 9 * S, 3), Decision::Hold, "cooling down until 30 s");
    assert_eq!(a.observe(30 * S, 9 * S, 3), Decision::Up, "window from 15 s held 15 s, cooldown over");
}

#[test]
fn never_above_max_nor_below_min() {
    let mut a = Autoscaler::new(policy());
    a.observe(0, 60 * S, 4);
    assert_eq!(a.observe(100 * S, 60 * S, 4), Decision::Hold, "at max: the partitions are all taken");
    let mut b = Autoscaler::new(policy());
    b.observe(0, 0, 1);
    assert_eq!(b.observe(100 * S, 0, 1), Decision::Hold, "at min");
}

#[test]
fn a_low_lag_for_the_longer_window_removes_one() {
    let mut a = Autoscaler::new(policy());
    a.observe(0, 0, 3);
    assert_eq!(a.observe(20 * S, S / 2, 3), Decision::Hold);
    assert_eq!(a.observe(30 * S, 0, 3), Decision::Down);
    assert_eq!(a.observe(40 * S, 0, 2), Decision::Hold, "cooldown, and a new window");
}

#[test]
fn out_of_bounds_counts_are_corrected_at_once() {
    let mut a = Autoscaler::new(policy());
    assert_eq!(a.observe(0, 0, 0), Decision::Up);
    assert_eq!(a.observe(S, 0, 6), Decision::Down, "even in the cooldown");
}

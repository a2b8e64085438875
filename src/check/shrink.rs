//! Shrinking a violating case: greedy and deterministic. Each step proposes
//! a smaller case and keeps it if it still violates the same invariant
//! (re-running it with the same seed):
//!
//! 1. drop each fault, one at a time;
//! 2. halve each fault's window, then move its start later (to the middle
//!    of its window), while that still fails;
//! 3. name fewer nodes in each fault: drop nodes from a partition's sides,
//!    a one-way partition's lists and a spike's nodes (never emptying a
//!    list: an empty spike list would mean every link);
//! 4. halve each producer's `messages` (where set);
//! 5. drop a replica of each replicated consumer table (`replicas`); other
//!    nodes are never removed from the scenario (their names tie it
//!    together).
//!
//! At most [`MAX_RUNS`] candidate runs; what is left then is reported.

use super::case::{run_case, Case, Target};
use sim_core::consumer::ConsumerSpec;
use sim_core::log_consumer::LogConsumerSpec;
use sim_core::producer::ProducerSpec;
use sim_core::scenario::FaultSpec;

/// Most candidate runs one shrink makes.
pub const MAX_RUNS: usize = 200;

/// A shrunk case and how much it took.
pub struct Shrunk {
    /// The smallest case found that still violates the invariant.
    pub case: Case,
    /// Candidate runs made.
    pub runs: usize,
    /// Whether the bound on runs stopped the shrinking early.
    pub cut_short: bool,
}

/// Tries candidates against one invariant.
struct Shrinker<'a> {
    target: &'a Target,
    invariant: &'a str,
    runs: usize,
}

impl Shrinker<'_> {
    /// Whether `case` still violates the invariant (false past the bound).
    fn fails(&mut self, case: &Case) -> bool {
        if self.runs >= MAX_RUNS {
            return false;
        }
        self.runs += 1;
        match run_case(self.target, usize::MAX, case.clone()) {
            Ok(ran) => {
                ran.stopped().is_none() && ran.judgements.iter().any(|j| j.invariant == self.invariant && !j.held)
            }
            Err(_) => false,
        }
    }
}

/// Shrinks `case`, which violates `invariant` on `target`.
pub fn shrink(target: &Target, invariant: &str, case: &Case) -> Shrunk {
    let mut s = Shrinker { target, invariant, runs: 0 };
    let mut best = case.clone();
    drop_faults(&mut s, &mut best);
    narrow_windows(&mut s, &mut best);
    fewer_named(&mut s, &mut best);
    fewer_messages(&mut s, &mut best);
    fewer_replicas(&mut s, &mut best);
    Shrunk { case: best, runs: s.runs, cut_short: s.runs >= MAX_RUNS }
}

fn drop_faults(s: &mut Shrinker, best: &mut Case) {
    let mut i = 0;
    while i < best.faults.len() {
        let mut c = best.clone();
        c.faults.remove(i);
        if s.fails(&c) {
            *best = c;
        } else {
            i += 1;
        }
    }
}

fn narrow_windows(s: &mut Shrinker, best: &mut Case) {
    for i in 0..best.faults.len() {
        // Shorter: halve the length, keeping the start.
        loop {
            let (at, until) = best.faults[i].span_ms();
            let half = ((until - at) / 2.0).floor();
            if half < 1.0 {
                break;
            }
            let mut c = best.clone();
            c.faults[i] = best.faults[i].with_window(at, at + half);
            if !s.fails(&c) {
                break;
            }
            *best = c;
        }
        // Later: move the start to the middle of the window.
        loop {
            let (at, until) = best.faults[i].span_ms();
            let later = (at + (until - at) / 2.0).floor();
            if later <= at {
                break;
            }
            let mut c = best.clone();
            c.faults[i] = best.faults[i].with_window(later, until);
            if !s.fails(&c) {
                break;
            }
            *best = c;
        }
    }
}

/// The node lists of a fault that may lose a name.
fn lists(f: &mut FaultSpec) -> Vec<&mut Vec<String>> {
    match f {
        FaultSpec::Partition { groups, .. } => groups.iter_mut().collect(),
        FaultSpec::OneWayPartition { from, to, .. } => vec![from, to],
        FaultSpec::LossSpike { nodes, .. }
        | FaultSpec::DuplicateSpike { nodes, .. }
        | FaultSpec::Reorder { nodes, .. } => {
            vec![nodes]
        }
        _ => Vec::new(),
    }
}

fn fewer_named(s: &mut Shrinker, best: &mut Case) {
    for i in 0..best.faults.len() {
        let mut l = 0;
        while l < lists(&mut best.faults[i].clone()).len() {
            let mut k = 0;
            loop {
                let mut c = best.clone();
                let mut ls = lists(&mut c.faults[i]);
                if ls[l].len() < 2 || k >= ls[l].len() {
                    break;
                }
                ls[l].remove(k);
                if s.fails(&c) {
                    *best = c;
                } else {
                    k += 1;
                }
            }
            l += 1;
        }
    }
}

/// The value a case's overrides give `path`, else `default`.
fn current(case: &Case, path: &str, default: u64) -> u64 {
    case.sets
        .iter()
        .rev()
        .find_map(|s| s.strip_prefix(path).and_then(|r| r.strip_prefix('=')).and_then(|v| v.parse().ok()))
        .unwrap_or(default)
}

/// `case` with `path` set to `value` (replacing an earlier override of it).
fn set(case: &Case, path: &str, value: u64) -> Case {
    let mut c = case.clone();
    c.sets.retain(|s| s.split_once('=').map(|(p, _)| p) != Some(path));
    c.sets.push(format!("{path}={value}"));
    c
}

fn fewer_messages(s: &mut Shrinker, best: &mut Case) {
    let producers: Vec<(String, u64)> = s
        .target
        .config
        .specs::<ProducerSpec>()
        .filter_map(|(n, p)| p.messages.map(|m| (format!("producers.{}.messages", quoted(n)), m)))
        .collect();
    for (path, m) in producers {
        loop {
            let now = current(best, &path, m);
            if now < 2 {
                break;
            }
            let c = set(best, &path, now / 2);
            if !s.fails(&c) {
                break;
            }
            *best = c;
        }
    }
}

fn fewer_replicas(s: &mut Shrinker, best: &mut Case) {
    let config = &s.target.config;
    let queue =
        config.specs::<ConsumerSpec>().filter(|(_, c)| c.member.is_none()).filter_map(|(n, c)| Some((n, c.replicas?)));
    let log = config
        .specs::<LogConsumerSpec>()
        .filter(|(_, c)| c.member.is_none())
        .filter_map(|(n, c)| Some((n, c.replicas?)));
    let tables: Vec<(String, u64)> =
        queue.chain(log).map(|(n, r)| (format!("consumers.{}.replicas", quoted(n)), u64::from(r))).collect();
    for (path, r) in tables {
        loop {
            let now = current(best, &path, r);
            if now < 2 {
                break;
            }
            let c = set(best, &path, now - 1);
            if !s.fails(&c) {
                break;
            }
            *best = c;
        }
    }
}

/// A node name as one segment of a `--set` path (quoted if it has a dot).
fn quoted(name: &str) -> String {
    if name.contains('.') {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

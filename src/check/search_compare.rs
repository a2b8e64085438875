//! `asyncsim check FILE --compare-search SEEDS` (hidden): measures the
//! guided search against uniform sampling on one variant, as the closing
//! note of issue 16 asks. For each search seed 1..=SEEDS and each strategy,
//! the lanes run round by round, exactly as `check` runs them (same lane
//! streams, same global indices), until a run violates an invariant and at
//! least `--runs` runs were made, or `--max-runs` is reached. Printed:
//!
//! - runs to the first violation (its global index + 1: every run with a
//!   lower index ran before it), mean over seeds with a 95% Student t
//!   interval, and how many seeds found none within `--max-runs` (those
//!   count as `--max-runs`, so the mean is then a lower bound);
//! - coverage after `--runs` runs: the number of distinct features
//!   ([`super::coverage`]) of the baseline and every run with index below
//!   `--runs`, mean over seeds with its interval;
//! - the difference of the means (Welch interval), guided minus uniform.
//!
//! No shrinking, no files: figures only. `bench/search-compare.sh` runs it
//! on the case.

use super::case::{run_case, Case, Ran, Strategy, Target, Uniform};
use super::coverage::{self, Features};
use super::guided::Guided;
use super::space::Space;
use super::{CheckArgs, Pool, SearchOpts, LANES};
use anyhow::{bail, Result};
use serde_json::Value;
use sim_core::stats::{estimate, unpaired, Estimate};
use std::process::ExitCode;

/// The command: one variant (`--variant`, or the only one), its baseline
/// and space as `check` makes them, then [`compare`].
pub fn run(args: &CheckArgs, seeds: u64) -> Result<ExitCode> {
    let (_, targets) = super::plan(args)?;
    let [target] = &targets[..] else { bail!("--compare-search needs one variant: name it with --variant") };
    let base = Case { seed: target.config.seed, faults: Vec::new(), sets: Vec::new() };
    let baseline = run_case(target, usize::MAX, base)?;
    let run_ms = baseline.summary.pointer("/run/run_end_s").and_then(Value::as_f64).map(|s| s * 1000.0);
    let opts =
        SearchOpts { max_faults: args.max_faults, kinds: args.fault_kinds.clone(), nodes: args.nodes.clone(), run_ms };
    let space = Space::from_config(&target.config, &opts);
    let pool = Pool::new(args.jobs)?;
    let budget = (args.runs.unwrap_or(200), args.compare_max_runs.max(1));
    compare(target, &space, &baseline, seeds, budget, &pool)?;
    Ok(ExitCode::SUCCESS)
}

/// What one search (one strategy, one seed) gave.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Runs up to and including the first violation; `None`: none found
    /// within the bound.
    pub first: Option<usize>,
    /// Distinct features after the coverage budget.
    pub features: usize,
}

/// Which strategy a lane runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// [`Uniform`].
    Uniform,
    /// [`Guided`].
    Guided,
}

/// One search of `target` with search seed `seed`: rounds of [`LANES`]
/// runs until a violation is found and `coverage_runs` ran, or
/// `max_runs` ran.
pub fn search_once(
    target: &Target,
    space: &Space,
    baseline: &Ran,
    which: Which,
    seed: u64,
    (coverage_runs, max_runs): (usize, usize),
    pool: &Pool,
) -> Result<Outcome> {
    let mut lanes: Vec<(Box<dyn Strategy>, rand_chacha::ChaCha8Rng)> = (0..LANES)
        .map(|l| {
            let s: Box<dyn Strategy> = match which {
                Which::Uniform => Box::new(Uniform),
                Which::Guided => Box::new(Guided::new(space, baseline)),
            };
            (s, sim_core::rng::stream(seed, &format!("check-lane-{l}")))
        })
        .collect();
    let mut seen: Features = coverage::features(baseline);
    let mut out = Outcome { first: None, features: 0 };
    for round in 0.. {
        let done = out.first.is_some() && round * LANES >= coverage_runs;
        if done || round * LANES >= max_runs {
            break;
        }
        let cases: Vec<(usize, usize, Case)> = lanes
            .iter_mut()
            .enumerate()
            .filter(|(l, _)| round * LANES + l < max_runs)
            .map(|(l, (s, rng))| (l, round * LANES + l, s.next(space, rng)))
            .collect();
        let ran = pool.map(cases, |(l, index, case)| run_case(target, index, case).map(|r| (l, r)));
        for r in ran {
            let (l, ran) = r?;
            lanes[l].0.observe(&ran);
            if ran.index < coverage_runs {
                seen.extend(coverage::features(&ran));
            }
            if ran.violated && out.first.is_none_or(|f| ran.index + 1 < f) {
                out.first = Some(ran.index + 1);
            }
        }
    }
    out.features = seen.len();
    Ok(out)
}

/// The figures of one strategy over every seed.
pub struct Figures {
    /// Runs to the first violation (`max_runs` where none was found).
    pub runs: Vec<f64>,
    /// Seeds that found none.
    pub censored: usize,
    /// Features after the coverage budget.
    pub features: Vec<f64>,
}

impl Figures {
    /// Gathers `outcomes`, a search that found nothing counting `max_runs`.
    pub fn of(outcomes: &[Outcome], max_runs: usize) -> Figures {
        Figures {
            runs: outcomes.iter().map(|o| o.first.unwrap_or(max_runs) as f64).collect(),
            censored: outcomes.iter().filter(|o| o.first.is_none()).count(),
            features: outcomes.iter().map(|o| o.features as f64).collect(),
        }
    }
}

/// Runs both strategies for seeds `1..=seeds` and prints the comparison.
pub fn compare(
    target: &Target,
    space: &Space,
    baseline: &Ran,
    seeds: u64,
    budget: (usize, usize),
    pool: &Pool,
) -> Result<()> {
    let mut figures = Vec::new();
    for which in [Which::Uniform, Which::Guided] {
        let mut outcomes = Vec::new();
        for seed in 1..=seeds {
            let o = search_once(target, space, baseline, which, seed, budget, pool)?;
            eprintln!("{which:?} seed {seed}: first violation at run {:?}, {} features", o.first, o.features);
            outcomes.push(o);
        }
        figures.push(Figures::of(&outcomes, budget.1));
    }
    print(&figures[0], &figures[1], budget);
    Ok(())
}

/// `mean ± half-width (low..high)`.
fn show(e: &Estimate) -> String {
    format!("{:.1} ± {:.1} ({:.1}..{:.1})", e.mean, e.half_width, e.low, e.high)
}

/// Prints the comparison table.
fn print(uniform: &Figures, guided: &Figures, (coverage_runs, max_runs): (usize, usize)) {
    let n = uniform.runs.len();
    outln!("search comparison over {n} search seeds (95% Student t intervals; runs capped at {max_runs})");
    for (name, f) in [("uniform", uniform), ("guided", guided)] {
        let r = estimate(&f.runs, 0.95);
        let c = estimate(&f.features, 0.95);
        outln!(
            "  {name:<8} runs to first violation {}  (none found: {} of {n})   features after {coverage_runs} runs {}",
            show(&r),
            f.censored,
            show(&c)
        );
    }
    let d = unpaired(&guided.runs, &uniform.runs, 0.95);
    let c = unpaired(&guided.features, &uniform.features, 0.95);
    outln!("  guided - uniform: runs {}   features {}", show(&d), show(&c));
}

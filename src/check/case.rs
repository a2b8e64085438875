//! One case of the fault search ([`Case`]: a seed, the drawn faults and
//! workload overrides), how it runs ([`run_case`]) and what it gave
//! ([`Ran`]), and the strategies that choose cases ([`Strategy`];
//! [`Uniform`] draws each case afresh).

use super::space::Space;
use anyhow::{Context, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim_core::scenario::{run_config, Config, FaultSpec, Scenario};
use sim_core::summary::VariantSummary;

pub use super::judge::Judgement;

/// One run of the search: the seed of the simulation, the faults drawn
/// (appended to the scenario's own), and workload overrides
/// (`path=value`, as `--set` takes them; the shrinker halves messages
/// with them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Seed of the run.
    pub seed: u64,
    /// Faults added to the variant's own.
    pub faults: Vec<FaultSpec>,
    /// Workload overrides, `path=value`.
    pub sets: Vec<String>,
}

/// A case once run.
pub struct Ran {
    /// Its global index (`round * LANES + lane`).
    pub index: usize,
    /// What ran.
    pub case: Case,
    /// The variant's summary, as `summary.json` holds it.
    pub summary: serde_json::Value,
    /// Each invariant checked, judged on the summary.
    pub judgements: Vec<Judgement>,
    /// Some invariant was violated (a run that stopped at a limit never is).
    pub violated: bool,
    /// The protocol moments the run marked: (time in ns, node, what).
    #[allow(dead_code)] // read by the guided strategy (guided.rs)
    pub marks: Vec<(u64, String, &'static str)>,
    /// When the run ended, in ns of simulated time.
    pub end_ns: u64,
}

impl Ran {
    /// Whether the run stopped at a limit (events, memory): then it is
    /// reported, not judged.
    pub fn stopped(&self) -> Option<&str> {
        self.summary.pointer("/run/stopped/reason").and_then(|r| r.as_str())
    }
}

/// How a lane chooses its next case. One strategy per lane; it sees only
/// its own lane's runs, in order, so that results do not depend on the
/// number of threads or machines.
pub trait Strategy: Send {
    /// The next case to run.
    fn next(&mut self, space: &Space, rng: &mut ChaCha8Rng) -> Case;
    /// What the last case gave.
    fn observe(&mut self, ran: &Ran);
    /// Coverage reached by this lane (0: not tracked).
    fn features(&self) -> usize {
        0
    }
}

/// Uniform sampling: each case is a fresh seed and 1 to `max_faults`
/// faults. The first starts anywhere in the run phase; each next one, with
/// probability 1/2, starts inside the window of the one before (faults
/// that overlap are the ones that interact), else anywhere.
pub struct Uniform;

impl Strategy for Uniform {
    fn next(&mut self, space: &Space, rng: &mut ChaCha8Rng) -> Case {
        let seed = rng.random_range(1..=1_000_000u64);
        let n = rng.random_range(1..=space.max_faults);
        let mut faults: Vec<FaultSpec> = Vec::with_capacity(n);
        for _ in 0..n {
            let f = match faults.last().map(FaultSpec::window_ms) {
                Some((at, Some(until))) if rng.random::<bool>() => {
                    let start = (at + rng.random::<f64>() * (until - at)).floor();
                    space.draw_fault_at(rng, start)
                }
                _ => space.draw_fault(rng),
            };
            faults.push(f);
        }
        faults.sort_by(|a, b| a.window_ms().0.total_cmp(&b.window_ms().0));
        Case { seed, faults, sets: Vec::new() }
    }

    fn observe(&mut self, _ran: &Ran) {}
}

/// What a case runs against: the scenario (for workload overrides), the
/// variant's name and configuration, and the invariants judged.
pub struct Target {
    /// The scenario, with the command line's overrides.
    pub scenario: Scenario,
    /// The variant searched.
    pub variant: String,
    /// Its configuration.
    pub config: Config,
    /// The invariants the variant claims (`invariants` in the file).
    pub claimed: Vec<String>,
    /// The invariants judged after each run: the claimed ones and those of
    /// `--invariant`.
    pub invariants: Vec<String>,
}

impl Target {
    /// The configuration `case` runs: the variant's, with the case's
    /// workload overrides and its faults appended to the variant's own.
    pub fn config_of(&self, case: &Case) -> Result<Config> {
        let mut config = if case.sets.is_empty() {
            self.config.clone()
        } else {
            let mut s = self.scenario.clone();
            s.set_overrides(&case.sets)?;
            let mut configs = s.configs()?;
            let i = configs.iter().position(|(v, _)| v.name == self.variant).context("the variant is gone")?;
            configs.swap_remove(i).1
        };
        config.faults.extend(case.faults.iter().cloned());
        Ok(config)
    }
}

/// Runs `case` (global index `index`) and judges it.
pub fn run_case(target: &Target, index: usize, case: Case) -> Result<Ran> {
    let config = target.config_of(&case)?;
    let out = run_config(&config, case.seed, 0);
    let summary = VariantSummary::new("", &out, &config.expect, &config.alarms);
    let summary = serde_json::to_value(&summary)?;
    let judgements = super::judge::judge_all(&target.invariants, &summary);
    let stopped = out.stopped.is_some();
    let violated = !stopped && judgements.iter().any(|j| !j.held);
    let name = |id: u32| out.names.get(id as usize).cloned().unwrap_or_default();
    let marks = out.marks.iter().map(|&(t, node, what)| (t, name(node), what)).collect();
    Ok(Ran { index, case, summary, judgements, violated, marks, end_ns: out.end })
}

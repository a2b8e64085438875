//! `asyncsim check`: the fault search. For each variant searched, it draws
//! random fault schedules ([`Space`]), runs them in parallel, judges the
//! variant's invariants after every run, shrinks the lowest-numbered
//! violation to a small case that still fails, and writes it as a scenario
//! file with its space-time diagram. `asyncsim check --determinism` is the
//! older check that every run is reproducible ([`determinism`]).
//!
//! The search is [`LANES`] independent lanes. Lane `l` has its own
//! [`Strategy`] and random stream, from (search seed, `l`); its run `r` has
//! the global index `r * LANES + l`. A unit of work is one lane of one
//! variant; a shard (`--shard I/N`) runs the units it owns. Each unit
//! becomes a JSON record, and [`finish`] turns the plan and every record
//! into the output: so 1 job, many jobs, one machine or many (through
//! `asyncsim merge`) all give the same output.

mod case;
mod coverage;
mod determinism;
mod guided;
mod judge;
mod output;
mod search_compare;
mod shrink;
mod space;

pub use case::{run_case, Case, Ran, Strategy, Target, Uniform};
pub use space::{SearchOpts, Space};

use crate::many::{Meter, Partial, Pool, Shard};
use anyhow::{bail, Context, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Independent sequences of the search: fixed, never tied to jobs or shards.
pub const LANES: usize = 8;

/// How cases are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchKind {
    /// Every case drawn afresh, uniformly.
    Uniform,
    /// Biased toward cases that reach new states (see guided.rs).
    Guided,
}

/// Arguments of `asyncsim check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// The determinism check instead: run every variant twice (one thread,
    /// then many, in another order) and report where the runs differ.
    #[arg(long)]
    pub determinism: bool,
    /// The variant to search (default: every variant, in turn).
    #[arg(long)]
    pub variant: Option<String>,
    /// Runs per variant (default 1000 unless --time-budget-s).
    #[arg(long, conflicts_with = "time_budget_s")]
    pub runs: Option<usize>,
    /// Search for this many seconds of wall time per variant instead.
    #[arg(long, value_name = "T")]
    pub time_budget_s: Option<f64>,
    /// Runs in parallel (default: one per core).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// An invariant to check besides the variant's own (repeatable).
    #[arg(long = "invariant", value_name = "NAME")]
    pub invariants: Vec<String>,
    /// Seed of the search (of the determinism check: of the runs).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides, as in `run`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Output folder (default out/check-NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only slice I of N (1-based) and write partial.json into --out.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// How cases are chosen.
    #[arg(long, value_enum, default_value_t = SearchKind::Uniform)]
    pub search: SearchKind,
    /// Most faults drawn in one case.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20))]
    pub max_faults: usize,
    /// Fault kinds to draw (comma-separated; default: every kind the scenario allows).
    #[arg(long, value_delimiter = ',', value_name = "KIND,..")]
    pub fault_kinds: Vec<String>,
    /// Nodes faults may name (comma-separated; default: every node but
    /// producers and clients for crashes).
    #[arg(long, value_delimiter = ',', value_name = "NODE,..")]
    pub nodes: Vec<String>,
    /// Most trace events compared per run (--determinism).
    #[arg(long, default_value_t = 2_000_000)]
    pub trace_limit: usize,
    /// Compare the guided search with uniform sampling over search seeds
    /// 1..=SEEDS instead (see search_compare.rs); --runs is the coverage
    /// budget.
    #[arg(long, value_name = "SEEDS", hide = true)]
    pub compare_search: Option<u64>,
    /// With --compare-search: most runs of one search.
    #[arg(long, default_value_t = 2_000, hide = true)]
    pub compare_max_runs: usize,
}

/// Runs the command.
pub fn check(args: &CheckArgs) -> Result<ExitCode> {
    if args.determinism {
        return determinism::check(&args.file, args.seed, &args.set, args.trace_limit);
    }
    if let Some(seeds) = args.compare_search {
        return search_compare::run(args, seeds);
    }
    search(args)
}

/// One lane's state during the search.
pub struct Lane {
    /// Which lane (0..LANES).
    pub lane: usize,
    strategy: Box<dyn Strategy>,
    rng: ChaCha8Rng,
    record: LaneRecord,
}

/// One unit's record: a lane of one variant, as `finish` reads it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LaneRecord {
    /// The unit: `variant * LANES + lane`.
    pub index: usize,
    /// The variant.
    pub variant: String,
    /// Runs made.
    pub runs: usize,
    /// Simulated time of those runs, in ns.
    pub sim_ns: u64,
    /// Faults drawn and injected.
    pub faults: usize,
    /// Coverage reached (0: not tracked).
    pub features: usize,
    /// Runs that stopped at a limit: (index, why).
    pub stopped: Vec<(usize, String)>,
    /// Runs that violated an invariant.
    pub violations: Vec<Violation>,
    /// The shard's lowest-index violation of this variant, shrunk (in the
    /// record of the lane that found it).
    pub shrunk: Option<Value>,
}

/// A run that violated an invariant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Violation {
    /// Its global index.
    pub index: usize,
    /// What ran.
    pub case: Case,
    /// Every invariant judged.
    pub judgements: Vec<judge::Judged>,
}

/// The strategy of a lane.
fn strategy(kind: SearchKind, space: &Space, baseline: &Ran) -> Box<dyn Strategy> {
    match kind {
        SearchKind::Uniform => Box::new(Uniform),
        SearchKind::Guided => Box::new(guided::Guided::new(space, baseline)),
    }
}

/// How long the search goes on.
#[derive(Clone, Copy)]
pub enum Budget {
    /// Runs per variant (each lane its share by index).
    Runs(usize),
    /// Wall time per variant.
    Time(std::time::Duration),
}

/// One variant's search, as each lane needs it.
pub struct LaneSearch<'a> {
    /// What runs.
    pub target: &'a Target,
    /// What may be drawn.
    pub space: &'a Space,
    /// How cases are chosen.
    pub kind: SearchKind,
    /// The variant's run with no drawn fault.
    pub baseline: &'a Ran,
    /// The search's seed.
    pub seed: u64,
    /// How long it goes on.
    pub budget: Budget,
}

impl LaneSearch<'_> {
    /// Runs the lanes `owned` (of `LANES`) on `pool`, with units numbered
    /// from `first_unit`. A lane's cases depend only on its own results, so
    /// with a run count each lane runs to its end as one task: no thread
    /// waits for the slowest run of a round, and the records are the same.
    /// With a time budget, rounds: each round, every lane still going draws
    /// one case, the cases run in parallel, and each lane observes its own
    /// result (so every lane gets its share of the time).
    pub fn run(&self, owned: &[usize], first_unit: usize, pool: &Pool, meter: &Meter) -> Result<Vec<LaneRecord>> {
        let (target, space, seed) = (self.target, self.space, self.seed);
        let mut lanes: Vec<Lane> = owned
            .iter()
            .map(|&l| Lane {
                lane: l,
                strategy: strategy(self.kind, space, self.baseline),
                rng: sim_core::rng::stream(seed, &format!("check-lane-{l}")),
                record: LaneRecord { index: first_unit + l, variant: target.variant.clone(), ..Default::default() },
            })
            .collect();
        let t = match self.budget {
            Budget::Runs(n) => {
                let done = pool.map(lanes, |mut lane| {
                    let mut round = 0;
                    while round * LANES + lane.lane < n {
                        let case = lane.strategy.next(space, &mut lane.rng);
                        lane.observe(&run_case(target, round * LANES + lane.lane, case)?, meter);
                        round += 1;
                    }
                    Ok(lane.record)
                });
                return done.into_iter().collect();
            }
            Budget::Time(t) => t,
        };
        let started = std::time::Instant::now();
        for round in 0.. {
            if lanes.is_empty() || started.elapsed() >= t {
                break;
            }
            let cases: Vec<(usize, usize, Case)> = lanes
                .iter_mut()
                .enumerate()
                .map(|(i, lane)| (i, round * LANES + lane.lane, lane.strategy.next(space, &mut lane.rng)))
                .collect();
            let ran = pool.map(cases, |(i, index, case)| run_case(target, index, case).map(|r| (i, r)));
            for r in ran {
                let (i, ran) = r?;
                lanes[i].observe(&ran, meter);
            }
        }
        Ok(lanes.into_iter().map(|l| l.record).collect())
    }
}

impl Lane {
    /// Takes in one of this lane's runs.
    fn observe(&mut self, ran: &Ran, meter: &Meter) {
        meter.tick(ran.violated);
        self.strategy.observe(ran);
        self.record.add(ran);
        self.record.features = self.strategy.features();
    }
}

impl LaneRecord {
    /// Counts one run.
    fn add(&mut self, ran: &Ran) {
        self.runs += 1;
        self.sim_ns += ran.end_ns;
        self.faults += ran.case.faults.len();
        if let Some(why) = ran.stopped() {
            self.stopped.push((ran.index, why.to_string()));
        } else if ran.violated {
            self.violations.push(Violation {
                index: ran.index,
                case: ran.case.clone(),
                judgements: ran.judgements.iter().map(judge::Judged::from).collect(),
            });
        }
    }
}

/// The search: plan, run the owned units, then finish (or write the
/// shard's partial).
fn search(args: &CheckArgs) -> Result<ExitCode> {
    let (plan, targets) = plan(args)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("out/check-{}", plan["scenario"].as_str().unwrap_or("scenario"))));
    let pool = Pool::new(args.jobs)?;
    let shard = args.shard.unwrap_or(Shard { index: 1, count: 1 });
    let total = args.runs.filter(|_| args.time_budget_s.is_none()).unwrap_or(1000) * targets.len();
    let meter = Meter::start(
        &format!("check {}", plan["scenario"].as_str().unwrap_or("")),
        args.time_budget_s.is_none().then_some(total as u64),
    );
    let mut records = Vec::new();
    for (v, target) in targets.iter().enumerate() {
        let owned: Vec<usize> = (0..LANES).filter(|l| shard.owns(v * LANES + l)).collect();
        let mut mine = search_variant(args, &plan, target, &owned, v * LANES, &pool, &meter)?;
        shrink_first(target, &mut mine)?;
        records.extend(mine);
    }
    meter.finish();
    let records: Vec<Value> = records.iter().map(serde_json::to_value).collect::<Result<_, _>>()?;
    if args.shard.is_some() {
        let partial = Partial {
            asyncsim: env!("CARGO_PKG_VERSION").to_string(),
            command: "check".into(),
            plan,
            shard: [shard.index, shard.count],
            runs: records,
        };
        std::fs::create_dir_all(&out)?;
        partial.write(&out)?;
        outln!("shard {shard}: wrote {}", out.join("partial.json").display());
        return Ok(ExitCode::SUCCESS);
    }
    finish(&plan, &records, &out)
}

/// Runs one variant's baseline and its owned lanes.
fn search_variant(
    args: &CheckArgs,
    plan: &Value,
    target: &Target,
    owned: &[usize],
    first_unit: usize,
    pool: &Pool,
    meter: &Meter,
) -> Result<Vec<LaneRecord>> {
    let seed = plan["seed"].as_u64().unwrap_or(1);
    let base = Case { seed: target.config.seed, faults: Vec::new(), sets: Vec::new() };
    let baseline = run_case(target, usize::MAX, base)?;
    let run_ms = baseline.summary.pointer("/run/run_end_s").and_then(Value::as_f64).map(|s| s * 1000.0);
    let opts =
        SearchOpts { max_faults: args.max_faults, kinds: args.fault_kinds.clone(), nodes: args.nodes.clone(), run_ms };
    let space = Space::from_config(&target.config, &opts);
    let budget = match (args.runs, args.time_budget_s) {
        (_, Some(t)) => Budget::Time(std::time::Duration::from_secs_f64(t.max(0.0))),
        (n, None) => Budget::Runs(n.unwrap_or(1000)),
    };
    let search = LaneSearch { target, space: &space, kind: args.search, baseline: &baseline, seed, budget };
    search.run(owned, first_unit, pool, meter)
}

/// The plan (the normalized arguments, the same in every shard) and each
/// variant's target.
fn plan(args: &CheckArgs) -> Result<(Value, Vec<Target>)> {
    let (scenario, _) = crate::run::load(&args.file, &args.set)?;
    let extra = judge::parse_all(&args.invariants)?;
    let mut targets = Vec::new();
    for (variant, config) in scenario.configs()? {
        if args.variant.as_ref().is_some_and(|v| v != &variant.name) {
            continue;
        }
        let claimed: Vec<String> = config.invariants.clone();
        let mut invariants = claimed.clone();
        invariants.extend(extra.iter().filter(|i| !claimed.contains(i)).cloned());
        let name = variant.name.clone();
        targets.push(Target { scenario: scenario.clone(), variant: name, config, claimed, invariants });
    }
    if targets.is_empty() {
        let names: Vec<String> = scenario.variants().iter().map(|v| v.name.clone()).collect();
        let wanted = args.variant.as_deref().unwrap_or("");
        bail!("{}: no variant named `{wanted}` (variants: {})", args.file.display(), names.join(", "));
    }
    let skipped: Vec<String> = targets.iter().filter(|t| t.invariants.is_empty()).map(|t| t.variant.clone()).collect();
    targets.retain(|t| !t.invariants.is_empty());
    if targets.is_empty() {
        bail!(
            "{}: nothing to check: the variant claims no invariant (`invariants = [...]` in the file) \
             and no --invariant NAME was given; invariants: {}",
            args.file.display(),
            judge::Invariant::NAMES.join(", ")
        );
    }
    let variants: Vec<Value> = targets.iter().map(|t| json!({"name": t.variant, "invariants": t.invariants})).collect();
    let plan = json!({
        "scenario": scenario.config.name,
        "file": args.file.display().to_string(),
        "variants": variants,
        "skipped": skipped,
        "runs": args.runs,
        "time_budget_s": args.time_budget_s,
        "seed": args.seed.unwrap_or(1),
        "sets": args.set,
        "search": args.search,
        "max_faults": args.max_faults,
        "fault_kinds": args.fault_kinds,
        "nodes": args.nodes,
        "lanes": LANES,
    });
    Ok((plan, targets))
}

/// Shrinks the lowest-index violation among `records` (one variant's
/// lanes of this shard) and stores it in the record of its lane.
fn shrink_first(target: &Target, records: &mut [LaneRecord]) -> Result<()> {
    let first = records
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.violations.iter().map(move |v| (i, v)))
        .min_by_key(|(_, v)| v.index);
    let Some((i, violation)) = first else { return Ok(()) };
    let invariant = violation.judgements.iter().find(|j| !j.held).map(|j| j.invariant.clone()).unwrap_or_default();
    let shrunk = shrink::shrink(target, &invariant, &violation.case);
    let minimal = output::minimal(target, &invariant, violation, shrunk)?;
    records[i].shrunk = Some(serde_json::to_value(minimal)?);
    Ok(())
}

/// Turns the plan and every unit's record into the output: prints the
/// verdict and writes the minimal case. Exit 1 on a violation.
pub fn finish(plan: &Value, records: &[Value], out: &Path) -> Result<ExitCode> {
    let records: Vec<LaneRecord> =
        records.iter().map(|r| serde_json::from_value(r.clone())).collect::<Result<_, _>>()?;
    let variants: Vec<&str> =
        plan["variants"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    for name in plan["skipped"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        outln!("{name}: skipped: it claims no invariant (name one with --invariant)");
    }
    let mut code = ExitCode::SUCCESS;
    for name in &variants {
        let mine: Vec<&LaneRecord> = records.iter().filter(|r| r.variant == *name).collect();
        let stem = if variants.len() == 1 { "minimal".to_string() } else { format!("minimal-{name}") };
        if report_variant(plan, name, &mine, out, &stem)? {
            code = ExitCode::from(1);
        }
    }
    Ok(code)
}

/// Prints one variant's verdict and writes its minimal case; true when
/// an invariant was violated.
fn report_variant(plan: &Value, name: &str, mine: &[&LaneRecord], out: &Path, stem: &str) -> Result<bool> {
    let runs: usize = mine.iter().map(|r| r.runs).sum();
    let sim_s = mine.iter().map(|r| r.sim_ns).sum::<u64>() as f64 / 1e9;
    let faults: usize = mine.iter().map(|r| r.faults).sum();
    let features: usize = mine.iter().map(|r| r.features).sum();
    let stopped: usize = mine.iter().map(|r| r.stopped.len()).sum();
    let violating: usize = mine.iter().map(|r| r.violations.len()).sum();
    let invariants: Vec<&str> = plan["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == name)
        .and_then(|v| v["invariants"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|i| i.as_str())
        .collect();
    let budget = match plan["time_budget_s"].as_f64() {
        Some(t) => format!(" (time budget {t} s)"),
        None => String::new(),
    };
    if stopped > 0 {
        outln!("{name}: {stopped} run(s) stopped at a limit (events, memory): reported, not judged");
    }
    let first = mine.iter().flat_map(|r| r.violations.iter()).min_by_key(|x| x.index);
    let Some(first) = first else {
        let coverage = if features > 0 { format!(", coverage {features}") } else { String::new() };
        outln!(
            "{name}: no violation of {} in {runs} runs{budget}: {sim_s:.1} s simulated, {faults} faults injected{coverage}",
            invariants.join(", ")
        );
        return Ok(false);
    };
    let minimal: Option<output::Minimal> = mine
        .iter()
        .filter_map(|r| r.shrunk.clone())
        .map(serde_json::from_value)
        .collect::<Result<Vec<output::Minimal>, _>>()?
        .into_iter()
        .find(|m| m.from_index == first.index);
    let Some(m) = minimal else {
        outln!("{name}: violation in run {} (not shrunk: its shard's record lacks it)", first.index);
        return Ok(true);
    };
    print_violation(plan, name, &m, runs, violating, &budget);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let toml_path = reports::out_path(out, &format!("{stem}.toml"))?;
    let svg_path = reports::out_path(out, &format!("{stem}.svg"))?;
    reports::write_atomic(&toml_path, m.toml.as_bytes())?;
    let from_ms = m.case.faults.iter().map(|f| f.window_ms().0).fold(f64::INFINITY, f64::min);
    output::write_svg(&m.toml, name, if from_ms.is_finite() { from_ms } else { 0.0 }, &svg_path)?;
    outln!("  replay: asyncsim run {}", toml_path.display());
    outln!("  wrote {} and {}", toml_path.display(), svg_path.display());
    Ok(true)
}

/// The verdict of a violation: the invariant, the run, the faults, the
/// replay command on the original file.
fn print_violation(plan: &Value, name: &str, m: &output::Minimal, runs: usize, violating: usize, budget: &str) {
    outln!(
        "{name}: `{}` VIOLATED in run {} ({violating} of {runs} runs{budget} violated an invariant)",
        m.invariant,
        m.from_index
    );
    outln!("  {}: {}", m.invariant, m.judgement.detail);
    let cut = if m.cut_short { " (stopped at the bound on shrink runs)" } else { "" };
    outln!(
        "  shrunk from {} drawn faults to {} in {} runs{cut}, seed {}:",
        m.from_faults,
        m.case.faults.len(),
        m.shrink_runs,
        m.case.seed
    );
    outln!();
    for line in output::fault_tables(&m.case.faults).unwrap_or_default().lines() {
        outln!("    {line}");
    }
    if !m.case.sets.is_empty() {
        outln!("    # and {}", m.case.sets.join(", "));
    }
    outln!();
    let file = plan["file"].as_str().unwrap_or_default();
    let sets: Vec<String> = m.replay_sets.iter().map(|s| format!(" --set {}", crate::run::shell_quote(s))).collect();
    outln!("  replay: asyncsim run {} --variant {name} --seed {}{}", file, m.case.seed, sets.concat());
}

#[cfg(test)]
mod tests;

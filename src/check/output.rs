//! What the search reports: the shrunk case of a violation as a record
//! (made by the shard that found it), and [`super::finish`]'s printing and
//! files: the faults as `[[faults]]` tables, the replay commands,
//! `minimal.toml` (a complete scenario file: the variant resolved, the
//! minimal faults, the violated invariant claimed) and `minimal.svg` (its
//! space-time diagram, from the first drawn fault on).

use super::case::{Case, Target};
use super::judge::Judged;
use super::shrink::Shrunk;
use anyhow::{Context, Result};
use reports::diagram::{self, Collector, Info, Window};
use serde::{Deserialize, Serialize};
use sim_core::scenario::{build_engine, FaultSpec, Scenario};
use std::path::Path;

/// A violation, shrunk: what `finish` prints and writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Minimal {
    /// The invariant violated (the first that failed in the original run).
    pub invariant: String,
    /// The judgement of the minimal case.
    pub judgement: Judged,
    /// The index of the run shrunk.
    pub from_index: usize,
    /// Faults drawn in that run.
    pub from_faults: usize,
    /// The minimal case.
    pub case: Case,
    /// Candidate runs the shrinking made.
    pub shrink_runs: usize,
    /// Whether the bound on shrink runs stopped it.
    pub cut_short: bool,
    /// The minimal case as a complete scenario file.
    pub toml: String,
    /// `--set` arguments that replay it on the original file.
    pub replay_sets: Vec<String>,
}

/// A list of faults as one inline TOML value (`[{ kind = "crash", ... }]`).
fn inline_faults(faults: &[toml::Value]) -> String {
    toml::Value::Array(faults.to_vec()).to_string()
}

/// The variant's own faults (after the command line's overrides) and the
/// case's, as TOML values.
fn all_faults(table: &toml::Table, case: &Case) -> Result<Vec<toml::Value>> {
    let mut faults: Vec<toml::Value> = table.get("faults").and_then(|f| f.as_array()).cloned().unwrap_or_default();
    for f in &case.faults {
        faults.push(toml::Value::try_from(f)?);
    }
    Ok(faults)
}

/// The minimal case of a violation of `invariant` (first seen in run
/// `from`), with its scenario file and replay arguments.
pub fn minimal(target: &Target, invariant: &str, from: &super::Violation, shrunk: Shrunk) -> Result<Minimal> {
    let case = shrunk.case;
    let mut scenario = target.scenario.clone();
    if !case.sets.is_empty() {
        scenario.set_overrides(&case.sets)?;
    }
    let mut table = scenario.resolved_table(&target.variant).context("the variant is gone")?;
    let faults = all_faults(&table, &case)?;
    let ran = super::case::run_case(target, from.index, case.clone())?;
    let judgement = ran
        .judgements
        .iter()
        .find(|j| j.invariant == invariant)
        .map(Judged::from)
        .context("the invariant was judged")?;
    let mut replay_sets: Vec<String> = scenario.overrides().iter().map(|(k, v)| format!("{k}={v}")).collect();
    replay_sets.retain(|s| !s.starts_with("faults="));
    replay_sets.push(format!("faults={}", inline_faults(&faults)));
    let claimed = target.claimed.iter().any(|i| i == invariant);
    if !claimed {
        replay_sets.push(format!("invariants=[\"{invariant}\"]"));
    }
    // The minimal scenario: the variant's expectations with the base's,
    // the case's seed, every fault, the invariant claimed.
    let variant = target.scenario.variants().iter().find(|v| v.name == target.variant);
    let mut expect: Vec<toml::Value> = table.get("expect").and_then(|e| e.as_array()).cloned().unwrap_or_default();
    expect.extend(variant.into_iter().flat_map(|v| v.expect.iter().map(|e| toml::Value::String(e.clone()))));
    let mut invariants: Vec<toml::Value> = target.claimed.iter().map(|i| toml::Value::String(i.clone())).collect();
    if !claimed {
        invariants.push(toml::Value::String(invariant.to_string()));
    }
    table.insert("seed".into(), toml::Value::Integer(case.seed as i64));
    table.insert("expect".into(), toml::Value::Array(expect));
    table.insert("invariants".into(), toml::Value::Array(invariants));
    table.insert("faults".into(), toml::Value::Array(faults));
    let header = format!(
        "# The minimal case `asyncsim check` found: variant `{}` of {} violates `{invariant}`\n\
         # ({}). Found in run {} of the search ({} faults drawn), shrunk to {} drawn\n\
         # fault(s) in {} runs. Replay: `asyncsim run minimal.toml` (exits 1).\n\n",
        target.variant,
        target.scenario.file(),
        judgement.detail,
        from.index,
        from.case.faults.len(),
        case.faults.len(),
        shrunk.runs,
    );
    let toml = header + &toml::to_string(&table)?;
    Ok(Minimal {
        invariant: invariant.to_string(),
        judgement,
        from_index: from.index,
        from_faults: from.case.faults.len(),
        case,
        shrink_runs: shrunk.runs,
        cut_short: shrunk.cut_short,
        toml,
        replay_sets,
    })
}

/// The drawn faults as `[[faults]]` tables.
pub fn fault_tables(faults: &[FaultSpec]) -> Result<String> {
    let list = faults.iter().map(toml::Value::try_from).collect::<Result<Vec<_>, _>>()?;
    let mut t = toml::Table::new();
    t.insert("faults".into(), toml::Value::Array(list));
    Ok(toml::to_string(&t)?)
}

/// Runs the minimal scenario `text` and draws it from just before its
/// first drawn fault (`from_ms`) into `path`.
pub fn write_svg(text: &str, variant: &str, from_ms: f64, path: &Path) -> Result<()> {
    let scenario = Scenario::parse("minimal.toml", text)?;
    let (_, config) = scenario.configs()?.into_iter().next().context("no configuration")?;
    let start = sim_core::time::ms_to_ns((from_ms - 20.0).max(0.0));
    let collector = Collector::new(Window { from: start, to: None, max_messages: 40 });
    let mut engine = build_engine(&config, config.seed, usize::MAX);
    engine.stream_trace(collector.sink());
    let out = engine.run();
    let collected = collector.take();
    let info =
        Info { scenario: &config.name, variant, seed: config.seed, names: &out.names, lost: &out.lost, note: None };
    reports::write_atomic(path, diagram::render(&collected, &info).as_bytes())?;
    Ok(())
}

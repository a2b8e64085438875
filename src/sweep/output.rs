//! Running a sweep's units (all of them, with `--precision` batch after
//! batch, or one shard's) and [`finish`]: the pure step from a plan and
//! its records to the printed tables and every file, the same whether the
//! records come from this process or from shards joined by `merge`.

use super::analysis::{self, Record, Table};
use super::exec::{self, Prepared};
use super::plan::Plan;
use super::render::{self, Compared};
use super::{grammar, many, stats};
use anyhow::{Context, Result};
use reports::sweep_plot::{SweepLine, SweepPlot, SweepPoint};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The file a shard writes (by [`many::Partial::write`]).
const PARTIAL: &str = "partial.json";

/// The stem of a metric's plot: `sweep-METRIC`, any character that is not
/// a letter, digit, `.`, `_` or `-` replaced by `_`.
fn plot_stem(metric: &str) -> String {
    let safe: String =
        metric.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    format!("sweep-{safe}")
}

/// Every file [`finish`] writes for `plan`.
fn output_names(plan: &Plan) -> Vec<String> {
    let mut names: Vec<String> = ["sweep.json", "sweep.csv", "runs.csv"].map(String::from).to_vec();
    if plan.variants.len() > 1 {
        names.push("comparisons.csv".into());
    }
    if !plan.axes.is_empty() {
        for m in &plan.metrics {
            names.extend(["svg", "png"].map(|e| format!("{}.{e}", plot_stem(m))));
        }
    }
    names
}

/// Makes `out` ready before anything runs: created or accepted (with
/// `force`, even holding files asyncsim did not write), and writable.
pub fn prepare_out(out: &Path, force: bool) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        // A folder the sweep makes is asyncsim's, so a later `run --out` there works.
        reports::prepare_dir(parent, false)?;
    }
    reports::prepare_dir(out, force)?;
    reports::check_writable(out).with_context(|| format!("the output folder {} is not writable", out.display()))?;
    Ok(())
}

/// Runs every unit of `prepared`; with `--precision`, adds batches of seeds
/// until every interval is within the target or the seeds run out. Returns
/// the plan as it ended (its seeds) and the records.
pub fn run_all(mut prepared: Prepared, pool: &many::Pool) -> (Plan, Vec<Value>) {
    let total = prepared.plan.precision.is_none().then(|| prepared.plan.units() as u64);
    let meter = many::Meter::start(&format!("sweep {}", prepared.plan.scenario), total);
    let mut runs: Vec<Value> = Vec::new();
    loop {
        let units: Vec<usize> = (runs.len()..prepared.plan.units()).collect();
        let (p, m) = (&prepared, &meter);
        runs.extend(pool.map(units, |u| {
            let record = exec::run_unit(p, u);
            m.tick(false);
            record
        }));
        let plan = &prepared.plan;
        let Some(target) = plan.precision else { break };
        let records = analysis::read_records(plan, &runs).expect("the records this process made fit its plan");
        let (within, total) = analysis::precision_reached(plan, &Table::new(plan, &records), target.relative);
        if within == total || plan.seeds >= target.max_seeds {
            break;
        }
        prepared.plan.seeds = (plan.seeds + target.batch).min(target.max_seeds);
    }
    meter.finish();
    (prepared.plan, runs)
}

/// Runs the units shard `shard` owns and writes them as a partial result.
pub fn run_shard(prepared: &Prepared, pool: &many::Pool, shard: many::Shard, out: &Path) -> Result<ExitCode> {
    let plan = &prepared.plan;
    let units: Vec<usize> = (0..plan.units()).filter(|u| shard.owns(*u)).collect();
    let meter = many::Meter::start(
        &format!("sweep {} shard {}/{}", plan.scenario, shard.index, shard.count),
        Some(units.len() as u64),
    );
    let count = units.len();
    let runs = pool.map(units, |u| {
        let record = exec::run_unit(prepared, u);
        meter.tick(false);
        record
    });
    meter.finish();
    let partial = many::Partial {
        asyncsim: env!("CARGO_PKG_VERSION").to_string(),
        command: "sweep".to_string(),
        plan: serde_json::to_value(plan)?,
        shard: [shard.index, shard.count],
        runs,
    };
    partial.write(out)?;
    outln!(
        "sweep `{}`, shard {}/{}: ran {count} of {} runs; wrote {}; join the shards with `asyncsim merge DIR... --out OUT`",
        plan.scenario,
        shard.index,
        shard.count,
        plan.units(),
        out.join(PARTIAL).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Every variant's comparison with the baseline, per metric.
fn compare_all(plan: &Plan, table: &Table) -> Vec<(String, Compared)> {
    let Some(base) = plan.variants.iter().position(|v| *v == plan.baseline) else {
        return Vec::new();
    };
    if plan.variants.len() < 2 {
        return Vec::new();
    }
    let mut all = Vec::new();
    for (m, metric) in plan.metrics.iter().enumerate() {
        let mut rows = Vec::new();
        for p in 0..plan.points() {
            for v in (0..plan.variants.len()).filter(|v| *v != base) {
                let c = analysis::compare(table.samples(p, v, m), table.samples(p, base, m), plan.level);
                rows.push((p, v, c));
            }
        }
        all.push((metric.clone(), rows));
    }
    all
}

/// How `--precision` ended.
#[derive(Serialize)]
struct PrecisionOutcome {
    /// The target, relative to the mean.
    target: f64,
    /// Seeds run per point and variant.
    seeds: usize,
    /// Intervals within the target.
    within: usize,
    /// Intervals in all.
    intervals: usize,
    /// Every interval within the target.
    met: bool,
}

/// One point, variant and metric in sweep.json.
#[derive(Serialize)]
struct EstimateJson<'a> {
    point: usize,
    parameters: serde_json::Map<String, Value>,
    variant: &'a str,
    metric: &'a str,
    estimate: Option<stats::Estimate>,
}

/// One comparison in sweep.json.
#[derive(Serialize)]
struct ComparisonJson<'a> {
    point: usize,
    variant: &'a str,
    metric: &'a str,
    comparison: Option<analysis::Comparison>,
}

/// The whole of sweep.json.
#[derive(Serialize)]
struct SweepJson<'a> {
    plan: &'a Plan,
    runs: usize,
    stopped: usize,
    precision: Option<PrecisionOutcome>,
    estimates: Vec<EstimateJson<'a>>,
    comparisons: Vec<ComparisonJson<'a>>,
}

/// The parameters of point `p`, by path.
fn parameters(plan: &Plan, p: usize) -> serde_json::Map<String, Value> {
    plan.axes.iter().zip(grammar::point_values(&plan.axes, p)).map(|(a, v)| (a.path.clone(), v.clone())).collect()
}

fn precision_outcome(plan: &Plan, table: &Table) -> Option<PrecisionOutcome> {
    let target = plan.precision?;
    let (within, intervals) = analysis::precision_reached(plan, table, target.relative);
    Some(PrecisionOutcome { target: target.relative, seeds: plan.seeds, within, intervals, met: within == intervals })
}

/// The text of sweep.json.
fn sweep_json(plan: &Plan, table: &Table, compared: &[(String, Compared)], stopped: usize) -> String {
    let mut estimates = Vec::new();
    for p in 0..plan.points() {
        for (v, variant) in plan.variants.iter().enumerate() {
            for (m, metric) in plan.metrics.iter().enumerate() {
                let estimate = analysis::estimate(table.samples(p, v, m), plan.level);
                estimates.push(EstimateJson { point: p, parameters: parameters(plan, p), variant, metric, estimate });
            }
        }
    }
    let comparisons = compared
        .iter()
        .flat_map(|(metric, rows)| {
            rows.iter().map(move |(p, v, c)| ComparisonJson {
                point: *p,
                variant: &plan.variants[*v],
                metric,
                comparison: *c,
            })
        })
        .collect();
    let json = SweepJson {
        plan,
        runs: plan.units(),
        stopped,
        precision: precision_outcome(plan, table),
        estimates,
        comparisons,
    };
    let mut text = serde_json::to_string_pretty(&json).expect("a sweep's results serialize");
    text.push('\n');
    text
}

/// The plot of metric `m` against the first swept parameter: a line per
/// variant and combination of the other parameters' values.
fn plot(plan: &Plan, table: &Table, m: usize) -> SweepPlot {
    let mut lines: Vec<SweepLine> = Vec::new();
    for (v, variant) in plan.variants.iter().enumerate() {
        let mut groups: Vec<(String, Vec<SweepPoint>)> = Vec::new();
        for p in 0..plan.points() {
            let values = grammar::point_values(&plan.axes, p);
            let others: Vec<String> = plan.axes[1..]
                .iter()
                .zip(&values[1..])
                .map(|(a, x)| format!("{}={}", a.path.rsplit('.').next().unwrap_or(&a.path), grammar::override_text(x)))
                .collect();
            let label = std::iter::once(variant.clone()).chain(others).collect::<Vec<_>>().join(", ");
            let Some(e) = analysis::estimate(table.samples(p, v, m), plan.level) else { continue };
            let point =
                SweepPoint { x: values[0].as_f64().unwrap_or(f64::NAN), mean: e.mean, low: e.low, high: e.high };
            match groups.iter_mut().find(|(l, _)| *l == label) {
                Some((_, points)) => points.push(point),
                None => groups.push((label, vec![point])),
            }
        }
        for (label, mut points) in groups {
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            lines.push(SweepLine { label, colour: lines.len(), points });
        }
    }
    let metric = &plan.metrics[m];
    SweepPlot {
        title: format!("{metric}: mean and {:.0}% CI over {} seeds", plan.level * 100.0, plan.seeds),
        x_label: plan.axes[0].path.clone(),
        y_label: metric.clone(),
        lines,
    }
}

/// What the sweep was, in a few lines.
fn heading(plan: &Plan) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let last = plan.first_seed.wrapping_add(plan.seeds as u64 - 1);
    let mut out = format!(
        "sweep `{}` ({}): {} x {} x {} ({} to {}) = {}\n",
        plan.scenario,
        plan.file,
        plural(plan.points(), "point"),
        plural(plan.variants.len(), "variant"),
        plural(plan.seeds, "seed"),
        plan.first_seed,
        last,
        plural(plan.units(), "run")
    );
    for a in &plan.axes {
        let shown: Vec<String> = a.values.iter().map(grammar::override_text).collect();
        let list = if shown.len() <= 6 {
            shown.join(", ")
        } else {
            format!("{}, {}, ..., {}", shown[0], shown[1], shown[shown.len() - 1])
        };
        let _ = writeln!(out, "swept: {} = {list} ({} values)", a.path, shown.len());
    }
    if plan.axes.len() > 1 {
        out.push_str("points: every combination of the swept values\n");
    }
    for f in &plan.fixed {
        let _ = writeln!(out, "fixed: {f}");
    }
    let _ = writeln!(
        out,
        "each figure: the mean over seeds and its {:.0}% confidence interval (Student t); ± is its half-width relative to the mean",
        plan.level * 100.0
    );
    out
}

/// The closing lines: precision, stopped runs, how to reproduce a run.
fn closing(plan: &Plan, table: &Table, stopped: usize, out: &Path) -> String {
    let mut text = String::new();
    if let Some(p) = precision_outcome(plan, table) {
        let target = format!("±{}% at {:.0}%", p.target * 100.0, plan.level * 100.0);
        let _ = if p.met {
            writeln!(text, "\nprecision {target}: met by every interval, with {} seeds per point and variant", p.seeds)
        } else {
            writeln!(
                text,
                "\nprecision {target}: NOT met: {} of {} intervals within it after {} seeds per point and variant (--max-seeds {})",
                p.within, p.intervals, p.seeds, plan.precision.map_or(0, |q| q.max_seeds)
            )
        };
    }
    if stopped > 0 {
        let _ = writeln!(text, "warning: {stopped} runs stopped at a limit (run.max_events or run.max_memory_mb): their figures are partial (column `stopped` of runs.csv)");
    }
    let mut cmd = format!("asyncsim run {} --seed SEED --variant VARIANT", plan.file);
    for s in &plan.fixed {
        let _ = write!(cmd, " --set '{s}'");
    }
    for a in &plan.axes {
        let _ = write!(cmd, " --set '{}=VALUE'", a.path);
    }
    let _ = writeln!(text, "reproduce a run: {cmd} (runs.csv gives each run's)");
    let _ = writeln!(text, "wrote {}", out.display());
    text
}

/// Turns a sweep's plan and the records of all its runs (in any order)
/// into its output: prints the tables and writes sweep.json, sweep.csv,
/// runs.csv, comparisons.csv (with several variants) and a plot per metric
/// (with a swept parameter) into `out`. Pure: the same plan and records
/// give the same bytes. Exit status 0; 1 when `--precision` was not met;
/// 3 when a run stopped at a limit.
pub fn finish(plan: &Value, runs: &[Value], out: &Path) -> Result<ExitCode> {
    let plan: Plan = serde_json::from_value(plan.clone()).context("the plan is not a sweep's")?;
    plan.check().map_err(|e| anyhow::anyhow!("the plan is not a sweep's: {e}"))?;
    let records: Vec<Record> = analysis::read_records(&plan, runs)?;
    let table = Table::new(&plan, &records);
    let compared = compare_all(&plan, &table);
    let stopped = records.iter().filter(|r| r.stopped).count();
    let names = output_names(&plan);
    reports::prepare_dir(out, false)?;
    reports::check_writable(out).with_context(|| format!("the output folder {} is not writable", out.display()))?;
    let tidied = reports::tidy_dir(out, &names.iter().map(String::as_str).collect::<Vec<_>>())?;
    for warning in &tidied.warnings {
        eprintln!("warning: {warning}");
    }
    let write = |name: &str, text: String| -> Result<()> {
        Ok(reports::write_atomic(&reports::out_path(out, name)?, text.as_bytes())?)
    };
    write("sweep.json", sweep_json(&plan, &table, &compared, stopped))?;
    write("sweep.csv", render::sweep_csv(&plan, &table))?;
    write("runs.csv", render::runs_csv(&plan, &records))?;
    if plan.variants.len() > 1 {
        write("comparisons.csv", render::comparisons_csv(&plan, &compared))?;
    }
    if !plan.axes.is_empty() {
        for (m, metric) in plan.metrics.iter().enumerate() {
            reports::sweep_plot::write(out, &plot_stem(metric), &plot(&plan, &table, m), true)?;
        }
    }
    let mut text = heading(&plan);
    text.push_str(&render::estimates_text(&plan, &table));
    if !compared.is_empty() {
        text.push_str(&render::comparisons_text(&plan, &compared));
    }
    text.push_str(&closing(&plan, &table, stopped, out));
    out!("{text}");
    let met = precision_outcome(&plan, &table).is_none_or(|p| p.met);
    Ok(if stopped > 0 {
        ExitCode::from(3)
    } else if !met {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::grammar::Axis;

    fn plan() -> Plan {
        Plan {
            file: "f.toml".into(),
            scenario: "f".into(),
            source_hash: "0".into(),
            fixed: Vec::new(),
            axes: vec![Axis { path: "a.rate".into(), values: vec![Value::from(1), Value::from(2)] }],
            variants: vec!["x".into(), "y".into()],
            baseline: "x".into(),
            metrics: vec!["m".into(), "n".into()],
            first_seed: 5,
            seeds: 3,
            level: 0.95,
            precision: None,
        }
    }

    /// Every record of `plan`, with made-up values (some missing).
    fn records(plan: &Plan) -> Vec<Value> {
        (0..plan.units())
            .map(|u| {
                let unit = plan.unit(u);
                let base = 10.0 * (unit.point + 1) as f64 + unit.seed as f64 * 0.7;
                let values = vec![Some(base + unit.variant as f64), (u % 5 != 3).then_some(u as f64 / 3.0)];
                let r = Record {
                    index: u,
                    point: unit.point,
                    variant: plan.variants[unit.variant].clone(),
                    seed: plan.seed_of(unit),
                    values,
                    stopped: false,
                };
                serde_json::to_value(r).unwrap()
            })
            .collect()
    }

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn finish_gives_the_same_bytes_whatever_order_the_records_come_in() {
        let tmp = std::env::temp_dir().join(format!("asyncsim-sweep-finish-{}", std::process::id()));
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        let plan = plan();
        let json = serde_json::to_value(&plan).unwrap();
        let runs = records(&plan);
        let mut shuffled: Vec<Value> = runs.iter().skip(1).step_by(2).chain(runs.iter().step_by(2)).cloned().collect();
        shuffled.reverse();
        assert_eq!(finish(&json, &runs, &a).unwrap(), ExitCode::SUCCESS);
        assert_eq!(finish(&json, &shuffled, &b).unwrap(), ExitCode::SUCCESS);
        let (fa, fb) = (files(&a), files(&b));
        let names: Vec<&str> = fa.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            output_names(&plan)
                .iter()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert!(fa == fb, "the same bytes");
        let sweep: Value = serde_json::from_slice(&fa.iter().find(|(n, _)| n == "sweep.json").unwrap().1).unwrap();
        // Variant y is x + 1 at every seed: paired difference exactly 1, width 0.
        let c = &sweep["comparisons"][0]["comparison"]["paired"];
        assert_eq!((c["mean"].as_f64(), c["half_width"].as_f64()), (Some(1.0), Some(0.0)));
        let missing = runs.iter().filter(|r| r["values"][1].is_null()).count();
        assert!(missing > 0);
        let n: u64 = sweep["estimates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["metric"] == "n")
            .map(|e| e["estimate"]["n"].as_u64().unwrap())
            .sum();
        assert_eq!(n as usize, plan.units() - missing, "a missing value is left out");
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn finish_refuses_runs_that_do_not_make_the_plan() {
        let tmp = std::env::temp_dir().join(format!("asyncsim-sweep-refuse-{}", std::process::id()));
        let plan = plan();
        let json = serde_json::to_value(&plan).unwrap();
        let mut runs = records(&plan);
        let last = runs.pop().unwrap();
        assert!(finish(&json, &runs, &tmp).unwrap_err().to_string().contains("missing"));
        runs.push(runs[0].clone());
        assert!(finish(&json, &runs, &tmp).unwrap_err().to_string().contains("twice"));
        runs.pop();
        let mut wrong = last.clone();
        wrong["seed"] = Value::from(99);
        runs.push(wrong);
        assert!(finish(&json, &runs, &tmp).unwrap_err().to_string().contains("does not match the plan"));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

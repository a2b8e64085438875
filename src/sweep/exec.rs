//! Making a sweep's plan from its arguments (every point's configuration
//! resolved and validated before anything runs, so bad input exits 2 at
//! once), and running its units: each one run of one variant at one point
//! with one seed, turned into a [`Record`] with the requested metrics.

use super::analysis::Record;
use super::grammar;
use super::plan::{Plan, Precision};
use super::SweepArgs;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use sim_core::expect;
use sim_core::scenario::{run_config, Config, Scenario};
use sim_core::summary::VariantSummary;

/// The metrics a sweep reports when none is named.
pub const DEFAULT_METRICS: [&str; 3] = ["throughput_per_s", "latency_ms.p99", "lost"];

/// Seeds `--precision` adds per round.
pub const BATCH: usize = 10;

/// A sweep ready to run: its plan and every run's configuration.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// `[point][variant]`: the configuration each unit runs.
    pub configs: Vec<Vec<Config>>,
    /// The variants' descriptions, in plan order.
    pub descriptions: Vec<String>,
}

/// Checks that `metric` names a numeric key of `config`'s summary, as an
/// expectation's path is checked (with a did-you-mean).
fn check_metric(metric: &str, config: &Config, variant: &str) -> Result<()> {
    let scope = sim_core::scenario::expectation_scope(config);
    let claim = format!("{metric} >= 0");
    if metric.split_whitespace().count() != 1 {
        bail!("--metric `{metric}`: a metric is one dotted path of a variant's summary, such as latency_ms.p99");
    }
    expect::check_all_in(std::slice::from_ref(&claim), &sim_core::summary::expectation_keys(), &scope).map_err(
        |(_, message)| {
            let message = message.strip_prefix(&format!("`{claim}`: ")).unwrap_or(&message).to_string();
            anyhow!("--metric `{metric}` (variant `{variant}`): {message}")
        },
    )
}

/// The variants to run: those named with `--variant` (each must exist), in
/// the scenario's order, or all.
fn choose_variants(all: &[String], asked: &[String], file: &str) -> Result<Vec<String>> {
    if let Some(unknown) = asked.iter().find(|v| !all.contains(v)) {
        let hint = expect::closest(unknown, all).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
        bail!("{file}: no variant named `{unknown}`{hint} (variants: {})", all.join(", "));
    }
    Ok(all.iter().filter(|v| asked.is_empty() || asked.contains(v)).cloned().collect())
}

/// What `--precision` asks, read from its text (`2%` or `0.02`).
pub fn parse_precision(text: &str) -> Result<f64> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    value
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1.0)
        .ok_or_else(|| anyhow!("--precision `{text}`: expected a relative half-width such as 2% (between 0% and 100%)"))
}

/// The plan and configurations of `args`; bad input is an error (exit 2).
pub fn prepare(args: &SweepArgs) -> Result<Prepared> {
    let file = args.file.display().to_string();
    let text = crate::input::read_scenario(&args.file)?;
    let mut base = Scenario::parse(&file, &text)?;
    let sets = grammar::parse_sets(&args.set).map_err(anyhow::Error::msg)?;
    if !sets.fixed.is_empty() {
        base.set_overrides(&sets.fixed)?;
    }
    let all: Vec<String> = base.variants().iter().map(|v| v.name.clone()).collect();
    let variants = choose_variants(&all, &args.variants, &file)?;
    let baseline = match &args.baseline {
        Some(b) if !variants.contains(b) => {
            bail!("--baseline `{b}` is not among the variants run ({})", variants.join(", "))
        }
        Some(b) => b.clone(),
        None => variants[0].clone(),
    };
    let metrics: Vec<String> = if args.metrics.is_empty() {
        DEFAULT_METRICS.iter().map(|m| m.to_string()).collect()
    } else {
        args.metrics.clone()
    };
    if let Some(m) = metrics.iter().enumerate().find_map(|(i, m)| metrics[..i].contains(m).then_some(m)) {
        bail!("--metric `{m}` is named twice");
    }
    let precision = match &args.precision {
        None => None,
        Some(t) => Some(Precision { relative: parse_precision(t)?, batch: BATCH, max_seeds: args.max_seeds }),
    };
    let seeds = args.seeds.unwrap_or(if precision.is_some() { BATCH } else { 20 });
    if let Some(p) = &precision {
        if p.max_seeds < seeds {
            bail!("--max-seeds {} is below the {seeds} seeds the sweep starts with", p.max_seeds);
        }
    }
    let plan = Plan {
        file: file.clone(),
        scenario: base.config.name.clone(),
        source_hash: format!("{:016x}", sim_core::rng::stable_hash(text.as_bytes())),
        fixed: sets.fixed,
        axes: sets.axes,
        variants,
        baseline,
        metrics,
        first_seed: args.seed.unwrap_or(base.config.seed),
        seeds,
        level: args.level / 100.0,
        precision,
    };
    let (configs, descriptions) = resolve_points(&plan, &base)?;
    for (config, name) in configs[0].iter().zip(&plan.variants) {
        for m in &plan.metrics {
            check_metric(m, config, name)?;
        }
    }
    Ok(Prepared { plan, configs, descriptions })
}

/// Every point's configuration of every chosen variant, validated.
fn resolve_points(plan: &Plan, base: &Scenario) -> Result<(Vec<Vec<Config>>, Vec<String>)> {
    let mut configs = Vec::with_capacity(plan.points());
    let mut descriptions = Vec::new();
    for p in 0..plan.points() {
        let sets = grammar::point_sets(&plan.axes, p);
        let mut scenario = base.clone();
        let floats = plan.axes.iter().any(|a| a.values.iter().any(|v| !v.is_i64()));
        let note = if floats { " (a range gives integers only when A, B and its step are whole)" } else { "" };
        let at = || format!("at the point {}{note}", sets.join(" "));
        if !sets.is_empty() {
            scenario.set_overrides(&sets).with_context(at)?;
        }
        let all = scenario.configs().with_context(at)?;
        let chosen: Vec<_> = all.into_iter().filter(|(v, _)| plan.variants.contains(&v.name)).collect();
        if descriptions.is_empty() {
            descriptions = chosen.iter().map(|(v, _)| v.description.clone()).collect();
        }
        configs.push(chosen.into_iter().map(|(_, c)| c).collect());
    }
    Ok((configs, descriptions))
}

/// The value of `metric` in a variant's summary (as JSON), read as an
/// expectation reads it (a metric or error kind never reported is 0);
/// `None` when the summary has none.
pub fn metric_value(metric: &str, summary: &Value) -> Option<f64> {
    Some(expect::evaluate(&format!("{metric} >= 0"), summary).actual).filter(|v| v.is_finite())
}

/// Runs unit `u` of `prepared` and returns its record, as JSON.
pub fn run_unit(prepared: &Prepared, u: usize) -> Value {
    let plan = &prepared.plan;
    let unit = plan.unit(u);
    let config = &prepared.configs[unit.point][unit.variant];
    let seed = plan.seed_of(unit);
    let out = run_config(config, seed, 0);
    let summary = VariantSummary::new(&prepared.descriptions[unit.variant], &out, &config.expect, &config.alarms);
    let json = serde_json::to_value(&summary).unwrap_or_default();
    let record = Record {
        index: u,
        point: unit.point,
        variant: plan.variants[unit.variant].clone(),
        seed,
        values: plan.metrics.iter().map(|m| metric_value(m, &json)).collect(),
        stopped: out.stopped.is_some(),
    };
    serde_json::to_value(record).expect("a record serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_reads_a_percentage_or_a_fraction() {
        assert_eq!(parse_precision("2%").unwrap(), 0.02);
        assert_eq!(parse_precision("0.05").unwrap(), 0.05);
        assert!(parse_precision("0%").is_err());
        assert!(parse_precision("abc").is_err());
        assert!(parse_precision("150%").is_err());
    }

    #[test]
    fn metrics_read_as_expectations_do() {
        let s = serde_json::json!({"lost": 3, "latency_ms": {"p99": 4.5}, "metrics": {}});
        assert_eq!(metric_value("lost", &s), Some(3.0));
        assert_eq!(metric_value("latency_ms.p99", &s), Some(4.5));
        assert_eq!(metric_value("metrics.never_reported", &s), Some(0.0));
        assert_eq!(metric_value("latency_ms.p50", &s), None);
    }

    #[test]
    fn unknown_variants_get_a_did_you_mean() {
        let all = vec!["acks-1".to_string(), "acks-all".to_string()];
        assert_eq!(choose_variants(&all, &[], "f").unwrap(), all);
        assert_eq!(choose_variants(&all, &["acks-all".into()], "f").unwrap(), ["acks-all"]);
        let e = choose_variants(&all, &["acks-al".into()], "f").unwrap_err().to_string();
        assert!(e.contains("did you mean `acks-all`"), "{e}");
    }
}

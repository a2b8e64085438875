//! `asyncsim compare A B`: runs two sides and sets their figures side by
//! side. A side is a scenario file, one variant of it (`FILE:VARIANT`), a
//! seed of it (`FILE@SEED`), or both (`FILE:VARIANT@SEED`); a side that
//! starts with `:` or `@` takes the other side's file. Two whole files are
//! compared variant by variant, paired by name. Prints, per pair, a table
//! of A, B, the difference B−A and the relative change, marking the rows
//! that differ; writes `compare.json` (both summaries and the differences)
//! and the plots of a run, with both sides' curves overlaid, into `--out`. Leaves out the expectations: a comparison does not judge
//! (they are in each side's summary), so it exits 0 whatever they say.

use crate::table;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use reports::plots::PlotRun;
use serde::Serialize;
use sim_core::alarms::AlarmSpec;
use sim_core::engine::RunOutput;
use sim_core::kind::KindPlot;
use sim_core::scenario::{Config, Scenario, Variant};
use sim_core::summary::{Summary, VariantSummary};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `asyncsim compare`.
#[derive(clap::Args, Clone)]
pub struct CompareArgs {
    /// The first side: FILE (every variant), FILE:VARIANT, FILE@SEED or
    /// FILE:VARIANT@SEED.
    pub a: String,
    /// The second side, as A; `:VARIANT`, `@SEED` or `:VARIANT@SEED` alone
    /// take A's file.
    pub b: String,
    /// Seed of a side that names none with `@SEED` (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a field on both sides, as in `run`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "out/compare")]
    pub out: PathBuf,
    /// Write into --out even if it holds files asyncsim did not write.
    #[arg(long)]
    pub force: bool,
    /// Write no plots. Without it, compare writes the plots of a run (SVG
    /// and PNG), each side's curves overlaid: `A: VARIANT` and `B: VARIANT`.
    #[arg(long)]
    pub no_plots: bool,
}

/// One side, as written on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The scenario file.
    pub file: PathBuf,
    /// The variant it names, if any.
    pub variant: Option<String>,
    /// The seed it names, if any.
    pub seed: Option<u64>,
}

/// Reads a side: `FILE[:VARIANT][@SEED]`, where an empty `FILE` is
/// `other`'s (the first side's). A text that names an existing file is
/// that file, whatever it holds.
pub fn parse_spec(text: &str, other: Option<&Path>) -> Result<Spec> {
    if !text.is_empty() && Path::new(text).is_file() {
        return Ok(Spec { file: PathBuf::from(text), variant: None, seed: None });
    }
    let mut rest = text;
    let mut seed = None;
    if let Some((head, tail)) = text.rsplit_once('@') {
        if !tail.contains(['/', '\\']) {
            let n = tail.parse::<u64>().map_err(|_| {
                anyhow::anyhow!("`{text}`: `@{tail}` is not a seed (a whole number from 0 to {})", u64::MAX)
            })?;
            seed = Some(n);
            rest = head;
        }
    }
    let mut variant = None;
    if let Some((head, tail)) = rest.rsplit_once(':') {
        if !tail.contains(['/', '\\']) {
            if tail.is_empty() {
                bail!("`{text}`: the variant name after `:` is empty");
            }
            variant = Some(tail.to_string());
            rest = head;
        }
    }
    let file = match (rest.is_empty(), other) {
        (false, _) => PathBuf::from(rest),
        (true, Some(f)) => f.to_path_buf(),
        (true, None) => {
            bail!("`{text}`: no scenario file (only the second side may leave it out, to take the first's)")
        }
    };
    Ok(Spec { file, variant, seed })
}

/// A side loaded: its scenario (with `--set`) and every variant's config.
struct Loaded {
    spec: Spec,
    scenario: Scenario,
    configs: Vec<(Variant, Config)>,
}

impl Loaded {
    fn load(spec: Spec, set: &[String]) -> Result<Loaded> {
        let (scenario, _) = crate::run::load(&spec.file, set)?;
        let configs = scenario.configs()?;
        let loaded = Loaded { spec, scenario, configs };
        if let Some(v) = &loaded.spec.variant {
            loaded.check_has(v)?;
        }
        Ok(loaded)
    }

    fn names(&self) -> Vec<&str> {
        self.configs.iter().map(|(v, _)| v.name.as_str()).collect()
    }

    fn check_has(&self, name: &str) -> Result<()> {
        if !self.names().contains(&name) {
            bail!("{}: no variant named `{name}` (variants: {})", self.spec.file.display(), self.names().join(", "));
        }
        Ok(())
    }
}

/// Which variants of A and B are compared, and those left out.
#[derive(Debug, PartialEq)]
pub struct Pairing {
    /// (A's variant, B's variant), in A's order.
    pub pairs: Vec<(String, String)>,
    /// A's variants that B lacks, and B's that A lacks (two whole files).
    pub only_in: (Vec<String>, Vec<String>),
}

/// Pairs the variants of A (`a`, the one it names as `a_named`) with
/// those of B. A variant named on one side only is looked for by name on
/// the other (or is that side's only variant); two whole files pair their
/// variants by name (or their only variants, if they have one each).
pub fn pair(a: &[&str], a_named: Option<&str>, b: &[&str], b_named: Option<&str>) -> Result<Pairing, String> {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let find = |named: &str, other: &[&str], side: &str| -> Result<String, String> {
        match other {
            _ if other.contains(&named) => Ok(named.to_string()),
            [only] => Ok(only.to_string()),
            _ => Err(format!(
                "side {side} has no variant named `{named}` and several others ({}): name one, as FILE:VARIANT",
                other.join(", ")
            )),
        }
    };
    let pairs = match (a_named, b_named) {
        (Some(x), Some(y)) => vec![(x.to_string(), y.to_string())],
        (Some(x), None) => vec![(x.to_string(), find(x, b, "B")?)],
        (None, Some(y)) => vec![(find(y, a, "A")?, y.to_string())],
        (None, None) => {
            let common: Vec<(String, String)> =
                a.iter().filter(|n| b.contains(n)).map(|n| (n.to_string(), n.to_string())).collect();
            if common.is_empty() {
                if let ([x], [y]) = (a, b) {
                    return Ok(Pairing { pairs: vec![(x.to_string(), y.to_string())], only_in: Default::default() });
                }
                return Err(format!(
                    "the two files have no variant name in common (A: {}; B: {}): name one on each side, as FILE:VARIANT",
                    a.join(", "),
                    b.join(", ")
                ));
            }
            let only_a = own(a).into_iter().filter(|n| !b.contains(&n.as_str())).collect();
            let only_b = own(b).into_iter().filter(|n| !a.contains(&n.as_str())).collect();
            return Ok(Pairing { pairs: common, only_in: (only_a, only_b) });
        }
    };
    Ok(Pairing { pairs, only_in: Default::default() })
}

/// A side run: its summary (the variants it ran, in file order) and each
/// variant's output, in the same order.
struct Ran {
    summary: Summary,
    outputs: Vec<RunOutput>,
}

impl Ran {
    fn variant(&self, name: &str) -> (&VariantSummary, &RunOutput) {
        let i = self.summary.variants.iter().position(|(n, _)| n == name).expect("a variant that ran");
        (&self.summary.variants[i].1, &self.outputs[i])
    }
}

/// Runs the variants `names` of `side` with `seed`, in parallel.
fn run_side(label: &str, side: &Loaded, names: &[String], seed: u64) -> Ran {
    let chosen: Vec<&(Variant, Config)> = side.configs.iter().filter(|(v, _)| names.contains(&v.name)).collect();
    let watch = crate::progress::Watch::start(
        &format!("{label}: {}", side.scenario.config.name),
        chosen.iter().map(|(_, c)| c),
    );
    let outputs: Vec<RunOutput> =
        chosen.par_iter().enumerate().map(|(i, (_, config))| watch.run(i, config, seed, 0)).collect();
    watch.finish();
    let variants = chosen
        .iter()
        .zip(&outputs)
        .map(|((variant, config), out)| {
            let mut s = VariantSummary::new(&variant.description, out, &config.expect, &config.alarms);
            s.judge_invariants(&config.invariants);
            s.scenario_hash = config.fingerprint();
            (variant.name.clone(), s)
        })
        .collect();
    let summary = Summary {
        asyncsim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: side.scenario.config.name.clone(),
        concept: side.scenario.config.concept.clone(),
        seed,
        overrides: side.scenario.overrides_json(),
        variants,
    };
    Ran { summary, outputs }
}

/// One figure of a pair, as compare.json holds it.
#[derive(Debug, Serialize)]
pub struct Difference {
    /// Its key in summary.json (`lost`, `latency_ms.p99`, `errors_by_kind.KIND`).
    pub key: String,
    /// A's value.
    pub a: f64,
    /// B's value.
    pub b: f64,
    /// B − A.
    pub difference: f64,
    /// (B − A) / |A|; null when A is 0 and B is not.
    pub relative: Option<f64>,
    /// Whether A and B differ.
    pub differs: bool,
}

/// The figures of one pair of variants, as the table shows them.
pub fn differences(a: &VariantSummary, b: &VariantSummary) -> Vec<(table::Row, Difference)> {
    table::rows(&[a, b])
        .into_iter()
        .map(|row| {
            let (x, y) = (row.values[0], row.values[1]);
            let relative = if x == y {
                Some(0.0)
            } else if x == 0.0 {
                None
            } else {
                Some((y - x) / x.abs())
            };
            let d = Difference { key: row.key.clone(), a: x, b: y, difference: y - x, relative, differs: x != y };
            (row, d)
        })
        .collect()
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", table::number(v))
    } else {
        table::number(v)
    }
}

/// The side-by-side table of one pair: a `*` marks the rows that differ.
pub fn render_pair(diffs: &[(table::Row, Difference)]) -> String {
    let cells: Vec<[String; 4]> = diffs
        .iter()
        .map(|(_, d)| {
            let change = match d.relative {
                Some(0.0) => "0%".to_string(),
                Some(r) => format!("{:+.1}%", r * 100.0),
                None => "n/a".to_string(),
            };
            [table::number(d.a), table::number(d.b), signed(d.difference), change]
        })
        .collect();
    let label_w = diffs.iter().map(|(r, _)| r.label.chars().count()).max().unwrap_or(0);
    let heads = ["A", "B", "B-A", "change"];
    let w: Vec<usize> =
        (0..4).map(|j| cells.iter().map(|c| c[j].len()).chain([heads[j].len()]).max().unwrap_or(0)).collect();
    let mut out = format!("  {:label_w$}", "");
    for (h, w) in heads.iter().zip(&w) {
        let _ = write!(out, "  {h:>w$}");
    }
    out.push('\n');
    for ((row, d), c) in diffs.iter().zip(&cells) {
        let mark = if d.differs { '*' } else { ' ' };
        let _ = write!(out, "{mark} {:label_w$}", row.label);
        for (cell, w) in c.iter().zip(&w) {
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    }
    out
}

/// One side in compare.json.
#[derive(Serialize)]
struct SideJson<'a> {
    /// The side as given on the command line.
    spec: &'a str,
    file: String,
    seed: u64,
    /// Every variant this side ran, as in summary.json.
    summary: &'a Summary,
}

/// One compared pair in compare.json.
#[derive(Serialize)]
struct PairJson {
    a: String,
    b: String,
    differences: Vec<Difference>,
}

/// The whole of compare.json.
#[derive(Serialize)]
struct CompareJson<'a> {
    a: SideJson<'a>,
    b: SideJson<'a>,
    pairs: Vec<PairJson>,
    only_in_a: Vec<String>,
    only_in_b: Vec<String>,
}

/// How a side reads in the heading: its file, variant and seed.
fn describe(label: &str, side: &Loaded, seed: u64, names: &[String]) -> String {
    let which = match &side.spec.variant {
        Some(v) => format!("variant `{v}`"),
        None if names.len() == 1 => format!("variant `{}`", names[0]),
        None => format!("{} variants", names.len()),
    };
    format!("{label}: {} ({}), {which}, seed {seed}", side.spec.file.display(), side.scenario.config.name)
}

/// Makes `--out` ready (its parent too, when compare creates it) and
/// tidies it for the files it will write.
fn prepare_out(args: &CompareArgs, names: &[String]) -> Result<PathBuf> {
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        // A folder compare makes is asyncsim's, so a later `run --out` there works.
        reports::prepare_dir(parent, false)?;
    }
    reports::prepare_dir(&args.out, args.force)?;
    reports::check_writable(&args.out)
        .with_context(|| format!("the output folder {} is not writable", args.out.display()))?;
    let json = reports::out_path(&args.out, "compare.json")?;
    let tidied = reports::tidy_dir(&args.out, &names.iter().map(String::as_str).collect::<Vec<_>>())?;
    for warning in &tidied.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(json)
}

/// The plots the kinds of both sides add, each once: those of the
/// variants `names` of `side`, then the other side's.
fn kind_plots(sides: [(&Loaded, &[String]); 2]) -> Vec<KindPlot> {
    let mut plots: Vec<KindPlot> = Vec::new();
    for (side, names) in sides {
        for (_, config) in side.configs.iter().filter(|(v, _)| names.contains(&v.name)) {
            for p in sim_core::summary::kind_plots(config.topology()) {
                if !plots.iter().any(|q| q.name == p.name) {
                    plots.push(p);
                }
            }
        }
    }
    plots
}

/// The alarms variant `name` of `side` sets (none when it has no such variant).
fn alarms_of<'a>(side: &'a Loaded, name: &str) -> &'a [AlarmSpec] {
    side.configs.iter().find(|(v, _)| v.name == name).map_or(&[][..], |(_, c)| c.alarms.as_slice())
}

/// Writes the plots of every pair, overlaid: one series per side and
/// variant, named `A: VARIANT` and `B: VARIANT`, with each side's alarms.
fn write_plots(dir: &Path, pairing: &Pairing, sides: [(&Loaded, &Ran); 2], kinds: &[KindPlot]) -> Result<()> {
    let [(a, ran_a), (b, ran_b)] = sides;
    let named: Vec<(String, &RunOutput, &[AlarmSpec])> = pairing
        .pairs
        .iter()
        .flat_map(|(x, y)| {
            [
                (format!("A: {x}"), ran_a.variant(x).1, alarms_of(a, x)),
                (format!("B: {y}"), ran_b.variant(y).1, alarms_of(b, y)),
            ]
        })
        .collect();
    let runs: Vec<PlotRun> = named.iter().map(|(name, out, alarms)| PlotRun { name, out, alarms }).collect();
    reports::plots::write_plots(dir, &runs, kinds, true)?;
    Ok(())
}

/// Prints the table of every pair; returns their differences.
fn print_pairs(pairing: &Pairing, ran_a: &Ran, ran_b: &Ran) -> Vec<PairJson> {
    let mut pairs = Vec::new();
    for (x, y) in &pairing.pairs {
        let diffs = differences(ran_a.variant(x).0, ran_b.variant(y).0);
        outln!();
        outln!("{}", if x == y { format!("`{x}`:") } else { format!("A `{x}` vs B `{y}`:") });
        out!("{}", render_pair(&diffs));
        pairs.push(PairJson { a: x.clone(), b: y.clone(), differences: diffs.into_iter().map(|(_, d)| d).collect() });
    }
    let (only_a, only_b) = &pairing.only_in;
    for (label, only) in [("A", only_a), ("B", only_b)].into_iter().filter(|(_, o)| !o.is_empty()) {
        outln!("only in {label}, not compared: {}", only.join(", "));
    }
    outln!("* marks the rows that differ; change is (B-A)/|A|, n/a when A is 0");
    pairs
}

fn side_json<'a>(spec: &'a str, side: &Loaded, ran: &'a Ran) -> SideJson<'a> {
    SideJson { spec, file: side.spec.file.display().to_string(), seed: ran.summary.seed, summary: &ran.summary }
}

/// `asyncsim compare`.
pub fn compare(args: &CompareArgs) -> Result<ExitCode> {
    let a = Loaded::load(parse_spec(&args.a, None)?, &args.set)?;
    let b = Loaded::load(parse_spec(&args.b, Some(&a.spec.file))?, &args.set)?;
    let pairing = pair(&a.names(), a.spec.variant.as_deref(), &b.names(), b.spec.variant.as_deref())
        .map_err(anyhow::Error::msg)?;
    let seed_of = |side: &Loaded| side.spec.seed.or(args.seed).unwrap_or(side.scenario.config.seed);
    let (a_names, b_names): (Vec<String>, Vec<String>) = pairing.pairs.iter().cloned().unzip();
    for (side, names) in [(&a, &a_names), (&b, &b_names)] {
        let chosen: Vec<(Variant, Config)> =
            side.configs.iter().filter(|(v, _)| names.contains(&v.name)).cloned().collect();
        crate::run::report_estimates(&side.spec.file, &chosen);
    }
    let kinds = kind_plots([(&a, &a_names), (&b, &b_names)]);
    let mut names = vec!["compare.json".to_string()];
    if !args.no_plots {
        names.extend(reports::plots::plot_file_names(&kinds, true));
    }
    let json_path = prepare_out(args, &names)?;
    let ran_a = run_side("A", &a, &a_names, seed_of(&a));
    let ran_b = run_side("B", &b, &b_names, seed_of(&b));

    outln!("{}", describe("A", &a, seed_of(&a), &a_names));
    outln!("{}", describe("B", &b, seed_of(&b), &b_names));
    let pairs = print_pairs(&pairing, &ran_a, &ran_b);
    let json = CompareJson {
        a: side_json(&args.a, &a, &ran_a),
        b: side_json(&args.b, &b, &ran_b),
        pairs,
        only_in_a: pairing.only_in.0.clone(),
        only_in_b: pairing.only_in.1.clone(),
    };
    let mut text = serde_json::to_string_pretty(&json).expect("a comparison always serializes");
    text.push('\n');
    reports::write_atomic(&json_path, text.as_bytes())?;
    if !args.no_plots {
        write_plots(&args.out, &pairing, [(&a, &ran_a), (&b, &ran_b)], &kinds)?;
    }
    outln!("wrote {}", args.out.display());
    let stopped = ran_a.outputs.iter().chain(&ran_b.outputs).any(|o| o.stopped.is_some());
    if stopped {
        eprintln!("error: a run stopped at a limit (run.max_events or run.max_memory_mb): its figures are partial; see run.stopped in compare.json");
    }
    Ok(if stopped { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(file: &str, variant: Option<&str>, seed: Option<u64>) -> Spec {
        Spec { file: PathBuf::from(file), variant: variant.map(str::to_string), seed }
    }

    #[test]
    fn sides_read_file_variant_and_seed() {
        assert_eq!(parse_spec("x.toml", None).unwrap(), spec("x.toml", None, None));
        assert_eq!(parse_spec("x.toml:fast", None).unwrap(), spec("x.toml", Some("fast"), None));
        assert_eq!(parse_spec("x.toml@7", None).unwrap(), spec("x.toml", None, Some(7)));
        assert_eq!(parse_spec("d/x.toml:fast@7", None).unwrap(), spec("d/x.toml", Some("fast"), Some(7)));
        let a = Path::new("a.toml");
        assert_eq!(parse_spec(":slow", Some(a)).unwrap(), spec("a.toml", Some("slow"), None));
        assert_eq!(parse_spec("@2", Some(a)).unwrap(), spec("a.toml", None, Some(2)));
        assert_eq!(parse_spec("dir:x/f.toml", None).unwrap(), spec("dir:x/f.toml", None, None));
    }

    #[test]
    fn bad_sides_are_refused_with_a_reason() {
        let err = |t: &str, o: Option<&Path>| parse_spec(t, o).unwrap_err().to_string();
        assert!(err("x.toml@abc", None).contains("not a seed"));
        assert!(err("x.toml@-1", None).contains("not a seed"));
        assert!(err("x.toml@99999999999999999999", None).contains("not a seed"));
        assert!(err("x.toml:", None).contains("empty"));
        assert!(err(":fast", None).contains("no scenario file"));
    }

    #[test]
    fn variants_pair_by_name_or_by_being_alone() {
        let p = pair(&["a", "b", "c"], None, &["c", "b", "d"], None).unwrap();
        assert_eq!(p.pairs, vec![("b".into(), "b".into()), ("c".into(), "c".into())]);
        assert_eq!(p.only_in, (vec!["a".to_string()], vec!["d".to_string()]));
        let p = pair(&["x"], None, &["y"], None).unwrap();
        assert_eq!(p.pairs, vec![("x".into(), "y".into())]);
        assert!(pair(&["x", "z"], None, &["y"], None).unwrap_err().contains("no variant name in common"));
        let p = pair(&["a", "b"], Some("b"), &["b", "c"], None).unwrap();
        assert_eq!(p.pairs, vec![("b".into(), "b".into())]);
        let p = pair(&["a", "b"], Some("a"), &["only"], None).unwrap();
        assert_eq!(p.pairs, vec![("a".into(), "only".into())]);
        assert!(pair(&["a", "b"], Some("a"), &["c", "d"], None).unwrap_err().contains("name one"));
        let p = pair(&["a", "b"], Some("a"), &["c", "d"], Some("d")).unwrap();
        assert_eq!(p.pairs, vec![("a".into(), "d".into())]);
    }

    #[test]
    fn differences_say_how_much_and_whether() {
        let mut a = VariantSummary::default();
        let mut b = VariantSummary::default();
        a.counts.lost = 240;
        b.counts.duplicated = 99;
        a.counts.produced = 100;
        b.counts.produced = 150;
        b.errors_by_kind.insert("ack-timeout".into(), 5);
        let d = differences(&a, &b);
        let get = |k: &str| &d.iter().find(|(r, _)| r.key == k).unwrap_or_else(|| panic!("no {k}")).1;
        assert_eq!((get("lost").difference, get("lost").relative, get("lost").differs), (-240.0, Some(-1.0), true));
        assert_eq!((get("duplicated").difference, get("duplicated").relative), (99.0, None));
        assert_eq!(get("produced").relative, Some(0.5));
        assert_eq!((get("acked").differs, get("acked").relative), (false, Some(0.0)));
        assert_eq!(get("errors_by_kind.ack-timeout").b, 5.0);
        let table = render_pair(&d);
        let row = |label: &str| table.lines().find(|l| l[2..].starts_with(label)).unwrap().to_string();
        assert!(row("lost ").starts_with('*') && row("lost ").ends_with("-100.0%"), "{table}");
        assert!(row("duplicated ").ends_with("n/a"), "{table}");
        assert!(row("produced ").contains("+50") && row("produced ").ends_with("+50.0%"), "{table}");
        assert!(row("acked ").starts_with(' '), "{table}");
    }
}

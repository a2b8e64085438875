//! Fuzzing the scenario reader, the validator and the engine (issue 8).
//!
//! cargo-fuzz needs a nightly toolchain with libFuzzer and the `cargo-fuzz`
//! tool, which this project's CI does not have, so this is a proptest fuzzer
//! with a time budget instead of a case count. Three targets, each of which
//! feeds text to the library entry points the CLI uses (`Scenario::parse`,
//! `set_overrides`, `configs`, `run_config`, `VariantSummary::new`,
//! `reports::summary_json`):
//!
//! - `arbitrary_bytes`: any bytes (as the CLI would refuse non-UTF-8, they
//!   are read lossily), never a panic;
//! - `near_toml_text`: a bundled scenario with text-level damage (deleted
//!   ranges, stray tokens, duplicated lines and keys, deep nesting);
//! - `hostile_scenarios`: a bundled scenario, parsed, with fields set to
//!   hostile values (0, -1, 1e12, 1e-300, NaN, inf, huge integers, long and
//!   odd strings, empty tables), unknown fields, cloned nodes and variants by
//!   the hundred or thousand, faults with reversed or missing windows, odd
//!   expectations. What validates is run with small bounds.
//!
//! Each asserts: no panic; a run never dispatches more than `run.max_events`
//! events; a case takes a bounded time (`ASYNCSIM_FUZZ_CASE_SECS`, 30 s, of
//! the thread's CPU time on Linux, else wall time); what validates also yields a
//! summary that serialises. Aborts (an allocation failure) would kill the
//! test binary, which fails the test too.
//!
//! Budget: `ASYNCSIM_FUZZ_SECS` seconds for the longest target (default 60;
//! the two text targets get 30% of it each, and all three run in parallel).
//! CI's pass is therefore about one minute. For a long local run:
//!
//! ```text
//! ASYNCSIM_FUZZ_SECS=1800 cargo test --release --test integration fuzz:: -- --nocapture
//! ```
//!
//! which prints, per target, the cases run, how many validated and ran, the
//! exits by kind and the slowest case. `PROPTEST_RNG_SEED` fixes the seed
//! (CI sets it); a failure prints the offending scenario text.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use sim_core::scenario::Scenario;
use sim_core::summary::{Summary, VariantSummary};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use toml::{Table, Value};

/// The bound on events every run gets (through `--set`).
const MAX_EVENTS: u64 = 200_000;
/// The bound on memory every run gets, in MiB.
const MAX_MEMORY_MB: u64 = 64;
/// The CLI's cap on a scenario file (`src/input.rs`).
const MAX_SCENARIO_BYTES: usize = 16 * 1024 * 1024;
/// Variants of one case that are run (all are validated).
const RUN_VARIANTS: usize = 2;

/// The longest target's budget.
fn budget() -> Duration {
    let secs = std::env::var("ASYNCSIM_FUZZ_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(60.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// The most time one case may take (CPU time where it can be measured, else
/// wall time): generous, as the machine is shared.
fn case_limit() -> Duration {
    let secs = std::env::var("ASYNCSIM_FUZZ_CASE_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(30.0);
    Duration::from_secs_f64(secs)
}

/// The bundled scenarios' text.
fn bundled() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the scenarios folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).expect("a bundled scenario")).collect()
}

/// How one case ended.
#[derive(Default)]
struct Stats {
    cases: u64,
    /// By kind: `invalid`, `invalid --set`, `ran: ok`, `ran: stopped max_events`, ...
    exits: BTreeMap<String, u64>,
    valid: u64,
    ran_variants: u64,
    slowest: Duration,
    slowest_text: String,
}

impl Stats {
    fn count(&mut self, kind: &str) {
        *self.exits.entry(kind.to_string()).or_default() += 1;
    }

    fn report(&self, target: &str) {
        eprintln!(
            "fuzz {target}: {} cases, {} valid, {} variants run, slowest case {:.2} s (CPU time on Linux); exits: {:?}",
            self.cases,
            self.valid,
            self.ran_variants,
            self.slowest.as_secs_f64(),
            self.exits
        );
        if std::env::var_os("ASYNCSIM_FUZZ_SHOW_SLOWEST").is_some() {
            eprintln!("fuzz {target}: slowest case:\n{}", self.slowest_text);
        }
    }
}

/// Validates `text` and, if valid, runs up to [`RUN_VARIANTS`] variants
/// with small bounds, as `asyncsim run --set run.max_events=... --set
/// run.max_memory_mb=...` would. Returns an error for a broken promise.
fn check(text: &str, stats: &mut Stats) -> Result<(), String> {
    // The CLI reads scenario files up to 16 MiB (src/input.rs); a mutation
    // can write far more (2,000 variants of a 100,000-character string).
    if text.len() > MAX_SCENARIO_BYTES {
        stats.count("refused: over 16 MiB");
        return Ok(());
    }
    let scenario = match Scenario::parse("fuzz.toml", text) {
        Ok(s) => s,
        Err(e) => {
            let shown = e.to_string();
            if shown.trim().is_empty() {
                return Err("an invalid scenario with an empty message".into());
            }
            stats.count("invalid");
            return Ok(());
        }
    };
    let mut scenario = scenario;
    let bounds = [format!("run.max_events={MAX_EVENTS}"), format!("run.max_memory_mb={MAX_MEMORY_MB}")];
    if let Err(e) = scenario.set_overrides(&bounds) {
        // A file can make the bounds themselves unsettable (say, `run = 1`).
        stats.count("invalid with the bounds");
        let _ = e.to_string();
        return Ok(());
    }
    let chosen = match scenario.configs() {
        Ok(c) => c,
        Err(_) => {
            stats.count("invalid variant");
            return Ok(());
        }
    };
    stats.valid += 1;
    let mut variants = BTreeMap::new();
    for (variant, config) in chosen.iter().take(RUN_VARIANTS) {
        let out = sim_core::scenario::run_config(config, scenario.config.seed, 1000);
        if out.events > config.run.max_events {
            return Err(format!("{} events dispatched, over the bound {}", out.events, config.run.max_events));
        }
        stats.ran_variants += 1;
        match out.stopped {
            Some(s) => stats.count(&format!("ran: stopped at {}", s.reason)),
            None if out.drain_complete => stats.count("ran: complete"),
            None => stats.count("ran: drain cut"),
        }
        let summary = VariantSummary::new(&variant.description, &out, &config.expect, &config.alarms);
        variants.insert(variant.name.clone(), summary);
    }
    let summary = Summary {
        asyncsim_version: String::new(),
        scenario: scenario.config.name.clone(),
        concept: scenario.config.concept.clone(),
        seed: scenario.config.seed,
        overrides: scenario.overrides_json(),
        variants: variants.into_iter().collect(),
    };
    let json = reports::summary_json(&summary);
    serde_json::from_str::<serde_json::Value>(&json).map_err(|e| format!("summary.json is not JSON: {e}"))?;
    Ok(())
}

/// Runs [`check`] on `text`, turning a panic or an overlong case into a
/// failure that shows the scenario.
fn check_case(text: &str, stats: &mut Stats) -> Result<(), TestCaseError> {
    let (start, cpu_start) = (Instant::now(), thread_cpu());
    let result = catch_unwind(AssertUnwindSafe(|| check(text, stats)));
    // CPU time where the system tells it: on a loaded machine (CI, or a
    // long run under `nice`) wall time says more about the neighbours.
    let took = match (cpu_start, thread_cpu()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => start.elapsed(),
    };
    stats.cases += 1;
    if took > stats.slowest {
        stats.slowest = took;
        stats.slowest_text = text.chars().take(4000).collect();
    }
    let shown = || {
        let head: Vec<String> = text.lines().take(200).map(|l| l.chars().take(300).collect()).collect();
        format!(
            "\n--- scenario ({} bytes; first 200 lines, each cut at 300 characters) ---\n{}",
            text.len(),
            head.join("\n")
        )
    };
    match result {
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(TestCaseError::fail(format!("panicked: {}{}", msg.unwrap_or_default(), shown())))
        }
        Ok(Err(broken)) => Err(TestCaseError::fail(format!("{broken}{}", shown()))),
        Ok(Ok(())) if took > case_limit() => {
            Err(TestCaseError::fail(format!("one case took {:.1} s{}", took.as_secs_f64(), shown())))
        }
        Ok(Ok(())) => Ok(()),
    }
}

/// The CPU time this thread has used, from `/proc/thread-self/stat`
/// (Linux); `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3:
    // utime and stime are fields 14 and 15, in clock ticks (100 a second
    // on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Draws cases from `strategy` until `budget` is spent, shrinking the first
/// failure.
fn fuzz<S: Strategy>(target: &str, budget: Duration, strategy: S, text_of: impl Fn(&S::Value) -> String) {
    let config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    let stats = RefCell::new(Stats::default());
    let deadline = Instant::now() + budget;
    loop {
        let tree = strategy.new_tree(&mut runner).expect("a case is drawn");
        let result = runner.run_one(tree, |v| check_case(&text_of(&v), &mut stats.borrow_mut()));
        if let Err(e) = result {
            stats.borrow().report(target);
            panic!("fuzz {target}: {e}");
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    stats.borrow().report(target);
}

// ---------------------------------------------------------------- bytes

#[test]
fn arbitrary_bytes_never_panic() {
    let strategy = proptest::collection::vec(any::<u8>(), 0..4096);
    fuzz("arbitrary_bytes", budget().mul_f64(0.3), strategy, |bytes| String::from_utf8_lossy(bytes).into_owned());
}

// ------------------------------------------------------------ near TOML

/// Tokens that damage TOML in interesting ways.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    ".",
    ",",
    "\n",
    "#",
    "\\",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e12",
    "1e-300",
    "1e309",
    "9223372036854775807",
    "18446744073709551616",
    "1_000_000_000",
    "\"\u{0}\"",
    "\"ü/../,=\"",
    "\n[run]\n",
    "\n[network]\n",
    "\n[[faults]]\nkind = \"partition\"\nat_ms = 5\ngroups = [[\"producer\"], [\"broker\"]]\n",
    "\n[[faults]]\nkind = \"crash\"\nnode = \"broker\"\nat_ms = 10\nuntil_ms = 1\n",
    "\n[variants.x]\n",
    "\n[variants.x.set]\n",
    "\n[producers.p2]\ntarget = \"broker\"\n",
    "\nexpect = [\"lost == 0\"]\n",
    "\nduration_ms = 1\n",
    "\nsample_interval_ms = 0.000001\n",
    "\nmax_events = 0\n",
    "\nmessages = 1000000000\n",
    "\nrate_per_s = 1e12\n",
    "\nrate_per_s = 1e-300\n",
    "\nloss_probability = 1\n",
];

/// One text edit.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Nest { at: usize, depth: usize, table: bool },
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Insert { at, token }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        (any::<usize>(), prop_oneof![1usize..100, Just(10_000usize)], any::<bool>())
            .prop_map(|(at, depth, table)| Edit::Nest { at, depth, table }),
    ]
}

/// The byte index at or before `at` (mod the length) on a char boundary.
fn boundary(text: &str, at: usize) -> usize {
    let mut i = if text.is_empty() { 0 } else { at % (text.len() + 1) };
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply_edit(text: &mut String, edit: &Edit) {
    match *edit {
        Edit::Delete { at, len } => {
            let a = boundary(text, at);
            let b = boundary(text, a + len.min(text.len() - a));
            text.replace_range(a..b.max(a), "");
        }
        Edit::Insert { at, token } => {
            let a = boundary(text, at);
            text.insert_str(a, TOKENS[token]);
        }
        Edit::DuplicateLine { line } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                lines.insert(i, lines[i]);
            }
            *text = lines.join("\n");
        }
        Edit::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines.swap(a % n, b % n);
            }
            *text = lines.join("\n");
        }
        Edit::Nest { at, depth, table } => {
            let a = boundary(text, at);
            let (open, close) = if table { ("{a=", "}") } else { ("[", "]") };
            let nested = format!("\nnested = {}1{}\n", open.repeat(depth), close.repeat(depth));
            text.insert_str(a, &nested);
        }
    }
}

#[test]
fn near_toml_text_never_panics() {
    let files = bundled();
    let n = files.len();
    let strategy = (0..n, proptest::collection::vec(edit_strategy(), 1..8));
    fuzz("near_toml_text", budget().mul_f64(0.3), strategy, |(file, edits)| {
        let mut text = files[*file].clone();
        for e in edits {
            apply_edit(&mut text, e);
        }
        text
    });
}

// ------------------------------------------------------ hostile values

/// Values that break assumptions.
fn hostile_value(i: usize) -> Value {
    let long = "x".repeat(100_000);
    let all = [
        Value::Integer(0),
        Value::Integer(-1),
        Value::Integer(1),
        Value::Integer(i64::MAX),
        Value::Integer(i64::MIN),
        Value::Integer(1_000_000_000),
        Value::Integer(4_294_967_296),
        Value::Integer(65_536),
        Value::Float(0.0),
        Value::Float(-0.0),
        Value::Float(1.0),
        Value::Float(-1.0),
        Value::Float(0.5),
        Value::Float(1e12),
        Value::Float(1e-300),
        Value::Float(5e-324),
        Value::Float(1e308),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::Float(1e-6),
        Value::String(String::new()),
        Value::String(long),
        Value::String("a/b".into()),
        Value::String("..".into()),
        Value::String("logs/../../../ESCAPED".into()),
        Value::String("a,b".into()),
        Value::String("=cmd".into()),
        Value::String("\"quoted\"".into()),
        Value::String("ünïcødé".into()),
        Value::String("poisson".into()),
        Value::String("constant".into()),
        Value::String("exponential".into()),
        Value::String("broker".into()),
        Value::String("producer".into()),
        Value::Boolean(true),
        Value::Table(Table::new()),
        Value::Array(Vec::new()),
        Value::Array(vec![Value::String(String::new())]),
        Value::Array(vec![Value::Array(vec![])]),
    ];
    all[i % all.len()].clone()
}

const HOSTILE_VALUES: usize = 40;

/// Hostile numbers, for fields that hold one.
const NUMBERS: &[Value] = &[
    Value::Integer(0),
    Value::Integer(1),
    Value::Integer(2),
    Value::Integer(1_000_000_000),
    Value::Integer(i64::MAX),
    Value::Integer(u32::MAX as i64 + 1),
    Value::Float(0.0),
    Value::Float(1.0),
    Value::Float(1e12),
    Value::Float(1e-300),
    Value::Float(1e-6),
    Value::Float(0.999_999),
    Value::Float(1e18),
    Value::Float(f64::INFINITY),
];

/// Names that break assumptions, with a counter appended.
const NAMES: &[&str] = &["n", "a/b", "..", "a,b", "=x", "\"q", "ü", "a.b", "logs/../../../ESCAPED", "", "-x", " "];

/// A path to a value inside the scenario table.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every value's path (tables and arrays included), depth first.
fn paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Table(t) => {
            for (k, child) in t {
                here.push(Seg::Key(k.clone()));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Seg::Index(i));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut v = v;
    for seg in path {
        v = match (seg, v) {
            (Seg::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// One structural mutation.
#[derive(Debug, Clone)]
enum Mutation {
    /// Sets the `pick`-th value to a hostile one.
    Set { pick: usize, value: usize },
    /// Sets the `pick`-th number to a hostile number, so the file more
    /// often stays valid and runs.
    SetNumber { pick: usize, value: usize },
    /// Removes the `pick`-th value.
    Remove { pick: usize },
    /// Adds an unknown field to the `pick`-th table (or the top level).
    Unknown { pick: usize, value: usize },
    /// Clones a node of the `pick`-th section `count` times.
    CloneNodes { pick: usize, count: usize, name: usize },
    /// Adds `count` variants, each setting a field to a hostile value.
    Variants { count: usize, name: usize, pick: usize, value: usize },
    /// Adds a fault of the `kind`-th kind with hostile fields.
    Fault { kind: usize, at: usize, until: Option<usize>, node: usize, extra: usize },
    /// Adds an expectation.
    Expect { which: usize },
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    let count = prop_oneof![4 => 1usize..4, 2 => 4usize..50, 1 => Just(300usize), 1 => Just(2_000usize)];
    let node_count = prop_oneof![4 => 1usize..4, 2 => 4usize..50, 1 => Just(300usize)];
    let v = 0..HOSTILE_VALUES;
    prop_oneof![
        6 => (any::<usize>(), v.clone()).prop_map(|(pick, value)| Mutation::Set { pick, value }),
        8 => (any::<usize>(), 0..NUMBERS.len()).prop_map(|(pick, value)| Mutation::SetNumber { pick, value }),
        1 => any::<usize>().prop_map(|pick| Mutation::Remove { pick }),
        1 => (any::<usize>(), v.clone()).prop_map(|(pick, value)| Mutation::Unknown { pick, value }),
        1 => (any::<usize>(), node_count, 0..NAMES.len())
            .prop_map(|(pick, count, name)| Mutation::CloneNodes { pick, count, name }),
        1 => (count, 0..NAMES.len(), any::<usize>(), v.clone())
            .prop_map(|(count, name, pick, value)| Mutation::Variants { count, name, pick, value }),
        2 => (0usize..10, v.clone(), proptest::option::of(v.clone()), any::<usize>(), v)
            .prop_map(|(kind, at, until, node, extra)| Mutation::Fault { kind, at, until, node, extra }),
        1 => (0..EXPECTATIONS.len()).prop_map(|which| Mutation::Expect { which }),
    ]
}

const EXPECTATIONS: &[&str] = &[
    "lost == 0",
    "errors_by_kind.rejeted == 0",
    "metrics.nope == 0",
    "latency_ms.p99 <= 1e308",
    "processed within 0% of nan",
    "",
    "==",
    "processed > -1",
    "latency_ms.mean within 1e308% of 1",
];

/// The node sections of a scenario: top-level tables of tables.
fn sections(doc: &Table) -> Vec<String> {
    doc.iter()
        .filter(|(k, v)| {
            !["run", "network", "variants"].contains(&k.as_str())
                && v.as_table().is_some_and(|t| !t.is_empty() && t.values().all(|x| x.is_table()))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

fn node_names(doc: &Table) -> Vec<String> {
    sections(doc).iter().flat_map(|s| doc[s].as_table().into_iter().flat_map(|t| t.keys().cloned())).collect()
}

fn fault(doc: &Table, kind: usize, at: usize, until: Option<usize>, node: usize, extra: usize) -> Value {
    let kinds = [
        "partition",
        "one-way-partition",
        "crash",
        "slow",
        "loss-spike",
        "replica-crash",
        "leader-crash",
        "duplicate-spike",
        "reorder",
        "x",
    ];
    let names = node_names(doc);
    let name = |i: usize| Value::String(names.get(i % names.len().max(1)).cloned().unwrap_or_default());
    let mut t = Table::new();
    t.insert("kind".into(), Value::String(kinds[kind % kinds.len()].into()));
    t.insert("at_ms".into(), hostile_value(at));
    if let Some(u) = until {
        t.insert("until_ms".into(), hostile_value(u));
    }
    let list = |a: usize, b: usize| Value::Array(vec![name(a), name(b)]);
    match kind {
        0 => {
            t.insert("groups".into(), Value::Array(vec![list(node, node + 1), list(node + 2, node)]));
        }
        1 => {
            t.insert("from".into(), list(node, node + 1));
            t.insert("to".into(), list(node + 2, node + 3));
        }
        2 => {
            t.insert("node".into(), name(node));
        }
        3 => {
            t.insert("node".into(), name(node));
            t.insert("factor".into(), hostile_value(extra));
        }
        4 | 7 | 8 => {
            t.insert("probability".into(), hostile_value(extra));
            t.insert("nodes".into(), list(node, node + 1));
        }
        5 => {
            t.insert("broker".into(), name(node));
            t.insert("replica".into(), hostile_value(extra));
        }
        6 => {
            t.insert("broker".into(), name(node));
            t.insert("topic".into(), hostile_value(extra));
        }
        _ => {}
    }
    Value::Table(t)
}

fn mutate(doc: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let pick = |i: usize| all.get(i % all.len().max(1)).cloned().unwrap_or_default();
    match m {
        Mutation::Set { pick: p, value } => {
            if let Some(v) = at_mut(doc, &pick(*p)) {
                *v = hostile_value(*value);
            }
        }
        Mutation::SetNumber { pick: p, value } => {
            let numbers: Vec<&Vec<Seg>> = all
                .iter()
                .filter(|path| matches!(at_mut(doc, path), Some(Value::Integer(_) | Value::Float(_))))
                .collect();
            if let Some(path) = numbers.get(p % numbers.len().max(1)).map(|p| (*p).clone()) {
                if let Some(v) = at_mut(doc, &path) {
                    *v = NUMBERS[*value].clone();
                }
            }
        }
        Mutation::Remove { pick: p } => {
            let path = pick(*p);
            if let Some((last, parent)) = path.split_last() {
                match (last, at_mut(doc, parent)) {
                    (Seg::Key(k), Some(Value::Table(t))) => {
                        t.remove(k);
                    }
                    (Seg::Index(i), Some(Value::Array(a))) => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Unknown { pick: p, value } => {
            let path = pick(*p);
            let target = match at_mut(doc, &path) {
                Some(Value::Table(_)) => path,
                _ => Vec::new(),
            };
            if let Some(Value::Table(t)) = at_mut(doc, &target) {
                t.insert("unknwon_field".into(), hostile_value(*value));
            }
        }
        Mutation::CloneNodes { pick: p, count, name } => clone_nodes(doc, *p, *count, NAMES[*name]),
        Mutation::Variants { count, name, pick: p, value } => {
            let field: Vec<String> = pick(*p)
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(i) => i.to_string(),
                })
                .collect();
            add_variants(doc, *count, NAMES[*name], &field.join("."), hostile_value(*value));
        }
        Mutation::Fault { kind, at, until, node, extra } => {
            let Value::Table(t) = doc else { return };
            let f = fault(t, *kind, *at, *until, *node, *extra);
            match t.entry("faults").or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(a) => a.push(f),
                other => *other = Value::Array(vec![f]),
            }
        }
        Mutation::Expect { which } => {
            let Value::Table(t) = doc else { return };
            let e = Value::String(EXPECTATIONS[*which].into());
            match t.entry("expect").or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(a) => a.push(e),
                other => *other = Value::Array(vec![e]),
            }
        }
    }
}

fn clone_nodes(doc: &mut Value, pick: usize, count: usize, name: &str) {
    let Value::Table(t) = doc else { return };
    let secs = sections(t);
    if secs.is_empty() {
        return;
    }
    let Some(Value::Table(section)) = t.get_mut(&secs[pick % secs.len()]) else { return };
    let Some((_, first)) = section.iter().next().map(|(k, v)| (k.clone(), v.clone())) else { return };
    for i in 0..count {
        section.insert(format!("{name}{i}"), first.clone());
    }
}

fn add_variants(doc: &mut Value, count: usize, name: &str, field: &str, value: Value) {
    let Value::Table(t) = doc else { return };
    let Value::Table(variants) = t.entry("variants").or_insert_with(|| Value::Table(Table::new())) else { return };
    for i in 0..count {
        let mut set = Table::new();
        if !field.is_empty() {
            set.insert(field.to_string(), value.clone());
        }
        let mut v = Table::new();
        v.insert("description".into(), Value::String(format!("variant {i}")));
        v.insert("set".into(), Value::Table(set));
        variants.insert(format!("{name}{i}"), Value::Table(v));
    }
}

#[test]
fn hostile_scenarios_validate_and_run_within_their_bounds() {
    let docs: Vec<Value> = bundled().iter().map(|t| Value::Table(t.parse::<Table>().expect("bundled TOML"))).collect();
    let n = docs.len();
    let strategy = (0..n, proptest::collection::vec(mutation_strategy(), 1..4));
    fuzz("hostile_scenarios", budget(), strategy, |(file, mutations)| {
        let mut doc = docs[*file].clone();
        for m in mutations {
            mutate(&mut doc, m);
        }
        toml::to_string(&doc).unwrap_or_else(|e| format!("# not serialisable: {e}\n"))
    });
}

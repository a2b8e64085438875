//! Scenario files: reading them, applying variants and `--set` overrides,
//! validating, and building a runnable engine.
//!
//! A scenario file is TOML. Its top level is the base configuration
//! ([`Config`]); its `[variants.NAME]` tables each hold a `description`,
//! extra `expect` lines, and a `set` table whose keys (dotted paths) override
//! the base. Command-line `--set path=value` overrides apply on top of every
//! variant. Every error names the file, the line and the field.
//!
//! The node tables (`[producers.NAME]`, ...) are read, checked and built by
//! their kinds, which a [`Registry`] lists: [`Scenario::parse`] uses the
//! built-in kinds, [`Scenario::parse_with`] a registry of your own.

mod build;
pub mod estimate;
mod read;
mod schema;
mod validate;

pub use build::{build_engine, run_config};
pub use schema::{Config, FaultSpec, LinkSpec, NetworkSpec, RunSpec};

use crate::expect::Scope;
use crate::kind::Invalid;
use crate::registry::Registry;
use std::fmt;
use std::ops::Range;
use toml::{Table, Value};

/// Why a scenario could not be used. Displayed as
/// `FILE:LINE: field `PATH`: MESSAGE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    /// The file (as the user named it), or `--set` for command-line overrides.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field's dotted path, when known.
    pub field: Option<String>,
    /// The variant being built, when the error is specific to one.
    pub variant: Option<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(v) = &self.variant {
            write!(f, " (in variant `{v}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// One variant as the file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its name (`default` when the file has no variants).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Expectations checked on this variant only.
    pub expect: Vec<String>,
    /// Invariants it claims besides the scenario's (see [`crate::check`]).
    pub invariants: Vec<String>,
    /// Overrides of the base, in file order.
    pub set: Vec<Override>,
}

/// One override in a variant's `set`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The field it sets, as a path into the configuration.
    pub path: Vec<String>,
    /// The keys as the file writes them under `set` (a quoted dotted key
    /// is one key here), to find its line.
    pub keys: Vec<String>,
    /// The new value.
    pub value: Value,
}

/// A loaded, validated scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    file: String,
    source: String,
    base: Table,
    variants: Vec<Variant>,
    /// Whether the file declares variants (else there is one, `default`).
    declared: bool,
    overrides: Vec<(String, Value)>,
    /// The kinds its node tables are read with.
    registry: Registry,
    /// The base configuration (no variant, no override).
    pub config: Config,
}

/// Splits a dotted path, leaving quoted segments whole: `a."b.c".d`.
fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in path.chars() {
        match ch {
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

/// Flattens a variant's `set` into (path, value) pairs. The document's
/// structure decides what merges and what replaces: tables written as
/// headers or dotted keys (`brokers.b.capacity = 10`) are walked into, so
/// they change single fields; an inline table (`processing = { dist =
/// "uniform", ... }`) or a list is one value that replaces the old one
/// whole, just as with `--set`. A top-level key of `set` that contains dots
/// (`"brokers.b.capacity" = 10`) is a path; deeper keys are taken literally,
/// so `producers."web.eu".messages` keeps the name `web.eu`.
fn flatten_set(item: &toml_edit::Item, values: &Table, out: &mut Vec<Override>) {
    fn leaf(values: &Table, real: &[String]) -> Option<Value> {
        let (first, rest) = real.split_first()?;
        let mut v = values.get(first)?;
        for k in rest {
            v = v.as_table()?.get(k)?;
        }
        Some(v.clone())
    }
    fn walk(
        table: &toml_edit::Table,
        values: &Table,
        real: &mut Vec<String>,
        path: &mut Vec<String>,
        out: &mut Vec<Override>,
    ) {
        for (k, child) in table.iter() {
            let added = if real.is_empty() { split_path(k) } else { vec![k.to_string()] };
            let n = added.len();
            real.push(k.to_string());
            path.extend(added);
            match child {
                toml_edit::Item::Table(t) => walk(t, values, real, path, out),
                _ => {
                    if let Some(value) = leaf(values, real) {
                        out.push(Override { path: path.clone(), keys: real.clone(), value });
                    }
                }
            }
            real.pop();
            path.truncate(path.len() - n);
        }
    }
    match item {
        toml_edit::Item::Table(t) => walk(t, values, &mut Vec::new(), &mut Vec::new(), out),
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
            // `set = { "a.b" = 1, c = { ... } }`: every entry is a leaf.
            for (k, _) in t.iter() {
                if let Some(v) = values.get(k) {
                    out.push(Override { path: split_path(k), keys: vec![k.to_string()], value: v.clone() });
                }
            }
        }
        _ => {}
    }
}

/// Sets `path` in `table` to `value`, creating tables on the way. A numeric
/// segment indexes into an array.
fn set_path(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let mut root = Value::Table(std::mem::take(table));
    let result = set_in(&mut root, path, value);
    if let Value::Table(t) = root {
        *table = t;
    }
    result
}

fn set_in(v: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let (seg, rest) = path.split_first().ok_or("an empty path")?;
    match v {
        Value::Table(t) => {
            if rest.is_empty() {
                t.insert(seg.clone(), value);
                return Ok(());
            }
            if !t.contains_key(seg) && rest[0].parse::<usize>().is_ok() {
                return Err(format!("`{seg}` has no item {}: the list is empty or absent", rest[0]));
            }
            let child = t.entry(seg.clone()).or_insert_with(|| Value::Table(Table::new()));
            set_in(child, rest, value)
        }
        Value::Array(a) => {
            let n = a.len();
            let i = seg
                .parse::<usize>()
                .ok()
                .filter(|&i| i < n)
                .ok_or_else(|| format!("`{seg}` is not an index of this list (it has {n} items)"))?;
            if rest.is_empty() {
                a[i] = value;
                Ok(())
            } else {
                set_in(&mut a[i], rest, value)
            }
        }
        _ => Err(format!("cannot set `{seg}` inside a value that is not a table")),
    }
}

/// Parses the value of a `--set key=value`: TOML if it parses (`10`,
/// `0.5`, `true`, `"x"`, `[1, 2]`, `{ dist = "constant", ms = 1 }`), else
/// the raw text as a string.
pub fn parse_value(raw: &str) -> Value {
    match toml::from_str::<Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or(Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where `path` is written in the document: the span of the deepest key
/// along it that exists (so a misspelt field points at its table).
fn span_of(doc: &toml_edit::ImDocument<&str>, path: &[String]) -> Option<Range<usize>> {
    span_in_table(doc.as_table(), path)
}

fn span_in_item(item: &toml_edit::Item, path: &[String]) -> Option<Range<usize>> {
    use toml_edit::Item;
    let Some((seg, rest)) = path.split_first() else {
        return item.span();
    };
    match item {
        Item::Table(t) => span_in_table(t, path),
        Item::ArrayOfTables(a) => {
            let t = seg.parse::<usize>().ok().and_then(|i| a.get(i))?;
            let here = t.span().or_else(|| t.iter().next().and_then(|(k, _)| t.key(k)).and_then(|k| k.span()));
            span_in_table(t, rest).or(here)
        }
        Item::Value(v) => span_in_value(v, path),
        Item::None => None,
    }
}

fn span_in_table(t: &toml_edit::Table, path: &[String]) -> Option<Range<usize>> {
    let Some((seg, rest)) = path.split_first() else {
        return t.span();
    };
    let child = t.get(seg)?;
    let here = t.key(seg).and_then(|k| k.span()).or_else(|| child.span());
    if rest.is_empty() {
        return here;
    }
    span_in_item(child, rest).or(here)
}

fn span_in_value(v: &toml_edit::Value, path: &[String]) -> Option<Range<usize>> {
    use toml_edit::Value as V;
    let Some((seg, rest)) = path.split_first() else {
        return v.span();
    };
    match v {
        V::InlineTable(t) => {
            let child = t.get(seg)?;
            let here = t.key(seg).and_then(|k| k.span()).or_else(|| child.span());
            if rest.is_empty() {
                return here;
            }
            span_in_value(child, rest).or(here)
        }
        V::Array(a) => {
            let child = a.get(seg.parse::<usize>().ok()?)?;
            if rest.is_empty() {
                return child.span();
            }
            span_in_value(child, rest).or_else(|| child.span())
        }
        _ => None,
    }
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl Scenario {
    /// Reads and validates the scenario in `text`, with the built-in kinds;
    /// `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_with(file, text, Registry::builtin())
    }

    /// Reads and validates the scenario in `text`, its nodes being of the
    /// kinds of `registry`; `file` names it in errors.
    pub fn parse_with(file: &str, text: &str, registry: Registry) -> Result<Scenario, ScenarioError> {
        let err = |line: Option<usize>, field: Option<String>, message: String| ScenarioError {
            file: file.to_string(),
            line,
            field,
            variant: None,
            message,
        };
        let mut base: Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            err(line, None, format!("invalid TOML: {}", e.message().trim()))
        })?;
        let doc = toml_edit::ImDocument::parse(text).map_err(|e| err(None, None, e.to_string()))?;
        let line_at = |path: &[String]| span_of(&doc, path).map(|s| line_of(text, s.start));
        let mut variants = Vec::new();
        match base.remove("variants") {
            None => {}
            Some(Value::Table(vs)) => {
                for (name, v) in vs {
                    let item = doc.get("variants").and_then(|v| v.get(&name)).and_then(|v| v.get("set"));
                    let variant = read_variant(name, v, item)
                        .map_err(|(path, message)| err(line_at(&path), Some(path.join(".")), message))?;
                    variants.push(variant);
                }
            }
            Some(_) => {
                let line = line_at(&["variants".to_string()]);
                return Err(err(line, Some("variants".into()), "expected tables `[variants.NAME]`".into()));
            }
        }
        // The document with spans is large (several times the text): gone
        // before the tables are read (a later error re-parses for its line).
        drop(doc);
        let declared = !variants.is_empty();
        if variants.is_empty() {
            variants.push(Variant {
                name: "default".into(),
                description: String::new(),
                expect: Vec::new(),
                invariants: Vec::new(),
                set: Vec::new(),
            });
        }
        let mut scenario = Scenario {
            file: file.to_string(),
            source: text.to_string(),
            base: base.clone(),
            variants,
            declared,
            overrides: Vec::new(),
            registry,
            config: placeholder_config(),
        };
        scenario.config = scenario.resolve(base, None)?;
        // The static-size check waits for the overrides (a budget from the
        // command line): `configs` makes it.
        scenario.resolve_variants(false)?;
        Ok(scenario)
    }

    /// Keeps only the variants named (in file order), so that overrides
    /// applied next are validated against the variants that will run, not
    /// against ones `--variant` left out. Names no variant has are the
    /// caller's to report (see [`Scenario::variants`]); they are ignored here.
    pub fn keep_variants(&mut self, names: &[String]) {
        if !names.is_empty() {
            self.variants.retain(|v| names.contains(&v.name));
        }
    }

    /// Applies command-line overrides (`path=value` each) to every variant,
    /// and validates the result.
    pub fn set_overrides(&mut self, sets: &[String]) -> Result<(), ScenarioError> {
        for s in sets {
            let Some((k, v)) = s.split_once('=') else {
                return Err(ScenarioError {
                    file: "--set".into(),
                    line: None,
                    field: None,
                    variant: None,
                    message: format!("`{s}` is not of the form path=value"),
                });
            };
            self.overrides.push((k.trim().to_string(), parse_value(v.trim())));
        }
        let mut base = self.base.clone();
        self.apply_overrides(&mut base)?;
        match self.resolve(base, None) {
            Ok(config) => self.config = config,
            // With variants declared the base alone never runs: an override
            // that only the variants make valid (a field of a cache that a
            // variant adds) is checked against them, and the first one
            // stands for the scenario's own settings.
            Err(_) if self.declared => {
                let (_, first) = self.configs()?.into_iter().next().expect("a declared variant");
                self.config = first;
            }
            Err(e) => return Err(e),
        }
        self.configs()?;
        Ok(())
    }

    fn apply_overrides(&self, table: &mut Table) -> Result<(), ScenarioError> {
        for (k, v) in &self.overrides {
            set_path(table, &split_path(k), v.clone()).map_err(|message| ScenarioError {
                file: "--set".into(),
                line: None,
                field: Some(k.clone()),
                variant: None,
                message,
            })?;
        }
        Ok(())
    }

    /// The file name given when loading.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The variants, in file order.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// The command-line overrides, as given.
    pub fn overrides(&self) -> &[(String, Value)] {
        &self.overrides
    }

    /// Every variant's resolved, validated configuration, in file order.
    pub fn configs(&self) -> Result<Vec<(Variant, Config)>, ScenarioError> {
        self.resolve_variants(true)
    }

    /// The merged table of variant `name`, as its configuration is read:
    /// the base with the variant's `set` and the command-line overrides
    /// applied (no `variants`). `None` when there is no such variant. For
    /// writing a resolved scenario file (`asyncsim check` writes its
    /// minimal case with it).
    pub fn resolved_table(&self, name: &str) -> Option<Table> {
        let v = self.variants.iter().find(|v| v.name == name)?;
        let mut table = self.base.clone();
        for o in &v.set {
            set_path(&mut table, &o.path, o.value.clone()).ok()?;
        }
        self.apply_overrides(&mut table).ok()?;
        Some(table)
    }

    /// [`Scenario::configs`], with or without the pre-flight refusal of
    /// static sizes over the memory budget.
    fn resolve_variants(&self, check_static: bool) -> Result<Vec<(Variant, Config)>, ScenarioError> {
        let mut out = Vec::with_capacity(self.variants.len());
        for v in &self.variants {
            let mut table = self.base.clone();
            for o in &v.set {
                set_path(&mut table, &o.path, o.value.clone()).map_err(|message| ScenarioError {
                    file: self.file.clone(),
                    line: self.line(&self.variant_path(v, &o.keys)),
                    field: Some(o.path.join(".")),
                    variant: self.declared.then(|| v.name.clone()),
                    message,
                })?;
            }
            self.apply_overrides(&mut table)?;
            let mut fingerprint = Fnv::default();
            fingerprint.table(&table);
            v.expect.iter().for_each(|e| fingerprint.bytes(b's', e.as_bytes()));
            v.invariants.iter().for_each(|e| fingerprint.bytes(b'i', e.as_bytes()));
            let mut config = self.resolve(table, Some(v))?;
            config.fingerprint = fingerprint.0;
            // After every override, so that a budget from the command line counts.
            if check_static {
                estimate::check_static(&config).map_err(|e| self.locate(e.path, e.message, Some(v)))?;
            }
            let scope = expectation_scope(&config);
            // The base's expectations are the base's fault; the variant's are the variant's.
            let variant_path = vec!["variants".to_string(), v.name.clone(), "expect".to_string()];
            let keys = crate::summary::expectation_keys();
            for (exprs, path, variant) in [
                (&config.expect, vec!["expect".to_string()], None),
                (&v.expect, variant_path, self.declared.then(|| v.name.clone())),
            ] {
                if let Err((index, message)) = crate::expect::check_all_in(exprs, &keys, &scope) {
                    let mut at = path.clone();
                    at.push(index.to_string());
                    return Err(ScenarioError {
                        file: self.file.clone(),
                        line: self.line(&at),
                        field: Some(path.join(".")),
                        variant,
                        message,
                    });
                }
            }
            config.expect.extend(v.expect.iter().cloned());
            for name in &v.invariants {
                if !config.invariants.contains(name) {
                    config.invariants.push(name.clone());
                }
            }
            out.push((v.clone(), config));
        }
        Ok(out)
    }

    fn variant_path(&self, v: &Variant, path: &[String]) -> Vec<String> {
        let mut p = vec!["variants".to_string(), v.name.clone(), "set".to_string()];
        p.extend(path.iter().cloned());
        p
    }

    fn line(&self, path: &[String]) -> Option<usize> {
        let doc = toml_edit::ImDocument::parse(self.source.as_str()).ok()?;
        span_of(&doc, path).map(|s| line_of(&self.source, s.start))
    }

    /// Reads and validates one merged table, turning any error into one
    /// that names where the offending field was written.
    fn resolve(&self, table: Table, variant: Option<&Variant>) -> Result<Config, ScenarioError> {
        let config = read::read(&self.registry, table).and_then(|c| validate::validate(&c).map(|()| c));
        config.map_err(|Invalid { path, message }| self.locate(path, message, variant))
    }

    /// The kinds its node tables are read with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn locate(&self, path: Vec<String>, message: String, variant: Option<&Variant>) -> ScenarioError {
        let field = (!path.is_empty()).then(|| path.join("."));
        let related = |p: &[String]| is_prefix(p, &path) || is_prefix(&path, p);
        if let Some((k, _)) = self.overrides.iter().find(|(k, _)| related(&split_path(k))) {
            let variant = variant.filter(|_| self.declared).map(|v| v.name.clone());
            return ScenarioError { file: "--set".into(), line: None, field: Some(k.clone()), variant, message };
        }
        // Where the file writes it: in the variant's override if one touches
        // the field (plus whatever part of the path lies inside the override's
        // value), else in the base.
        let line = variant
            .and_then(|v| v.set.iter().find(|o| related(&o.path)).map(|o| (v, o)))
            .map(|(v, o)| {
                let mut keys = o.keys.clone();
                keys.extend(path.iter().skip(o.path.len()).cloned());
                self.line(&self.variant_path(v, &keys))
            })
            .unwrap_or_else(|| self.line(&path));
        ScenarioError {
            file: self.file.clone(),
            line,
            field,
            variant: variant.filter(|_| self.declared).map(|v| v.name.clone()),
            message,
        }
    }

    /// The command-line overrides as JSON, for the summary.
    pub fn overrides_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.overrides
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null)))
            .collect()
    }
}

/// A 64-bit FNV-1a hash of a TOML tree: every key and value with its type,
/// keys sorted, so that neither layout, comments nor key order count.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, tag: u8, bytes: &[u8]) {
        for b in std::iter::once(tag).chain((bytes.len() as u64).to_le_bytes()).chain(bytes.iter().copied()) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn table(&mut self, t: &Table) {
        let mut keys: Vec<&String> = t.keys().collect();
        keys.sort();
        self.bytes(b't', &(keys.len() as u64).to_le_bytes());
        for k in keys {
            self.bytes(b'k', k.as_bytes());
            self.value(&t[k]);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.bytes(b's', s.as_bytes()),
            Value::Integer(i) => self.bytes(b'i', &i.to_le_bytes()),
            Value::Float(f) => self.bytes(b'f', &f.to_bits().to_le_bytes()),
            Value::Boolean(b) => self.bytes(b'b', &[u8::from(*b)]),
            Value::Datetime(d) => self.bytes(b'd', d.to_string().as_bytes()),
            Value::Array(a) => {
                self.bytes(b'a', &(a.len() as u64).to_le_bytes());
                a.iter().for_each(|x| self.value(x));
            }
            Value::Table(t) => self.table(t),
        }
    }
}

/// What an expectation (or a sweep's metric) on `config`'s summary may
/// name: its effect domains, the metrics and error kinds its kinds
/// declare, its alarms, and whether it reports a steady state.
pub fn expectation_scope(config: &Config) -> Scope {
    let mut domains = config.effect_domains();
    if domains.is_empty() {
        domains.push("default".to_string());
    }
    let (metrics, errors) = crate::summary::reportable(config.topology());
    let alarms = Some(config.alarms.iter().map(|a| a.name()).collect());
    let steady_state = config.run.steady_state.is_some();
    Scope { domains: Some(domains), metrics: Some(metrics), errors: Some(errors), alarms, steady_state }
}

/// An empty configuration, replaced as soon as the base is read.
fn placeholder_config() -> Config {
    Config {
        name: String::new(),
        concept: String::new(),
        description: None,
        seed: 1,
        run: RunSpec::default(),
        network: NetworkSpec::default(),
        faults: Vec::new(),
        expect: Vec::new(),
        invariants: Vec::new(),
        alarms: Vec::new(),
        nodes: Default::default(),
        fingerprint: 0,
    }
}

/// Reads one `[variants.NAME]` table; `set_item` is its `set` as the
/// document writes it (to tell merges from replacements). A refusal names
/// the path of the offending key.
fn read_variant(name: String, v: Value, set_item: Option<&toml_edit::Item>) -> Result<Variant, (Vec<String>, String)> {
    let path = |k: &str| vec!["variants".to_string(), name.clone(), k.to_string()];
    // The name becomes part of file names (`trace-NAME.csv`) and of paths.
    crate::names::check("a variant name", &name).map_err(|m| (vec!["variants".to_string(), name.clone()], m))?;
    let Value::Table(mut v) = v else {
        let message = "expected a table with `description`, `expect`, `invariants` and `set`".to_string();
        return Err((vec!["variants".to_string(), name.clone()], message));
    };
    let description = match v.remove("description") {
        None => String::new(),
        Some(Value::String(s)) => s,
        Some(_) => return Err((path("description"), "expected a string".into())),
    };
    let expect = match v.remove("expect") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_str) => {
            a.into_iter().filter_map(|x| x.as_str().map(str::to_string)).collect()
        }
        Some(_) => return Err((path("expect"), "expected a list of strings such as [\"lost == 0\"]".into())),
    };
    let invariants = match v.remove("invariants") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_str) => {
            a.into_iter().filter_map(|x| x.as_str().map(str::to_string)).collect()
        }
        Some(_) => return Err((path("invariants"), "expected a list of names such as [\"no-loss\"]".into())),
    };
    if let Err((i, message)) = crate::check::check_names(&invariants) {
        let mut at = path("invariants");
        at.push(i.to_string());
        return Err((at, message));
    }
    let mut set = Vec::new();
    match v.remove("set") {
        None => {}
        Some(Value::Table(t)) => {
            if let Some(item) = set_item {
                flatten_set(item, &t, &mut set);
            }
        }
        Some(_) => return Err((path("set"), "expected a table of overrides".into())),
    }
    if let Some((k, _)) = v.iter().next() {
        return Err((
            path(k),
            format!("unknown key `{k}`, expected one of `description`, `expect`, `invariants`, `set`"),
        ));
    }
    Ok(Variant { name, description, expect, invariants, set })
}

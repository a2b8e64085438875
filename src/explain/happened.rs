//! The per-variant sections of `asyncsim explain` (what the variant does
//! differently, what happened, why) and the contrast between variants.
//! Every figure printed is read from the variant's summary, by the path
//! `summary.json` gives it, and printed under that path, so a reader can
//! find it in the file (and a test can check it there).

use super::words::{self, Words};
use super::{Ctx, Explained};
use serde_json::Value;
use std::collections::BTreeMap;

/// The figures shown whenever they are not zero, with what they count.
const FIGURES: &[(&str, &str)] = &[
    ("produced", "messages produced"),
    ("acked", "acknowledged to their producer by a broker"),
    ("delivered", "reached a consumer at least once (per effect domain)"),
    ("processed", "effect applied at least once (per effect domain)"),
    ("lost", "considered sent, never applied, held nowhere at the end"),
    ("acked_lost", "of those, acknowledged writes a node then forgot"),
    ("duplicated", "extra applications of an effect"),
    ("reordered", "first applications out of production order within a key"),
    ("inconsistent", "applied in some effect domains but not all"),
    ("in_flight", "not applied, still held somewhere at the end"),
    ("send_failed", "not applied, and the producer knew its send failed"),
    ("errors", "errors of every kind"),
    ("dead_lettered", "put into a dead-letter queue"),
];

/// The value at dotted `path` of a summary (`domains.x.lost`,
/// `latency_ms.p99`, `errors_by_kind.timeout`).
pub fn at<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = json;
    let mut rest = path;
    while !rest.is_empty() {
        // A key may hold dots (a domain named `a.b`): try the longest first.
        let obj = v.as_object()?;
        let (key, tail) = (1..=rest.len())
            .rev()
            .filter(|&i| i == rest.len() || rest.as_bytes()[i] == b'.')
            .find_map(|i| obj.get(&rest[..i]).map(|x| (x, rest.get(i + 1..).unwrap_or(""))))?;
        v = key;
        rest = tail;
    }
    Some(v)
}

/// A number as the summary holds it: integers as integers, others in the
/// shortest form that reads back as the same `f64`.
pub fn num(v: &Value) -> String {
    match (v.as_u64(), v.as_i64(), v.as_f64()) {
        (Some(n), _, _) => n.to_string(),
        (None, Some(n), _) => n.to_string(),
        (None, None, Some(x)) => format!("{x}"),
        _ => v.to_string(),
    }
}

fn count(json: &Value, path: &str) -> u64 {
    at(json, path).and_then(Value::as_u64).unwrap_or(0)
}

/// The paths the variant's expectations name (the first word of each).
fn expected_paths(e: &Explained) -> Vec<String> {
    e.summary.expectations.iter().filter_map(|o| o.expect.split_whitespace().next().map(str::to_string)).collect()
}

/// One figure line: `  path   value   what it counts`.
fn figure(path: &str, value: &Value, gloss: &str) -> String {
    let unit = if path.contains("_ms.") { " ms" } else { "" };
    let gloss = if gloss.is_empty() { String::new() } else { format!("   {gloss}") };
    format!("    {path:<28} {:>14}{unit}{gloss}\n", num(value))
}

/// "What happened": the figures that matter for this run.
fn figures(e: &Explained) -> String {
    let expected = expected_paths(e);
    let mut s = String::from("  What happened\n");
    let mut shown: Vec<String> = Vec::new();
    for (path, gloss) in FIGURES {
        let always = matches!(*path, "produced" | "processed");
        let v = at(&e.json, path).cloned().unwrap_or(Value::Null);
        if always || count(&e.json, path) > 0 || expected.iter().any(|x| x == path) {
            s.push_str(&figure(path, &v, gloss));
            shown.push(path.to_string());
        }
    }
    if count(&e.json, "latency_ms.count") > 0 {
        for p in ["latency_ms.p50", "latency_ms.p99"] {
            if let Some(v) = at(&e.json, p) {
                s.push_str(&figure(
                    p,
                    v,
                    if p.ends_with("p50") { "production to first application, median" } else { "99th percentile" },
                ));
                shown.push(p.to_string());
            }
        }
    }
    if e.summary.domains.len() > 1 {
        for (name, d) in &e.summary.domains {
            for (key, n) in [("lost", d.lost), ("duplicated", d.duplicated), ("in_flight", d.in_flight)] {
                if n > 0 {
                    let path = format!("domains.{name}.{key}");
                    s.push_str(&figure(&path, &Value::from(n), ""));
                    shown.push(path);
                }
            }
        }
    }
    for path in &expected {
        if shown.contains(path) {
            continue;
        }
        if let Some(v) = at(&e.json, path).filter(|v| v.is_number()) {
            s.push_str(&figure(path, v, "named by an expectation"));
            shown.push(path.clone());
        }
    }
    s
}

/// The expectations and invariants, held or failed, with their values.
fn expectations(e: &Explained) -> String {
    let mut s = String::new();
    if e.summary.expectations.is_empty() && e.summary.invariants.is_empty() {
        return s;
    }
    s.push_str("  Expectations\n");
    for o in &e.summary.expectations {
        let verdict = if o.held { "held  " } else { "FAILED" };
        s.push_str(&format!("    {verdict} {}   (was {})\n", o.expect, num(&Value::from(o.actual))));
    }
    for j in &e.summary.invariants {
        let verdict = if j.held { "held  " } else { "FAILED" };
        s.push_str(&format!("    {verdict} invariant {}\n", j.invariant));
    }
    s
}

/// "What it does differently": the description and the variant's overrides.
fn differs(e: &Explained) -> String {
    let mut s = String::from("  What it does differently\n");
    if !e.variant.description.is_empty() {
        s.push_str(&format!("    {}\n", e.variant.description));
    }
    if e.variant.set.is_empty() {
        s.push_str("    the scenario's base settings, unchanged\n");
    }
    for o in &e.variant.set {
        s.push_str(&format!("    {} = {}\n", o.path.join("."), o.value));
    }
    s
}

/// The whole section of one variant.
pub fn variant(ctx: &Ctx, e: &Explained, all: &[&Explained]) -> String {
    let mut s = format!("\nVariant `{}`\n", e.variant.name);
    if all.len() > 1 || !e.variant.set.is_empty() {
        s.push_str(&differs(e));
    }
    s.push_str(&figures(e));
    s.push_str(&expectations(e));
    s.push_str(&why(ctx, e));
    s
}

/// Whether fault `label` names a node of one of `sections` (empty: yes).
fn names_node_of(e: &Explained, label: &str, sections: &[&str]) -> bool {
    if sections.is_empty() {
        return true;
    }
    let topology = e.config.topology();
    let nodes: Vec<&str> = sections.iter().flat_map(|s| topology.section(s)).map(sim_core::kind::Node::name).collect();
    label.split(|c: char| c.is_whitespace() || "[],|".contains(c)).any(|token| {
        nodes.iter().any(|n| token == *n || token.strip_prefix(n).is_some_and(|rest| rest.starts_with('/')))
    })
}

/// The faults of `w`'s kinds this run had, as "crash consumer-a at 1.5 s"
/// (at most four).
fn faults_of(e: &Explained, w: &Words) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for f in e.summary.faults.iter().filter(|f| f.event == "begins") {
        let kind = f.fault.split_whitespace().next().unwrap_or("");
        let line = format!("{} at {} s", f.fault, f.time_ms / 1000.0);
        if w.faults.contains(&kind) && names_node_of(e, &f.fault, w.on) && !seen.contains(&line) {
            seen.push(line);
        }
    }
    seen.truncate(4);
    seen
}

/// The settings of the variant's resolved scenario whose field is one of
/// `keys`, as `path = value` (at most four).
pub fn settings_of(ctx: &Ctx, e: &Explained, keys: &[&str]) -> Vec<String> {
    let Some(table) = ctx.scenario.resolved_table(&e.variant.name) else { return Vec::new() };
    let mut out = Vec::new();
    walk(&toml::Value::Table(table), &mut Vec::new(), keys, &mut out);
    out.truncate(4);
    out
}

fn walk(v: &toml::Value, path: &mut Vec<String>, keys: &[&str], out: &mut Vec<String>) {
    let Some(t) = v.as_table() else { return };
    if path.len() > 3 {
        return;
    }
    for (k, x) in t {
        path.push(k.clone());
        if keys.contains(&k.as_str()) && !x.is_table() {
            out.push(format!("{} = {x}", path.join(".")));
        } else {
            walk(x, path, keys, out);
        }
        path.pop();
    }
}

/// One cause's line: its count, share, code, words, and what in the
/// scenario brought it about.
fn cause_line(ctx: &Ctx, e: &Explained, n: u64, total: u64, code: &str, w: &Words, noun: &str) -> String {
    let share = (n as f64 * 100.0 / total.max(1) as f64).round();
    let mut s = format!("    {n} of the {total} {noun} ({share}%) [{code}]: {}: {}", w.short, w.what);
    let mut tied: Vec<String> = settings_of(ctx, e, w.settings);
    tied.extend(faults_of(e, w));
    if !tied.is_empty() {
        s.push_str(&format!(" ({})", tied.join("; ")));
    }
    s.push_str(".\n");
    if noun == "losses" {
        let ids: Vec<String> =
            e.out.lost.iter().filter(|(_, c)| c.name() == code).take(3).map(|(id, _)| id.to_string()).collect();
        if let Some(first) = ids.first() {
            s.push_str(&format!(
                "      e.g. messages {} (their story: --variant {} --message {first})\n",
                ids.join(", "),
                crate::run::shell_quote(&e.variant.name)
            ));
        }
    }
    s
}

/// The causes in `by` (a `lost_by_cause` or `duplicated_by_cause`), largest first.
fn causes(ctx: &Ctx, e: &Explained, by: &BTreeMap<&str, u64>, lost: bool) -> String {
    let total: u64 = by.values().sum();
    let mut list: Vec<(&str, u64)> = by.iter().map(|(k, v)| (*k, *v)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let noun = if lost { "losses" } else { "duplicates" };
    let mut s = String::new();
    for (code, n) in list {
        let w = words::named(code, lost).unwrap_or_else(|| words::loss(sim_core::ledger::LossCause::Unexplained));
        s.push_str(&cause_line(ctx, e, n, total, code, &w, noun));
    }
    s
}

/// "Why": the ledger's causes, per effect domain where there are several.
fn why(ctx: &Ctx, e: &Explained) -> String {
    let c = &e.summary.counts;
    let mut s = String::from("  Why\n");
    if c.lost == 0 && c.duplicated == 0 {
        s.push_str(&quiet(e));
        s.push_str(&errors(e));
        return s;
    }
    let several = e.summary.domains.len() > 1;
    if !several {
        s.push_str(&causes(ctx, e, &c.lost_by_cause, true));
        s.push_str(&causes(ctx, e, &c.duplicated_by_cause, false));
    } else {
        for (name, d) in &e.summary.domains {
            if d.lost + d.duplicated == 0 {
                continue;
            }
            s.push_str(&format!("    in effect domain `{name}`:\n"));
            s.push_str(&causes(ctx, e, &d.lost_by_cause, true));
            s.push_str(&causes(ctx, e, &d.duplicated_by_cause, false));
        }
    }
    if e.summary.inconsistent > 0 {
        s.push_str(&format!(
            "    {} messages took effect in some domains but not all (inconsistent): one side changed, the other was never told.\n",
            e.summary.inconsistent
        ));
    }
    s.push_str(&errors(e));
    s
}

/// What to say when nothing was lost or duplicated.
fn quiet(e: &Explained) -> String {
    let c = &e.summary.counts;
    let mut s = String::from("    Nothing was lost and nothing applied twice");
    if c.in_flight > 0 {
        s.push_str(&format!("; {} were still in flight at the end (held somewhere)", c.in_flight));
    }
    if c.send_failed > 0 {
        s.push_str(&format!("; {} sends failed, and their producers knew (send_failed)", c.send_failed));
    }
    s.push_str(".\n");
    s
}

/// The errors by kind, each with what it means: events a real system would
/// log, most of them the retry machinery at work, not lost messages.
fn errors(e: &Explained) -> String {
    if e.summary.errors == 0 {
        return String::new();
    }
    let mut s = format!(
        "    {} errors: events a real system would log, not lost messages (errors_by_kind):\n",
        e.summary.errors
    );
    for (kind, n) in &e.summary.errors_by_kind {
        let meaning =
            crate::table::error_kinds::meaning(kind).unwrap_or("reported by a component (see docs/concepts.md)");
        s.push_str(&format!("      {n} {kind}: {meaning}\n"));
    }
    s
}

/// The largest cause in `by`, with its count.
fn top(by: &BTreeMap<&'static str, u64>) -> Option<(&'static str, u64)> {
    by.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(k, v)| (*k, *v))
}

/// "Contrast": each variant against the one that lost the most (or, when
/// none lost anything, against the first).
pub fn contrast(all: &[&Explained]) -> String {
    if all.len() < 2 {
        return String::new();
    }
    let any_loss = all.iter().any(|e| e.summary.counts.lost > 0);
    let base = if any_loss {
        all.iter().min_by_key(|e| std::cmp::Reverse(e.summary.counts.lost)).expect("two or more")
    } else {
        &all[0]
    };
    let mut s = String::from("\nContrast\n");
    for e in all.iter().filter(|e| e.variant.name != base.variant.name) {
        s.push_str(&format!("  {}\n", against(e, base, any_loss)));
    }
    s
}

/// One variant against the base of the contrast, in a sentence.
fn against(e: &Explained, base: &Explained, any_loss: bool) -> String {
    let (c, w, b) = (&e.summary.counts, &base.summary.counts, &base.variant.name);
    let mut parts = Vec::new();
    if any_loss {
        parts.push(format!("{} lost {} where {b} lost {}", e.variant.name, c.lost, w.lost));
    } else {
        parts.push(format!("{} against {b}: nothing lost in either", e.variant.name));
    }
    if c.duplicated > w.duplicated {
        let mut paid = format!("and paid with {} duplicates", c.duplicated);
        if let Some((code, n)) = top(&c.duplicated_by_cause) {
            let short = words::named(code, false).map_or(code, |w| w.short);
            paid.push_str(&format!(", {n} of them {short}"));
        }
        parts[0].push_str(&format!(", {paid}"));
    } else if c.duplicated != w.duplicated {
        parts.push(format!("duplicated {} ({b}: {})", c.duplicated, w.duplicated));
    }
    if e.summary.errors != base.summary.errors {
        parts.push(format!("errors {} ({b}: {})", e.summary.errors, base.summary.errors));
    }
    let p99 = |x: &Explained| at(&x.json, "latency_ms.p99").filter(|_| count(&x.json, "latency_ms.count") > 0).map(num);
    if let (Some(x), Some(y)) = (p99(e), p99(base)) {
        parts.push(format!("latency p99 {x} ms ({b}: {y} ms)"));
    }
    format!("{}.", parts.join("; "))
}

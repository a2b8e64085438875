//! The terminal table of a run, made to fit the terminal: variants side by
//! side as columns when there are at most four and they fit the width,
//! else variants as rows with the figures as columns, in groups (messages,
//! errors, latency and load) each split to fit. Errors are broken down by
//! kind, with a line on what each kind that occurred means (most are
//! retries, not losses). Then each expectation. The rows are shared with
//! `asyncsim compare` ([`rows`]). Leaves out colour and every figure
//! summary.json holds beyond these (domains, metrics, network).

pub(crate) mod error_kinds;

use sim_core::summary::{Summary, VariantSummary};
use std::fmt::Write as _;

/// The width used when neither `COLUMNS` nor a terminal tells one.
pub const DEFAULT_WIDTH: usize = 100;

/// Figures that variants-as-rows leave out of the columns when they are 0
/// in every variant, saying so in one line under the table.
const FOLDED: [&str; 2] = ["in_flight", "send_failed"];

/// Most variants shown side by side as columns.
const MAX_COLUMNS: usize = 4;

/// One figure of every variant, as the tables show it.
pub struct Row {
    /// Its key in summary.json: a dotted path such as `latency_ms.p99`.
    pub key: String,
    /// Its label when variants are columns.
    pub label: String,
    /// Its column header when variants are rows.
    pub short: String,
    /// The group of columns it joins when variants are rows.
    pub group: &'static str,
    /// Its value in each variant, in order.
    pub values: Vec<f64>,
}

/// A fixed figure: key, label, short header, group, and how to read it.
type Fixed = (&'static str, &'static str, &'static str, &'static str, fn(&VariantSummary) -> f64);

const MESSAGES: &str = "messages";
const ERRORS: &str = "errors";
const TIMING: &str = "latency, load";

const BEFORE_ERRORS: [Fixed; 9] = [
    ("produced", "produced", "produced", MESSAGES, |v| v.counts.produced as f64),
    ("acked", "acked", "acked", MESSAGES, |v| v.counts.acked as f64),
    ("processed", "processed", "processed", MESSAGES, |v| v.counts.processed as f64),
    ("lost", "lost", "lost", MESSAGES, |v| v.counts.lost as f64),
    ("duplicated", "duplicated", "dupl", MESSAGES, |v| v.counts.duplicated as f64),
    ("reordered", "reordered", "reord", MESSAGES, |v| v.counts.reordered as f64),
    ("in_flight", "in flight at end", "in flight", MESSAGES, |v| v.counts.in_flight as f64),
    ("send_failed", "send failed", "send fail", MESSAGES, |v| v.counts.send_failed as f64),
    ("errors", "errors", "total", ERRORS, |v| v.errors as f64),
];

const AFTER_ERRORS: [Fixed; 6] = [
    ("throughput_per_s", "throughput /s", "per s", TIMING, |v| v.throughput_per_s),
    ("latency_ms.mean", "latency mean ms", "mean ms", TIMING, |v| v.latency_ms.mean),
    ("latency_ms.p50", "latency p50 ms", "p50 ms", TIMING, |v| v.latency_ms.p50),
    ("latency_ms.p99", "latency p99 ms", "p99 ms", TIMING, |v| v.latency_ms.p99),
    ("latency_ms.max", "latency max ms", "max ms", TIMING, |v| v.latency_ms.max),
    ("max_queue_depth", "max queue depth", "max depth", TIMING, |v| v.max_queue_depth as f64),
];

/// The rows of the table for `variants`: the fixed figures, with, after
/// `errors`, one row per error kind that occurred in any of them.
pub fn rows(variants: &[&VariantSummary]) -> Vec<Row> {
    let fixed = |(key, label, short, group, get): &Fixed| Row {
        key: key.to_string(),
        label: label.to_string(),
        short: short.to_string(),
        group,
        values: variants.iter().map(|v| get(v)).collect(),
    };
    let kinds: std::collections::BTreeSet<&String> = variants.iter().flat_map(|v| v.errors_by_kind.keys()).collect();
    let by_kind = kinds.into_iter().map(|kind| Row {
        key: format!("errors_by_kind.{kind}"),
        label: format!("errors: {kind}"),
        short: kind.clone(),
        group: ERRORS,
        values: variants.iter().map(|v| v.errors_by_kind.get(kind).copied().unwrap_or(0) as f64).collect(),
    });
    BEFORE_ERRORS.iter().map(fixed).chain(by_kind).chain(AFTER_ERRORS.iter().map(fixed)).collect()
}

/// A figure as the tables print it (the report's pages print the same):
/// integers whole, others to 0.1 from 100 up, else to 0.001.
pub use reports::html::number;

/// The width to fit: `COLUMNS` when set to a positive number, else the
/// terminal's when standard output is one, else [`DEFAULT_WIDTH`].
pub fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|n| *n > 0) {
        return n;
    }
    match console::Term::stdout().size_checked() {
        Some((_, cols)) if cols > 0 => usize::from(cols),
        _ => DEFAULT_WIDTH,
    }
}

/// Renders the summary to fit the terminal ([`terminal_width`]).
pub fn render(s: &Summary) -> String {
    render_width(s, terminal_width())
}

/// A latency that leaves out messages still in flight when the drain ran
/// out of time is marked `*`, and explained under the table.
fn partial(v: &VariantSummary) -> bool {
    !v.run.drain_complete && v.counts.in_flight > 0
}

/// The cells of every row, one per variant, marks included.
fn cells(s: &Summary, rows: &[Row]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            r.values
                .iter()
                .zip(&s.variants)
                .map(|(x, (_, v))| {
                    let mark = if partial(v) && r.key.starts_with("latency") { "*" } else { "" };
                    format!("{}{mark}", number(*x))
                })
                .collect()
        })
        .collect()
}

/// Renders the summary to fit `width` columns: variants as columns when
/// there are at most four and that fits, else as rows.
pub fn render_width(s: &Summary, width: usize) -> String {
    let variants: Vec<&VariantSummary> = s.variants.iter().map(|(_, v)| v).collect();
    let rows = rows(&variants);
    let cells = cells(s, &rows);
    let names: Vec<&str> = s.variants.iter().map(|(n, _)| n.as_str()).collect();
    let columns = by_columns(&names, &rows, &cells);
    let fits = columns.lines().map(|l| l.chars().count()).max().unwrap_or(0) <= width;
    let mut out = if names.len() <= MAX_COLUMNS && fits { columns } else { by_rows(&names, &rows, &cells, width) };
    notes(&mut out, s, &rows, width);
    out
}

/// Variants as columns, one row per figure.
fn by_columns(names: &[&str], rows: &[Row], cells: &[Vec<String>]) -> String {
    let label_w = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..names.len())
        .map(|j| cells.iter().map(|c| c[j].len()).chain([names[j].chars().count()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:label_w$}", "");
    for (name, w) in names.iter().zip(&widths) {
        let _ = write!(out, "  {name:>w$}");
    }
    out.push('\n');
    for (row, cells) in rows.iter().zip(cells) {
        let _ = write!(out, "{:label_w$}", row.label);
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    }
    out
}

/// Variants as rows: for each group of figures, a block with the group's
/// name over the variants' names and one column per figure, split into
/// several blocks where the group is wider than `width`. The [`FOLDED`]
/// figures that are 0 everywhere get one line instead of columns.
fn by_rows(names: &[&str], rows: &[Row], cells: &[Vec<String>], width: usize) -> String {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    let folded = |r: &Row| FOLDED.contains(&r.key.as_str()) && r.values.iter().all(|x| *x == 0.0);
    for (i, r) in rows.iter().enumerate().filter(|(_, r)| !folded(r)) {
        match groups.last_mut() {
            Some((g, members)) if *g == r.group => members.push(i),
            _ => groups.push((r.group, vec![i])),
        }
    }
    let name_w = names.iter().chain(groups.iter().map(|(g, _)| g)).map(|n| n.chars().count()).max().unwrap_or(0);
    let col_w = |i: usize| cells[i].iter().map(String::len).chain([rows[i].short.chars().count()]).max().unwrap_or(0);
    let mut blocks = Vec::new();
    for (group, members) in &groups {
        let mut chunk: Vec<usize> = Vec::new();
        let mut used = name_w;
        for &i in members {
            if !chunk.is_empty() && used + 2 + col_w(i) > width {
                blocks.push(block(group, names, rows, cells, &chunk, name_w, &col_w));
                chunk.clear();
                used = name_w;
            }
            chunk.push(i);
            used += 2 + col_w(i);
        }
        blocks.push(block(group, names, rows, cells, &chunk, name_w, &col_w));
    }
    let mut out = blocks.join("\n");
    let zero: Vec<&str> = rows.iter().filter(|r| folded(r)).map(|r| r.label.as_str()).collect();
    if !zero.is_empty() {
        out.push_str(&wrap("", &format!("{}: 0 in every variant", zero.join(", ")), width));
    }
    out
}

/// One block of [`by_rows`]: the figures `chunk` of every variant.
fn block(
    group: &str,
    names: &[&str],
    rows: &[Row],
    cells: &[Vec<String>],
    chunk: &[usize],
    name_w: usize,
    col_w: &dyn Fn(usize) -> usize,
) -> String {
    let mut out = format!("{group:name_w$}");
    for &i in chunk {
        let _ = write!(out, "  {:>w$}", rows[i].short, w = col_w(i));
    }
    out.push('\n');
    for (j, name) in names.iter().enumerate() {
        let _ = write!(out, "{name:name_w$}");
        for &i in chunk {
            let _ = write!(out, "  {:>w$}", cells[i][j], w = col_w(i));
        }
        out.push('\n');
    }
    out
}

/// Under the table: what the error kinds that occurred mean, the variants
/// whose latencies are partial, and each expectation.
fn notes(out: &mut String, s: &Summary, rows: &[Row], width: usize) {
    let kinds: Vec<&str> = rows.iter().filter_map(|r| r.key.strip_prefix("errors_by_kind.")).collect();
    if !kinds.is_empty() {
        out.push_str(&wrap("", "errors are events a real system would log, not lost messages:", width));
        let kind_w = kinds.iter().map(|k| k.chars().count()).max().unwrap_or(0);
        for kind in kinds {
            let meaning = error_kinds::meaning(kind).unwrap_or("reported by a component (see docs/concepts.md)");
            out.push_str(&wrap(&format!("  {kind:kind_w$}  "), meaning, width));
        }
    }
    for (name, v) in s.variants.iter().filter(|(_, v)| partial(v)) {
        let _ = writeln!(
            out,
            "* {name}: over the {} messages that finished; {} were still in flight when {}",
            v.latency_ms.count,
            v.counts.in_flight,
            if v.run.stopped.is_some() { "the run stopped at a limit" } else { "the drain ran out of time" }
        );
    }
    if s.variants.iter().any(|(_, v)| !v.expectations.is_empty()) {
        out.push_str("expectations:\n");
        for (name, v) in &s.variants {
            for e in &v.expectations {
                let mark = if e.held { "ok  " } else { "FAIL" };
                let was = match (e.ci, e.n) {
                    (Some([low, high]), Some(n)) => {
                        format!(
                            "mean {} over {n} seeds, interval [{}, {}]",
                            number(e.actual),
                            number(low),
                            number(high)
                        )
                    }
                    _ => number(e.actual),
                };
                let _ = writeln!(out, "  {mark} {name}: {} (was {was})", e.expect);
            }
        }
    }
    if s.variants.iter().any(|(_, v)| !v.invariants.is_empty()) {
        out.push_str("invariants:\n");
        for (name, v) in &s.variants {
            for j in &v.invariants {
                let mark = if j.held { "ok  " } else { "FAIL" };
                let _ = writeln!(out, "  {mark} {name}: {} - {}", j.invariant, j.detail);
            }
        }
    }
}

/// `text` after `lead`, its words wrapped to `width` columns, the lines
/// after the first indented as far as `lead` (but at least 20 columns
/// left for the words). Ends with a newline.
fn wrap(lead: &str, text: &str, width: usize) -> String {
    let indent = lead.chars().count();
    let room = width.saturating_sub(indent).max(20);
    let mut out = lead.to_string();
    let mut used = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if used > 0 && used + 1 + len > room {
            let _ = write!(out, "\n{:indent$}", "");
            used = 0;
        }
        if used > 0 {
            out.push(' ');
            used += 1;
        }
        out.push_str(word);
        used += len;
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_word_within_the_width() {
        let text = "retried: a producer's send got no ack in time, so it sent the message again";
        let out = wrap("  ack-timeout  ", text, 40);
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 40), "{out}");
        let words: Vec<&str> = out.split_whitespace().skip(1).collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
    }

    #[test]
    fn a_word_longer_than_the_room_still_prints() {
        assert_eq!(wrap("> ", "abcdefghijklmnopqrstuvwxyz", 10), "> abcdefghijklmnopqrstuvwxyz\n");
    }
}

//! The HTML report: one page per scenario (what it teaches, its variants
//! side by side, every plot, the expectations, the faults, the command that
//! reproduces it, a link to the guide's chapter on its concept) and an
//! index of the scenarios, grouped by chapter. Pages are self-contained:
//! styles inline, the font embedded, plots beside them as files; nothing is
//! fetched from anywhere and there is no script. They read on a projector
//! (large type, strong contrast) and on a phone (one column, tables that
//! scroll sideways).

use crate::plots::style::{variant_hex, FONT, FONT_BYTES};
use crate::plots::PlotFile;
use base64::Engine as _;
use sim_core::summary::{Summary, VariantSummary};
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link to the chapter of the guide (`docs/guide/NN-slug.md`) that
/// teaches a scenario's concept.
#[derive(Debug, Clone, PartialEq)]
pub struct ChapterLink {
    /// The chapter's number, from 1, in reading order.
    pub number: usize,
    /// Its title.
    pub title: String,
    /// Where the link leads, from the page that shows it.
    pub href: String,
}

impl ChapterLink {
    /// `Chapter NN: title`.
    pub fn text(&self) -> String {
        format!("Chapter {:02}: {}", self.number, self.title)
    }

    /// The link, as HTML.
    fn anchor(&self) -> String {
        format!("<a class=\"chapter\" href=\"{}\">{}</a>", esc(&self.href), esc(&self.text()))
    }
}

/// What a scenario's page shows.
pub struct Page<'a> {
    /// The run's summary.
    pub summary: &'a Summary,
    /// The scenario file, as given.
    pub file: &'a str,
    /// The comment the scenario file opens with (`#` marks removed).
    pub header: &'a str,
    /// The plots written beside the page, in order.
    pub plots: &'a [PlotFile],
    /// The command that reproduces the run.
    pub command: &'a str,
    /// A link back to the index of scenarios, when there is one.
    pub up: Option<&'a str>,
    /// The guide's chapter on the scenario's concept, when it has one.
    pub chapter: Option<&'a ChapterLink>,
}

/// The comment a scenario file opens with: its leading `#` lines, the
/// marks and one following space removed, blank comment lines kept.
pub fn header_comment(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('#') else { break };
        lines.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
    }
    lines.join("\n").trim().to_string()
}

const CSS: &str = "
:root{color-scheme:light}
body{font-family:'asyncsim',sans-serif;font-size:18px;line-height:1.45;color:#111;background:#fff;margin:0 auto;max-width:1100px;padding:1rem}
h1{font-size:2rem;margin:.2em 0}h2{font-size:1.45rem;margin-top:1.6em;border-bottom:2px solid #ddd}
.concept{font-size:1.25rem;font-weight:bold}
pre.header{white-space:pre;overflow-x:auto;background:#f5f5f5;padding:.8em;border-radius:6px;font-size:.95rem}
td.wrap,th.wrap{white-space:normal;text-align:left;min-width:12em}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.5em 0}
th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.3em;vertical-align:-.1em}
.ok{color:#006b3c;font-weight:bold}.fail{color:#b00020;font-weight:bold}
figure{margin:1.2em 0}figure img{width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.9rem;color:#333}
code,pre.cmd{font-family:monospace;font-size:.95rem}pre.cmd{background:#f5f5f5;padding:.6em;overflow-x:auto}
a{color:#0b57d0}
@media (max-width:600px){body{font-size:16px;padding:.5rem}h1{font-size:1.5rem}pre.header{font-size:.75rem}}
";

/// The page's `<head>` and opening `<body>`.
fn head(title: &str) -> String {
    let font = base64::engine::general_purpose::STANDARD.encode(FONT_BYTES);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>@font-face{{font-family:'asyncsim';src:url(data:font/ttf;base64,{font}) format('truetype');}}\
         /* {FONT}, embedded */{CSS}</style>\n</head>\n<body>\n",
        esc(title)
    )
}

/// A figure as the report's tables (and the terminal's) print it:
/// integers whole, others to 0.1 from 100 up, else to 0.001.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

type Row = (&'static str, fn(&VariantSummary) -> f64);

const ROWS: [Row; 16] = [
    ("produced", |v| v.counts.produced as f64),
    ("acked", |v| v.counts.acked as f64),
    ("processed", |v| v.counts.processed as f64),
    ("lost", |v| v.counts.lost as f64),
    ("duplicated", |v| v.counts.duplicated as f64),
    ("reordered", |v| v.counts.reordered as f64),
    ("inconsistent", |v| v.inconsistent as f64),
    ("in flight at end", |v| v.counts.in_flight as f64),
    ("send failed", |v| v.counts.send_failed as f64),
    ("throughput /s", |v| v.throughput_per_s),
    ("latency mean ms", |v| v.latency_ms.mean),
    ("latency p50 ms", |v| v.latency_ms.p50),
    ("latency p99 ms", |v| v.latency_ms.p99),
    ("latency p99.9 ms", |v| v.latency_ms.p999),
    ("latency max ms", |v| v.latency_ms.max),
    ("max queue depth", |v| v.max_queue_depth as f64),
];

/// The variants side by side: one column each, a row per figure, then one
/// row per error kind that occurred in any variant.
fn variants_table(s: &Summary) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>\n<tr><th></th>");
    for (i, (name, _)) in s.variants.iter().enumerate() {
        let _ =
            write!(out, "<th><span class=\"swatch\" style=\"background:{}\"></span>{}</th>", variant_hex(i), esc(name));
    }
    out.push_str("</tr>\n");
    for (label, f) in ROWS {
        let _ = write!(out, "<tr><td>{label}</td>");
        for (_, v) in &s.variants {
            let _ = write!(out, "<td>{}</td>", number(f(v)));
        }
        out.push_str("</tr>\n");
    }
    let mut kinds: Vec<&String> = s.variants.iter().flat_map(|(_, v)| v.errors_by_kind.keys()).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let _ = write!(out, "<tr><td>errors: {}</td>", esc(kind));
        for (_, v) in &s.variants {
            let _ = write!(out, "<td>{}</td>", v.errors_by_kind.get(kind).copied().unwrap_or(0));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    out
}

fn expectations(s: &Summary) -> String {
    let mut out = String::from("<ul>\n");
    let mut any = false;
    for (name, v) in &s.variants {
        for e in &v.expectations {
            any = true;
            let (class, mark) = if e.held { ("ok", "held") } else { ("fail", "FAILED") };
            let _ = writeln!(
                out,
                "<li><span class=\"{class}\">{mark}</span> <b>{}</b>: <code>{}</code> (was {})</li>",
                esc(name),
                esc(&e.expect),
                number(e.actual)
            );
        }
    }
    if !any {
        out.push_str("<li>This scenario states no expectations.</li>\n");
    }
    out.push_str("</ul>\n");
    out
}

/// The invariants each variant claims, judged; empty when none claims any.
fn invariants(s: &Summary) -> String {
    let mut out = String::new();
    for (name, v) in &s.variants {
        for j in &v.invariants {
            let (class, mark) = if j.held { ("ok", "held") } else { ("fail", "VIOLATED") };
            let _ = writeln!(
                out,
                "<li><span class=\"{class}\">{mark}</span> <b>{}</b>: <code>{}</code> ({})</li>",
                esc(name),
                esc(&j.invariant),
                esc(&j.detail)
            );
        }
    }
    if out.is_empty() {
        return out;
    }
    format!("<h2>Invariants</h2>\n<p>Claims about the whole run, judged from the ledger (see docs/invariants.md).</p>\n<ul>\n{out}</ul>\n")
}

/// The faults as they began and ended; listed once when every variant had
/// the same, else per variant.
fn faults(s: &Summary) -> String {
    let first = s.variants.first().map(|(_, v)| &v.faults);
    let same = s.variants.iter().all(|(_, v)| Some(&v.faults) == first);
    let mut out = String::new();
    for (name, v) in &s.variants {
        if v.faults.is_empty() {
            continue;
        }
        if !same {
            let _ = writeln!(out, "<h3>{}</h3>", esc(name));
        }
        out.push_str("<div class=\"scroll\"><table>\n<tr><th>time (ms)</th><th>fault</th><th>event</th></tr>\n");
        for f in &v.faults {
            let _ =
                writeln!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", number(f.time_ms), esc(&f.fault), f.event);
        }
        out.push_str("</table></div>\n");
        if same {
            break;
        }
    }
    if out.is_empty() {
        out.push_str("<p>No faults: the network and the nodes behaved.</p>\n");
    }
    out
}

fn figures(plots: &[PlotFile]) -> String {
    let mut out = String::new();
    for p in plots {
        let png = p.png.as_ref().map(|png| format!(" (<a href=\"{}\">PNG</a>)", esc(png))).unwrap_or_default();
        let _ = writeln!(
            out,
            "<figure id=\"{}\"><img src=\"{}\" alt=\"{}\" width=\"960\" height=\"540\">\
             <figcaption>{} — <a href=\"{}\">SVG</a>{png}</figcaption></figure>",
            esc(&p.name),
            esc(&p.svg),
            esc(&p.title),
            esc(&p.title),
            esc(&p.svg)
        );
    }
    out
}

/// The page of one scenario.
pub fn scenario_page(p: &Page) -> String {
    let s = p.summary;
    let mut out = head(&format!("{} — asyncsim", s.scenario));
    if let Some(up) = p.up {
        let _ = writeln!(out, "<p><a href=\"{}\">← all scenarios</a></p>", esc(up));
    }
    let _ = writeln!(out, "<h1>{}</h1>\n<p class=\"concept\">{}</p>", esc(&s.scenario), esc(&s.concept));
    if let Some(chapter) = p.chapter {
        let _ = writeln!(out, "<p>Learn the concept: {}</p>", chapter.anchor());
    }
    if !p.header.is_empty() {
        let _ = writeln!(out, "<pre class=\"header\">{}</pre>", esc(p.header));
    }
    let _ = writeln!(out, "<h2>Variants</h2>\n<ul>");
    for (i, (name, v)) in s.variants.iter().enumerate() {
        let _ = writeln!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span><b>{}</b>: {}</li>",
            variant_hex(i),
            esc(name),
            esc(&v.description)
        );
    }
    out.push_str("</ul>\n");
    out.push_str(&variants_table(s));
    let _ = writeln!(out, "<h2>Expectations</h2>\n{}", expectations(s));
    out.push_str(&invariants(s));
    let _ = writeln!(out, "<h2>Plots</h2>\n{}", figures(p.plots));
    let clean = s.variants.iter().all(|(_, v)| v.counts.lost == 0 && v.counts.duplicated == 0);
    if clean && !p.plots.is_empty() {
        out.push_str("<p id=\"causes\">No variant lost or duplicated a message, so there are no causes to show.</p>\n");
    }
    let _ = writeln!(out, "<h2>Faults</h2>\n{}", faults(s));
    let _ = writeln!(
        out,
        "<h2>Reproduce</h2>\n<p>The same command gives the same numbers and the same pictures, byte for byte (scenario file <code>{}</code>, seed {}):</p>\n<pre class=\"cmd\">{}</pre>",
        esc(p.file),
        s.seed,
        esc(p.command)
    );
    out.push_str("<p><a href=\"summary.json\">summary.json</a> · <a href=\"timeseries.csv\">timeseries.csv</a></p>\n</body>\n</html>\n");
    out
}

/// One scenario in the index.
pub struct IndexEntry {
    /// The scenario's name.
    pub name: String,
    /// What it teaches.
    pub concept: String,
    /// Its page, relative to the index.
    pub href: String,
    /// Its variants.
    pub variants: Vec<String>,
    /// Every expectation held.
    pub held: bool,
    /// The guide's chapter on its concept (the link relative to the index).
    pub chapter: Option<ChapterLink>,
}

/// The index of scenarios, grouped by the guide's chapters in reading
/// order (scenarios in no chapter last), each group in the order given.
pub fn index_page(entries: &[IndexEntry], command: &str) -> String {
    let mut out = head("asyncsim report");
    let _ = writeln!(
        out,
        "<h1>asyncsim report</h1>\n<p>Every bundled scenario, run with its own seed, grouped by the chapter of the guide that teaches its concept. Each page shows what the scenario teaches, its variants side by side, the plots, the expectations and the faults. Made by <code>{}</code>.</p>",
        esc(command)
    );
    let mut groups: Vec<(Option<&ChapterLink>, Vec<&IndexEntry>)> = Vec::new();
    for e in entries {
        match groups.iter_mut().find(|(c, _)| c.map(|c| c.number) == e.chapter.as_ref().map(|c| c.number)) {
            Some((_, members)) => members.push(e),
            None => groups.push((e.chapter.as_ref(), vec![e])),
        }
    }
    groups.sort_by_key(|(c, _)| c.map_or(usize::MAX, |c| c.number));
    for (chapter, members) in groups {
        match chapter {
            Some(c) => {
                let _ = writeln!(out, "<h2 class=\"chapter\">{}</h2>", c.anchor());
            }
            None => out.push_str("<h2>Other scenarios</h2>\n"),
        }
        out.push_str(&index_table(&members));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// A table of scenarios in the index.
fn index_table(entries: &[&IndexEntry]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>\n<tr><th>scenario</th><th class=\"wrap\">what it shows</th><th class=\"wrap\">variants</th><th>expectations</th></tr>\n");
    for e in entries {
        let (class, mark) = if e.held { ("ok", "all held") } else { ("fail", "some failed") };
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"wrap\">{}</td><td class=\"wrap\">{}</td><td class=\"{class}\">{mark}</td></tr>",
            esc(&e.href),
            esc(&e.name),
            esc(&e.concept),
            esc(&e.variants.join(", ")),
        );
    }
    out.push_str("</table></div>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_header_comment_is_read_up_to_the_first_key() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let text = "# Title line\n#\n#   indented\nname = \"x\"\n# later comment\n";
        assert_eq!(header_comment(text), "Title line\n\n  indented");
        assert_eq!(header_comment("name = \"x\""), "");
    }
}

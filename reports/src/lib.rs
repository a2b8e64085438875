//! asyncsim's output files: `summary.json`, `timeseries.csv` and traces
//! (CSV, and Chrome trace-event JSON for Perfetto),
//! written whole or not at all (to a temporary file, then renamed), into a
//! folder that asyncsim made or that the user let it use; and space-time
//! diagrams ([`diagram`]), and the plots of a sweep ([`sweep_plot`]). Plots and report pages will join them here.

pub mod diagram;
mod folder;
pub mod html;
pub mod perfetto;
pub mod plots;
pub mod sweep_plot;
mod tee;
mod trace_file;

pub use folder::{
    check_writable, out_path, prepare_dir, temp_path, tidy_dir, tidy_dir_adding, write_atomic, OutputError, Tidied,
    MANIFEST, MARKER, TEMP_PREFIX,
};
pub use perfetto::{PerfettoOptions, PerfettoStats, PerfettoTrace};
pub use tee::TraceTee;
pub use trace_file::TraceFile;

use sim_core::metrics::Sample;
use sim_core::summary::Summary;
use sim_core::trace::{TraceEvent, TraceWhat, Wire};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One text field of a CSV row, per RFC 4180: quoted (inner quotes
/// doubled) when it holds a comma, a quote, a CR or a LF. A field that
/// starts with `=`, `+`, `-` or `@`, which a spreadsheet would read as a
/// formula, is neutralised: quoted, with a `'` before it. For text only:
/// numbers are written as they are (a negative number stays a number).
pub fn csv_text(field: &str) -> Cow<'_, str> {
    let formula = field.starts_with(['=', '+', '-', '@']);
    if !formula && !field.contains([',', '"', '\r', '\n']) {
        return Cow::Borrowed(field);
    }
    let tick = if formula { "'" } else { "" };
    Cow::Owned(format!("\"{tick}{}\"", field.replace('"', "\"\"")))
}

/// The text of `summary.json`.
pub fn summary_json(summary: &Summary) -> String {
    let mut s = serde_json::to_string_pretty(summary).expect("a summary always serializes");
    s.push('\n');
    s
}

/// The text of `timeseries.csv`: one row per variant per interval. The
/// fixed columns come first; then one column per gauge any variant reported
/// (by name: empty where a variant has no such gauge at that row), then one
/// `errors_per_s.KIND` column per error kind any variant counted (by kind:
/// 0 where none occurred).
pub fn timeseries_csv(series: &[(&str, &[Sample])]) -> String {
    let rows = || series.iter().flat_map(|(_, samples)| samples.iter());
    let gauges: BTreeSet<&str> = rows().flat_map(|s| s.gauges.iter().map(|(n, _)| n.as_str())).collect();
    let kinds: BTreeSet<&str> = rows().flat_map(|s| s.errors_by_kind.iter().map(|&(k, _)| k)).collect();
    let mut out = String::from("variant,time_s,produced_per_s,processed_per_s,errors_per_s,queue_depth,lag");
    for g in &gauges {
        let _ = write!(out, ",{}", csv_text(g));
    }
    for k in &kinds {
        let _ = write!(out, ",{}", csv_text(&format!("errors_per_s.{k}")));
    }
    out.push('\n');
    for (variant, samples) in series {
        for s in *samples {
            let _ = write!(
                out,
                "{},{},{},{},{},{},{}",
                csv_text(variant),
                s.time_s,
                s.produced_per_s,
                s.processed_per_s,
                s.errors_per_s,
                s.queue_depth,
                s.lag
            );
            // Both lists are sorted by name, as the columns are.
            let mut reported = s.gauges.iter().peekable();
            for &g in &gauges {
                out.push(',');
                if let Some((_, v)) = reported.next_if(|(n, _)| n == g) {
                    let _ = write!(out, "{v}");
                }
            }
            let mut counted = s.errors_by_kind.iter().peekable();
            for &k in &kinds {
                let v = counted.next_if(|&&(n, _)| n == k).map_or(0.0, |&(_, v)| v);
                let _ = write!(out, ",{v}");
            }
            out.push('\n');
        }
    }
    out
}

/// The header row of a trace file.
pub const TRACE_HEADER: &str = "time_ns,event,from,to,message,msg_id,detail\n";

/// The text of a trace file: [`TRACE_HEADER`], then one CSV row per event
/// ([`trace_row`]), node names resolved. [`TraceFile`] streams the same
/// text to disk.
pub fn trace_csv(names: &[String], events: &[TraceEvent]) -> String {
    let mut out = String::from(TRACE_HEADER);
    for e in events {
        trace_row(&mut out, names, e);
    }
    out
}

/// Appends the CSV row of the trace event `e` to `out`, node ids resolved
/// to `names`.
pub fn trace_row(out: &mut String, names: &[String], e: &TraceEvent) {
    let name = |i: u32| csv_text(names.get(i as usize).map(String::as_str).unwrap_or("?"));
    let wire = |out: &mut String, ev: &str, w: &Wire, detail: &str| {
        let id = w.id.map(|i| i.to_string()).unwrap_or_default();
        let (msg, detail) = (csv_text(w.msg), csv_text(detail));
        let _ = writeln!(out, "{},{ev},{},{},{msg},{id},{detail}", e.time, name(w.from), name(w.to));
    };
    match &e.what {
        TraceWhat::Send(w, delay) => wire(out, "send", w, &format!("delay_ns={delay}")),
        TraceWhat::Duplicate(w) => wire(out, "duplicate", w, ""),
        TraceWhat::Arrive(w) => wire(out, "arrive", w, ""),
        TraceWhat::Drop(w, why) => wire(out, "drop", w, why.name()),
        TraceWhat::Timer(node, timer) => {
            // A timer's name may hold commas (`Fetch { partition: 0, replica: 1 }`): quoted then.
            let _ = writeln!(out, "{},timer,{},,,,{}", e.time, name(*node), csv_text(timer));
        }
        TraceWhat::Fault(label, event) => {
            let _ = writeln!(out, "{},fault-{},,,,,{}", e.time, event.name(), csv_text(label));
        }
        TraceWhat::Crash(node, restarts) => {
            let ev = if *restarts { "restart" } else { "crash" };
            let _ = writeln!(out, "{},{ev},{},,,,", e.time, name(*node));
        }
        TraceWhat::Phase(p) => {
            let _ = writeln!(out, "{},phase,,,,,{}", e.time, csv_text(p));
        }
        TraceWhat::Process(node, id, done) => {
            let ev = if *done { "applied" } else { "started" };
            let _ = writeln!(out, "{},{ev},{},,,{id},", e.time, name(*node));
        }
        TraceWhat::Mark(node, what) => {
            let _ = writeln!(out, "{},mark,{},,,,{}", e.time, name(*node), csv_text(what));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_text_quotes_separators_and_doubles_quotes() {
        assert_eq!(csv_text("plain_name-1"), "plain_name-1");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_text("cr\r"), "\"cr\r\"");
        assert_eq!(csv_text("Fetch { partition: 0, replica: 1 }"), "\"Fetch { partition: 0, replica: 1 }\"");
        assert_eq!(csv_text(""), "");
    }

    #[test]
    fn csv_text_neutralises_formulas() {
        assert_eq!(csv_text("=1+2"), "\"'=1+2\"");
        assert_eq!(csv_text("+cmd"), "\"'+cmd\"");
        assert_eq!(csv_text("-x"), "\"'-x\"");
        assert_eq!(csv_text("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_text("=HYPERLINK(\"x\",\"y\")"), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"");
        // Only a leading sign counts.
        assert_eq!(csv_text("a=b"), "a=b");
    }

    fn sample(time_s: f64, gauges: &[(&str, f64)], errors: &[(&'static str, f64)]) -> Sample {
        Sample {
            time_s,
            produced_per_s: 10.0,
            processed_per_s: 9.0,
            errors_per_s: errors.iter().fold(0.0, |sum, e| sum + e.1),
            queue_depth: 3,
            lag: 4,
            errors_by_kind: errors.to_vec(),
            gauges: gauges.iter().map(|&(n, v)| (n.to_string(), v)).collect(),
        }
    }

    #[test]
    fn gauges_and_error_kinds_get_columns_after_the_fixed_ones() {
        let one = [sample(1.0, &[("lag_records.g", 5.0), ("lag_seconds.g", 0.25)], &[("fenced", 2.0)])];
        let two = [
            sample(1.0, &[("lag_records.g", 1.0), ("lag_records.h", 7.0)], &[]),
            sample(2.0, &[], &[("fenced", 1.0), ("timeout", 4.0)]),
        ];
        let csv = timeseries_csv(&[("one", &one), ("two", &two)]);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(
            rows[0],
            "variant,time_s,produced_per_s,processed_per_s,errors_per_s,queue_depth,lag,\
             lag_records.g,lag_records.h,lag_seconds.g,errors_per_s.fenced,errors_per_s.timeout"
        );
        assert_eq!(rows[1], "one,1,10,9,2,3,4,5,,0.25,2,0", "no lag_records.h in this variant: empty");
        assert_eq!(rows[2], "two,1,10,9,0,3,4,1,7,,0,0", "no error of a kind: 0");
        assert_eq!(rows[3], "two,2,10,9,5,3,4,,,,1,4");
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn names_with_separators_stay_in_their_column() {
        let sample = Sample {
            time_s: 0.5,
            produced_per_s: -1.5,
            processed_per_s: 2.0,
            errors_per_s: 0.0,
            queue_depth: 3,
            lag: 4,
            errors_by_kind: Vec::new(),
            gauges: Vec::new(),
        };
        let csv = timeseries_csv(&[("a,\"b\"", std::slice::from_ref(&sample)), ("=x", std::slice::from_ref(&sample))]);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[1], "\"a,\"\"b\"\"\",0.5,-1.5,2,0,3,4", "a negative number stays a number");
        assert_eq!(rows[2], "\"'=x\",0.5,-1.5,2,0,3,4");
    }
}

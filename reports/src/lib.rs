//! asyncsim's output files: `summary.json`, `timeseries.csv` and traces,
//! written whole or not at all (to a temporary file, then renamed), into a
//! folder that asyncsim made or that the user let it use. Plots and report
//! pages will join them here.

use sim_core::metrics::Sample;
use sim_core::summary::Summary;
use sim_core::trace::{TraceEvent, TraceWhat, Wire};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

/// The file that marks a folder as asyncsim's own output.
pub const MARKER: &str = ".asyncsim-output";

/// Why output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder holds files asyncsim did not write.
    #[error("refusing to write into {0}: it holds files asyncsim did not write (pass --force to write there anyway, or choose another --out)")]
    Foreign(PathBuf),
    /// A file name that would land outside the output folder.
    #[error("refusing to write {name:?}: the file would not be directly inside the output folder {dir}")]
    Outside {
        /// The output folder.
        dir: PathBuf,
        /// The file name asked for.
        name: String,
    },
    /// The file system said no.
    #[error("cannot write {path}")]
    Io {
        /// What we tried to write.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

/// Makes `dir` ready for output: creates it (and marks it as ours) if it does
/// not exist; accepts it if it is empty or already ours, or if `force`.
pub fn prepare_dir(dir: &Path, force: bool) -> Result<(), OutputError> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !ours && !empty && !force {
            return Err(OutputError::Foreign(dir.to_path_buf()));
        }
    } else {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let marker = dir.join(MARKER);
    if !marker.exists() {
        write_atomic(&marker, b"This folder holds asyncsim output; asyncsim may overwrite its files.\n")?;
    }
    Ok(())
}

/// The path of the file `name` in the output folder `dir`, checked to stay
/// there: `name` must be one plain file name (no separator, no `..`, not
/// absolute), so the result is a direct child of `dir`.
pub fn out_path(dir: &Path, name: &str) -> Result<PathBuf, OutputError> {
    let outside = || OutputError::Outside { dir: dir.to_path_buf(), name: name.to_string() };
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None) if part == name && !name.contains(['/', '\\']) => {}
        _ => return Err(outside()),
    }
    let path = dir.join(name);
    if path.parent() != Some(dir) {
        return Err(outside());
    }
    Ok(path)
}

/// Checks, before any work, that files can be written into `dir` (which
/// [`prepare_dir`] made ready): creates and removes a temporary file there.
pub fn check_writable(dir: &Path) -> Result<(), OutputError> {
    let probe = out_path(dir, &format!(".asyncsim-write-test-{}", std::process::id()))?;
    fs::File::create(&probe).and_then(|f| f.sync_all()).map_err(io(dir))?;
    fs::remove_file(&probe).map_err(io(dir))
}

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

/// Writes `bytes` to `path` through a temporary file in the same folder and a
/// rename, so a reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io(path))
}

/// The text of `summary.json`.
pub fn summary_json(summary: &Summary) -> String {
    let mut s = serde_json::to_string_pretty(summary).expect("a summary always serializes");
    s.push('\n');
    s
}

/// The text of `timeseries.csv`: one row per variant per interval.
pub fn timeseries_csv(series: &[(&str, &[Sample])]) -> String {
    let mut out = String::from("variant,time_s,produced_per_s,processed_per_s,errors_per_s,queue_depth,lag\n");
    for (variant, samples) in series {
        for s in *samples {
            let _ = writeln!(
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
        }
    }
    out
}

/// The text of a trace file: one CSV row per event, node names resolved.
pub fn trace_csv(names: &[String], events: &[TraceEvent]) -> String {
    let name = |i: u32| csv_text(names.get(i as usize).map(String::as_str).unwrap_or("?"));
    let mut out = String::from("time_ns,event,from,to,message,msg_id,detail\n");
    for e in events {
        let wire = |out: &mut String, ev: &str, w: &Wire, detail: &str| {
            let id = w.id.map(|i| i.to_string()).unwrap_or_default();
            let (msg, detail) = (csv_text(w.msg), csv_text(detail));
            let _ = writeln!(out, "{},{ev},{},{},{msg},{id},{detail}", e.time, name(w.from), name(w.to));
        };
        match &e.what {
            TraceWhat::Send(w, delay) => wire(&mut out, "send", w, &format!("delay_ns={delay}")),
            TraceWhat::Duplicate(w) => wire(&mut out, "duplicate", w, ""),
            TraceWhat::Arrive(w) => wire(&mut out, "arrive", w, ""),
            TraceWhat::Drop(w, why) => wire(&mut out, "drop", w, why.name()),
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
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_with_foreign_files_is_not_used_without_force() {
        let dir = std::env::temp_dir().join(format!("asyncsim-reports-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("thesis.tex"), "precious").unwrap();
        assert!(matches!(prepare_dir(&dir, false), Err(OutputError::Foreign(_))));
        assert!(prepare_dir(&dir, true).is_ok());
        // Once marked, it is ours, and the user's file is untouched.
        assert!(prepare_dir(&dir, false).is_ok());
        assert_eq!(fs::read_to_string(dir.join("thesis.tex")).unwrap(), "precious");
        write_atomic(&dir.join("summary.json"), b"{}").unwrap();
        assert_eq!(fs::read_to_string(dir.join("summary.json")).unwrap(), "{}");
        let _ = fs::remove_dir_all(&dir);
    }

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

    #[test]
    fn names_with_separators_stay_in_their_column() {
        let sample = Sample {
            time_s: 0.5,
            produced_per_s: -1.5,
            processed_per_s: 2.0,
            errors_per_s: 0.0,
            queue_depth: 3,
            lag: 4,
        };
        let csv = timeseries_csv(&[("a,\"b\"", std::slice::from_ref(&sample)), ("=x", std::slice::from_ref(&sample))]);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[1], "\"a,\"\"b\"\"\",0.5,-1.5,2,0,3,4", "a negative number stays a number");
        assert_eq!(rows[2], "\"'=x\",0.5,-1.5,2,0,3,4");
    }

    #[test]
    fn out_path_keeps_files_inside_the_folder() {
        let dir = Path::new("/tmp/out");
        assert_eq!(out_path(dir, "trace-a.csv").unwrap(), dir.join("trace-a.csv"));
        for bad in ["", ".", "..", "../x", "a/b", "logs/../../../ESCAPED", "/etc/passwd", "a\\b", "x/"] {
            assert!(matches!(out_path(dir, bad), Err(OutputError::Outside { .. })), "{bad:?}");
        }
    }
}

//! asyncsim's output files: `summary.json`, `timeseries.csv` and traces,
//! written whole or not at all (to a temporary file, then renamed), into a
//! folder that asyncsim made or that the user let it use. Plots and report
//! pages will join them here.

use sim_core::metrics::Sample;
use sim_core::summary::Summary;
use sim_core::trace::{TraceEvent, TraceWhat, Wire};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The file that marks a folder as asyncsim's own output.
pub const MARKER: &str = ".asyncsim-output";

/// Why output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder holds files asyncsim did not write.
    #[error("refusing to write into {0}: it holds files asyncsim did not write (pass --force to write there anyway, or choose another --out)")]
    Foreign(PathBuf),
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
                "{variant},{},{},{},{},{},{}",
                s.time_s, s.produced_per_s, s.processed_per_s, s.errors_per_s, s.queue_depth, s.lag
            );
        }
    }
    out
}

/// The text of a trace file: one CSV row per event, node names resolved.
pub fn trace_csv(names: &[String], events: &[TraceEvent]) -> String {
    let name = |i: u32| names.get(i as usize).map(String::as_str).unwrap_or("?");
    let mut out = String::from("time_ns,event,from,to,message,msg_id,detail\n");
    for e in events {
        let wire = |out: &mut String, ev: &str, w: &Wire, detail: &str| {
            let id = w.id.map(|i| i.to_string()).unwrap_or_default();
            let _ = writeln!(out, "{},{ev},{},{},{},{id},{detail}", e.time, name(w.from), name(w.to), w.msg);
        };
        match &e.what {
            TraceWhat::Send(w, delay) => wire(&mut out, "send", w, &format!("delay_ns={delay}")),
            TraceWhat::Duplicate(w) => wire(&mut out, "duplicate", w, ""),
            TraceWhat::Arrive(w) => wire(&mut out, "arrive", w, ""),
            TraceWhat::Drop(w, why) => wire(&mut out, "drop", w, why.name()),
            TraceWhat::Timer(node, timer) => {
                // Quoted: a timer's name may hold commas (`Fetch { partition: 0, replica: 1 }`).
                let _ = writeln!(out, "{},timer,{},,,,\"{}\"", e.time, name(*node), timer.replace('"', "\"\""));
            }
            TraceWhat::Fault(label, event) => {
                let _ = writeln!(out, "{},fault-{},,,,,\"{}\"", e.time, event.name(), label.replace('"', "'"));
            }
            TraceWhat::Crash(node, restarts) => {
                let ev = if *restarts { "restart" } else { "crash" };
                let _ = writeln!(out, "{},{ev},{},,,,", e.time, name(*node));
            }
            TraceWhat::Phase(p) => {
                let _ = writeln!(out, "{},phase,,,,,{p}", e.time);
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
}

//! `asyncsim run --trace-json`: its flags, the trace sinks a variant's
//! engine streams to (the CSV trace, the Perfetto trace, or both through a
//! tee), and publishing the Perfetto traces once the run's time series is
//! known. The trace itself is `reports::perfetto`.

use anyhow::{bail, Context, Result};
use sim_core::engine::Engine;
use sim_core::metrics::Sample;
use std::path::PathBuf;

/// The flags of the Perfetto trace.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TraceJsonArgs {
    /// Also write trace-VARIANT.json: the run in Chrome trace-event JSON,
    /// for ui.perfetto.dev or chrome://tracing (one track per node,
    /// processing steps, message arrows, drops, faults, counters), streamed
    /// to disk, up to --trace-limit events (in the window, timers aside).
    #[arg(long)]
    pub trace_json: bool,
    /// Leave out of trace-VARIANT.json what happened before T ms of
    /// simulated time (counted in the file, not written).
    #[arg(long, value_name = "T", requires = "trace_json")]
    pub trace_from_ms: Option<f64>,
    /// Leave out of trace-VARIANT.json what happened after T ms of
    /// simulated time (counted in the file, not written).
    #[arg(long, value_name = "T", requires = "trace_json")]
    pub trace_to_ms: Option<f64>,
}

/// Milliseconds as nanoseconds: `None` unless finite and not negative.
fn ms_to_ns(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms >= 0.0).then(|| (ms * 1e6).round().min(u64::MAX as f64) as u64)
}

impl TraceJsonArgs {
    /// The window in ns, checked: `--trace-from-ms` and `--trace-to-ms`
    /// are times (finite, not negative), the first not after the second.
    pub fn window(&self) -> Result<(u64, u64)> {
        let check = |flag: &str, v: Option<f64>, default: u64| match v {
            None => Ok(default),
            Some(ms) => {
                ms_to_ns(ms).with_context(|| format!("{flag} {ms}: expected a time in ms of simulated time, 0 or more"))
            }
        };
        let from = check("--trace-from-ms", self.trace_from_ms, 0)?;
        let to = check("--trace-to-ms", self.trace_to_ms, u64::MAX)?;
        if from > to {
            bail!(
                "--trace-from-ms {} is after --trace-to-ms {}: the window would hold nothing",
                self.trace_from_ms.unwrap_or(0.0),
                self.trace_to_ms.unwrap_or(0.0)
            );
        }
        Ok((from, to))
    }
}

/// The engine's own event limit: `limit` (`--trace-limit`) for the CSV
/// trace alone, as ever; none with a Perfetto trace, whose window must see
/// every event (each file then keeps to `limit` itself); 0 (no trace) for
/// neither.
pub fn engine_limit(csv: bool, json: bool, limit: usize) -> usize {
    match (csv, json) {
        (_, true) => usize::MAX,
        (true, false) => limit.max(1),
        (false, false) => 0,
    }
}

/// Streams the trace of `engine`'s run to the CSV file `csv` and/or the
/// Perfetto file `json`; returns the Perfetto trace, to publish with
/// [`publish`] after the run.
pub fn attach(
    engine: &mut Engine,
    csv: Option<&PathBuf>,
    json: Option<&PathBuf>,
    args: &TraceJsonArgs,
    limit: usize,
    variant: &str,
) -> Result<Option<reports::PerfettoTrace>> {
    let csv = match csv {
        Some(path) => Some(
            reports::TraceFile::create(path, engine.names().to_vec())
                .with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => None,
    };
    let Some(path) = json else {
        if let Some(file) = csv {
            engine.stream_trace(Box::new(file));
        }
        return Ok(None);
    };
    let (from_ns, to_ns) = args.window()?;
    let opts = reports::PerfettoOptions { variant: variant.to_string(), from_ns, to_ns, limit: limit.max(1) };
    let trace = reports::PerfettoTrace::create(path, engine.names(), opts)
        .with_context(|| format!("cannot write {}", path.display()))?;
    match csv {
        Some(file) => {
            engine.stream_trace(Box::new(reports::TraceTee(vec![Box::new(file.limited(limit.max(1))), trace.sink()])))
        }
        None => engine.stream_trace(trace.sink()),
    }
    Ok(Some(trace))
}

/// Publishes each variant's Perfetto trace with its time series as
/// counters; warns when the limit cut one.
pub fn publish<'a>(
    traces: Vec<Option<reports::PerfettoTrace>>,
    paths: &[PathBuf],
    samples: impl Iterator<Item = &'a [Sample]>,
    limit: usize,
) -> Result<()> {
    for ((trace, path), samples) in traces.into_iter().zip(paths).zip(samples) {
        let Some(trace) = trace else { continue };
        let stats = trace.finish(samples).with_context(|| format!("cannot write {}", path.display()))?;
        if stats.truncated {
            eprintln!(
                "warning: {} holds only the first {limit} events of its window (--trace-limit); {} more were left out",
                path.display(),
                stats.over_limit
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_checked() {
        let w = |from, to| TraceJsonArgs { trace_json: true, trace_from_ms: from, trace_to_ms: to }.window();
        assert_eq!(w(None, None).unwrap(), (0, u64::MAX));
        assert_eq!(w(Some(1.5), Some(2.0)).unwrap(), (1_500_000, 2_000_000));
        assert_eq!(w(Some(2.0), Some(2.0)).unwrap(), (2_000_000, 2_000_000));
        assert!(w(Some(3.0), Some(2.0)).is_err());
        assert!(w(Some(-1.0), None).is_err());
        assert!(w(None, Some(f64::NAN)).is_err());
        assert!(w(Some(f64::INFINITY), None).is_err());
    }

    #[test]
    fn the_engine_limit_lets_a_window_see_everything() {
        assert_eq!(engine_limit(false, false, 10), 0);
        assert_eq!(engine_limit(true, false, 10), 10);
        assert_eq!(engine_limit(true, false, 0), 1);
        assert_eq!(engine_limit(false, true, 10), usize::MAX);
        assert_eq!(engine_limit(true, true, 10), usize::MAX);
    }
}

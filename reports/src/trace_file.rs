//! A trace streamed to disk as the run records it: each event becomes one
//! CSV row ([`crate::trace_row`], the same text [`crate::trace_csv`] makes
//! in memory) in a buffered temporary file beside the trace's final path,
//! renamed into place when the run is over. Memory stays at the buffer's
//! size however long the trace, and a reader never sees half a trace: a
//! run that fails or is stopped before [`TraceSink::finish`] removes its
//! temporary file (one that is killed leaves it, for the next run's
//! [`crate::tidy_dir`]).

use crate::temp_path;
use sim_core::trace::{TraceEvent, TraceSink};
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

/// The write buffer of a streamed trace.
const BUFFER_BYTES: usize = 64 * 1024;

/// A trace file being written: a [`TraceSink`] for
/// `sim_core::engine::Engine::stream_trace`.
pub struct TraceFile {
    path: PathBuf,
    tmp: PathBuf,
    names: Vec<String>,
    out: Option<BufWriter<File>>,
    /// The row being formatted, reused.
    row: String,
    /// The first write error; later events are not written.
    error: Option<std::io::Error>,
    /// Renamed into place.
    published: bool,
    /// Most events written (see [`TraceFile::limited`]); events past it
    /// are left out and the file is marked truncated.
    limit: usize,
    /// Events written.
    written: usize,
    /// Events were left out past `limit`.
    truncated: bool,
}

impl TraceFile {
    /// Starts the trace that will be `path` (checked by the caller to lie
    /// in the output folder), with node ids resolved to `names`: creates
    /// its temporary file and writes the header.
    pub fn create(path: &Path, names: Vec<String>) -> std::io::Result<TraceFile> {
        let tmp = temp_path(path);
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, File::create(&tmp)?);
        let header = out.write_all(crate::TRACE_HEADER.as_bytes());
        let file = TraceFile {
            path: path.to_path_buf(),
            tmp,
            names,
            out: Some(out),
            row: String::new(),
            error: None,
            published: false,
            limit: usize::MAX,
            written: 0,
            truncated: false,
        };
        header.map(|()| file)
    }

    /// Keeps at most `limit` events, for a trace that shares the run's
    /// events with another sink (the engine's own limit then bounds
    /// neither): the rest are left out and [`TraceSink::truncated`] says so.
    pub fn limited(mut self, limit: usize) -> TraceFile {
        self.limit = limit;
        self
    }

    /// Flushes, syncs and renames the temporary file into place.
    fn publish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let out = self.out.take().expect("published once");
        crate::folder::publish_streamed(out, &self.tmp, &self.path)?;
        self.published = true;
        Ok(())
    }
}

impl TraceSink for TraceFile {
    fn event(&mut self, event: &TraceEvent) {
        let Some(out) = self.out.as_mut().filter(|_| self.error.is_none()) else { return };
        if self.written >= self.limit {
            self.truncated = true;
            return;
        }
        self.written += 1;
        self.row.clear();
        crate::trace_row(&mut self.row, &self.names, event);
        if let Err(e) = out.write_all(self.row.as_bytes()) {
            self.error = Some(e);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.out.as_ref().map_or(0, |o| o.capacity()) + self.row.capacity()
    }

    fn truncated(&self) -> bool {
        self.truncated
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.publish()
    }
}

impl Drop for TraceFile {
    /// A trace that was never published (the run failed, or a write did)
    /// leaves no temporary file behind.
    fn drop(&mut self) {
        if !self.published {
            drop(self.out.take());
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

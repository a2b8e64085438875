//! One trace, two files: a [`TraceSink`] that hands every event to each of
//! several sinks (the CSV trace and the Perfetto trace of one variant),
//! because the engine streams to one sink. It adds no bound of its own:
//! each sink keeps its own limit.

use sim_core::trace::{TraceEvent, TraceSink};

/// Every event goes to every sink, in order.
pub struct TraceTee(pub Vec<Box<dyn TraceSink>>);

impl TraceSink for TraceTee {
    fn event(&mut self, event: &TraceEvent) {
        for sink in &mut self.0 {
            sink.event(event);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.0.iter().map(|s| s.memory_bytes()).sum()
    }

    fn truncated(&self) -> bool {
        self.0.iter().any(|s| s.truncated())
    }

    /// Finishes every sink, even after one failed; reports the first error.
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        let mut first = Ok(());
        for sink in self.0 {
            let done = sink.finish();
            if first.is_ok() {
                first = done;
            }
        }
        first
    }
}

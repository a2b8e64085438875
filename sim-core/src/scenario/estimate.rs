//! The pre-flight estimate: before a run, what it will roughly cost.
//!
//! From the rates, counts, durations and sizes in a resolved scenario it
//! estimates the memory the nodes' structures take from the start, the
//! messages and events the run will produce, and whether a backlog can
//! grow (messages arriving faster than the consumers can serve them).
//! Static sizes alone over the memory budget are refused at validation
//! (a log of 50 topics x 100,000 partitions x 64 replicas), since no run
//! could even start; everything that depends on rates and time is a
//! warning only, and the run's bounds stop it if the warning comes true.
//!
//! Left out: the estimate is rough by design (within a small factor). It
//! assumes a fixed number of events per message, and ignores retries,
//! redeliveries, faults and the drain; it does not model log retention.

use super::schema::Config;
use crate::kind::{Footprint, Invalid};

/// Engine events per produced message, roughly: the producer's timer, the
/// publish, its ack, the delivery, the processing timer and the consumer's
/// ack, plus some slack for confirms and samples.
const EVENTS_PER_MESSAGE: f64 = 8.0;
/// What a node costs whatever its kind: the component, its metrics, its
/// name, its timers' index.
const BYTES_PER_NODE: f64 = 1024.0;
/// A configured link: its model, and the stream it draws from once used.
const BYTES_PER_LINK: f64 = 512.0;
/// A message waiting in a backlog: its queue entry, the ledger's pending
/// record and a share of the event queue.
const BYTES_PER_WAITING: f64 = 160.0;
/// Events the engine dispatches per second of wall time, conservatively.
const EVENTS_PER_WALL_SECOND: f64 = 5e6;
/// Runs expected to compute longer than this get a warning.
const LONG_RUN_S: f64 = 60.0;

/// What a run of one configuration will roughly cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Bytes the nodes and links take before the first event.
    pub static_bytes: f64,
    /// The run phase's length in seconds, if it can be told in advance.
    pub run_s: Option<f64>,
    /// Messages produced.
    pub messages: f64,
    /// Events dispatched.
    pub events: f64,
    /// Mean messages per second in, and what the consumers can serve.
    pub in_per_s: f64,
    /// See `in_per_s`.
    pub out_per_s: f64,
    /// Bytes a backlog would hold at the end of the run phase.
    pub backlog_bytes: f64,
}

/// Estimates a run of `c`.
pub fn estimate(c: &Config) -> Estimate {
    let nodes = c.topology().nodes();
    let prints: Vec<(Option<Option<u64>>, Footprint)> =
        nodes.iter().map(|n| (n.kind_ref().messages(n), n.kind_ref().footprint(n))).collect();
    let static_bytes = nodes.len() as f64 * BYTES_PER_NODE
        + c.network.links.len() as f64 * 2.0 * BYTES_PER_LINK
        + prints.iter().map(|(_, f)| f.bytes).sum::<f64>();
    // Without a duration the run phase lasts until the slowest source is done.
    let run_s = c.run.duration_ms.map(|d| d.0 / 1000.0).or_else(|| {
        let mut longest: f64 = 0.0;
        for (messages, f) in &prints {
            match messages {
                Some(Some(m)) if f.produces_per_s > 0.0 => longest = longest.max(*m as f64 / f.produces_per_s),
                Some(None) => return None,
                _ => {}
            }
        }
        Some(longest)
    });
    let mut messages = 0.0;
    for (count, f) in &prints {
        let Some(count) = count else { continue };
        let by_rate = run_s.map(|s| f.produces_per_s * s);
        messages += match (count, by_rate) {
            (Some(m), Some(r)) => (*m as f64).min(r),
            (Some(m), None) => *m as f64,
            (None, Some(r)) => r,
            (None, None) => 0.0,
        };
    }
    let samples = run_s.unwrap_or(0.0) * 1000.0 / c.run.sample_interval_ms.0;
    let in_per_s: f64 = prints.iter().map(|(_, f)| f.produces_per_s).sum();
    let out_per_s: f64 = prints.iter().map(|(_, f)| f.serves_per_s).sum();
    let backlog_bytes =
        if in_per_s > out_per_s { (in_per_s - out_per_s) * run_s.unwrap_or(0.0) * BYTES_PER_WAITING } else { 0.0 };
    Estimate {
        static_bytes,
        run_s,
        messages,
        events: messages * EVENTS_PER_MESSAGE + samples,
        in_per_s,
        out_per_s,
        backlog_bytes,
    }
}

/// The memory budget of `c`, in bytes.
fn budget(c: &Config) -> f64 {
    c.run.max_memory_mb as f64 * 1024.0 * 1024.0
}

/// A byte count for people.
fn bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A count for people: exact below a million, else in powers of ten.
fn count(n: f64) -> String {
    if n < 1e6 {
        format!("{n:.0}")
    } else {
        format!("{n:.1e}")
    }
}

/// Refuses a scenario whose static sizes alone exceed its memory budget:
/// no run of it could start. Names the node that takes the most.
pub(super) fn check_static(c: &Config) -> Result<(), Invalid> {
    let e = estimate(c);
    if e.static_bytes <= budget(c) {
        return Ok(());
    }
    let nodes = c.topology().nodes();
    let largest = nodes.iter().max_by(|a, b| {
        let (fa, fb) = (a.kind_ref().footprint(a).bytes, b.kind_ref().footprint(b).bytes);
        fa.total_cmp(&fb)
    });
    let message = format!(
        "these sizes alone need about {} before the first event, over the memory budget of {} MiB \
         (run.max_memory_mb or --max-memory-mb); make them smaller, or raise the budget if the machine has the memory",
        bytes(e.static_bytes),
        c.run.max_memory_mb
    );
    match largest {
        Some(node) if node.kind_ref().footprint(node).bytes * 2.0 > e.static_bytes => {
            Err(Invalid::at(&[node.section(), node.name()], message))
        }
        _ => Err(Invalid::at(&[], message)),
    }
}

/// What a user should know before running `c`: a run that will stop at a
/// bound, take long, or grow a backlog past the memory budget.
pub fn warnings(c: &Config) -> Vec<String> {
    let e = estimate(c);
    let mut out = Vec::new();
    let max_events = c.run.max_events as f64;
    if e.events > max_events {
        out.push(format!(
            "expect about {} events ({} messages), more than run.max_events = {}: the run will stop there (exit 3); \
             raise run.max_events or shorten the run",
            count(e.events),
            count(e.messages),
            c.run.max_events
        ));
    } else if e.events / EVENTS_PER_WALL_SECOND > LONG_RUN_S {
        out.push(format!(
            "expect about {} events ({} messages): roughly {:.0} minutes of computing for each variant and seed",
            count(e.events),
            count(e.messages),
            (e.events / EVENTS_PER_WALL_SECOND / 60.0).ceil()
        ));
    }
    if e.backlog_bytes > budget(c) {
        out.push(format!(
            "messages arrive faster than the consumers can serve them (about {}/s in, {}/s out): the backlog \
             could hold about {} by the end of the run, over the memory budget of {} MiB; the run will stop at \
             the bound (exit 3) with what it measured",
            count(e.in_per_s),
            count(e.out_per_s),
            bytes(e.backlog_bytes),
            c.run.max_memory_mb
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn config(body: &str) -> Config {
        let text = format!("name = \"e\"\nconcept = \"estimates\"\n{body}\n[brokers.broker]\nkind = \"queue\"\n");
        let s = Scenario::parse("e.toml", &text).expect("a valid scenario");
        s.configs().expect("valid").remove(0).1
    }

    const CONSUMER: &str = "[consumers.c]\nsource = \"broker\"\nprocessing = { dist = \"constant\", ms = 10 }\n";

    #[test]
    fn a_counted_producer_sets_the_length_of_the_run_and_its_messages() {
        let p = "[producers.p]\ntarget = \"broker\"\narrival = { process = \"poisson\", rate_per_s = 50 }\nmessages = 1000\n";
        let e = estimate(&config(&format!("{p}{CONSUMER}")));
        assert_eq!(e.run_s, Some(20.0));
        assert_eq!(e.messages, 1000.0);
        assert_eq!((e.in_per_s, e.out_per_s), (50.0, 100.0));
        assert_eq!(e.backlog_bytes, 0.0, "the consumer keeps up");
        assert!(warnings(&config(&format!("{p}{CONSUMER}"))).is_empty());
    }

    #[test]
    fn a_duration_caps_the_messages_and_an_overload_grows_a_backlog() {
        let p = "[run]\nduration_ms = 10_000\n[producers.p]\ntarget = \"broker\"\n\
                 arrival = { process = \"bursty\", on_rate_per_s = 1000, on_ms = 1000, off_ms = 3000 }\n";
        let e = estimate(&config(&format!("{p}{CONSUMER}")));
        assert_eq!(e.run_s, Some(10.0));
        assert_eq!(e.in_per_s, 250.0, "a quarter of the time at 1000/s");
        assert_eq!(e.messages, 2500.0);
        assert_eq!(e.backlog_bytes, 150.0 * 10.0 * BYTES_PER_WAITING);
    }

    #[test]
    fn static_sizes_count_every_partition_of_every_topic_on_every_replica() {
        let log = |partitions: u32, replicas: u32| {
            let body = format!(
                "[run]\nduration_ms = 1000\n[brokers.log]\nkind = \"log\"\nreplicas = {replicas}\n\
                 [brokers.log.topics.t]\npartitions = {partitions}\n"
            );
            estimate(&config(&body)).static_bytes
        };
        let base = log(1, 1);
        assert!(log(1001, 1) - base > 1000.0 * 100.0, "a partition costs at least 100 bytes");
        let replica = (log(1000, 3) - log(1000, 1)) / 2000.0;
        assert!(replica >= 17.0, "each replica of each partition adds its state: {replica}");
    }

    #[test]
    fn counts_and_bytes_read_as_people_write_them() {
        assert_eq!(count(999_999.0), "999999");
        assert_eq!(count(2.5e9), "2.5e9");
        assert_eq!(bytes(512.0), "512.0 bytes");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}

//! `asyncsim explain FILE --message ID`: the story of one produced message,
//! told from the run's trace (the events `--trace` writes to
//! trace-VARIANT.csv), filtered by the message's id as the run goes, so a
//! long run costs the memory of one message's events: every hop (sent,
//! dropped and why, copied by the network, arrived), every send again (a
//! sender's retry, a broker's redelivery, a forward to a dead-letter
//! queue), every start of processing and application, with times, the
//! crashes of the nodes it met and the faults that began meanwhile; then
//! its verdict.
//!
//! The verdict is the ledger's where the run output gives it: a lost
//! message's cause is the ledger's own (`RunOutput::lost`). A duplicate's
//! cause is the ledger's when every duplicate of its effect domain has the
//! same cause; otherwise it is read off the trace (the last copy before the
//! extra application: a network copy, a sender's send again, a broker's
//! delivery again) and said so. What the trace cannot show: a wire message
//! that carries a batch is traced under its first message's id, so a
//! message inside someone else's batch shows its processing but not those
//! hops.

use super::words;
use super::Explained;
use anyhow::{bail, Result};
use sim_core::message::MsgId;
use sim_core::trace::{TraceEvent, TraceSink, TraceWhat, Wire};
use std::sync::{Arc, Mutex};

/// Most fault and crash events kept for context.
const MAX_CONTEXT: usize = 1_000;

/// Collects the trace events of one message (and the faults and crashes,
/// for context) while the run streams its trace.
#[derive(Clone)]
pub struct Kept(Arc<Mutex<Vec<TraceEvent>>>, MsgId);

impl Kept {
    /// A collector of message `id`'s events.
    pub fn new(id: MsgId) -> Kept {
        Kept(Arc::new(Mutex::new(Vec::new())), id)
    }

    /// The sink to hand to the engine.
    pub fn sink(&self) -> Box<dyn TraceSink> {
        Box::new(self.clone())
    }

    fn events(&self) -> Vec<TraceEvent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl TraceSink for Kept {
    fn event(&mut self, event: &TraceEvent) {
        let mine = match &event.what {
            TraceWhat::Send(w, _) | TraceWhat::Duplicate(w) | TraceWhat::Arrive(w) | TraceWhat::Drop(w, _) => {
                w.id == Some(self.1)
            }
            TraceWhat::Process(_, id, _) => *id == self.1,
            TraceWhat::Crash(..) | TraceWhat::Fault(..) => true,
            _ => false,
        };
        if mine {
            let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let context = matches!(event.what, TraceWhat::Crash(..) | TraceWhat::Fault(..));
            if !context || kept.len() < MAX_CONTEXT {
                kept.push(event.clone());
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.0.lock().map_or(0, |k| k.capacity() * std::mem::size_of::<TraceEvent>())
    }

    fn finish(self: Box<Self>) -> std::io::Result<()> {
        Ok(())
    }
}

/// Milliseconds, for the story.
fn ms(t: u64) -> String {
    format!("{:>10.3} ms", t as f64 / 1e6)
}

/// What the story knows of the run.
struct Teller<'a> {
    e: &'a Explained,
    /// Effect domain of each node, by id (`None`: it applies no effect).
    domain: Vec<Option<String>>,
    /// The sends seen so far: (from, to, kind).
    sent: Vec<(u32, u32, &'static str)>,
    /// The nodes the message met.
    met: Vec<u32>,
}

impl Teller<'_> {
    fn name(&self, node: u32) -> &str {
        self.e.out.names.get(node as usize).map_or("?", String::as_str)
    }

    fn is_broker(&self, node: u32) -> bool {
        let topology = self.e.config.topology();
        topology.nodes().get(node as usize).is_some_and(|n| n.section() == "brokers")
    }

    fn hop(&self, w: &Wire) -> String {
        format!("{} -> {} `{}`", self.name(w.from), self.name(w.to), w.msg)
    }

    /// One line of the story, or none for an event it does not tell.
    fn line(&mut self, ev: &TraceEvent) -> Option<String> {
        let text = match &ev.what {
            TraceWhat::Send(w, delay) => {
                let again = self.sent.contains(&(w.from, w.to, w.msg));
                self.sent.push((w.from, w.to, w.msg));
                self.met.extend([w.from, w.to]);
                let why = match (again, w.msg.ends_with("ack")) {
                    (false, _) => String::new(),
                    (true, true) => " again (answering a copy)".to_string(),
                    (true, false) if self.is_broker(w.from) => " again: a redelivery".to_string(),
                    (true, false) => " again: a retry".to_string(),
                };
                format!("{} sent{why} (on the wire for {:.3} ms)", self.hop(w), *delay as f64 / 1e6)
            }
            TraceWhat::Duplicate(w) => format!("{}: the network made a second copy", self.hop(w)),
            TraceWhat::Arrive(w) => format!("{} arrived", self.hop(w)),
            TraceWhat::Drop(w, why) => format!("{} DROPPED: {}", self.hop(w), drop_words(why.name())),
            TraceWhat::Process(node, _, false) => format!("{} started processing it", self.name(*node)),
            TraceWhat::Process(node, _, true) => {
                let d = self.domain.get(*node as usize).cloned().flatten().unwrap_or_default();
                format!("{} APPLIED its effect (effect domain `{d}`)", self.name(*node))
            }
            TraceWhat::Crash(node, up) if self.met.contains(node) => {
                format!("{} {}", self.name(*node), if *up { "restarted" } else { "CRASHED" })
            }
            _ => return None,
        };
        Some(format!("    at {}  {text}\n", ms(ev.time)))
    }
}

fn drop_words(reason: &str) -> &'static str {
    match reason {
        "loss" => "the network lost it",
        "partition" => "a network partition separated the two nodes",
        _ => "the receiver was down",
    }
}

/// The faults that began while the message was about, as context lines.
fn context(events: &[TraceEvent], from: u64, to: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for ev in events.iter().filter(|e| e.time >= from && e.time <= to) {
        if let TraceWhat::Fault(label, f) = &ev.what {
            if f.name() != "skipped" {
                out.push((ev.time, format!("    at {}  (fault `{label}` {})\n", ms(ev.time), f.name())));
            }
        }
    }
    out
}

/// The story of message `id` in one variant's run; an error (exit 2) when
/// the run produced no such message.
pub fn tell(e: &Explained, kept: &Kept, id: MsgId) -> Result<String> {
    let produced = e.summary.counts.produced;
    if id >= produced {
        let range = if produced == 0 { "it produced none".to_string() } else { format!("ids 0 to {}", produced - 1) };
        bail!("variant `{}` has no message {id}: it produced {produced} messages ({range})", e.variant.name);
    }
    let (names, of) = e.config.topology().domains();
    let domain = (0..e.out.names.len())
        .map(|i| {
            let n = e.config.topology().nodes().get(i)?;
            n.kind_ref().domain(n, e.config.topology())?;
            of.get(i).and_then(|&d| names.get(d as usize).cloned())
        })
        .collect();
    let mut teller = Teller { e, domain, sent: Vec::new(), met: Vec::new() };
    let events = kept.events();
    let mut s = format!("\nVariant `{}`: the story of message {id}\n", e.variant.name);
    let mut lines = Vec::new();
    for ev in &events {
        if let Some(l) = teller.line(ev) {
            lines.push((ev.time, l));
        }
    }
    let own: Vec<u64> = lines.iter().map(|(t, _)| *t).collect();
    let span = (own.first().copied().unwrap_or(0), own.last().copied().unwrap_or(0));
    // Stable: events of one instant keep their order, a fault first (what
    // happened at the instant a fault began happened under it).
    let mut all: Vec<(u64, String)> = context(&events, span.0, span.1);
    all.extend(lines);
    all.sort_by_key(|(t, _)| *t);
    if all.is_empty() {
        s.push_str("    (the trace holds no event of it on the wire)\n");
    }
    for (_, l) in &all {
        s.push_str(l);
    }
    s.push_str(&verdict(&teller, &events, id));
    Ok(s)
}

/// Applications per effect domain, in order of the domains' first.
fn applications(t: &Teller, events: &[TraceEvent]) -> Vec<(String, Vec<u64>)> {
    let mut per: Vec<(String, Vec<u64>)> = Vec::new();
    for ev in events {
        if let TraceWhat::Process(node, _, true) = ev.what {
            let d = t.domain.get(node as usize).cloned().flatten().unwrap_or_else(|| "default".into());
            match per.iter_mut().find(|(n, _)| *n == d) {
                Some((_, times)) => times.push(ev.time),
                None => per.push((d, vec![ev.time])),
            }
        }
    }
    per
}

/// The verdict: lost and why, duplicated and why, or applied once.
fn verdict(t: &Teller, events: &[TraceEvent], id: MsgId) -> String {
    let e = t.e;
    let applied = applications(t, events);
    let mut s = String::new();
    if let Ok(i) = e.out.lost.binary_search_by_key(&id, |&(m, _)| m) {
        let cause = e.out.lost[i].1;
        let w = words::loss(cause);
        s.push_str(&format!("  Verdict: LOST [{}]: {}: {}.\n", cause.name(), w.short, w.what));
    }
    for (domain, times) in &applied {
        if times.len() > 1 {
            let code = dup_cause(t, events, domain, times[1]);
            let w = words::named(&code.0, false).map_or(String::new(), |w| format!("{}: {}", w.short, w.what));
            s.push_str(&format!(
                "  Verdict: DUPLICATED in `{domain}`: applied {} times ({} extra) [{}]: {w} ({}).\n",
                times.len(),
                times.len() - 1,
                code.0,
                code.1
            ));
        }
    }
    if s.is_empty() {
        s = settled(e, &applied);
    }
    s
}

/// The verdict of a message neither lost nor duplicated.
fn settled(e: &Explained, applied: &[(String, Vec<u64>)]) -> String {
    let domains = e.summary.domains.len().max(1);
    if applied.len() >= domains {
        return "  Verdict: applied once in every effect domain: neither lost nor duplicated.\n".to_string();
    }
    let c = &e.summary.counts;
    let where_ = if c.send_failed == 0 {
        "still in flight at the end (held somewhere)"
    } else if c.in_flight == 0 {
        "a failed send: its producer was told it did not go through (send_failed)"
    } else {
        "still in flight at the end, or a failed send its producer knew of"
    };
    let done: Vec<&str> = applied.iter().map(|(d, _)| d.as_str()).collect();
    let part = if done.is_empty() { String::new() } else { format!(" (applied in {} only)", done.join(", ")) };
    format!("  Verdict: not applied everywhere{part}, and not lost: {where_}.\n")
}

/// The cause of the extra application at `second` in `domain`: the
/// ledger's when the domain's duplicates all share one, else the last copy
/// the trace shows before it.
fn dup_cause(t: &Teller, events: &[TraceEvent], domain: &str, second: u64) -> (String, &'static str) {
    let e = t.e;
    let by =
        e.summary.domains.get(domain).map(|d| &d.duplicated_by_cause).unwrap_or(&e.summary.counts.duplicated_by_cause);
    if by.len() == 1 {
        let code = by.keys().next().expect("one").to_string();
        return (code, "the ledger's cause of every duplicate in this domain");
    }
    let mut seen: Vec<(u32, u32, &str)> = Vec::new();
    let mut last = None;
    for ev in events.iter().take_while(|ev| ev.time <= second) {
        match &ev.what {
            TraceWhat::Duplicate(_) => last = Some("network_copy"),
            TraceWhat::Send(w, _) if !w.msg.ends_with("ack") => {
                if seen.contains(&(w.from, w.to, w.msg)) {
                    last = Some(if t.is_broker(w.from) { "redelivered" } else { "producer_retry" });
                }
                seen.push((w.from, w.to, w.msg));
            }
            _ => {}
        }
    }
    match last {
        Some(code) => (code.to_string(), "read off the trace: the last copy made before the extra application"),
        None => ("unexplained".to_string(), "the trace shows no copy of it (it may have travelled in a batch)"),
    }
}

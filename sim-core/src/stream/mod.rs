//! Stream processing: windowed aggregation of click events, counted per
//! key (a short code) per window (a minute by default).
//!
//! The `aggregator` kind (`[processors.NAME]`) is the sink of a log
//! consumer (`sink = "NAME"`): the consumer reads the click log and sends
//! each record to it as a sink `Write`; the aggregator counts it in its
//! window ([`windows`]), applies the record's effect in its own domain
//! once per Write it counts, and answers `Written` to every Write, also one
//! it dropped. Each window's result goes to the observer with
//! `ctx.counted((key, window), count)` when it fires, and again on each
//! late update; the truth (`ctx.happened`) comes from the click source,
//! once per click, where it is made.
//!
//! **Event time.** A producer with `event_delay` is a click source: each
//! click happened `event_delay` before it was produced (a phone that
//! buffered it offline), drawn from the message's own draw
//! (`message_draw(id, "event-delay")`), so every variant gives a click the
//! same delay. The event time travels with the record, as a click's
//! payload (or a Kafka record's timestamp) carries it: the simulator keeps
//! it as the message's [`Header::EventTime`] in the run's stores, by
//! message id, rather than in the 16-byte record. A record without
//! an event time (from a source without `event_delay`) counts at its
//! arrival time.
//!
//! **State and crashes.** The aggregator's windows, watermark and dedup
//! ids live in its memory (an in-memory state store without a changelog):
//! a crash of the aggregator loses them, so windows not yet fired are lost
//! (undercount) and a record redelivered after the crash is not known as a
//! duplicate. A crash of the log consumer in front of it loses nothing
//! here: the consumer writes again what it had not committed, which dedup
//! drops and a count without dedup counts twice.
//!
//! **End of input.** In the drain, once no record has come for
//! `end_of_input_ms`, the input counts as ended: the watermark jumps to
//! the end of time and every window fires (Flink's final watermark when a
//! bounded source ends). A record after that is too late.
//!
//! Left out: sliding and session windows, per-partition watermarks (one
//! watermark over every partition, as if the source emitted them in one
//! stream; Flink takes the minimum over partitions), idle-source handling,
//! watermark alignment, side outputs for late data, checkpoints
//! (exactly-once state with the offsets), and state TTL on the dedup ids
//! (kept for the whole run).

mod kind;
#[cfg(test)]
mod tests;
pub mod windows;

pub use kind::{AggregatorKind, AggregatorSpec, WindowTime};
pub use windows::{Bucket, Verdict, WindowRules, Windows};

use crate::dedup::Header;
use crate::engine::{Component, Ctx, Timer};
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::SinkMsg;
use crate::time::{Duration, Time};

/// The metrics an aggregator reports.
pub const METRICS: [&str; 5] = ["late_dropped", "late_updates", "duplicates_dropped", "reordered", "windows_fired"];

/// The default window length, ms (a minute).
pub const DEFAULT_WINDOW_MS: f64 = 60_000.0;

/// The delay between a click and its production, drawn from the
/// message's own uniform draw `u` through `dist` (a stream seeded by the
/// draw, so that every distribution, two-draw ones too, maps the same way).
pub fn event_delay_ns(sampler: &crate::dist::Sampler, u: f64) -> Duration {
    use rand::SeedableRng;
    let mut rng = crate::rng::SimRng::seed_from_u64((u * (1u64 << 53) as f64) as u64);
    sampler.sample_ns(&mut rng)
}

/// What makes a producer a click source: the distribution of its events'
/// delays, and the window length the truth is bucketed by.
#[derive(Debug, Clone)]
pub struct Clicks {
    delay: crate::dist::Sampler,
    window_ns: u64,
}

impl Clicks {
    /// A click source with delays drawn from `delay`, bucketing the truth
    /// by the window of the scenario's aggregators (all have one length),
    /// a minute without any.
    pub fn new(delay: &crate::dist::Dist, build: &mut crate::kind::Build) -> Self {
        let window = build.topology().specs::<AggregatorSpec>().next().map(|(_, s)| s.rules().size);
        Clicks::with_window(delay, window.unwrap_or(crate::time::ms_to_ns(DEFAULT_WINDOW_MS)))
    }

    /// A click source bucketing by windows of `window_ns`.
    pub fn with_window(delay: &crate::dist::Dist, window_ns: u64) -> Self {
        Clicks { delay: delay.sampler(), window_ns: window_ns.max(1) }
    }

    /// Event `id` of `key`, produced now: stamps when it happened and tells
    /// the observer which bucket it belongs to (the truth, once per event,
    /// whatever becomes of its sends). Returns its event time.
    pub fn happened<T: Timer>(&self, ctx: &mut Ctx<T>, id: MsgId, key: u64) -> Time {
        let delay = event_delay_ns(&self.delay, ctx.message_draw(id, "event-delay"));
        let t = ctx.now().saturating_sub(delay);
        ctx.set_header(id, Header::EventTime, t);
        ctx.happened((key, t / self.window_ns));
        t
    }
}

/// An aggregator's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggTimer {
    /// Processing time: window `.0` ends.
    Close(u64),
    /// In the drain, no record came for `end_of_input_ms`: the input ended.
    EndOfInput,
}

impl Timer for AggTimer {
    fn to_word(self) -> u64 {
        match self {
            AggTimer::Close(w) => w << 1,
            AggTimer::EndOfInput => 1,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        Some(if word & 1 == 1 { AggTimer::EndOfInput } else { AggTimer::Close(word >> 1) })
    }
}

/// A running aggregator (see the module doc).
#[derive(Debug)]
pub struct Aggregator {
    windows: Windows,
    end_of_input: Duration,
    /// Processing time: the last window a `Close` timer is set for.
    armed: Option<u64>,
    /// Results to report, reused.
    out: Vec<(Bucket, u64)>,
    /// Firings already added to `windows_fired`.
    fired: u64,
}

impl Aggregator {
    /// An aggregator counting by `rules` (event times from the records'
    /// [`Header::EventTime`]), ending the input after `end_of_input` quiet
    /// in the drain.
    pub fn new(rules: WindowRules, end_of_input: Duration) -> Self {
        Aggregator { windows: Windows::new(rules), end_of_input, armed: None, out: Vec::new(), fired: 0 }
    }

    /// Its windows' state, for tests.
    pub fn windows(&self) -> &Windows {
        &self.windows
    }

    /// Counts record `rec` (one sink Write): applies its effect if counted,
    /// reports the results it fires. The caller answers the Write.
    pub fn write(&mut self, ctx: &mut Ctx<AggTimer>, rec: Record) {
        let rules = self.windows.rules();
        let stamped = if rules.event_time { ctx.header(rec.id, Header::EventTime) } else { None };
        let t = stamped.unwrap_or(ctx.now());
        let verdict = self.windows.add(rec.id, rec.key(), t, &mut self.out);
        match verdict {
            Verdict::Counted { behind, late } => {
                ctx.apply_effect(rec.id);
                if behind {
                    ctx.metric_add("reordered", 1.0);
                }
                if late {
                    ctx.metric_add("late_updates", 1.0);
                }
            }
            Verdict::Duplicate => ctx.metric_add("duplicates_dropped", 1.0),
            Verdict::TooLate => {
                ctx.metric_add("late_dropped", 1.0);
                ctx.discarded(rec.id, LossCause::TooLate);
            }
        }
        if !rules.event_time {
            self.arm_close(ctx);
        }
        if ctx.draining() {
            self.arm_end(ctx);
        }
        self.publish(ctx);
    }

    /// Processing time: a timer at the end of the current window.
    fn arm_close(&mut self, ctx: &mut Ctx<AggTimer>) {
        let w = self.windows.window_of(ctx.now());
        if self.armed.is_some_and(|a| a >= w) {
            return;
        }
        self.armed = Some(w);
        let end = (w + 1).saturating_mul(self.windows.rules().size);
        ctx.set_timer(end - ctx.now(), AggTimer::Close(w));
    }

    /// In the drain: the input ends after `end_of_input` without a record.
    fn arm_end(&mut self, ctx: &mut Ctx<AggTimer>) {
        ctx.cancel_timer(AggTimer::EndOfInput);
        ctx.set_timer(self.end_of_input, AggTimer::EndOfInput);
    }

    /// Reports the results fired since the last call.
    fn publish(&mut self, ctx: &mut Ctx<AggTimer>) {
        for (bucket, count) in self.out.drain(..) {
            ctx.counted(bucket, count);
        }
        let fired = self.windows.fired();
        if fired > self.fired {
            ctx.metric_add("windows_fired", (fired - self.fired) as f64);
            self.fired = fired;
        }
    }
}

impl Component for Aggregator {
    type Timer = AggTimer;

    fn start(&mut self, ctx: &mut Ctx<AggTimer>) {
        if ctx.draining() {
            self.arm_end(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<AggTimer>, from: NodeId, msg: Msg) {
        if let Msg::Sink(SinkMsg::Write { rec, .. }) = msg {
            self.write(ctx, rec);
            // Every write is answered, a dropped one too: the consumer only
            // needs to know it may go on.
            ctx.send(from, SinkMsg::Written { id: rec.id });
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<AggTimer>, timer: AggTimer) {
        match timer {
            AggTimer::Close(w) => self.windows.close_through(w, &mut self.out),
            AggTimer::EndOfInput => self.windows.end(&mut self.out),
        }
        self.publish(ctx);
    }

    fn drain(&mut self, ctx: &mut Ctx<AggTimer>) {
        self.arm_end(ctx);
    }

    fn crash(&mut self) {
        // Every piece of state is in memory (see the module doc).
        self.windows = Windows::new(self.windows.rules());
        self.armed = None;
        self.out.clear();
        self.fired = 0;
    }

    fn memory_bytes(&self) -> usize {
        self.windows.memory_bytes()
    }
}

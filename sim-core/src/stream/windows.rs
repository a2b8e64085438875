//! Tumbling windows counted per key, by event time (with a watermark and
//! an allowed lateness, as Flink's `WindowOperator` with its
//! `EventTimeTrigger` and a bounded-out-of-orderness watermark) or by
//! processing time, with an optional deduplication by event id. Pure
//! state: no context, no clock of its own; the aggregator
//! ([`super::Aggregator`]) feeds it and reports what it returns.
//!
//! Event time, in integer nanoseconds, as Flink does in milliseconds:
//!
//! - window `w` is `[w * size, (w + 1) * size)`; its last instant is
//!   `(w + 1) * size - 1`;
//! - the watermark is the highest event time seen minus
//!   `max_out_of_orderness`, minus one (Flink's
//!   `BoundedOutOfOrdernessWatermarks`); it never goes back. It is updated
//!   after each event (Flink emits it periodically, every 200 ms by
//!   default: the model's watermark is at least as far ahead);
//! - a window fires when the watermark reaches its last instant;
//! - an event is too late, and dropped, when its window's last instant
//!   plus the allowed lateness is at or below the watermark (Flink's
//!   `isWindowLate`); otherwise it is counted, and if the watermark has
//!   passed its window's last instant the window fires again at once (a
//!   late firing: the new result replaces the earlier one);
//! - a window's state is purged once it can take no more events.
//!
//! Processing time: an event counts in the window of its arrival, which
//! fires when the clock passes the window's end (the aggregator's timer);
//! nothing is ever late. Deduplication keeps every id it has counted, for
//! the life of the state (no TTL).

use crate::message::MsgId;
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};

/// A bucket: (key, window index), as the observer names it.
pub type Bucket = (u64, u64);

/// How a [`Windows`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRules {
    /// Window length, ns (above 0).
    pub size: u64,
    /// Event time (true) or processing time (false).
    pub event_time: bool,
    /// Allowed lateness, ns (event time only).
    pub lateness: u64,
    /// Bound on out-of-orderness the watermark waits for, ns.
    pub out_of_order: u64,
    /// Drop an id already counted.
    pub dedup: bool,
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted in its window.
    Counted {
        /// Its event time was at or below the watermark when it came.
        behind: bool,
        /// Its window's end had already passed the watermark: it fired the
        /// window again (or late for the first time for this key).
        late: bool,
    },
    /// Already counted once (dedup): dropped.
    Duplicate,
    /// Past its window's allowed lateness: dropped.
    TooLate,
}

#[derive(Debug, Clone, Copy, Default)]
struct Count {
    n: u64,
    fired: bool,
}

/// The windows' state (see the module doc).
#[derive(Debug, Clone)]
pub struct Windows {
    rules: WindowRules,
    /// Open buckets by (window, key): window first, so firing in watermark
    /// order walks the map from the front.
    open: BTreeMap<(u64, u64), Count>,
    /// The highest event time seen.
    max_seen: Option<Time>,
    /// The watermark; `None` before any event (minus infinity).
    watermark: Option<Time>,
    /// Ids counted (dedup only).
    seen: BTreeSet<MsgId>,
    /// Buckets fired for the first time, for the `windows_fired` figure.
    fired: u64,
}

impl Windows {
    /// Empty windows that count by `rules`.
    pub fn new(rules: WindowRules) -> Self {
        assert!(rules.size > 0, "a window has a length");
        Windows { rules, open: BTreeMap::new(), max_seen: None, watermark: None, seen: BTreeSet::new(), fired: 0 }
    }

    /// The rules it counts by.
    pub fn rules(&self) -> WindowRules {
        self.rules
    }

    /// The current watermark (`None`: no event yet).
    pub fn watermark(&self) -> Option<Time> {
        self.watermark
    }

    /// Buckets fired so far (each counted once, at its first firing).
    pub fn fired(&self) -> u64 {
        self.fired
    }

    /// Buckets still held (not yet purged).
    pub fn open_buckets(&self) -> usize {
        self.open.len()
    }

    /// Ids the dedup state holds.
    pub fn seen(&self) -> usize {
        self.seen.len()
    }

    /// The window an instant belongs to.
    pub fn window_of(&self, t: Time) -> u64 {
        t / self.rules.size
    }

    /// The last instant of window `w`.
    fn last_instant(&self, w: u64) -> Time {
        (w + 1).saturating_mul(self.rules.size) - 1
    }

    /// Counts event `id` of `key` at time `t` (its event time, or its
    /// arrival for processing time). Results to report (a late firing, and
    /// the windows a moved watermark fires) are appended to `out`.
    pub fn add(&mut self, id: MsgId, key: u64, t: Time, out: &mut Vec<(Bucket, u64)>) -> Verdict {
        if self.rules.dedup && self.seen.contains(&id) {
            return Verdict::Duplicate;
        }
        let w = self.window_of(t);
        let last = self.last_instant(w);
        let wm = if self.rules.event_time { self.watermark } else { None };
        if wm.is_some_and(|wm| last.saturating_add(self.rules.lateness) <= wm) {
            return Verdict::TooLate;
        }
        if self.rules.dedup {
            self.seen.insert(id);
        }
        let behind = wm.is_some_and(|wm| t <= wm);
        let late = wm.is_some_and(|wm| last <= wm);
        let c = self.open.entry((w, key)).or_default();
        c.n += 1;
        if late {
            // Flink's EventTimeTrigger fires at once for an element whose
            // window the watermark has passed.
            if !c.fired {
                self.fired += 1;
            }
            c.fired = true;
            out.push(((key, w), c.n));
        }
        if self.rules.event_time {
            let max = self.max_seen.map_or(t, |m| m.max(t));
            self.max_seen = Some(max);
            if let Some(next) = max.checked_sub(self.rules.out_of_order + 1) {
                self.advance(next, out);
            }
        }
        Verdict::Counted { behind, late }
    }

    /// Moves the watermark to `to` (never back), fires the windows it
    /// passes and purges those past their lateness.
    pub fn advance(&mut self, to: Time, out: &mut Vec<(Bucket, u64)>) {
        if self.watermark.is_some_and(|wm| wm >= to) {
            return;
        }
        self.watermark = Some(to);
        let (size, lateness) = (self.rules.size, self.rules.lateness);
        let last = |w: u64| (w + 1).saturating_mul(size) - 1;
        for (&(w, key), c) in self.open.iter_mut() {
            if last(w) > to {
                break;
            }
            if !c.fired {
                c.fired = true;
                self.fired += 1;
                out.push(((key, w), c.n));
            }
        }
        self.open.retain(|&(w, _), _| last(w).saturating_add(lateness) > to);
    }

    /// Processing time: fires every bucket of windows up to `w` and purges
    /// them (the clock passed their end).
    pub fn close_through(&mut self, w: u64, out: &mut Vec<(Bucket, u64)>) {
        while let Some((&(win, key), c)) = self.open.first_key_value() {
            if win > w {
                break;
            }
            if !c.fired {
                self.fired += 1;
                out.push(((key, win), c.n));
            }
            self.open.remove(&(win, key));
        }
    }

    /// The input ended: the watermark moves to the end of time (Flink's
    /// final watermark when a bounded source ends), firing every open
    /// bucket; processing-time windows close too.
    pub fn end(&mut self, out: &mut Vec<(Bucket, u64)>) {
        if self.rules.event_time {
            self.advance(Time::MAX, out);
        } else {
            self.close_through(u64::MAX, out);
        }
    }

    /// Approximate bytes held: buckets and dedup ids.
    pub fn memory_bytes(&self) -> usize {
        const ENTRY: usize = 48;
        (self.open.len() + self.seen.len()) * ENTRY
    }
}

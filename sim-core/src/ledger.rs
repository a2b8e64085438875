//! The ledger: the omniscient observer that decides what happened to every
//! message. Components never count loss or duplication themselves; they only
//! report facts as they happen (a message was produced, an effect was
//! applied), and the engine reports what it sees on the wire (an ack reached
//! a producer, a delivery reached a consumer). The ledger turns those facts
//! into the numbers users read, with the definitions in `docs/`:
//!
//! - **lost**: the producer considered it sent (it accepted the broker's
//!   ack while still waiting for it, or sent it fire-and-forget), its effect
//!   was never applied, and it is held nowhere at the end;
//! - **duplicated**: extra applications of an effect (applied twice = 1);
//! - **reordered**: first applications whose production sequence, per
//!   producer and key, is lower than one already applied for the same
//!   producer and key (independent producers promise no order between them,
//!   and neither do Kafka or AMQP);
//! - **latency**: from production to the first application of the effect.
//!
//! Memory: one byte of flags per produced message, plus a record for each
//! message whose effect is not yet applied. An applied message costs its
//! flag byte only, so ten million processed messages cost about 10 MB.

use crate::message::MsgId;
use crate::metrics::LatencyStats;
use crate::time::Time;
use serde::Serialize;
use std::collections::BTreeMap;

const APPLIED: u8 = 1;
const CONFIRMED: u8 = 2;
const ACKED: u8 = 4;
const DELIVERED: u8 = 8;
const STARTED: u8 = 16;

/// The highest key the ledger tracks order for (keys are dense integers).
pub const MAX_KEYS: u64 = 1 << 20;

struct Pending {
    produced_at: Time,
    /// Index into `sequences`: which (producer, key) this message is ordered in.
    stream: usize,
    key_seq: u64,
}

/// Production and application progress of one (producer, key).
#[derive(Default, Clone, Copy)]
struct Sequence {
    produced: u64,
    max_applied: u64,
}

/// The ledger's final verdict on a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Messages produced.
    pub produced: u64,
    /// Messages the broker acknowledged to their producer.
    pub acked: u64,
    /// Messages that reached a consumer at least once.
    pub delivered: u64,
    /// Messages whose effect was applied at least once.
    pub processed: u64,
    /// Considered sent by the producer, never applied, and nowhere at the end.
    pub lost: u64,
    /// Extra applications of effects.
    pub duplicated: u64,
    /// First applications that came after a later message of the same key.
    pub reordered: u64,
    /// Not applied, but still held somewhere (a queue, the network, a
    /// consumer) when the run ended.
    pub in_flight: u64,
    /// Not applied, nowhere, and never considered sent by its producer (the
    /// broker refused it, or its ack never came): the producer knows.
    pub send_failed: u64,
}

/// The omniscient record of every message's life.
#[derive(Default)]
pub struct Ledger {
    flags: Vec<u8>,
    pending: BTreeMap<MsgId, Pending>,
    /// Per producer (by node id), per key: an index into `sequences`.
    streams: Vec<Vec<Option<u32>>>,
    sequences: Vec<Sequence>,
    counts: Counts,
    /// Production to first application.
    pub latency: LatencyStats,
    /// Production to the first start of processing (waiting time).
    pub wait: LatencyStats,
    in_system_area: u128,
    last_change: Time,
    last_applied: Time,
}

impl Ledger {
    fn advance(&mut self, now: Time) {
        let dt = now.saturating_sub(self.last_change);
        self.in_system_area += u128::from(dt) * self.pending.len() as u128;
        self.last_change = now;
    }

    /// Registers a message newly produced by `producer` with `key`;
    /// `confirmed` is true for a fire-and-forget send (the producer considers
    /// it sent at once).
    pub fn produce(&mut self, now: Time, producer: u32, key: u64, confirmed: bool) -> MsgId {
        self.advance(now);
        let id = self.flags.len() as MsgId;
        self.flags.push(if confirmed { CONFIRMED } else { 0 });
        let (p, k) = (producer as usize, key.min(MAX_KEYS - 1) as usize);
        if p >= self.streams.len() {
            self.streams.resize(p + 1, Vec::new());
        }
        if k >= self.streams[p].len() {
            self.streams[p].resize(k + 1, None);
        }
        let stream = match self.streams[p][k] {
            Some(s) => s as usize,
            None => {
                self.sequences.push(Sequence::default());
                let s = self.sequences.len() - 1;
                self.streams[p][k] = Some(s as u32);
                s
            }
        };
        self.sequences[stream].produced += 1;
        let key_seq = self.sequences[stream].produced;
        self.pending.insert(id, Pending { produced_at: now, stream, key_seq });
        self.counts.produced += 1;
        id
    }

    fn flag(&mut self, id: MsgId, bit: u8) -> bool {
        match self.flags.get_mut(id as usize) {
            Some(f) if *f & bit == 0 => {
                *f |= bit;
                true
            }
            _ => false,
        }
    }

    /// A broker's positive ack for `id` reached its producer (a wire fact).
    pub fn acked(&mut self, id: MsgId) {
        if self.flag(id, ACKED) {
            self.counts.acked += 1;
        }
    }

    /// The producer of `id` now considers it sent: it accepted the broker's
    /// ack for a send it was still waiting on. An ack that arrives after the
    /// producer gave up (or forgot, in a crash) does not make it so: such a
    /// message is a failed send, not a lost one.
    pub fn confirm(&mut self, id: MsgId) {
        self.flag(id, CONFIRMED);
    }

    /// A delivery of `id` reached a consumer.
    pub fn delivered(&mut self, id: MsgId) {
        if self.flag(id, DELIVERED) {
            self.counts.delivered += 1;
        }
    }

    /// A consumer started processing `id` (the first start ends its wait).
    pub fn started(&mut self, now: Time, id: MsgId) {
        if self.flag(id, STARTED) {
            if let Some(p) = self.pending.get(&id) {
                self.wait.record(now - p.produced_at);
            }
        }
    }

    /// The effect of `id` was applied (again, perhaps).
    pub fn applied(&mut self, now: Time, id: MsgId) {
        if !self.flag(id, APPLIED) {
            if (id as usize) < self.flags.len() {
                self.counts.duplicated += 1;
            }
            return;
        }
        self.advance(now);
        let p = self.pending.remove(&id).expect("an unapplied message is pending");
        self.counts.processed += 1;
        self.last_applied = now;
        self.latency.record(now - p.produced_at);
        let max = &mut self.sequences[p.stream].max_applied;
        if p.key_seq < *max {
            self.counts.reordered += 1;
        } else {
            *max = p.key_seq;
        }
    }

    /// Counts so far (lost, in flight and failed are settled by [`Ledger::finish`]).
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// When an effect was last applied for the first time.
    pub fn last_applied(&self) -> Time {
        self.last_applied
    }

    /// Messages produced whose effect is not applied yet.
    pub fn unapplied(&self) -> u64 {
        self.pending.len() as u64
    }

    /// The time-average number of produced-but-unapplied messages from time 0
    /// to `now` (the L of Little's law).
    pub fn mean_in_system(&self, now: Time) -> f64 {
        if now == 0 {
            return 0.0;
        }
        let tail = u128::from(now.saturating_sub(self.last_change)) * self.pending.len() as u128;
        (self.in_system_area + tail) as f64 / now as f64
    }

    /// Settles every unapplied message at the end of a run. `held` lists the
    /// messages still somewhere (any order, duplicates allowed).
    pub fn finish(&mut self, held: &mut Vec<MsgId>) -> Counts {
        held.sort_unstable();
        held.dedup();
        let mut c = self.counts.clone();
        for &id in self.pending.keys() {
            if held.binary_search(&id).is_ok() {
                c.in_flight += 1;
            } else if self.flags[id as usize] & CONFIRMED != 0 {
                c.lost += 1;
            } else {
                c.send_failed += 1;
            }
        }
        // Every produced message ends as exactly one of these.
        assert_eq!(c.produced, c.processed + c.lost + c.in_flight + c.send_failed);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_reorders_are_counted_by_the_ledger() {
        let mut l = Ledger::default();
        let a = l.produce(0, 0, 7, true);
        let b = l.produce(1, 0, 7, true);
        let c = l.produce(2, 0, 8, false);
        l.applied(5, b);
        l.applied(6, a); // a was produced before b, same key: reordered
        l.applied(7, a); // second application: duplicated
        let counts = l.finish(&mut vec![]);
        assert_eq!(counts.processed, 2);
        assert_eq!(counts.reordered, 1);
        assert_eq!(counts.duplicated, 1);
        assert_eq!(counts.send_failed, 1, "c was never confirmed: {c}");
        assert_eq!(counts.lost, 0);
    }

    #[test]
    fn unapplied_messages_are_lost_in_flight_or_failed() {
        let mut l = Ledger::default();
        let a = l.produce(0, 0, 0, true);
        let b = l.produce(0, 0, 0, true);
        let c = l.produce(0, 0, 0, false);
        let d = l.produce(0, 0, 0, false);
        let e = l.produce(0, 0, 0, false);
        // d's ack reached a producer still waiting for it; e's came after the
        // producer had given up: on the wire both were acked, but only d was
        // considered sent.
        l.acked(d);
        l.confirm(d);
        l.acked(e);
        let counts = l.finish(&mut vec![b]);
        assert_eq!((counts.lost, counts.in_flight, counts.send_failed), (2, 1, 2), "{a} {c} {e}");
        assert_eq!(counts.acked, 2);
    }

    #[test]
    fn little_area_integrates_the_number_in_system() {
        let mut l = Ledger::default();
        let a = l.produce(0, 0, 0, true);
        let b = l.produce(10, 0, 0, true);
        l.applied(20, a);
        l.applied(30, b);
        // 1 in system for 10 ns, 2 for 10 ns, 1 for 10 ns: area 40 over 40 ns.
        assert_eq!(l.mean_in_system(40), 1.0);
    }
}

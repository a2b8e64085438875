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
//! Memory: one byte of flags per produced message (and one more per effect
//! domain after the first), plus a record for each
//! message whose effect is not yet applied. An applied message costs its
//! flag byte only, so ten million processed messages cost about 10 MB.

use crate::message::MsgId;
use crate::metrics::LatencyStats;
use crate::time::Time;
use serde::Serialize;
use std::collections::BTreeMap;

// Per message.
const CONFIRMED: u8 = 1;
const ACKED: u8 = 2;
const STARTED: u8 = 4;
// Per message and domain. The first domain's bits live in the message's
// own byte (shifted by FIRST_DOMAIN), so a scenario with one domain costs
// one byte per message; each further domain adds a byte.
const APPLIED: u8 = 1;
const DELIVERED: u8 = 2;
const FIRST_DOMAIN: u32 = 3;

/// The highest key the ledger tracks order for (keys are dense integers).
pub const MAX_KEYS: u64 = 1 << 20;

/// Index of an effect domain (see [`Ledger`]).
pub type DomainId = u16;

/// A pending message's share of a B-tree node: its key (8 bytes), its
/// value (32), and the node's slack and bookkeeping.
const PENDING_ENTRY_BYTES: usize = 64;

struct Pending {
    produced_at: Time,
    /// Index into `sequences`: which (producer, key) this message is ordered in.
    stream: usize,
    key_seq: u64,
    /// Domains whose effect is not applied yet.
    remaining: DomainId,
}

/// The ledger's final verdict on a run.
///
/// `produced` and `acked` count messages. The others count effects: with
/// one effect domain they count messages too; with several (a fan-out to
/// three subscribers, say) they are sums over the domains, so that
/// `processed + lost + in_flight + send_failed = produced x domains`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Messages produced.
    pub produced: u64,
    /// Messages the broker acknowledged to their producer.
    pub acked: u64,
    /// Messages that reached a consumer at least once (per domain).
    pub delivered: u64,
    /// Messages whose effect was applied at least once (per domain).
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

/// One effect domain's verdict.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DomainCounts {
    /// Messages that reached a consumer of this domain at least once.
    pub delivered: u64,
    /// Messages whose effect in this domain was applied at least once.
    pub processed: u64,
    /// Considered sent, never applied in this domain, nowhere at the end.
    pub lost: u64,
    /// Extra applications in this domain.
    pub duplicated: u64,
    /// First applications in this domain out of production order within a key.
    pub reordered: u64,
    /// Not applied in this domain, still held somewhere.
    pub in_flight: u64,
    /// Not applied in this domain, and the producer knows the send failed.
    pub send_failed: u64,
    /// Production to first application in this domain.
    pub latency_ms: crate::metrics::LatencySummary,
}

/// One effect domain: where a message's effect must be applied once.
struct Domain {
    name: String,
    flags: Vec<u8>,
    /// Highest production sequence applied, per (producer, key) stream.
    max_applied: Vec<u64>,
    counts: DomainCounts,
    latency: LatencyStats,
}

impl Domain {
    fn new(name: String) -> Self {
        Domain {
            name,
            flags: Vec::new(),
            max_applied: Vec::new(),
            counts: DomainCounts::default(),
            latency: LatencyStats::default(),
        }
    }
}

/// The omniscient record of every message's life.
///
/// A message has an effect in every **effect domain** of the scenario: the
/// state that consumers of one kind change (the orders table, the email
/// outbox, one subscriber's view). A plain queue has one domain; a fan-out
/// to three subscriptions, or two consumer groups on one topic, has one per
/// subscription or group; a service that changes X and tells another to
/// change Y has two. Each domain is judged on its own (lost, duplicated,
/// reordered), and a message applied in some domains but not all at the
/// end is **inconsistent**.
pub struct Ledger {
    flags: Vec<u8>,
    domains: Vec<Domain>,
    pending: BTreeMap<MsgId, Pending>,
    /// Per producer (by node id), per key: an index into `sequences`.
    streams: Vec<Vec<Option<u32>>>,
    /// Per stream: messages produced so far.
    sequences: Vec<u64>,
    produced: u64,
    acked: u64,
    /// Effects not applied yet, over all domains.
    unapplied: u64,
    /// Production to first application (in any domain).
    pub latency: LatencyStats,
    /// Production to the first start of processing (waiting time).
    pub wait: LatencyStats,
    in_system_area: u128,
    last_change: Time,
    last_applied: Time,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(vec!["default".to_string()])
    }
}

impl Ledger {
    /// A ledger with the given effect domains (at least one).
    pub fn new(mut domains: Vec<String>) -> Self {
        if domains.is_empty() {
            domains.push("default".to_string());
        }
        Ledger {
            flags: Vec::new(),
            domains: domains.into_iter().map(Domain::new).collect(),
            pending: BTreeMap::new(),
            streams: Vec::new(),
            sequences: Vec::new(),
            produced: 0,
            acked: 0,
            unapplied: 0,
            latency: LatencyStats::default(),
            wait: LatencyStats::default(),
            in_system_area: 0,
            last_change: 0,
            last_applied: 0,
        }
    }

    /// Bytes of allocated capacity that grow with the run: the per-message
    /// flag vectors, and the pending messages (a B-tree entry's share of
    /// its node, estimated at [`PENDING_ENTRY_BYTES`]).
    pub fn memory_bytes(&self) -> usize {
        let flags: usize = self.flags.capacity() + self.domains.iter().map(|d| d.flags.capacity()).sum::<usize>();
        flags + self.pending.len() * PENDING_ENTRY_BYTES
    }

    fn advance(&mut self, now: Time) {
        let dt = now.saturating_sub(self.last_change);
        self.in_system_area += u128::from(dt) * u128::from(self.unapplied);
        self.last_change = now;
    }

    /// Registers a message newly produced by `producer` with `key`;
    /// `confirmed` is true for a fire-and-forget send (the producer considers
    /// it sent at once).
    pub fn produce(&mut self, now: Time, producer: u32, key: u64, confirmed: bool) -> MsgId {
        self.advance(now);
        let id = self.flags.len() as MsgId;
        self.flags.push(if confirmed { CONFIRMED } else { 0 });
        for d in self.domains.iter_mut().skip(1) {
            d.flags.push(0);
        }
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
                self.sequences.push(0);
                for d in &mut self.domains {
                    d.max_applied.push(0);
                }
                let s = self.sequences.len() - 1;
                self.streams[p][k] = Some(s as u32);
                s
            }
        };
        self.sequences[stream] += 1;
        let key_seq = self.sequences[stream];
        let remaining = self.domains.len() as DomainId;
        self.pending.insert(id, Pending { produced_at: now, stream, key_seq, remaining });
        self.produced += 1;
        self.unapplied += u64::from(remaining);
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

    /// The flag byte of `id` in `domain` and the shift of its bits there.
    fn domain_byte(&mut self, domain: DomainId, id: MsgId) -> Option<(&mut u8, u32)> {
        if domain == 0 {
            self.flags.get_mut(id as usize).map(|f| (f, FIRST_DOMAIN))
        } else {
            self.domains.get_mut(domain as usize).and_then(|d| d.flags.get_mut(id as usize)).map(|f| (f, 0))
        }
    }

    fn domain_flag(&mut self, domain: DomainId, id: MsgId, bit: u8) -> bool {
        match self.domain_byte(domain, id) {
            Some((f, shift)) if *f & (bit << shift) == 0 => {
                *f |= bit << shift;
                true
            }
            _ => false,
        }
    }

    fn is_applied(&self, domain: usize, id: MsgId) -> bool {
        if domain == 0 {
            self.flags[id as usize] & (APPLIED << FIRST_DOMAIN) != 0
        } else {
            self.domains[domain].flags[id as usize] & APPLIED != 0
        }
    }

    /// The number of effect domains.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// A broker's positive ack for `id` reached its producer (a wire fact).
    pub fn acked(&mut self, id: MsgId) {
        if self.flag(id, ACKED) {
            self.acked += 1;
        }
    }

    /// The producer of `id` now considers it sent: it accepted the broker's
    /// ack for a send it was still waiting on. An ack that arrives after the
    /// producer gave up (or forgot, in a crash) does not make it so: such a
    /// message is a failed send, not a lost one.
    pub fn confirm(&mut self, id: MsgId) {
        self.flag(id, CONFIRMED);
    }

    /// A delivery of `id` reached a consumer of `domain`.
    pub fn delivered(&mut self, domain: DomainId, id: MsgId) {
        if self.domain_flag(domain, id, DELIVERED) {
            self.domains[domain as usize].counts.delivered += 1;
        }
    }

    /// A consumer started processing `id` (the first start, in any domain,
    /// ends its wait).
    pub fn started(&mut self, now: Time, id: MsgId) {
        if self.flag(id, STARTED) {
            if let Some(p) = self.pending.get(&id) {
                self.wait.record(now - p.produced_at);
            }
        }
    }

    /// The effect of `id` in `domain` was applied (again, perhaps).
    pub fn applied(&mut self, now: Time, domain: DomainId, id: MsgId) {
        let multi = self.domains.len() > 1;
        if domain as usize >= self.domains.len() {
            return;
        }
        let Some((f, shift)) = self.domain_byte(domain, id) else { return };
        if *f & (APPLIED << shift) != 0 {
            self.domains[domain as usize].counts.duplicated += 1;
            return;
        }
        *f |= APPLIED << shift;
        self.advance(now);
        let d = &mut self.domains[domain as usize];
        // One lookup: the hot path of every run.
        let std::collections::btree_map::Entry::Occupied(mut entry) = self.pending.entry(id) else {
            unreachable!("an unapplied message is pending")
        };
        let p = entry.get_mut();
        let latency = now - p.produced_at;
        d.counts.processed += 1;
        if multi {
            d.latency.record(latency);
        }
        let max = &mut d.max_applied[p.stream];
        if p.key_seq < *max {
            d.counts.reordered += 1;
        } else {
            *max = p.key_seq;
        }
        p.remaining = p.remaining.checked_sub(1).expect("a message is applied once per domain");
        if p.remaining == 0 {
            entry.remove();
        }
        self.unapplied = self.unapplied.checked_sub(1).expect("every unapplied effect was counted");
        self.last_applied = now;
        self.latency.record(latency);
    }

    /// Counts so far, summed over domains (lost, in flight and failed are
    /// settled by [`Ledger::finish`]).
    pub fn counts(&self) -> Counts {
        let mut c = Counts { produced: self.produced, acked: self.acked, ..Counts::default() };
        for d in &self.domains {
            c.delivered += d.counts.delivered;
            c.processed += d.counts.processed;
            c.duplicated += d.counts.duplicated;
            c.reordered += d.counts.reordered;
        }
        c
    }

    /// Messages produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Effects applied so far (first applications, over all domains).
    pub fn processed(&self) -> u64 {
        self.domains.iter().map(|d| d.counts.processed).sum()
    }

    /// When an effect was last applied for the first time.
    pub fn last_applied(&self) -> Time {
        self.last_applied
    }

    /// Effects not applied yet, over all domains (messages, with one domain).
    pub fn unapplied(&self) -> u64 {
        self.unapplied
    }

    /// The time-average number of effects produced but not applied, from
    /// time 0 to `now` (the L of Little's law; messages, with one domain).
    pub fn mean_in_system(&self, now: Time) -> f64 {
        if now == 0 {
            return 0.0;
        }
        let tail = u128::from(now.saturating_sub(self.last_change)) * u128::from(self.unapplied);
        (self.in_system_area + tail) as f64 / now as f64
    }

    /// Settles every unapplied effect at the end of a run. `held` lists the
    /// messages still somewhere, for every domain; `held_in` those held for
    /// one domain only (any order, duplicates allowed).
    pub fn finish(&mut self, held: &mut Vec<MsgId>, held_in: &mut Vec<(MsgId, DomainId)>) -> Verdict {
        held.sort_unstable();
        held.dedup();
        held_in.sort_unstable();
        held_in.dedup();
        for &id in self.pending.keys() {
            let is_held = held.binary_search(&id).is_ok();
            let confirmed = self.flags[id as usize] & CONFIRMED != 0;
            for i in 0..self.domains.len() {
                if self.is_applied(i, id) {
                    continue;
                }
                let d = &mut self.domains[i];
                if is_held || held_in.binary_search(&(id, i as DomainId)).is_ok() {
                    d.counts.in_flight += 1;
                } else if confirmed {
                    d.counts.lost += 1;
                } else {
                    d.counts.send_failed += 1;
                }
            }
        }
        let mut c = self.counts();
        let mut domains = BTreeMap::new();
        let multi = self.domains.len() > 1;
        for d in &self.domains {
            c.lost += d.counts.lost;
            c.in_flight += d.counts.in_flight;
            c.send_failed += d.counts.send_failed;
            let dc = &d.counts;
            // Every produced message ends as exactly one of these, per domain.
            assert_eq!(self.produced, dc.processed + dc.lost + dc.in_flight + dc.send_failed);
            let mut dc = dc.clone();
            dc.latency_ms = if multi { d.latency.summary() } else { self.latency.summary() };
            domains.insert(d.name.clone(), dc);
        }
        // Applied in some domains and not in others.
        let mut inconsistent = 0;
        if multi {
            for p in self.pending.values() {
                if (p.remaining as usize) < self.domains.len() {
                    inconsistent += 1;
                }
            }
        }
        Verdict { counts: c, domains, inconsistent }
    }
}

/// What [`Ledger::finish`] settles.
pub struct Verdict {
    /// Totals over the domains.
    pub counts: Counts,
    /// Each domain's counts, by name.
    pub domains: BTreeMap<String, DomainCounts>,
    /// Messages whose effect was applied in some domains but not in all.
    pub inconsistent: u64,
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
        l.applied(5, 0, b);
        l.applied(6, 0, a); // a was produced before b, same key: reordered
        l.applied(7, 0, a); // second application: duplicated
        let counts = l.finish(&mut vec![], &mut vec![]).counts;
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
        let counts = l.finish(&mut vec![b], &mut vec![]).counts;
        assert_eq!((counts.lost, counts.in_flight, counts.send_failed), (2, 1, 2), "{a} {c} {e}");
        assert_eq!(counts.acked, 2);
    }

    #[test]
    fn little_area_integrates_the_number_in_system() {
        let mut l = Ledger::default();
        let a = l.produce(0, 0, 0, true);
        let b = l.produce(10, 0, 0, true);
        l.applied(20, 0, a);
        l.applied(30, 0, b);
        // 1 in system for 10 ns, 2 for 10 ns, 1 for 10 ns: area 40 over 40 ns.
        assert_eq!(l.mean_in_system(40), 1.0);
    }

    #[test]
    fn each_domain_is_judged_alone_and_partial_effects_are_inconsistent() {
        let mut l = Ledger::new(vec!["x".into(), "y".into()]);
        let a = l.produce(0, 0, 0, true);
        let b = l.produce(1, 0, 0, true);
        let c = l.produce(2, 0, 0, true);
        l.applied(3, 0, a);
        l.applied(4, 1, a);
        l.applied(5, 1, a); // y applied a twice
        l.applied(6, 0, b); // x changed, y never told
        let v = l.finish(&mut vec![], &mut vec![]);
        assert_eq!(v.domains["x"].processed, 2);
        assert_eq!(v.domains["y"].processed, 1);
        assert_eq!(v.domains["y"].duplicated, 1);
        assert_eq!((v.domains["x"].lost, v.domains["y"].lost), (1, 2), "{c}");
        assert_eq!(v.counts.produced, 3);
        assert_eq!(v.counts.processed + v.counts.lost, 6, "effects balance: produced x domains");
        assert_eq!(v.inconsistent, 1, "only b is applied in one domain and not the other");
    }
}

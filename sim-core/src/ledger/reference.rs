//! The ledger as it was before the sliding window: one flag byte per
//! produced message (one more per extra domain) and a `BTreeMap` of the
//! unapplied ones. Kept, for tests only, as the reference the windowed
//! ledger must agree with on every fact sequence (see `model_tests`).
#![allow(dead_code)]

use super::{
    by_cause, Counts, DeadLetters, DomainCounts, DomainId, DupCause, LossCause, Verdict, ACKED, APPLIED, CONFIRMED,
    DELIVERED, DUP_MASK, DUP_SHIFT, FIRST_DOMAIN, MAX_KEYS, MAX_LOST_LISTED, STARTED,
};
use crate::message::MsgId;
use crate::metrics::LatencyStats;
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};

const PENDING_ENTRY_BYTES: usize = 64;

struct Pending {
    produced_at: Time,
    /// Index into `sequences`: which (producer, key) this message is ordered in.
    stream: usize,
    key_seq: u64,
    /// Domains whose effect is not applied yet.
    remaining: DomainId,
    /// The last thing seen to put it at risk (fits the record's padding).
    cause: LossCause,
}

/// One effect domain: where a message's effect must be applied once.
struct Domain {
    name: String,
    flags: Vec<u8>,
    /// Highest production sequence applied, per (producer, key) stream.
    max_applied: Vec<u64>,
    counts: DomainCounts,
    latency: LatencyStats,
    lost_by: [u64; LossCause::ALL.len()],
    duplicated_by: [u64; DupCause::ALL.len()],
}

impl Domain {
    fn new(name: String) -> Self {
        Domain {
            name,
            flags: Vec::new(),
            max_applied: Vec::new(),
            counts: DomainCounts::default(),
            latency: LatencyStats::default(),
            lost_by: [0; LossCause::ALL.len()],
            duplicated_by: [0; DupCause::ALL.len()],
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
pub(super) struct RefLedger {
    flags: Vec<u8>,
    domains: Vec<Domain>,
    pending: BTreeMap<MsgId, Pending>,
    /// Causes that concern one domain only (they take precedence there over
    /// the message's own), for pending messages.
    domain_causes: BTreeMap<(MsgId, DomainId), LossCause>,
    /// Scratch for the ids a message on the wire carries.
    carried: Vec<MsgId>,
    /// Per producer (by node id), per key: an index into `sequences`.
    streams: Vec<Vec<Option<u32>>>,
    /// Per stream: messages produced so far.
    sequences: Vec<u64>,
    produced: u64,
    acked: u64,
    /// Effects not applied yet, over all domains.
    unapplied: u64,
    /// Production to first application (in any domain).
    pub(super) latency: LatencyStats,
    /// Production to the first start of processing (waiting time).
    pub(super) wait: LatencyStats,
    in_system_area: u128,
    last_change: Time,
    last_applied: Time,
    /// Messages ever put into a dead-letter queue (few: kept by id).
    dead: BTreeSet<MsgId>,
}

impl Default for RefLedger {
    fn default() -> Self {
        RefLedger::new(vec!["default".to_string()])
    }
}

impl RefLedger {
    /// A ledger with the given effect domains (at least one).
    pub(super) fn new(mut domains: Vec<String>) -> Self {
        if domains.is_empty() {
            domains.push("default".to_string());
        }
        RefLedger {
            flags: Vec::new(),
            domains: domains.into_iter().map(Domain::new).collect(),
            pending: BTreeMap::new(),
            domain_causes: BTreeMap::new(),
            carried: Vec::new(),
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
            dead: BTreeSet::new(),
        }
    }

    /// Bytes of allocated capacity that grow with the run: the per-message
    /// flag vectors, and the pending messages (a B-tree entry's share of
    /// its node, estimated at [`PENDING_ENTRY_BYTES`]).
    pub(super) fn memory_bytes(&self) -> usize {
        let flags: usize = self.flags.capacity() + self.domains.iter().map(|d| d.flags.capacity()).sum::<usize>();
        flags + (self.pending.len() + self.domain_causes.len() + self.dead.len()) * PENDING_ENTRY_BYTES
    }

    fn advance(&mut self, now: Time) {
        let dt = now.saturating_sub(self.last_change);
        self.in_system_area += u128::from(dt) * u128::from(self.unapplied);
        self.last_change = now;
    }

    /// Registers a message newly produced by `producer` with `key`;
    /// `confirmed` is true for a fire-and-forget send (the producer considers
    /// it sent at once).
    pub(super) fn produce(&mut self, now: Time, producer: u32, key: u64, confirmed: bool) -> MsgId {
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
        self.pending
            .insert(id, Pending { produced_at: now, stream, key_seq, remaining, cause: LossCause::Unexplained });
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
    pub(super) fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// A broker's positive ack for `id` reached its producer (a wire fact).
    pub(super) fn acked(&mut self, id: MsgId) {
        if self.flag(id, ACKED) {
            self.acked += 1;
        }
    }

    /// The producer of `id` now considers it sent: it accepted the broker's
    /// ack for a send it was still waiting on. An ack that arrives after the
    /// producer gave up (or forgot, in a crash) does not make it so: such a
    /// message is a failed send, not a lost one.
    pub(super) fn confirm(&mut self, id: MsgId) {
        self.flag(id, CONFIRMED);
    }

    /// A delivery of `id` reached a consumer of `domain`.
    pub(super) fn delivered(&mut self, domain: DomainId, id: MsgId) {
        if self.domain_flag(domain, id, DELIVERED) {
            self.domains[domain as usize].counts.delivered += 1;
        }
    }

    /// A consumer started processing `id` (the first start, in any domain,
    /// ends its wait).
    pub(super) fn started(&mut self, now: Time, id: MsgId) {
        if self.flag(id, STARTED) {
            if let Some(p) = self.pending.get(&id) {
                self.wait.record(now - p.produced_at);
            }
        }
    }

    /// The effect of `id` in `domain` was applied (again, perhaps).
    pub(super) fn applied(&mut self, now: Time, domain: DomainId, id: MsgId) {
        let multi = self.domains.len() > 1;
        if domain as usize >= self.domains.len() {
            return;
        }
        let Some((f, shift)) = self.domain_byte(domain, id) else { return };
        if *f & (APPLIED << shift) != 0 {
            let cause = (self.flags[id as usize] & DUP_MASK) >> DUP_SHIFT;
            let d = &mut self.domains[domain as usize];
            d.counts.duplicated += 1;
            d.duplicated_by[cause as usize] += 1;
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

    /// Message `id` was put at risk by `cause` (in `domain` only, when
    /// given): if it ends lost there, this explains it, unless something
    /// later does. A crash does not replace `commit_before_process`: the
    /// crash is how that risk turns into a loss.
    pub(super) fn at_risk(&mut self, id: MsgId, cause: LossCause, domain: Option<DomainId>) {
        let Some(p) = self.pending.get_mut(&id) else { return };
        match domain {
            Some(d) => {
                self.domain_causes.insert((id, d), cause);
            }
            None if cause == LossCause::Crash && p.cause == LossCause::CommitBeforeProcess => {}
            None => p.cause = cause,
        }
    }

    /// Every produced message that `fill` appends was put at risk by `cause`
    /// (the payload of a message dropped on the wire, say).
    pub(super) fn all_at_risk(&mut self, fill: impl FnOnce(&mut Vec<MsgId>), cause: LossCause) {
        let mut ids = std::mem::take(&mut self.carried);
        fill(&mut ids);
        for &id in &ids {
            self.at_risk(id, cause, None);
        }
        ids.clear();
        self.carried = ids;
    }

    /// Message `id` was put into a dead-letter queue (again, perhaps):
    /// [`Verdict::dead_letters`] tells what became of it.
    pub(super) fn dead_lettered(&mut self, id: MsgId) {
        if (id as usize) < self.flags.len() {
            self.dead.insert(id);
        }
    }

    /// Another copy of message `id` came to exist because of `cause`: an
    /// application of it after the first, from now on, counts under it.
    pub(super) fn copied(&mut self, id: MsgId, cause: DupCause) {
        if let Some(f) = self.flags.get_mut(id as usize) {
            *f = (*f & !DUP_MASK) | ((cause as u8) << DUP_SHIFT);
        }
    }

    /// Every produced message that `fill` appends was copied because of `cause`.
    pub(super) fn all_copied(&mut self, fill: impl FnOnce(&mut Vec<MsgId>), cause: DupCause) {
        let mut ids = std::mem::take(&mut self.carried);
        fill(&mut ids);
        for &id in &ids {
            self.copied(id, cause);
        }
        ids.clear();
        self.carried = ids;
    }

    /// A node crashed: the messages it held before (`before`) and holds no
    /// more (`after`, both sorted) were lost with its volatile state.
    pub(super) fn crashed(&mut self, before: &[MsgId], after: &[MsgId]) {
        for &id in before {
            if after.binary_search(&id).is_err() {
                self.at_risk(id, LossCause::Crash, None);
            }
        }
    }

    /// Counts so far, summed over domains (lost, in flight and failed are
    /// settled by finish).
    pub(super) fn counts(&self) -> Counts {
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
    pub(super) fn produced(&self) -> u64 {
        self.produced
    }

    /// Effects applied so far (first applications, over all domains).
    pub(super) fn processed(&self) -> u64 {
        self.domains.iter().map(|d| d.counts.processed).sum()
    }

    /// When an effect was last applied for the first time.
    pub(super) fn last_applied(&self) -> Time {
        self.last_applied
    }

    /// Effects not applied yet, over all domains (messages, with one domain).
    pub(super) fn unapplied(&self) -> u64 {
        self.unapplied
    }

    /// The time-average number of effects produced but not applied, from
    /// time 0 to `now` (the L of Little's law; messages, with one domain).
    pub(super) fn mean_in_system(&self, now: Time) -> f64 {
        if now == 0 {
            return 0.0;
        }
        let tail = u128::from(now.saturating_sub(self.last_change)) * u128::from(self.unapplied);
        (self.in_system_area + tail) as f64 / now as f64
    }

    /// Settles every unapplied effect at the end of a run. `held` lists the
    /// messages still somewhere, for every domain; `held_in` those held for
    /// one domain only (any order, duplicates allowed).
    pub(super) fn finish(&mut self, held: &mut Vec<MsgId>, held_in: &mut Vec<(MsgId, DomainId)>) -> Verdict {
        held.sort_unstable();
        held.dedup();
        held_in.sort_unstable();
        held_in.dedup();
        let mut lost = Vec::new();
        let mut acked_lost = 0;
        for (&id, p) in &self.pending {
            let is_held = held.binary_search(&id).is_ok();
            let confirmed = self.flags[id as usize] & CONFIRMED != 0;
            let acked = self.flags[id as usize] & ACKED != 0;
            for i in 0..self.domains.len() {
                if self.is_applied(i, id) {
                    continue;
                }
                let d = &mut self.domains[i];
                if is_held || held_in.binary_search(&(id, i as DomainId)).is_ok() {
                    d.counts.in_flight += 1;
                } else if confirmed {
                    d.counts.lost += 1;
                    let cause = self.domain_causes.get(&(id, i as DomainId)).copied().unwrap_or(p.cause);
                    acked_lost += u64::from(acked && cause.forgets_a_write());
                    d.lost_by[cause as usize] += 1;
                    if lost.len() < MAX_LOST_LISTED && lost.last().is_none_or(|&(last, _)| last != id) {
                        lost.push((id, cause));
                    }
                } else {
                    d.counts.send_failed += 1;
                }
            }
        }
        let mut c = self.counts();
        c.acked_lost = acked_lost;
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
            dc.lost_by_cause = by_cause(&d.lost_by, &LossCause::ALL, LossCause::name);
            dc.duplicated_by_cause = by_cause(&d.duplicated_by, &DupCause::ALL, DupCause::name);
            for (&k, &n) in &dc.lost_by_cause {
                *c.lost_by_cause.entry(k).or_default() += n;
            }
            for (&k, &n) in &dc.duplicated_by_cause {
                *c.duplicated_by_cause.entry(k).or_default() += n;
            }
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
        let dead_letters = self.dead_letters(held, held_in);
        Verdict { counts: c, domains, inconsistent, lost, dead_letters }
    }

    /// What became of the dead-lettered messages, given what is still held
    /// (sorted, as finish leaves them).
    fn dead_letters(&self, held: &[MsgId], held_in: &[(MsgId, DomainId)]) -> DeadLetters {
        let mut d = DeadLetters { dead_lettered: self.dead.len() as u64, ..DeadLetters::default() };
        for &id in &self.dead {
            if !self.pending.contains_key(&id) {
                d.applied += 1;
            } else if held.binary_search(&id).is_ok()
                || (0..self.domains.len()).any(|i| held_in.binary_search(&(id, i as DomainId)).is_ok())
            {
                d.held += 1;
            } else {
                d.lost += 1;
            }
        }
        d
    }
}

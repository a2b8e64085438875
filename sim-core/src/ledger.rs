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
//! **Memory** depends on the messages in flight, not on the messages
//! processed (see [`window`] for the layout and [`archive`]): a dense
//! window of 24-byte slots over the recent ids (plus a byte per extra
//! domain), a sparse map of the old messages still unapplied somewhere
//! (so one lost for good does not pin the window), and, for every message
//! applied everywhere, only the few bits a later fact can still read or
//! change (its ack, its deliveries, the cause of its last copy),
//! run-length encoded: a steady run's are all alike. An M/M/1 run of
//! 100 million messages holds what one of a million does.
//!
//! **Causes.** The verdict stays the ledger's; a cause only explains it.
//! Each pending message keeps the last thing observed to put it at risk
//! ([`LossCause`], a byte in its pending record; a cause that concerns one
//! domain only, such as a subscription's queue deleted, is kept for that
//! domain in a side table and takes precedence there), and each message
//! keeps the last reason another copy of it came to exist ([`DupCause`],
//! three spare bits of its flag byte, so duplicates cost no memory). The
//! engine reports what the wire and crashes show (a dropped message's
//! payload, a network copy, what a crashed node held and no longer holds);
//! components report the rest with [`crate::engine::Fact::Discarded`] and
//! [`crate::engine::Fact::Resent`]. At the end, each lost effect counts
//! under its message's cause (`lost_by_cause`), and each extra application
//! counted under the copy's cause when it happened (`duplicated_by_cause`):
//! the sums equal `lost` and `duplicated` exactly, and what no fact explains
//! is `unexplained` (a component that loses or repeats messages without
//! saying why shows up there).

mod archive;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod reference;
mod window;

use crate::message::MsgId;
use crate::metrics::LatencyStats;
use crate::time::Time;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use window::{Messages, Slot, ARCHIVE_BLOCK, MIN_WINDOW};

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
// The last reason another copy of the message exists (a [`DupCause`]), in
// the three top bits of the message's own byte.
const DUP_SHIFT: u32 = 5;
const DUP_MASK: u8 = 0b1110_0000;

/// Why a message was lost: the last thing observed to put it at risk
/// before the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LossCause {
    /// Nothing recorded explains it.
    Unexplained,
    /// Dropped by the network's random loss (or a loss spike).
    NetworkLoss,
    /// Dropped because a network partition separated sender and receiver.
    Partition,
    /// Arrived at a node that was down.
    CrashedReceiver,
    /// Held in a node's volatile state when the node crashed (a non-durable
    /// queue, a consumer's buffer or work in progress, a forward in memory).
    Crash,
    /// Its offset was committed before it was processed, and the consumer
    /// crashed or lost the partition before processing it (at-most-once).
    CommitBeforeProcess,
    /// Truncated away when a replica that did not have it became leader in
    /// an unclean election.
    UncleanElection,
    /// Truncated away when an in-sync replica that did not have it yet
    /// became leader (a clean election; `acks = "1"` loses so).
    LeaderFailover,
    /// Sent to a partition with no live leader, and nobody answered.
    NoLeader,
    /// Refused by a full queue (`capacity` with `overflow = "reject-publish"`
    /// or `"reject-publish-dlx"`).
    Shed,
    /// Expired in its queue (`ttl_ms`).
    Ttl,
    /// Rejected by a consumer, or returned more than `delivery_limit` times: moved to
    /// the dead-letter broker, or discarded when there is none.
    DeadLetter,
    /// Deleted by a log's retention before the group read it.
    Retention,
    /// Published while a non-durable subscription had no consumer connected.
    NoSubscriber,
    /// Deleted with a non-durable subscription's queue when its last
    /// consumer left.
    SubscriptionDeleted,
    /// Processing failed after an auto-ack (at-most-once): nothing to redeliver.
    ProcessingFailed,
    /// A forward (or a client's request) given up after its retries.
    GaveUp,
    /// Appended, after an election cut the log back, below an offset its
    /// group had already committed or been sent: the group skipped it.
    SkippedOffset,
    /// Written only to replicas' page caches, never to a disk, when a
    /// power loss took those replicas down: no replica kept it.
    Unflushed,
    /// Written to a cluster's leader that a network partition had cut off,
    /// while the cluster went on under a new leader without it; truncated
    /// away when the old leader rejoined as a follower.
    TruncatedAfterPartition,
    /// Published to an exchange with no binding that matches its routing
    /// key: dropped at once (RabbitMQ confirms it all the same).
    Unroutable,
    /// Dead-lettered back into a queue it had been dead-lettered from with
    /// no rejection on the way round: RabbitMQ drops it to end the cycle.
    DeadLetterCycle,
    /// A transient message (AMQP delivery mode 1) in a durable queue when
    /// its broker crashed: only persistent messages survive a restart.
    Transient,
    /// Dropped from the head of a full queue to make room for a newer
    /// publish (`overflow = "drop-head"`, RabbitMQ's default), and not
    /// dead-lettered anywhere that delivered it.
    DroppedHead,
    /// Held by a node lost with its disk (`node-loss`), and by no other
    /// node: a classic queue's messages on its node, or a quorum queue's
    /// when no majority of its replicas survived.
    NodeLost,
    /// Reached a stream processor after its event-time window's allowed
    /// lateness had passed (the watermark was beyond it): dropped uncounted.
    TooLate,
    /// Its processing failed and its consumer, whose policy is to drop
    /// failures (`on_failure = "drop"`), acked it without applying it.
    DroppedOnFailure,
    /// Its processing failed and a log consumer skipped it: its offset was
    /// committed with nothing done (`on_failure = "drop"`, or retries in
    /// place run out with no dead-letter topic).
    SkippedAfterFailure,
}

impl LossCause {
    /// Whether a loss of this cause is a node forgetting what it held
    /// (an election or a truncation cutting a log back, a power loss, a
    /// crash emptying volatile state, a node lost with its disk), as
    /// opposed to a policy dropping it on purpose (a TTL, a full queue, a
    /// consumer's commit before processing or its drop on failure) or the
    /// network losing it in transit. A loss nothing explains counts too.
    /// A message acknowledged to its producer and lost so is an
    /// acknowledged write lost (`acked_lost`).
    pub fn forgets_a_write(self) -> bool {
        matches!(
            self,
            LossCause::Unexplained
                | LossCause::Crash
                | LossCause::UncleanElection
                | LossCause::LeaderFailover
                | LossCause::Unflushed
                | LossCause::TruncatedAfterPartition
                | LossCause::Transient
                | LossCause::NodeLost
        )
    }

    /// Every cause, in order.
    pub const ALL: [LossCause; 28] = [
        LossCause::Unexplained,
        LossCause::NetworkLoss,
        LossCause::Partition,
        LossCause::CrashedReceiver,
        LossCause::Crash,
        LossCause::CommitBeforeProcess,
        LossCause::UncleanElection,
        LossCause::LeaderFailover,
        LossCause::NoLeader,
        LossCause::Shed,
        LossCause::Ttl,
        LossCause::DeadLetter,
        LossCause::Retention,
        LossCause::NoSubscriber,
        LossCause::SubscriptionDeleted,
        LossCause::ProcessingFailed,
        LossCause::GaveUp,
        LossCause::SkippedOffset,
        LossCause::Unflushed,
        LossCause::TruncatedAfterPartition,
        LossCause::Unroutable,
        LossCause::DeadLetterCycle,
        LossCause::Transient,
        LossCause::DroppedHead,
        LossCause::NodeLost,
        LossCause::TooLate,
        LossCause::DroppedOnFailure,
        LossCause::SkippedAfterFailure,
    ];

    /// The name `summary.json` uses.
    pub fn name(self) -> &'static str {
        match self {
            LossCause::Unexplained => "unexplained",
            LossCause::NetworkLoss => "network_loss",
            LossCause::Partition => "partition",
            LossCause::CrashedReceiver => "crashed_receiver",
            LossCause::Crash => "crash",
            LossCause::CommitBeforeProcess => "commit_before_process",
            LossCause::UncleanElection => "unclean_election",
            LossCause::LeaderFailover => "leader_failover",
            LossCause::NoLeader => "no_leader",
            LossCause::Shed => "shed",
            LossCause::Ttl => "ttl",
            LossCause::DeadLetter => "dead_letter",
            LossCause::Retention => "retention",
            LossCause::NoSubscriber => "no_subscriber",
            LossCause::SubscriptionDeleted => "subscription_deleted",
            LossCause::ProcessingFailed => "processing_failed",
            LossCause::GaveUp => "gave_up",
            LossCause::SkippedOffset => "skipped_offset",
            LossCause::Unflushed => "unflushed",
            LossCause::TruncatedAfterPartition => "truncated_after_partition",
            LossCause::Unroutable => "unroutable",
            LossCause::DeadLetterCycle => "dead_letter_cycle",
            LossCause::Transient => "transient",
            LossCause::DroppedHead => "dropped_head",
            LossCause::NodeLost => "node_lost",
            LossCause::TooLate => "too_late",
            LossCause::DroppedOnFailure => "dropped_on_failure",
            LossCause::SkippedAfterFailure => "skipped_after_failure",
        }
    }
}

/// Why an effect was applied again: the last reason another copy of the
/// message came to exist before the extra application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum DupCause {
    /// Nothing recorded explains it.
    Unexplained,
    /// The network delivered a message carrying it twice.
    NetworkCopy,
    /// Its sender (a producer, a forwarding consumer, an outbox relay, a
    /// client) sent it again after an ack or a response did not come.
    ProducerRetry,
    /// A broker delivered it again: after a consumer's crash, timeout, nack
    /// or rebalance, or its own crash (a queue's redelivered flag, a log's
    /// records fetched again below what the group was already sent).
    Redelivered,
    /// Written again by a redone transaction after an aborted one had
    /// written it: a `read_uncommitted` reader can apply both copies.
    AbortedTransaction,
}

impl DupCause {
    /// Every cause, in order.
    pub const ALL: [DupCause; 5] = [
        DupCause::Unexplained,
        DupCause::NetworkCopy,
        DupCause::ProducerRetry,
        DupCause::Redelivered,
        DupCause::AbortedTransaction,
    ];

    /// The name `summary.json` uses.
    pub fn name(self) -> &'static str {
        match self {
            DupCause::Unexplained => "unexplained",
            DupCause::NetworkCopy => "network_copy",
            DupCause::ProducerRetry => "producer_retry",
            DupCause::Redelivered => "redelivered",
            DupCause::AbortedTransaction => "aborted_transaction",
        }
    }
}

// Three bits hold a duplicate's cause.
const _: () = assert!(DupCause::ALL.len() <= 8);

/// Counts by cause name, only the causes that occurred (a map whose values
/// sum to the count it explains).
pub type ByCause = BTreeMap<&'static str, u64>;

/// Sets `bit` in `f`: true if it was not set.
#[inline]
fn set_bit(f: &mut u8, bit: u8) -> bool {
    let new = *f & bit == 0;
    *f |= bit;
    new
}

fn by_cause<C: Copy>(counts: &[u64], all: &[C], name: fn(C) -> &'static str) -> ByCause {
    all.iter().zip(counts).filter(|(_, &n)| n > 0).map(|(&c, &n)| (name(c), n)).collect()
}

/// The highest key the ledger tracks order for (keys are dense integers).
pub const MAX_KEYS: u64 = 1 << 20;

/// Index of an effect domain (see [`Ledger`]).
pub type DomainId = u16;

/// A side-table entry's share of a B-tree node: its key, its value, and
/// the node's slack and bookkeeping.
const PENDING_ENTRY_BYTES: usize = 64;

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
    /// Of `lost`, those whose producer had received a broker's positive ack
    /// and that a node then forgot (see [`LossCause::forgets_a_write`]):
    /// acknowledged writes lost.
    pub acked_lost: u64,
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
    /// `lost` by cause (see [`LossCause`]): only causes that occurred.
    pub lost_by_cause: ByCause,
    /// `duplicated` by cause (see [`DupCause`]): only causes that occurred.
    pub duplicated_by_cause: ByCause,
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
    /// `lost` in this domain by cause: only causes that occurred.
    pub lost_by_cause: ByCause,
    /// `duplicated` in this domain by cause: only causes that occurred.
    pub duplicated_by_cause: ByCause,
}

/// One effect domain: where a message's effect must be applied once.
struct Domain {
    name: String,
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
pub struct Ledger {
    /// Every message's flags, and the record of each unapplied one.
    msgs: Messages,
    domains: Vec<Domain>,
    /// Causes that concern one domain only (they take precedence there over
    /// the message's own), for pending messages.
    domain_causes: BTreeMap<(MsgId, DomainId), LossCause>,
    /// Scratch for the ids a message on the wire carries.
    carried: Vec<MsgId>,
    /// Per producer (by node id), per key: an index into `sequences`.
    streams: Vec<Vec<Option<u32>>>,
    /// Per stream: messages produced so far.
    sequences: Vec<u64>,
    acked: u64,
    /// Production to first application (in any domain).
    pub latency: LatencyStats,
    /// Production to the first start of processing (waiting time).
    pub wait: LatencyStats,
    /// The sum of every message's production time, and of every first
    /// application's time: with the number unapplied they give the area
    /// under the number in system (see [`Ledger::mean_in_system`]) with one
    /// addition per fact.
    produced_at_sum: u128,
    applied_at_sum: u128,
    last_produced: Time,
    last_applied: Time,
    /// Messages ever put into a dead-letter queue (few: kept by id).
    dead: BTreeSet<MsgId>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(vec!["default".to_string()])
    }
}

impl Ledger {
    /// A ledger with the given effect domains (at least one).
    pub fn new(domains: Vec<String>) -> Self {
        Ledger::with_window(domains, MIN_WINDOW, ARCHIVE_BLOCK)
    }

    /// A ledger whose window keeps at least `min_window` ids, and whose
    /// archive is in blocks of `block` ids (small ones in tests, so that
    /// short histories leave the window).
    fn with_window(mut domains: Vec<String>, min_window: usize, block: usize) -> Self {
        if domains.is_empty() {
            domains.push("default".to_string());
        }
        Ledger {
            msgs: Messages::new(domains.len(), min_window, block),
            domains: domains.into_iter().map(Domain::new).collect(),
            domain_causes: BTreeMap::new(),
            carried: Vec::new(),
            streams: Vec::new(),
            sequences: Vec::new(),
            acked: 0,
            latency: LatencyStats::default(),
            wait: LatencyStats::default(),
            produced_at_sum: 0,
            applied_at_sum: 0,
            last_produced: 0,
            last_applied: 0,
            dead: BTreeSet::new(),
        }
    }

    /// Bytes of allocated capacity that grow with the run: the messages'
    /// state (see [`window`]), and the side tables of causes and dead
    /// letters (a B-tree entry's share of its node, estimated at
    /// [`PENDING_ENTRY_BYTES`]).
    pub fn memory_bytes(&self) -> usize {
        self.msgs.memory_bytes() + (self.domain_causes.len() + self.dead.len()) * PENDING_ENTRY_BYTES
    }

    /// Registers a message newly produced by `producer` with `key`;
    /// `confirmed` is true for a fire-and-forget send (the producer considers
    /// it sent at once). Always inlined (the engine calls it from one
    /// place, once per message): out of line, the call, its six saved
    /// registers and the reload of the ledger cost about as much as the body.
    #[inline(always)]
    pub fn produce(&mut self, now: Time, producer: u32, key: u64, confirmed: bool) -> MsgId {
        let id = self.msgs.len();
        let stream = self.stream(producer, key);
        let seq = &mut self.sequences[stream];
        *seq += 1;
        let key_seq = *seq;
        let remaining = self.domains.len() as DomainId;
        let flags = if confirmed { CONFIRMED } else { 0 };
        let cause = LossCause::Unexplained;
        self.msgs.push(Slot { produced_at: now, key_seq, stream: stream as u32, remaining, cause, flags });
        self.produced_at_sum += u128::from(now);
        self.last_produced = now;
        id
    }

    /// The index into `sequences` of (`producer`, `key`), made on first use.
    #[inline]
    fn stream(&mut self, producer: u32, key: u64) -> usize {
        let (p, k) = (producer as usize, key.min(MAX_KEYS - 1) as usize);
        match self.streams.get(p).and_then(|keys| keys.get(k)) {
            Some(&Some(s)) => s as usize,
            _ => self.new_stream(p, k),
        }
    }

    /// [`Ledger::stream`] for a (producer, key) seen for the first time.
    #[cold]
    #[inline(never)]
    fn new_stream(&mut self, p: usize, k: usize) -> usize {
        if p >= self.streams.len() {
            self.streams.resize(p + 1, Vec::new());
        }
        if k >= self.streams[p].len() {
            self.streams[p].resize(k + 1, None);
        }
        match self.streams[p][k] {
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
        }
    }

    /// Sets `bit` of the message's own flags: true if it was not set.
    #[inline]
    fn flag(&mut self, id: MsgId, bit: u8) -> bool {
        self.msgs.with_byte(0, id, |f| set_bit(f, bit)).unwrap_or(false)
    }

    /// Sets `bit` of `id`'s flags in `domain`: true if it was not set.
    #[inline]
    fn domain_flag(&mut self, domain: DomainId, id: MsgId, bit: u8) -> bool {
        if domain as usize >= self.domains.len() {
            return false;
        }
        let bit = bit << if domain == 0 { FIRST_DOMAIN } else { 0 };
        self.msgs.with_byte(domain as usize, id, |f| set_bit(f, bit)).unwrap_or(false)
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
    ///
    /// Inlined: the first domain's delivery of a message in the window is
    /// a bit set and a count; the rest goes to [`Ledger::delivered_general`].
    #[inline]
    pub fn delivered(&mut self, domain: DomainId, id: MsgId) {
        if domain == 0 {
            if let (Some(p), Some(d)) = (self.msgs.slot_mut(id), self.domains.first_mut()) {
                if set_bit(&mut p.flags, DELIVERED << FIRST_DOMAIN) {
                    d.counts.delivered += 1;
                }
                return;
            }
        }
        self.delivered_general(domain, id);
    }

    /// [`Ledger::delivered`] in another domain, or of a message out of the window.
    #[inline(never)]
    fn delivered_general(&mut self, domain: DomainId, id: MsgId) {
        if self.domain_flag(domain, id, DELIVERED) {
            self.domains[domain as usize].counts.delivered += 1;
        }
    }

    /// A consumer started processing `id` (the first start, in any domain,
    /// ends its wait).
    #[inline]
    pub fn started(&mut self, now: Time, id: MsgId) {
        match self.msgs.slot_mut(id) {
            // In the window: one look-up serves the flag and the record.
            Some(p) => {
                if set_bit(&mut p.flags, STARTED) && p.remaining > 0 {
                    self.wait.record(now - p.produced_at);
                }
            }
            None => self.started_outside(now, id),
        }
    }

    /// [`Ledger::started`] for a message out of the window: stuck or
    /// settled (a settled message has no wait to end).
    #[cold]
    #[inline(never)]
    fn started_outside(&mut self, now: Time, id: MsgId) {
        if self.flag(id, STARTED) {
            if let Some(p) = self.msgs.unapplied(id) {
                self.wait.record(now - p.produced_at);
            }
        }
    }

    /// The effect of `id` in `domain` was applied (again, perhaps).
    ///
    /// Inlined: the common case, a first application of a message in the
    /// window in a scenario of one domain, is a straight path (the bit, the
    /// counts, the order, the latency); every other case goes to
    /// [`Ledger::applied_general`].
    #[inline]
    pub fn applied(&mut self, now: Time, domain: DomainId, id: MsgId) {
        const BIT: u8 = APPLIED << FIRST_DOMAIN;
        if let (0, [d], Some(p)) = (domain, &mut self.domains[..], self.msgs.slot_mut(id)) {
            if p.flags & BIT == 0 {
                // One domain, not applied there: this settles it.
                debug_assert_eq!(p.remaining, 1);
                p.flags |= BIT;
                p.remaining = 0;
                d.counts.processed += 1;
                let max = &mut d.max_applied[p.stream as usize];
                if p.key_seq < *max {
                    d.counts.reordered += 1;
                } else {
                    *max = p.key_seq;
                }
                let latency = now - p.produced_at;
                self.msgs.settled_in_window();
                if !self.domain_causes.is_empty() {
                    self.forget_domain_causes(id);
                }
                self.applied_at_sum += u128::from(now);
                self.last_applied = now;
                self.latency.record(latency);
                return;
            }
        }
        self.applied_general(now, domain, id);
    }

    /// [`Ledger::applied`] by every rule: any domain, any message.
    ///
    /// The message's state is looked up once: a window index serves the
    /// domain's bit, the record and the settling.
    #[inline(never)]
    fn applied_general(&mut self, now: Time, domain: DomainId, id: MsgId) {
        let multi = self.domains.len() > 1;
        if domain as usize >= self.domains.len() {
            return;
        }
        let bit = APPLIED << if domain == 0 { FIRST_DOMAIN } else { 0 };
        let at = self.msgs.index(id);
        let first = match at {
            Some(i) => set_bit(self.msgs.byte_at(domain as usize, i), bit),
            None => match self.msgs.with_byte(domain as usize, id, |f| set_bit(f, bit)) {
                Some(first) => first,
                None => return,
            },
        };
        if !first {
            self.applied_again(domain, id);
            return;
        }
        let d = &mut self.domains[domain as usize];
        let p = match at {
            Some(i) => self.msgs.at(i),
            None => self.msgs.unapplied(id).expect("an unapplied message is pending"),
        };
        let latency = now - p.produced_at;
        d.counts.processed += 1;
        if multi {
            d.latency.record(latency);
        }
        let max = &mut d.max_applied[p.stream as usize];
        if p.key_seq < *max {
            d.counts.reordered += 1;
        } else {
            *max = p.key_seq;
        }
        p.remaining = p.remaining.checked_sub(1).expect("a message is applied once per domain");
        if p.remaining == 0 {
            self.settled(id, at.is_some());
        }
        self.applied_at_sum += u128::from(now);
        self.last_applied = now;
        self.latency.record(latency);
    }

    /// An application of `id` in `domain` after the first: a duplicate,
    /// counted under the cause of the message's last copy.
    #[cold]
    #[inline(never)]
    fn applied_again(&mut self, domain: DomainId, id: MsgId) {
        let cause = self.msgs.with_byte(0, id, |f| (*f & DUP_MASK) >> DUP_SHIFT).unwrap_or(0);
        let d = &mut self.domains[domain as usize];
        d.counts.duplicated += 1;
        d.duplicated_by[cause as usize] += 1;
    }

    /// `id` (in the window, or stuck) is now applied in every domain: what
    /// only an unapplied message needs goes.
    #[inline]
    fn settled(&mut self, id: MsgId, in_window: bool) {
        if in_window {
            self.msgs.settled_in_window();
        } else {
            self.msgs.settle_stuck(id);
        }
        if !self.domain_causes.is_empty() {
            self.forget_domain_causes(id);
        }
    }

    /// Drops the causes kept for `id` in single domains.
    #[cold]
    fn forget_domain_causes(&mut self, id: MsgId) {
        let keys: Vec<_> = self.domain_causes.range((id, 0)..=(id, DomainId::MAX)).map(|(&k, _)| k).collect();
        for k in keys {
            self.domain_causes.remove(&k);
        }
    }

    /// Message `id` was put at risk by `cause` (in `domain` only, when
    /// given): if it ends lost there, this explains it, unless something
    /// later does. A crash does not replace `commit_before_process`: the
    /// crash is how that risk turns into a loss.
    pub fn at_risk(&mut self, id: MsgId, cause: LossCause, domain: Option<DomainId>) {
        let Some(p) = self.msgs.unapplied(id) else { return };
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
    pub fn all_at_risk(&mut self, fill: impl FnOnce(&mut Vec<MsgId>), cause: LossCause) {
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
    pub fn dead_lettered(&mut self, id: MsgId) {
        if id < self.msgs.len() {
            self.dead.insert(id);
        }
    }

    /// Another copy of message `id` came to exist because of `cause`: an
    /// application of it after the first, from now on, counts under it.
    pub fn copied(&mut self, id: MsgId, cause: DupCause) {
        self.msgs.with_byte(0, id, |f| *f = (*f & !DUP_MASK) | ((cause as u8) << DUP_SHIFT));
    }

    /// Every produced message that `fill` appends was copied because of `cause`.
    pub fn all_copied(&mut self, fill: impl FnOnce(&mut Vec<MsgId>), cause: DupCause) {
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
    pub fn crashed(&mut self, before: &[MsgId], after: &[MsgId]) {
        for &id in before {
            if after.binary_search(&id).is_err() {
                self.at_risk(id, LossCause::Crash, None);
            }
        }
    }

    /// Counts so far, summed over domains (lost, in flight and failed are
    /// settled by [`Ledger::finish`]).
    pub fn counts(&self) -> Counts {
        let mut c = Counts { produced: self.produced(), acked: self.acked, ..Counts::default() };
        for d in &self.domains {
            c.delivered += d.counts.delivered;
            c.processed += d.counts.processed;
            c.duplicated += d.counts.duplicated;
            c.reordered += d.counts.reordered;
        }
        c
    }

    /// Messages produced so far.
    #[inline]
    pub fn produced(&self) -> u64 {
        self.msgs.len()
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
        self.produced() * self.domains.len() as u64 - self.processed()
    }

    /// The time-average number of effects produced but not applied, from
    /// time 0 to `now` (the L of Little's law; messages, with one domain).
    ///
    /// The area under that number up to a time `t` no earlier than any fact
    /// is the sum, over effects, of the time each spent unapplied before
    /// `t`: the first applications' times, plus `t` for each effect still
    /// unapplied, minus every effect's production time (a message's, once
    /// per domain). Up to a `now`
    /// before the last fact, it is the area up to that fact.
    pub fn mean_in_system(&self, now: Time) -> f64 {
        if now == 0 {
            return 0.0;
        }
        let t = now.max(self.last_produced).max(self.last_applied);
        let domains = self.domains.len() as u128;
        let area = self.applied_at_sum + u128::from(t) * u128::from(self.unapplied()) - domains * self.produced_at_sum;
        area as f64 / now as f64
    }

    /// Settles every unapplied effect at the end of a run. `held` lists the
    /// messages still somewhere, for every domain; `held_in` those held for
    /// one domain only (any order, duplicates allowed).
    pub fn finish(&mut self, held: &mut Vec<MsgId>, held_in: &mut Vec<(MsgId, DomainId)>) -> Verdict {
        held.sort_unstable();
        held.dedup();
        held_in.sort_unstable();
        held_in.dedup();
        let mut end = End { held, held_in, lost: Vec::new(), acked_lost: 0, inconsistent: 0 };
        let (domains, causes) = (&mut self.domains, &self.domain_causes);
        self.msgs.each_unapplied(|id, p, extra| end.settle(domains, causes, id, p, extra));
        let End { lost, acked_lost, inconsistent, .. } = end;
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
            assert_eq!(self.produced(), dc.processed + dc.lost + dc.in_flight + dc.send_failed);
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
        let dead_letters = self.dead_letters(held, held_in);
        Verdict { counts: c, domains, inconsistent, lost, dead_letters }
    }

    /// What became of the dead-lettered messages, given what is still held
    /// (sorted, as [`Ledger::finish`] leaves them).
    fn dead_letters(&self, held: &[MsgId], held_in: &[(MsgId, DomainId)]) -> DeadLetters {
        let mut d = DeadLetters { dead_lettered: self.dead.len() as u64, ..DeadLetters::default() };
        for &id in &self.dead {
            if !self.msgs.is_unapplied(id) {
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

/// What [`Ledger::finish`] gathers about the unapplied messages, in id order.
struct End<'a> {
    held: &'a [MsgId],
    held_in: &'a [(MsgId, DomainId)],
    lost: Vec<(MsgId, LossCause)>,
    acked_lost: u64,
    /// Messages applied in some domains and not in others.
    inconsistent: u64,
}

impl End<'_> {
    /// Judges unapplied message `id` in each domain that did not apply it:
    /// in flight, lost or a failed send.
    fn settle(
        &mut self,
        domains: &mut [Domain],
        causes: &BTreeMap<(MsgId, DomainId), LossCause>,
        id: MsgId,
        p: &Slot,
        extra: &dyn Fn(usize) -> u8,
    ) {
        let is_held = self.held.binary_search(&id).is_ok();
        let confirmed = p.flags & CONFIRMED != 0;
        let acked = p.flags & ACKED != 0;
        for (i, d) in domains.iter_mut().enumerate() {
            let applied = if i == 0 { p.flags & (APPLIED << FIRST_DOMAIN) != 0 } else { extra(i) & APPLIED != 0 };
            if applied {
                continue;
            }
            if is_held || self.held_in.binary_search(&(id, i as DomainId)).is_ok() {
                d.counts.in_flight += 1;
            } else if confirmed {
                d.counts.lost += 1;
                let cause = causes.get(&(id, i as DomainId)).copied().unwrap_or(p.cause);
                self.acked_lost += u64::from(acked && cause.forgets_a_write());
                d.lost_by[cause as usize] += 1;
                if self.lost.len() < MAX_LOST_LISTED && self.lost.last().is_none_or(|&(last, _)| last != id) {
                    self.lost.push((id, cause));
                }
            } else {
                d.counts.send_failed += 1;
            }
        }
        if domains.len() > 1 && (p.remaining as usize) < domains.len() {
            self.inconsistent += 1;
        }
    }
}

/// What became of the messages put into a dead-letter queue: each ends
/// applied in every effect domain (after a replay, say), still held
/// somewhere (in the dead-letter queue itself, usually), or neither.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DeadLetters {
    /// Distinct messages ever dead-lettered (not serialized here: the
    /// summary puts it at its top level).
    #[serde(skip)]
    pub dead_lettered: u64,
    /// Applied in every effect domain at the end.
    pub applied: u64,
    /// Not applied everywhere, and still held somewhere at the end.
    pub held: u64,
    /// Not applied everywhere, and held nowhere.
    pub lost: u64,
}

/// Most lost messages a [`Verdict`] lists by id (all are counted).
pub const MAX_LOST_LISTED: usize = 100_000;

/// What [`Ledger::finish`] settles.
pub struct Verdict {
    /// Totals over the domains.
    pub counts: Counts,
    /// Each domain's counts, by name.
    pub domains: BTreeMap<String, DomainCounts>,
    /// Messages whose effect was applied in some domains but not in all.
    pub inconsistent: u64,
    /// The lost messages, by id, each with why (in its first domain that
    /// lost it), the first [`MAX_LOST_LISTED`] of them: for diagrams.
    pub lost: Vec<(MsgId, LossCause)>,
    /// What became of the dead-lettered messages.
    pub dead_letters: DeadLetters,
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
        assert_eq!(counts.acked_lost, 1, "of the lost a and d, only d's ack reached its producer");
        assert_eq!(counts.acked, 2);
    }

    #[test]
    fn an_acknowledged_write_lost_is_one_a_node_forgot_not_one_a_policy_dropped() {
        let mut l = Ledger::default();
        let ids: Vec<MsgId> = (0..3).map(|_| l.produce(0, 0, 0, false)).collect();
        for &id in &ids {
            l.acked(id);
            l.confirm(id);
        }
        l.at_risk(ids[0], LossCause::UncleanElection, None);
        l.at_risk(ids[1], LossCause::Ttl, None);
        l.at_risk(ids[2], LossCause::CommitBeforeProcess, None);
        let counts = l.finish(&mut vec![], &mut vec![]).counts;
        assert_eq!((counts.lost, counts.acked_lost), (3, 1));
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

    #[test]
    fn each_loss_is_explained_by_the_last_risk_and_each_duplicate_by_the_last_copy() {
        let mut l = Ledger::default();
        let a = l.produce(0, 0, 0, true);
        let b = l.produce(0, 0, 0, true);
        let c = l.produce(0, 0, 0, true);
        let d = l.produce(0, 0, 0, true);
        l.at_risk(a, LossCause::NetworkLoss, None);
        l.at_risk(a, LossCause::Shed, None); // the last risk explains it
        l.at_risk(b, LossCause::CommitBeforeProcess, None);
        l.crashed(&[b, c], &[c]); // b lost with the crash, c kept (durable)
        l.applied(1, 0, d);
        l.applied(2, 0, d); // nothing explains this copy
        l.copied(d, DupCause::NetworkCopy);
        l.applied(3, 0, d);
        l.copied(d, DupCause::Redelivered);
        l.applied(4, 0, d);
        let v = l.finish(&mut vec![], &mut vec![]);
        let lost: Vec<_> = v.counts.lost_by_cause.into_iter().collect();
        // A crash does not replace commit_before_process: it is how that risk became a loss.
        assert_eq!(lost, [("commit_before_process", 1), ("shed", 1), ("unexplained", 1)], "c: {c}");
        let dup: Vec<_> = v.counts.duplicated_by_cause.into_iter().collect();
        assert_eq!(dup, [("network_copy", 1), ("redelivered", 1), ("unexplained", 1)]);
        assert_eq!(v.domains["default"].lost_by_cause.values().sum::<u64>(), v.domains["default"].lost);
    }

    #[test]
    fn a_cause_for_one_domain_explains_the_loss_there_only() {
        let mut l = Ledger::new(vec!["x".into(), "y".into()]);
        let a = l.produce(0, 0, 0, true);
        l.at_risk(a, LossCause::NoSubscriber, Some(1));
        l.at_risk(a, LossCause::NetworkLoss, None);
        let v = l.finish(&mut vec![], &mut vec![]);
        assert_eq!(v.domains["x"].lost_by_cause.get("network_loss"), Some(&1));
        assert_eq!(v.domains["y"].lost_by_cause.get("no_subscriber"), Some(&1));
        assert_eq!(v.counts.lost_by_cause.values().sum::<u64>(), 2);
    }

    #[test]
    fn a_message_held_at_the_end_is_not_lost_whatever_put_it_at_risk() {
        let mut l = Ledger::default();
        let a = l.produce(0, 0, 0, true);
        l.at_risk(a, LossCause::Crash, None);
        let v = l.finish(&mut vec![a], &mut vec![]);
        assert_eq!((v.counts.lost, v.counts.in_flight), (0, 1));
        assert!(v.counts.lost_by_cause.is_empty(), "only causes that occurred are listed");
    }

    #[test]
    fn each_dead_lettered_message_ends_applied_held_or_lost() {
        let mut l = Ledger::new(vec!["a".into(), "b".into()]);
        let ids: Vec<MsgId> = (0..5).map(|t| l.produce(t, 0, 0, true)).collect();
        for &id in &ids {
            l.dead_lettered(id);
        }
        l.dead_lettered(ids[0]); // again: counted once
        l.dead_lettered(99); // never produced: ignored
                             // 0: replayed and applied in both domains; 1: applied in one only,
                             // and held for the other; 2: held everywhere; 3: held for b only,
                             // a never applied it: lost there; 4: nowhere.
        for d in [0, 1] {
            l.applied(10, d, ids[0]);
        }
        l.applied(10, 0, ids[1]);
        let mut held = vec![ids[2]];
        let mut held_in = vec![(ids[1], 1), (ids[3], 1)];
        let v = l.finish(&mut held, &mut held_in);
        let d = v.dead_letters;
        assert_eq!((d.dead_lettered, d.applied, d.held, d.lost), (5, 1, 3, 1));
    }

    #[test]
    fn every_cause_has_its_own_name() {
        let loss: std::collections::BTreeSet<_> = LossCause::ALL.iter().map(|c| c.name()).collect();
        let dup: std::collections::BTreeSet<_> = DupCause::ALL.iter().map(|c| c.name()).collect();
        assert_eq!((loss.len(), dup.len()), (LossCause::ALL.len(), DupCause::ALL.len()));
        for (i, c) in LossCause::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "ALL is in discriminant order: counts are indexed by it");
        }
        for (i, c) in DupCause::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}

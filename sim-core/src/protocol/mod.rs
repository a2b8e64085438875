//! The envelope every message travels in, and what the engine and the
//! ledger may know of a message without understanding it.
//!
//! Each protocol is its own type, in its own module here: the queue
//! protocol ([`QueueMsg`]: publish, deliver, ack, subscribe), spoken by
//! producers, consumers, clients and the queue broker; the log protocol
//! ([`LogMsg`]: produce, fetch, commit, group membership, transactions),
//! spoken by producers, group members and the log broker; the cluster
//! protocol ([`ClusterMsg`]: heartbeats, metadata, ISR changes and
//! replication inside a log cluster, and clients' leader lookups); and connection
//! notices ([`Notice`]), which the engine itself sends; and the
//! request/response protocol ([`RpcMsg`]: calls, replies, status polls and
//! callbacks) of users, services and stores; and the bank protocol
//! ([`BankMsg`]: authorisations, reconciliations and probes) of ATMs and
//! banks. [`Msg`] only wraps
//! one of them. (The protocols sit here rather than in the broker modules
//! because several kinds of component speak each; a protocol spoken by one
//! kind only can live in that kind's module.)
//!
//! The engine moves messages without looking inside them. What it needs
//! (a name for traces, the words for the digest) and what the ledger needs
//! (which produced messages a message carries while it is on the wire, and
//! what its arrival proves: an ack reached a producer, a record reached a
//! consumer) each protocol says through the [`Protocol`] trait, with
//! exhaustive matches: a new message that carries records does not compile
//! until it says so.
//!
//! Each record has a size in bytes, and each message says what it weighs
//! on the wire ([`Protocol::wire_bytes`], figures in [`wire`]).

use crate::digest::Digest;

pub mod bank;
pub mod cluster;
pub mod control;
pub mod kv;
pub mod log;
pub mod offsets;
pub mod queue;
pub mod queue_cluster;
pub mod rpc;
pub mod sink;
pub mod sync;
pub mod wire;

pub use bank::BankMsg;
pub use cluster::ClusterMsg;
pub use control::ControlMsg;
pub use kv::KvMsg;
pub use log::{Acks, FetchError, LogMsg, ProduceError, Transaction};
pub use queue::{publish, publish_ack, QueueMsg, NO_EXPIRATION};
pub use queue_cluster::QueueClusterMsg;
pub use rpc::{JobState, RpcMsg, Status};
pub use sink::SinkMsg;
pub use sync::SyncMsg;

/// Global identity of one produced message, assigned by the ledger in
/// production order (0, 1, 2, ...).
pub type MsgId = u64;

/// Index of a node (component) in the simulation, in topology order.
pub type NodeId = u32;

/// The part of a produced message every hop carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The ledger's identity for the message.
    pub id: MsgId,
    /// The message key (ordering is judged within a key; producers draw
    /// fewer than `ledger::MAX_KEYS`, so 32 bits hold it and a record
    /// stays 16 bytes).
    pub key: u32,
    /// Its size in bytes (key, value and headers: what fills a batch and
    /// what it weighs on the wire).
    pub bytes: u32,
}

/// The size of a record unless its producer says otherwise (and of every
/// record a queue producer or a client sends).
pub const DEFAULT_RECORD_BYTES: u32 = 1024;

impl Record {
    /// Record `id` with `key` (below 2^32), of the default size.
    pub fn new(id: MsgId, key: u64) -> Self {
        Record::sized(id, key, DEFAULT_RECORD_BYTES)
    }

    /// Record `id` with `key` (below 2^32), of `bytes` bytes.
    pub fn sized(id: MsgId, key: u64, bytes: u32) -> Self {
        debug_assert!(key <= u64::from(u32::MAX), "a key above 2^32");
        Record { id, key: key as u32, bytes }
    }

    /// Its key.
    #[inline]
    pub fn key(&self) -> u64 {
        u64::from(self.key)
    }
}

/// What the arrival of a message proves to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A broker's acceptance of produced message `.0` reached its producer.
    Acked(MsgId),
    /// Produced message `.0` reached a consumer (in the receiver's domain).
    Delivered(MsgId),
}

/// What [`Protocol::fold_seen`] found that a message's arrival proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Nothing: [`Protocol::observe`] would tell nothing.
    Nothing,
    /// Exactly this, and nothing else.
    One(Observed),
    /// Ask [`Protocol::observe`].
    Later,
}

/// What every protocol tells the engine and the ledger about its messages.
pub trait Protocol {
    /// A short name for traces ("publish", "fetch", ...).
    fn name(&self) -> &'static str;
    /// The produced message this concerns, if any (for traces).
    fn id(&self) -> Option<MsgId>;
    /// Folds a code and every field into `digest`, so that two histories
    /// that differ in any message differ in digest.
    fn fold(&self, digest: &mut Digest);
    /// Appends the produced messages this carries as payload: while it is
    /// on the wire they are in flight, not lost.
    fn carried(&self, out: &mut Vec<MsgId>);
    /// Tells `see` what its arrival proves, if anything.
    fn observe(&self, see: &mut impl FnMut(Observed));
    /// [`Protocol::fold`], and what [`Protocol::observe`] would tell when
    /// that is at most one thing: the engine folds and observes every
    /// arrival, and a protocol whose common messages prove at most one
    /// thing can then decode its message once instead of twice. By
    /// default it folds, and asks for `observe`.
    #[inline(always)]
    fn fold_seen(&self, digest: &mut Digest) -> Seen {
        self.fold(digest);
        Seen::Later
    }
    /// Its size on the wire in bytes: header and payload (see [`wire`]).
    /// Only a link with a bandwidth asks.
    fn wire_bytes(&self) -> u64;
}

/// Notices the engine sends on behalf of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The sender's process died, so its connections closed: sent to every
    /// node it had sent to (as a TCP reset would tell them). The network may
    /// delay or lose it like any message.
    PeerDown,
}

impl Protocol for Notice {
    fn name(&self) -> &'static str {
        match self {
            Notice::PeerDown => "peer-down",
        }
    }
    fn id(&self) -> Option<MsgId> {
        None
    }
    fn fold(&self, digest: &mut Digest) {
        match self {
            Notice::PeerDown => digest.add(9),
        }
    }
    fn carried(&self, _out: &mut Vec<MsgId>) {}
    fn observe(&self, _see: &mut impl FnMut(Observed)) {}
    fn wire_bytes(&self) -> u64 {
        // A TCP reset, or a close: a bare header.
        wire::HEADER
    }
}

/// A message in flight between two nodes: one protocol's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// The queue protocol.
    Queue(QueueMsg),
    /// The log protocol.
    Log(LogMsg),
    /// The cluster protocol (inside a log cluster, and clients' metadata).
    Cluster(ClusterMsg),
    /// Inside a queue cluster (channels' forwards, quorum queues' Raft).
    QueueCluster(QueueClusterMsg),
    /// Request/response (users, services, stores).
    Rpc(RpcMsg),
    /// An ATM and its bank.
    Bank(BankMsg),
    /// Reads and cache writes of tables and caches (read models).
    Kv(KvMsg),
    /// A log consumer's writes to its sink.
    Sink(SinkMsg),
    /// A connection notice.
    Notice(Notice),
    /// Data sync: a crawler's or a watcher's copy of a key.
    Sync(SyncMsg),
    /// Graceful start and stop of nodes, and lag queries (a controller's).
    Control(ControlMsg),
}

impl From<QueueMsg> for Msg {
    fn from(m: QueueMsg) -> Self {
        Msg::Queue(m)
    }
}

impl From<LogMsg> for Msg {
    fn from(m: LogMsg) -> Self {
        Msg::Log(m)
    }
}

impl From<ClusterMsg> for Msg {
    fn from(m: ClusterMsg) -> Self {
        Msg::Cluster(m)
    }
}

impl From<RpcMsg> for Msg {
    fn from(m: RpcMsg) -> Self {
        Msg::Rpc(m)
    }
}

impl From<BankMsg> for Msg {
    fn from(m: BankMsg) -> Self {
        Msg::Bank(m)
    }
}

impl From<KvMsg> for Msg {
    fn from(m: KvMsg) -> Self {
        Msg::Kv(m)
    }
}

impl From<SyncMsg> for Msg {
    fn from(m: SyncMsg) -> Self {
        Msg::Sync(m)
    }
}

impl From<SinkMsg> for Msg {
    fn from(m: SinkMsg) -> Self {
        Msg::Sink(m)
    }
}

impl From<Notice> for Msg {
    fn from(m: Notice) -> Self {
        Msg::Notice(m)
    }
}

/// Calls `$body` with `$m` bound to the protocol message inside `$msg`.
macro_rules! each_protocol {
    ($msg:expr, $m:ident => $body:expr) => {
        match $msg {
            Msg::Queue($m) => $body,
            Msg::Log($m) => $body,
            Msg::Cluster($m) => $body,
            Msg::QueueCluster($m) => $body,
            Msg::Rpc($m) => $body,
            Msg::Bank($m) => $body,
            Msg::Kv($m) => $body,
            Msg::Sink($m) => $body,
            Msg::Notice($m) => $body,
            Msg::Sync($m) => $body,
            Msg::Control($m) => $body,
        }
    };
}

impl Protocol for Msg {
    #[inline]
    fn name(&self) -> &'static str {
        each_protocol!(self, m => m.name())
    }
    #[inline]
    fn id(&self) -> Option<MsgId> {
        each_protocol!(self, m => m.id())
    }
    // Always inlined: the engine folds every arrival, and a call would
    // need the message in memory (a copy) and a call's cost.
    #[inline(always)]
    fn fold(&self, digest: &mut Digest) {
        each_protocol!(self, m => m.fold(digest))
    }
    #[inline]
    fn carried(&self, out: &mut Vec<MsgId>) {
        each_protocol!(self, m => m.carried(out))
    }
    #[inline(always)]
    fn observe(&self, see: &mut impl FnMut(Observed)) {
        each_protocol!(self, m => m.observe(see))
    }
    #[inline(always)]
    fn fold_seen(&self, digest: &mut Digest) -> Seen {
        each_protocol!(self, m => m.fold_seen(digest))
    }
    fn wire_bytes(&self) -> u64 {
        each_protocol!(self, m => m.wire_bytes())
    }
}

// Every message pays for the largest variant in the event slab: keep it
// small (box rare, large variants).
const _: () = assert!(std::mem::size_of::<Msg>() <= 48);
const _: () = assert!(std::mem::size_of::<Record>() == 16);

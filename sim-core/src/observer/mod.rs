//! The state observer: the omniscient judge of **state**, as the ledger is
//! of messages. Issue 14's scenarios are about what a system holds (a
//! balance, a read model, a cache, an aggregate) rather than about which
//! messages arrived, and a component must not judge its own state: a
//! cache that computed its own staleness could hide its bug. So components
//! report plain facts ([`StateFact`], through `Ctx::wrote`, `holds`,
//! `read`, `dispensed`, ...), and the observer derives every figure:
//!
//! - [`replicas`]: keyed state written in one place and read from
//!   replicas (tables, read models, caches): how stale each read was, how
//!   long each write took to be visible everywhere (its consistency
//!   window), and what still disagrees with the truth at the end;
//! - [`accounts`]: money: each account's true balance, what was paid out
//!   without authorisation and not yet settled (the exposure), and the
//!   overdrafts left after reconciliation;
//! - [`tallies`]: counts a system computed per bucket (a stream
//!   processor's clicks per key per minute) against the true counts.
//!
//! Each part reports only when some node fed it, so a scenario without
//! state keeps its summary as it was.
//!
//! Left out: the observer does not check that a component's facts are
//! physically possible (a replica may claim to hold a write it never
//! received): components are trusted to report what they did, as they are
//! by the ledger, and tests check that they do.

pub mod accounts;
pub mod replicas;
pub mod tallies;

use crate::message::{MsgId, NodeId};
use crate::metrics::Gauges;
use crate::time::Time;

/// A fact about state, reported by the node that saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFact {
    /// This node serves reads of keyed state: `complete` when it answers
    /// for every key (a table: a key it lacks is a 404), else a cache (a
    /// key it lacks is a miss, and a crash empties it).
    Replica {
        /// Answers for every key.
        complete: bool,
    },
    /// The system made write `id` of `key` (its user was told it is done).
    Wrote {
        /// The key.
        key: u64,
        /// The write's message id.
        id: MsgId,
        /// A delete: the key's newest state is "gone".
        delete: bool,
    },
    /// This replica now reflects write `id` of `key` (`None`: it no longer
    /// holds the key at all).
    Holds {
        /// The key.
        key: u64,
        /// The write it reflects.
        id: Option<MsgId>,
    },
    /// A read of `key` was answered with write `seen` (`None`: not found).
    Read {
        /// The key.
        key: u64,
        /// The write the answer reflected.
        seen: Option<MsgId>,
        /// The reader made the key's newest write (read-your-writes).
        own: bool,
    },
    /// Account `account` opened with `balance` dollars.
    Opened {
        /// The account.
        account: u32,
        /// Its true opening balance.
        balance: i64,
    },
    /// Cash left a machine; `offline`: without the bank's authorisation.
    Dispensed {
        /// The account.
        account: u32,
        /// Dollars.
        amount: i64,
        /// Paid out while the bank could not be asked.
        offline: bool,
    },
    /// A withdrawal was refused; `offline`: because the bank could not be
    /// reached.
    Declined {
        /// The account.
        account: u32,
        /// Dollars.
        amount: i64,
        /// Refused because the bank could not be reached.
        offline: bool,
    },
    /// The bank's books now include an offline withdrawal.
    Settled {
        /// The account.
        account: u32,
        /// Dollars.
        amount: i64,
    },
    /// One event belongs to `bucket` (key, window): the truth.
    Happened {
        /// (key, window index).
        bucket: (u64, u64),
    },
    /// The system's count for `bucket` is now `count`.
    Counted {
        /// (key, window index).
        bucket: (u64, u64),
        /// Its count.
        count: u64,
    },
}

/// The observer of one run.
#[derive(Default)]
pub struct Observer {
    replicas: Option<replicas::Replicas>,
    accounts: Option<accounts::Accounts>,
    tallies: Option<tallies::Tallies>,
}

/// What the observer concluded, for the summary: each part present only
/// when some node fed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateReport {
    /// Replicated keyed state.
    pub consistency: Option<replicas::ConsistencySummary>,
    /// Money.
    pub money: Option<accounts::MoneySummary>,
    /// Aggregates against the truth.
    pub aggregation: Option<tallies::AggregationSummary>,
    /// Every read's staleness as (ms, fraction of reads at or below it).
    pub staleness_cdf: Vec<(f64, f64)>,
}

impl Observer {
    /// Takes one fact node `node` reported at `now`.
    pub fn record(&mut self, now: Time, node: NodeId, fact: StateFact) {
        use StateFact::*;
        match fact {
            Replica { complete } => self.replicas().replica(node, complete),
            Wrote { key, id, delete } => self.replicas().wrote(now, key, id, delete),
            Holds { key, id } => self.replicas().holds(now, node, key, id),
            Read { key, seen, own } => self.replicas().read(now, key, seen, own),
            Opened { account, balance } => self.accounts().opened(account, balance),
            Dispensed { account, amount, offline } => self.accounts().dispensed(account, amount, offline),
            Declined { offline, .. } => self.accounts().declined(offline),
            Settled { account: _, amount } => self.accounts().settled(now, amount),
            Happened { bucket } => self.tallies().happened(bucket),
            Counted { bucket, count } => self.tallies().counted(bucket, count),
        }
    }

    fn replicas(&mut self) -> &mut replicas::Replicas {
        self.replicas.get_or_insert_with(Default::default)
    }

    fn accounts(&mut self) -> &mut accounts::Accounts {
        self.accounts.get_or_insert_with(Default::default)
    }

    fn tallies(&mut self) -> &mut tallies::Tallies {
        self.tallies.get_or_insert_with(Default::default)
    }

    /// Node `node` crashed at `now`: a cache's contents are gone.
    pub fn crashed(&mut self, now: Time, node: NodeId) {
        if let Some(r) = &mut self.replicas {
            r.crashed(now, node);
        }
    }

    /// Adds the observer's gauges to a sample: `stale_replicas` and
    /// `open_windows` with replicated state, `exposure` and `shortfall`
    /// with money.
    pub fn gauges(&self, out: &mut Gauges) {
        if let Some(r) = &self.replicas {
            r.gauges(out);
        }
        if let Some(a) = &self.accounts {
            a.gauges(out);
        }
    }

    /// Bytes of allocated capacity that grow with the run (estimated).
    pub fn memory_bytes(&self) -> usize {
        self.replicas.as_ref().map_or(0, |r| r.memory_bytes())
            + self.accounts.as_ref().map_or(0, |a| a.memory_bytes())
            + self.tallies.as_ref().map_or(0, |t| t.memory_bytes())
    }

    /// The conclusions at the end of a run.
    pub fn report(&self) -> StateReport {
        StateReport {
            consistency: self.replicas.as_ref().map(|r| r.summary()),
            money: self.accounts.as_ref().map(|a| a.summary()),
            aggregation: self.tallies.as_ref().map(|t| t.summary()),
            staleness_cdf: self.replicas.as_ref().map(|r| r.staleness_cdf()).unwrap_or_default(),
        }
    }
}

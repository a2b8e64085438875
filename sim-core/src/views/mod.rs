//! Read models and caches: keyed state that a system writes in one place
//! and readers read from another, later. The URL shortener's links table
//! fed by a log consumer, a CQRS read model, and the cache in front of
//! them.
//!
//! - [`Table`] (`[tables.NAME]`): a key-value table, the sink of a log
//!   consumer (`sink = "NAME"` on a consumer of a log broker). Each record
//!   is one write of its key, a create or a delete (a function of the
//!   record's id, see [`crate::protocol::kv::is_delete`]); the table keeps,
//!   per key, the id of the write it reflects, whichever it is (a delete's
//!   id is a tombstone: the key reads as 410 Gone, and a reader's answer
//!   names the write it saw). It answers reads (`Get`) after
//!   its `read_latency`. It deduplicates by record id (a consumer that
//!   redoes a batch after a crash writes again: the table applies each
//!   write once), and with `versioned = true` a write older than the one it
//!   holds (a lower id: ids are made in production order, and a write is
//!   made when it is produced) leaves the row as it is. Durable: a crash
//!   loses only the reads being served.
//! - [`Cache`] (`[caches.NAME]`): a cache in front of a table, as Redis in
//!   front of DynamoDB: a read that hits answers after the cache's
//!   `latency`; a miss reads the table, answers with what the table said
//!   and fills the cache with it (only if the cache still holds nothing for
//!   the key: a value the API put there meanwhile is newer). Entries expire
//!   `ttl_ms` after they were set. Volatile: a crash empties it.
//! - The writer is a `producer` with a `writes` table
//!   ([`crate::producer::WritesSpec`]): each message it produces is a write
//!   its user is told is done at once (the 201 of a create-link comes
//!   before the record reaches the log). Naming a `cache`, it sets the key
//!   there as it makes a create with `write_through = true`, puts a
//!   deletion marker as it makes a delete with `deletion_markers = true`,
//!   and otherwise deletes the key from the cache (cache-aside
//!   invalidation). Naming `users`, it tells those readers of each write
//!   (the 201 reaching the user).
//! - [`Readers`] (`[readers.NAME]`): users who read. Others' reads come at
//!   their `arrival` rate for keys drawn from `keys`; with `own_delay`, a
//!   user told of their own create opens the link that long after.
//!
//! Every figure comes from the state observer (`crate::observer`): the
//! table and the cache say what they hold (`Ctx::holds`), the writer what
//! it made (`Ctx::wrote`), the readers what each read saw (`Ctx::read`).
//! No component here judges its own staleness.
//!
//! Left out: values (a write is named by its id; two creates of one key
//! are two versions of the link), sharding and replication of the table
//! (one node answers for every key), a cache's memory limit and eviction
//! policy (only expiry and invalidation remove entries), negative caching
//! (a 404 from the table is not cached), a table's write latency and
//! capacity (the consumer's `processing` time stands for the write), and
//! the API waiting for the cache's own acknowledgement: the writer's
//! `Put` travels over the network like any message, so an own read that
//! overtook it would miss (the scenario's own-read delay is far longer
//! than the network's latency).

mod cache;
mod kind;
mod readers;
mod table;

#[cfg(test)]
mod tests;

pub use cache::{Cache, CacheTimer};
pub use kind::{CacheKind, CacheSpec, ReadersKind, ReadersSpec, TableKind, TableSpec};
pub use readers::{Readers, ReadersTimer};
pub use table::{Served, Table};

/// A read a table or a cache is serving: who asked, for which key, under
/// the asker's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Read {
    from: crate::message::NodeId,
    key: u64,
    req: u64,
}

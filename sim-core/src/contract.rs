//! Message schema versions: the contract between a producer and the
//! consumers that read what it writes.
//!
//! A producer writes version 1 of its message schema until it is upgraded
//! (`schema_upgrade_at_ms`), and version 2 from then on. The version is a
//! fact of each message, stamped as it is produced: the named header
//! [`Header::SchemaVersion`] (absent: version 1), with
//! [`Header::OldestReader`], the oldest reader version that can read it,
//! which depends on the change (`schema_change`):
//!
//! - `"breaking"` (the default): a reader of version 1 cannot read
//!   version 2 (a field renamed, a type changed, a required field added).
//!   For that reader the message is poison: it fails every time, and is
//!   rejected (dead-lettered) at once, as a deserialization error is not
//!   retried (Spring's error handlers classify `DeserializationException`
//!   as not retryable);
//! - `"compatible"`: a reader of version 1 reads version 2 and ignores its
//!   new fields (what a schema registry calls FORWARD compatibility: old
//!   readers, new data).
//!
//! A consumer with `schema_version = 1` reads version 1 only until it is
//! upgraded (`schema_upgrade_at_ms`, measured when it processes a message,
//! not when the message was produced); without `schema_version` it reads
//! both. The safe order for a breaking change is consumers first: every
//! reader upgraded before the producer writes version 2 never sees a
//! message it cannot read.
//!
//! Left out: more than one change (two versions), a schema registry that
//! refuses an incompatible version at registration, and readers of version
//! 2 failing on version 1 messages (BACKWARD compatibility is assumed: a
//! new reader reads old data).

use crate::dedup::Header;
use crate::engine::{Ctx, Timer};
use crate::message::MsgId;
use crate::time::{ms_to_ns, Time};
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// Whether readers of version 1 can read version 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaChange {
    /// Version 1 readers cannot read it: they reject it as poison.
    #[default]
    Breaking,
    /// Version 1 readers read it and ignore its new fields.
    Compatible,
}

/// A producer's schema: when it starts writing version 2, and how that
/// version differs.
#[derive(Debug, Clone, Copy)]
pub struct WriterSchema {
    upgrade_at: Time,
    change: SchemaChange,
}

impl WriterSchema {
    /// A producer upgraded at `upgrade_at_ms` (none: it writes version 1 only).
    pub fn new(upgrade_at_ms: Option<Millis>, change: Option<SchemaChange>) -> Option<Self> {
        let upgrade_at = ms_to_ns(upgrade_at_ms?.0);
        Some(WriterSchema { upgrade_at, change: change.unwrap_or_default() })
    }

    /// Stamps message `id`, produced now, with its version (version 1 needs
    /// no header).
    pub fn stamp<T: Timer>(&self, ctx: &mut Ctx<T>, id: MsgId) {
        if ctx.now() < self.upgrade_at {
            return;
        }
        ctx.set_header(id, Header::SchemaVersion, 2);
        let oldest = if self.change == SchemaChange::Breaking { 2 } else { 1 };
        ctx.set_header(id, Header::OldestReader, oldest);
    }
}

/// How a reader takes a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// It reads it fully.
    Reads,
    /// It reads it, ignoring fields newer than its version.
    IgnoresNewFields,
    /// It cannot read it: poison for this reader.
    Cannot,
}

/// A consumer's schema: the newest version it reads, until its upgrade.
#[derive(Debug, Clone, Copy)]
pub struct ReaderSchema {
    version: u64,
    upgrade_at: Option<Time>,
}

impl ReaderSchema {
    /// A reader of `version` (none: it reads every version), upgraded to
    /// read every version at `upgrade_at_ms`.
    pub fn new(version: Option<u32>, upgrade_at_ms: Option<Millis>) -> Option<Self> {
        let version = u64::from(version?);
        Some(ReaderSchema { version, upgrade_at: upgrade_at_ms.map(|m| ms_to_ns(m.0)) })
    }

    /// How this reader, now, takes message `id`.
    pub fn read<T: Timer>(&self, ctx: &mut Ctx<T>, id: MsgId) -> Read {
        if self.upgrade_at.is_some_and(|at| ctx.now() >= at) {
            return Read::Reads;
        }
        let written = ctx.header(id, Header::SchemaVersion).unwrap_or(1);
        if written <= self.version {
            return Read::Reads;
        }
        match ctx.header(id, Header::OldestReader) {
            Some(oldest) if oldest <= self.version => Read::IgnoresNewFields,
            _ => Read::Cannot,
        }
    }
}

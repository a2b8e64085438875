//! The sink protocol: a log consumer hands each record it processed to a
//! node that does something with it (a database table, a read model, a
//! stream aggregator, an event-sourced projection), and waits until that
//! node says it is written.
//!
//! A write carries its record (the ledger sees it in flight) and where it
//! was read from (partition and offset), so a sink can skip a record it
//! already has (by offset, or by a sequence number of its own) or know how
//! far into the log its state is. The sink answers every write, also one
//! it skipped: the consumer only needs to know it may go on.
//!
//! Left out: batching several records into one write.

use super::{wire, MsgId, Observed, Protocol, Record};
use crate::digest::Digest;

/// A message between a log consumer and its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMsg {
    /// Consumer to sink: take record `rec`, read at `offset` of `partition`.
    Write {
        /// The record.
        rec: Record,
        /// The partition it was read from.
        partition: u32,
        /// Its offset there.
        offset: u64,
    },
    /// Sink to consumer: record `id` is written (or was already).
    Written {
        /// The record's id.
        id: MsgId,
    },
}

impl Protocol for SinkMsg {
    fn name(&self) -> &'static str {
        match self {
            SinkMsg::Write { .. } => "sink-write",
            SinkMsg::Written { .. } => "sink-written",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match *self {
            SinkMsg::Write { rec, .. } => Some(rec.id),
            SinkMsg::Written { id } => Some(id),
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match *self {
            SinkMsg::Write { rec, partition, offset } => {
                digest.add(170);
                digest.add(rec.id);
                digest.add(rec.key());
                digest.add(u64::from(partition));
                digest.add(offset);
            }
            SinkMsg::Written { id } => {
                digest.add(171);
                digest.add(id);
            }
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        if let SinkMsg::Write { rec, .. } = self {
            out.push(rec.id);
        }
    }

    fn observe(&self, _see: &mut impl FnMut(Observed)) {}

    fn wire_bytes(&self) -> u64 {
        match self {
            SinkMsg::Write { rec, .. } => wire::HEADER + u64::from(rec.bytes),
            SinkMsg::Written { .. } => wire::CONTROL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_carries_its_record_and_the_answer_nothing() {
        let rec = Record::new(3, 9);
        let msgs = [SinkMsg::Write { rec, partition: 1, offset: 4 }, SinkMsg::Written { id: 3 }];
        let mut carried = Vec::new();
        msgs.iter().for_each(|m| m.carried(&mut carried));
        assert_eq!(carried, [3]);
        let digests: std::collections::BTreeSet<String> = msgs
            .iter()
            .map(|m| {
                let mut d = Digest::default();
                m.fold(&mut d);
                d.hex()
            })
            .collect();
        assert_eq!(digests.len(), 2);
    }
}

//! What a message weighs on the wire, in bytes: a header, plus what it
//! carries. Only a link with a bandwidth asks (see `net`), so a network
//! without one never adds these up.
//!
//! The figures follow Kafka's wire format (KIP-98's record batch, v2) in
//! round numbers:
//!
//! - every request or response has a [`HEADER`] of 24 bytes (Kafka's
//!   request header: size, API key and version, correlation id and a short
//!   client id; a response's is smaller, and we charge the same);
//! - a produce request or a fetch response adds, per partition, the topic
//!   and partition fields ([`PARTITION`], 16 bytes), and per record batch
//!   the batch header ([`BATCH_HEADER`], 61 bytes: base offset, length,
//!   leader epoch, magic, CRC, attributes, offsets, timestamps, producer id
//!   and epoch, base sequence, record count), then its records;
//! - a record weighs its own `bytes` (taken as its whole encoded size,
//!   with its varint lengths and headers);
//! - a request or an answer with no records (fetch, heartbeat, commit, an
//!   ack, a group message) is its header plus a [`CONTROL`] body of 16
//!   bytes, and a list in it (an assignment, a batch's ids) 8 bytes an item.
//!
//! The queue protocol is charged the same way: AMQP sends a publish or a
//! delivery as a method, a content header and a body frame, about the
//! header and a control body here, and the record.
//!
//! Left out: compression, varint-size differences between records, and
//! the TCP/IP headers (about 40 bytes a segment).

use super::Record;

/// A request's or a response's header, bytes.
pub const HEADER: u64 = 24;
/// The fields that name one partition in a request, bytes.
pub const PARTITION: u64 = 16;
/// Kafka's record batch header (v2), bytes.
pub const BATCH_HEADER: u64 = 61;
/// The body of a message that carries no records, bytes.
pub const CONTROL: u64 = HEADER + 16;
/// One item of a list in a control message (an id, an assignment), bytes.
pub const ITEM: u64 = 8;

/// The records' own bytes.
pub fn records(recs: &[Record]) -> u64 {
    recs.iter().map(|r| u64::from(r.bytes)).sum()
}

/// One partition's record batch in a request or a response: its fields,
/// the batch header (when it has records) and the records.
pub fn batch(recs: &[Record]) -> u64 {
    let header = if recs.is_empty() { 0 } else { BATCH_HEADER };
    PARTITION + header + records(recs)
}

/// A message of `items` list items and no records.
pub fn control(items: usize) -> u64 {
    CONTROL + ITEM * items as u64
}

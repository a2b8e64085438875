//! The byte budget of a fetch (Kafka's `max.partition.fetch.bytes` and
//! `fetch.max.bytes`, which the member sends as one budget: see
//! `log_consumer`). A fetch is served records while their bytes stay
//! within the budget, but the first record always goes, however large, so
//! that a reader never sticks behind a record larger than its budget
//! (Kafka returns the first record batch even when it is larger than the
//! limit, since KIP-74).
//!
//! Simplification: the log keeps records, not the producers' batches, so
//! the budget is counted in records' bytes and the oversized exception is
//! one record, where Kafka counts whole stored batches (with their
//! headers) and returns a whole first batch.

use super::partition::Partition;

/// The end of the run of records from `offset` (before `upto`) whose bytes
/// fit in `budget`: at least one record when there is one.
pub(super) fn cut(p: &Partition, offset: u64, upto: u64, budget: u32) -> u64 {
    let budget = u64::from(budget);
    let mut used = 0u64;
    for o in offset..upto {
        let bytes = p.entry(o).map_or(0, |e| u64::from(e.rec.bytes));
        if o > offset && used + bytes > budget {
            return o;
        }
        used += bytes;
    }
    upto
}

#[cfg(test)]
mod tests {
    use super::super::partition::Entry;
    use super::*;
    use crate::message::Record;

    fn log_of(sizes: &[u32]) -> Partition {
        let mut p = Partition::new(1, 0);
        for (id, &bytes) in sizes.iter().enumerate() {
            let rec = Record::sized(id as u64, 0, bytes);
            p.append(0, Entry { rec, at: 0, producer: 0, epoch: 0, seq: 0, acked: false });
        }
        p
    }

    #[test]
    fn a_fetch_takes_records_while_their_bytes_fit() {
        let p = log_of(&[400, 400, 400, 400]);
        assert_eq!(cut(&p, 0, 4, 1000), 2, "400 + 400 fit in 1,000; a third would not");
        assert_eq!(cut(&p, 1, 4, 1200), 4, "exactly the budget fits");
        assert_eq!(cut(&p, 0, 3, u32::MAX), 3, "never past `upto`");
        assert_eq!(cut(&p, 2, 2, 10), 2, "nothing to read");
    }

    #[test]
    fn the_first_record_goes_however_large() {
        let p = log_of(&[5000, 10, 10]);
        assert_eq!(cut(&p, 0, 3, 100), 1, "the oversized first record, alone");
        assert_eq!(cut(&p, 1, 3, 100), 3);
    }
}

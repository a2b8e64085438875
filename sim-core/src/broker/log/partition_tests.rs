//! Unit tests of one replicated partition's bookkeeping: log ends, the
//! high watermark, retention, and truncation after an election.

use super::{Entry, Idem, Partition, Waiter};
use crate::message::{MsgId, NodeId, Record};
use crate::time::Time;

const PRODUCER: NodeId = 7;

fn entry(id: MsgId, at: Time, epoch: u32, seq: u64, acked: bool) -> Entry {
    Entry { rec: Record::new(id, 0), at, producer: PRODUCER, epoch, seq, acked }
}

/// A partition of `replicas` led by replica 0, holding `n` plain records
/// appended at time 0.
fn with_records(replicas: usize, n: u64) -> Partition {
    let mut p = Partition::new(replicas, 0);
    for id in 0..n {
        p.append(0, entry(id, 0, 0, 0, false));
    }
    p
}

#[test]
fn an_append_moves_the_leaders_end_and_stamps_the_followers_caught_up_until_then() {
    let mut p = Partition::new(3, 0);
    p.append(5, entry(0, 5, 0, 0, false));
    p.leo[1] = 1; // follower 1 fetched record 0; follower 2 did not
    assert_eq!(p.append(9, entry(1, 9, 0, 0, false)), 1, "the second record's offset");
    assert_eq!(p.leo, vec![2, 1, 0]);
    assert_eq!(p.caught_up_at, vec![9, 9, 5], "follower 2 was last caught up at the first append");
}

#[test]
fn the_high_watermark_is_the_lowest_log_end_in_the_isr() {
    let mut p = with_records(3, 4);
    (p.leo[1], p.leo[2]) = (3, 1);
    assert_eq!(p.isr_min_leo(), 1);
    p.isr[2] = false;
    assert_eq!(p.isr_min_leo(), 3, "a replica out of the ISR holds nothing back");
}

#[test]
fn retention_deletes_old_records_but_never_past_the_high_watermark() {
    let mut p = with_records(1, 5);
    p.hw = 2;
    let mut removed = Vec::new();
    assert_eq!(p.trim(0, Some(1), None, |id| removed.push(id)), 2, "only records consumers could already read");
    assert_eq!(removed, [0, 1], "each removed record is named, for the ledger's causes");
    assert_eq!((p.start, p.end()), (2, 5));
    assert!(p.entry(1).is_none() && p.entry(2).is_some_and(|e| e.rec.id == 2));
    // By age: at 100, a limit of 50 removes what was appended before 50.
    let mut p = Partition::new(1, 0);
    for (id, at) in [(0, 10), (1, 40), (2, 60)] {
        p.append(at, entry(id, at, 0, 0, false));
    }
    p.hw = 3;
    assert_eq!(p.trim(100, None, Some(50), |_| {}), 2);
    assert_eq!(p.entry(2).map(|e| e.rec.id), Some(2));
}

/// Producer 7 (epoch 1) wrote sequences 0..4 at offsets 0..4; `told`
/// says which it was acked for. The new leader has offsets 0 and 1.
fn truncated_after(told: [bool; 4]) -> (Partition, Vec<u64>) {
    let mut p = Partition::new(2, 0);
    for seq in 0..4 {
        p.append(0, entry(seq, 0, 1, seq, told[seq as usize]));
    }
    let mut idem = Idem::default();
    idem.seq.start_session(1);
    idem.seq.resume_at(4);
    p.idem.insert(PRODUCER, idem);
    (p.leo[1], p.hw) = (2, 2);
    p.waiters.insert(3, vec![Waiter { producer: PRODUCER, ids: Box::new([3]), attempt: 1, first: 3 }]);
    let cut = p.truncate(2).into_iter().map(|e| e.seq).collect();
    (p, cut)
}

#[test]
fn truncation_cuts_every_replica_back_to_the_new_leaders_end() {
    let (p, cut) = truncated_after([true, true, false, false]);
    assert_eq!(cut, vec![2, 3]);
    assert_eq!((p.end(), p.leo.clone(), p.hw), (2, vec![2, 2], 2));
    assert!(p.waiters.is_empty(), "nobody waits for an offset that is gone");
}

#[test]
fn truncation_resumes_an_idempotent_producer_at_its_first_untold_sequence() {
    // Seq 2 was never acked (the producer will resend it); seq 3 was, so
    // it will not come again: gone for good, and skipped over.
    let (mut p, _) = truncated_after([true, true, false, true]);
    let idem = p.idem.get_mut(&PRODUCER).expect("kept");
    assert_eq!(idem.seq.next(), 2, "seq 2 is expected again");
    idem.seq.resume_at(3); // the resent seq 2 is appended
    idem.skip_gone();
    assert_eq!(idem.seq.next(), 4, "seq 3 is not waited for");
}

#[test]
fn when_every_truncated_record_was_acknowledged_the_producer_is_not_waited_for() {
    let (p, _) = truncated_after([true, true, true, true]);
    assert_eq!(p.idem[&PRODUCER].seq.next(), 4);
}

//! Unit tests of one replica's log: appends with their epochs, the
//! idempotent producers' numbers, divergence points and truncation.

use super::{Replica, SeqCheck, RECENT};
use crate::message::Record;
use crate::protocol::cluster::ReplicaRecord;

fn rr(id: u64, leader_epoch: u32, producer_epoch: u32, seq: u64) -> ReplicaRecord {
    ReplicaRecord { rec: Record::new(id, id), leader_epoch, producer: 9, producer_epoch, seq }
}

/// Epoch 0 wrote offsets 0..3, epoch 2 wrote 3..5.
fn two_epochs() -> Replica {
    let mut r = Replica::default();
    for (i, e) in [0, 0, 0, 2, 2].into_iter().enumerate() {
        r.append(rr(i as u64, e, 0, 0), 0, false, 0);
    }
    r
}

#[test]
fn appends_record_the_epochs_that_wrote_them() {
    let r = two_epochs();
    assert_eq!(r.end(), 5);
    assert_eq!(r.last_epoch(), Some(2));
    assert_eq!([r.epochs.epoch_of(2), r.epochs.epoch_of(3)], [0, 2]);
    assert_eq!(r.epochs.end_of(0, r.end()), Some((0, 3)));
    assert_eq!(r.epochs.end_of(1, r.end()), Some((0, 3)), "epoch 1 wrote nothing here");
}

#[test]
fn the_divergence_point_is_the_smaller_end_of_the_epoch() {
    let r = two_epochs();
    // The leader's epoch 0 ended at 2 (it has fewer of epoch 0's records).
    assert_eq!(r.divergence_point(0, 2), 2);
    // The leader's epoch 0 ended at 4: this log's ended at 3.
    assert_eq!(r.divergence_point(0, 4), 3);
    assert_eq!(r.divergence_point(2, 100), 5, "never past its own end");
}

#[test]
fn truncation_cuts_the_tail_its_epochs_and_the_hw() {
    let mut r = two_epochs();
    r.hw = 5;
    let cut = r.truncate(3);
    assert_eq!(cut.iter().map(|e| e.r.rec.id).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!((r.end(), r.hw, r.last_epoch()), (3, 3, Some(0)));
    assert_eq!(r.epochs.end_of(2, r.end()), Some((0, 3)), "epoch 2 is forgotten");
}

#[test]
fn sequence_numbers_follow_the_log_through_truncation() {
    let mut r = Replica::default();
    for seq in 0..4 {
        assert_eq!(r.check_seq(9, 1, seq, 1), SeqCheck::Next);
        r.append(rr(seq, 0, 1, seq), 0, false, 0);
    }
    assert_eq!(r.check_seq(9, 1, 1, 2), SeqCheck::Duplicate(Some(2)), "a batch of 1..3, whose last is at 2");
    assert_eq!(r.check_seq(9, 1, 6, 1), SeqCheck::OutOfOrder);
    assert_eq!(r.check_seq(9, 0, 4, 1), SeqCheck::Fenced);
    assert_eq!(r.check_seq(9, 2, 3, 1), SeqCheck::OutOfOrder, "a new session starts at 0");
    assert_eq!(r.check_seq(9, 2, 0, 1), SeqCheck::Next);
    assert_eq!(r.check_seq(8, 1, 17, 1), SeqCheck::Next, "an unknown producer starts anywhere");
    r.truncate(2);
    assert_eq!(r.check_seq(9, 1, 2, 1), SeqCheck::Next, "the producer resends what was cut");
    assert_eq!(r.check_seq(9, 1, 1, 1), SeqCheck::Duplicate(Some(1)));
}

#[test]
fn a_truncated_new_session_gives_the_log_back_to_the_older_one() {
    let mut r = Replica::default();
    r.append(rr(0, 0, 1, 0), 0, false, 0);
    r.append(rr(1, 0, 2, 0), 0, false, 0);
    r.truncate(1);
    assert_eq!(r.check_seq(9, 1, 1, 1), SeqCheck::Next);
    assert_eq!(r.check_seq(9, 2, 0, 1), SeqCheck::Next);
}

#[test]
fn only_the_recent_records_offsets_are_kept() {
    let mut r = Replica::default();
    for seq in 0..(RECENT as u64 + 10) {
        r.append(rr(seq, 0, 1, seq), 0, false, 0);
    }
    assert_eq!(r.check_seq(9, 1, 0, 1), SeqCheck::Duplicate(None), "too old to find: answered anyway");
    assert_eq!(r.check_seq(9, 1, 20, 1), SeqCheck::Duplicate(Some(20)));
}

#[test]
fn a_follower_fetch_takes_records_within_its_byte_budget() {
    let r = two_epochs();
    assert_eq!(r.records_from(1, 2048).len(), 2, "two records of 1,024 bytes");
    assert_eq!(r.records_from(1, 10).len(), 1, "the first goes whatever its size");
    assert!(r.records_from(5, 1 << 20).is_empty());
    assert_eq!(r.readable(1, 5, u32::MAX).len(), 2, "a consumer's answer stops where epoch 2 begins");
}

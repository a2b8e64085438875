//! Unit tests of the leader-epoch history and the divergence lookup.

use super::EpochHistory;

/// Epoch 0 wrote 0..100, epoch 1 wrote 100..300, epoch 2 wrote 300..; the
/// log ends at 500.
fn three_epochs() -> EpochHistory {
    let mut h = EpochHistory::default();
    assert_eq!(h.begin(100), 1);
    assert_eq!(h.begin(300), 2);
    h
}

#[test]
fn each_offset_belongs_to_the_epoch_that_wrote_it() {
    let h = three_epochs();
    assert_eq!([h.epoch_of(0), h.epoch_of(99), h.epoch_of(100), h.epoch_of(299), h.epoch_of(300)], [0, 0, 1, 1, 2]);
    assert_eq!(h.current(), 2);
    assert_eq!(h.epoch_end_after(150, 500), 300, "a fetch from 150 stops where epoch 2 begins");
    assert_eq!(h.epoch_end_after(300, 500), 500);
}

#[test]
fn an_epoch_that_wrote_nothing_owns_no_offset() {
    let mut h = three_epochs();
    h.begin(300); // epoch 3 led and wrote nothing before epoch 4
    h.begin(300);
    assert_eq!(h.epoch_of(300), 4, "the record at 300 was written in epoch 4");
    assert_eq!(h.end_of(2, 500), Some((2, 300)));
    assert_eq!(h.end_of(3, 500), Some((3, 300)));
}

#[test]
fn the_end_of_an_epoch_is_the_next_epochs_start_or_the_log_end() {
    let h = three_epochs();
    assert_eq!(h.end_of(0, 500), Some((0, 100)));
    assert_eq!(h.end_of(1, 500), Some((1, 300)));
    assert_eq!(h.end_of(2, 500), Some((2, 500)), "the current epoch ends at the log end");
    assert_eq!(h.end_of(7, 500), Some((2, 500)), "an unknown later epoch: the largest known below it");
}

#[test]
fn a_position_past_its_epochs_end_has_diverged_and_goes_back_to_the_end() {
    // The leader of epoch 2 wrote up to 500 and a consumer read to 450. An
    // unclean election made a replica that stopped at 250 leader: the log
    // is cut to 250, epoch 3 begins there and writes 250..400.
    let mut h = three_epochs();
    h.truncate(250);
    assert_eq!(h.begin(250), 3);
    assert_eq!(h.end_of(2, 400), Some((1, 250)), "epoch 2 is forgotten: epoch 1 is the largest known at or below");
    assert_eq!(h.diverged(450, 2, 400), Some((250, 1)), "offsets 250..400 were reused: rewind to 250");
    assert_eq!(h.diverged(200, 1, 400), None, "below the divergence: consistent");
    assert_eq!(h.diverged(250, 1, 400), None, "exactly at it: consistent");
    assert_eq!(h.diverged(380, 3, 400), None, "read in the new epoch: consistent");
}

#[test]
fn truncation_forgets_only_epochs_that_began_at_or_after_the_cut() {
    let mut h = three_epochs();
    h.truncate(300);
    assert_eq!((h.epoch_of(299), h.epoch_of(400)), (1, 1), "epoch 2's records are gone");
    assert_eq!(h.end_of(2, 350), Some((1, 350)));
    h.truncate(0);
    assert_eq!((h.epoch_of(0), h.end_of(1, 9)), (0, Some((0, 9))), "epoch 0 always stays");
    assert_eq!(h.begin(0), 3, "a forgotten epoch is never given again");
}

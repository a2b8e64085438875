use super::*;
use crate::broker::LogSpec;

const MEMBER: NodeId = 7;
const INPUT: Input = (0, 1);
const SEC: Time = 1_000_000_000;

fn rec(id: MsgId) -> Record {
    Record::new(id, id)
}

fn coordinator() -> TxnCoordinator {
    TxnCoordinator::new(vec![60 * SEC])
}

fn produces(actions: &[Action]) -> Vec<(u32, u64, MsgId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Produce { pi, seq, rec, .. } => Some((*pi, *seq, rec.id)),
            _ => None,
        })
        .collect()
}

fn markers(actions: &[Action]) -> Vec<(u32, u32, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Marker { pi, epoch, commit, .. } => Some((*pi, *epoch, *commit)),
            _ => None,
        })
        .collect()
}

fn replies(actions: &[Action]) -> Vec<(u64, bool, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply { committed, ok, aborted, .. } => Some((*committed, *ok, *aborted)),
            _ => None,
        })
        .collect()
}

fn commit(writer: Writer, start: u64, end: u64, outputs: &[(u32, MsgId)]) -> Commit {
    let outputs = outputs.iter().map(|&(pi, id)| (pi, rec(id))).collect();
    Commit { from: writer.0, writer, start, end, epoch: Some(0), outputs }
}

#[test]
fn the_coordinator_is_the_preferred_leader_of_the_ids_state_partition() {
    let mut spec = LogSpec { brokers: Some(3), ..LogSpec::default() };
    spec.topics.insert(
        "t".into(),
        crate::broker::TopicSpec {
            partitions: 1,
            retention_messages: None,
            retention_ms: None,
            expected_rate_per_s: None,
            partition_rate_per_s: None,
        },
    );
    for n in [1u32, 3, 7] {
        spec.brokers = Some(n);
        let layout = Layout::new(&spec, 0, (1..=n).collect());
        // Java's "a".hashCode() is 97: partition 47 of 50.
        assert_eq!(u32::from(txn_coordinator_of(&layout, "a")), 47 % n);
        // "ab".hashCode() is 97 * 31 + 98 = 3105: partition 5.
        assert_eq!(u32::from(txn_coordinator_of(&layout, "ab")), 5 % n);
    }
    assert_ne!(producer_id((0, 1)), producer_id((1, 0)));
    assert!(is_txn_producer(producer_id((2047, 3))));
}

#[test]
fn a_commit_waits_for_every_write_then_the_offsets_then_writes_the_markers() {
    let mut c = coordinator();
    let w = (MEMBER, 1, 1);
    let a = c.write(0, INPUT, w, 4, rec(10));
    assert_eq!(produces(&a), vec![(4, 0, 10)]);
    assert_eq!(produces(&c.write(1, INPUT, w, 4, rec(10))), vec![], "a copy is not written twice");
    // The commit carries a write lost on the way: it is written now.
    let a = c.commit(2, INPUT, commit(w, 0, 5, &[(4, 10), (5, 11)]));
    assert_eq!(produces(&a), vec![(5, 0, 11)]);
    assert!(!a.iter().any(|a| matches!(a, Action::OffsetCommit { .. })), "writes unacknowledged: {a:?}");
    assert!(c.produce_acked(3, 4, 10, true).is_empty());
    let a = c.produce_acked(3, 5, 11, true);
    assert_eq!(a, vec![Action::OffsetCommit { input: INPUT, writer: w, end: 5, epoch: Some(0) }]);
    let a = c.offsets_answered(4, INPUT, true, false, 5);
    assert_eq!(markers(&a), vec![(4, 1, true), (5, 1, true)]);
    assert!(c.marker_acked(5, producer_id(INPUT), 1, 4, true).is_empty());
    let a = c.marker_acked(5, producer_id(INPUT), 1, 5, true);
    assert_eq!(replies(&a), vec![(5, true, false)]);
    assert!(a.contains(&Action::Count("transactions_committed")));
    assert!(!c.busy());
    // A resend of the commit whose answer was lost is answered again.
    assert_eq!(replies(&c.commit(6, INPUT, commit(w, 0, 5, &[]))), vec![(5, true, false)]);
}

#[test]
fn a_newer_writer_aborts_the_open_transaction_and_its_commit_waits_for_the_abort() {
    let mut c = coordinator();
    let (old, new) = ((MEMBER, 1, 1), (MEMBER + 1, 2, 1));
    c.write(0, INPUT, old, 4, rec(10));
    let a = c.write(1, INPUT, new, 4, rec(20));
    assert_eq!(markers(&a), vec![(4, 1, false)], "the old transaction is aborted");
    assert_eq!(produces(&a), vec![], "the new one waits for the abort to be written");
    assert!(c.commit(2, INPUT, commit(new, 0, 3, &[(4, 20), (4, 10)])).is_empty(), "queued");
    // The abort's marker is written: the queued commit begins transaction 2,
    // and record 10, aborted once, is written again.
    let a = c.marker_acked(3, producer_id(INPUT), 1, 4, true);
    assert_eq!(produces(&a), vec![(4, 0, 20), (4, 1, 10)]);
    assert!(a.contains(&Action::Rewritten(10)));
    // The fenced writer can neither write nor commit.
    assert!(c.write(4, INPUT, old, 4, rec(30)).is_empty());
    let a = c.commit(4, INPUT, commit(old, 0, 3, &[]));
    assert_eq!(replies(&a), vec![(0, false, true)]);
    assert!(a.contains(&Action::Count("transactions_fenced")));
}

#[test]
fn an_offset_commit_refused_as_fenced_aborts_and_the_member_redoes_from_the_commit() {
    let mut c = coordinator();
    let w = (MEMBER, 1, 1);
    c.commit(0, INPUT, commit(w, 0, 3, &[(4, 10)]));
    c.produce_acked(1, 4, 10, true);
    let a = c.offsets_answered(2, INPUT, false, false, 0);
    assert_eq!(markers(&a), vec![(4, 1, false)]);
    let a = c.marker_acked(3, producer_id(INPUT), 1, 4, true);
    assert_eq!(replies(&a), vec![(0, false, true)]);
}

#[test]
fn an_open_transaction_times_out_and_unanswered_requests_are_sent_again() {
    let mut c = TxnCoordinator::new(vec![10 * SEC]);
    let w = (MEMBER, 1, 1);
    c.write(0, INPUT, w, 4, rec(10));
    assert_eq!(produces(&c.tick(RESEND_NS - 1)), vec![], "not yet due");
    assert_eq!(produces(&c.tick(RESEND_NS)), vec![(4, 0, 10)]);
    c.restart();
    assert_eq!(produces(&c.tick(RESEND_NS + 1)), vec![(4, 0, 10)], "a restart sends again at once");
    let a = c.tick(10 * SEC);
    assert_eq!(markers(&a), vec![(4, 1, false)]);
    assert!(a.contains(&Action::Count("transactions_timed_out")));
    // Its marker goes again until written; then the commit is refused.
    assert_eq!(markers(&c.tick(10 * SEC + RESEND_NS)), vec![(4, 1, false)]);
    c.marker_acked(11 * SEC, producer_id(INPUT), 1, 4, true);
    assert_eq!(replies(&c.commit(12 * SEC, INPUT, commit(w, 0, 3, &[(4, 10)]))), vec![(0, false, true)]);
}

#[test]
fn a_refused_write_is_sent_at_the_next_tick_and_a_commit_waits_for_it() {
    let mut c = coordinator();
    let w = (MEMBER, 1, 1);
    c.commit(0, INPUT, commit(w, 0, 3, &[(4, 10)]));
    assert!(c.produce_acked(1, 4, 10, false).is_empty());
    assert_eq!(produces(&c.tick(2)), vec![(4, 0, 10)], "refused: sent again without waiting");
    let a = c.produce_acked(3, 4, 10, true);
    assert!(matches!(a[..], [Action::OffsetCommit { end: 3, .. }]));
    // Retriable (the group coordinator is elsewhere): sent again.
    assert!(c.offsets_answered(4, INPUT, false, true, 0).is_empty());
    assert!(matches!(c.tick(5)[..], [Action::OffsetCommit { end: 3, .. }]));
}

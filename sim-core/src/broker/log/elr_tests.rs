//! Unit tests of the version-dependent replication rules (see `elr.rs`):
//! strict min ISR from 3.7, eligible leader replicas from 4.1 (4.0 when
//! enabled), driven through the broker's handlers. A follower that
//! "stalls" is one whose fetch timer the test never fires.

use super::*;
use crate::broker::log::elr::Rules;

/// `replicas` replicas, min ISR 2, Kafka `version`, one topic `t` of one
/// partition. Replication is set here; the lag limit (500 ms) and election
/// delay (100 ms) come from `broker`'s `TIMINGS`, not the defaults.
fn table(replicas: u32, version: &str, more: &str) -> String {
    format!(
        "replicas = {replicas}\nmin_insync_replicas = 2\nversion = \"{version}\"\nreplication = {{ dist = \"constant\", ms = 1 }}\n{more}\n\
         topics = {{ t = {{ partitions = 1 }} }}"
    )
}

/// The ids of the records sent to member M1.
fn served(e: &Emitted) -> Vec<MsgId> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Log(LogMsg::Records { recs, .. }) if to == M1 => Some(recs),
            _ => None,
        })
        .flatten()
        .map(|r| r.id)
        .collect()
}

/// Replicas 2 and a reader M1: follower 1 crashes, record 0 is written
/// with acks=1, M1 waits for it, and the ISR check drops the follower: the
/// leader alone is in sync, below the minimum. Returns what the check emitted.
fn leader_alone_with_an_acks_1_record(version: &str) -> (Harness, LogBroker, Emitted) {
    let (mut h, mut b) = broker(&table(2, version, ""), vec![group(0, 0)]);
    join(&mut h, &mut b, &[M1]);
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
    assert_eq!(produce_acks(&h.message(&mut b, P, produce(0, Acks::Leader))), vec![(0, true)]);
    assert!(served(&h.message(&mut b, M1, fetch_from(1, 0, 0))).is_empty(), "HW 0: the fetch waits");
    let at = h.now + LAG + 1;
    let e = fire(&mut h, &mut b, at, LogTimer::IsrCheck(0));
    assert_eq!(metric(&e, "isr_shrinks"), 1.0);
    (h, b, e)
}

#[test]
fn before_3_7_an_acks_1_write_is_read_with_the_leader_alone_in_sync() {
    let (_, _, e) = leader_alone_with_an_acks_1_record("3.6");
    assert_eq!(served(&e), vec![0], "the HW follows the ISR down to the leader alone");
    assert_eq!(metric(&e, "hw_held_ms"), 0.0);
}

#[test]
fn from_3_7_the_high_watermark_stands_still_while_the_isr_is_below_the_minimum() {
    for version in ["3.7", "3.9", "4.0", "4.1"] {
        let (mut h, mut b, e) = leader_alone_with_an_acks_1_record(version);
        assert!(served(&e).is_empty(), "{version}: record 0 is acked but not committed");
        // Two seconds later the follower returns; 1 ms later it has caught
        // up, the ISR is back at the minimum and the HW passes record 0.
        h.now += 2000 * MS;
        let back = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, false);
        let e = replicate(&mut h, &mut b, &back);
        assert_eq!((metric(&e, "isr_expands"), served(&e)), (1.0, vec![0]), "{version}");
        assert_eq!(metric(&e, "hw_held_ms"), 2001.0, "{version}: held from the shrink to the catch-up");
    }
}

#[test]
fn from_3_7_an_acks_all_write_caught_by_the_shrink_waits_instead_of_being_refused() {
    for (version, refused) in [("3.6", true), ("4.1", false)] {
        let (mut h, mut b) = broker(&table(2, version, ""), Vec::new());
        h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
        h.message(&mut b, P, produce(0, Acks::All));
        let e = fire(&mut h, &mut b, LAG + 1, LogTimer::IsrCheck(0));
        if refused {
            assert_eq!((produce_acks(&e), e.errors()), (vec![(0, false)], vec!["not-enough-replicas-after-append"]));
            continue;
        }
        assert!(
            produce_acks(&e).is_empty() && e.errors().is_empty(),
            "{version}: it waits (the producer may time out)"
        );
        h.now = 900 * MS;
        let back = h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, false);
        assert_eq!(produce_acks(&replicate(&mut h, &mut b, &back)), vec![(0, true)], "committed once 2 are in sync");
    }
}

/// Replicas 3, reader M1, then: replica 2 is down; record 0 (acks=all)
/// reaches replica 1 and is committed and read; record 1 (acks=1) never
/// reaches replica 1, whose fetch stalls, so replica 1 leaves the ISR too.
/// Then (`restart_1`) replica 1 may crash and come back, and the leader
/// crashes. Returns the election's output and every record M1 was sent.
fn leader_dies_after_its_isr_fell_to_itself(version: &str, more: &str, restart_1: bool) -> (Emitted, Vec<MsgId>) {
    let (mut h, mut b) = broker(&table(3, version, more), vec![group(0, 0)]);
    join(&mut h, &mut b, &[M1]);
    let t0 = h.now;
    h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 2 }, true);
    h.message(&mut b, P, produce(0, Acks::All));
    fire(&mut h, &mut b, t0 + MS, fetch(0, 1));
    let e = fire(&mut h, &mut b, t0 + LAG + 1, LogTimer::IsrCheck(0));
    assert_eq!(produce_acks(&e), vec![(0, true)], "replicas 0 and 1 have it");
    let mut read = served(&h.message(&mut b, M1, fetch_from(1, 0, 0)));
    assert_eq!(read, vec![0]);
    read.extend(served(&h.message(&mut b, M1, fetch_from(1, 0, 1))));
    let t1 = t0 + LAG + 2;
    h.now = t1;
    assert_eq!(produce_acks(&h.message(&mut b, P, produce(1, Acks::Leader))), vec![(1, true)]);
    let e = fire(&mut h, &mut b, t1 + LAG + 1, LogTimer::IsrCheck(0));
    assert_eq!(metric(&e, "isr_shrinks"), 1.0, "replica 1 stalled: the leader alone is in sync");
    read.extend(served(&e));
    if restart_1 {
        h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, true);
        h.fault(&mut b, &NodeFault::ReplicaCrash { replica: 1 }, false);
    }
    h.fault(&mut b, &NodeFault::LeaderCrash { topic: 0, partition: 0, fault: 0 }, true);
    let at = h.now + 100 * MS;
    let e = fire(&mut h, &mut b, at, LogTimer::Election(0));
    let after = h.message(&mut b, P, produce(2, Acks::Leader));
    assert_eq!(produce_acks(&after) == vec![(2, true)], metric(&e, "leader_elections") == 1.0, "{e:?}");
    (e, read)
}

#[test]
fn before_eligible_leader_replicas_the_partition_stays_offline_or_an_unclean_election_loses_read_records() {
    for version in ["3.6", "4.0"] {
        let (e, read) = leader_dies_after_its_isr_fell_to_itself(version, "", false);
        assert_eq!((metric(&e, "offline_partitions"), metric(&e, "elr_elections")), (1.0, 0.0), "{version}");
        let seen = if version == "3.6" { vec![0, 1] } else { vec![0] };
        assert_eq!(read, seen, "{version}: record 1 is read only where the HW follows the ISR down");
    }
    // 3.6 with unclean election: replica 1 leads, and record 1, committed
    // and read by M1, is cut off.
    let (e, read) = leader_dies_after_its_isr_fell_to_itself("3.6", "unclean_leader_election = true", false);
    assert_eq!((metric(&e, "unclean_elections"), metric(&e, "truncated_records")), (1.0, 1.0));
    assert_eq!(read, vec![0, 1]);
}

#[test]
fn from_4_1_an_eligible_leader_replica_is_elected_cleanly_and_nothing_committed_is_lost() {
    for (version, more) in [("4.1", ""), ("4.0", "eligible_leader_replicas = true")] {
        let (e, read) = leader_dies_after_its_isr_fell_to_itself(version, more, false);
        let figures = ["leader_elections", "elr_elections", "unclean_elections", "offline_partitions"];
        assert_eq!(figures.map(|m| metric(&e, m)), [1.0, 1.0, 0.0, 0.0], "{version} {more}");
        // Record 1 was acked (acks=1) but never committed: no reader saw it.
        assert_eq!((metric(&e, "truncated_records"), read), (1.0, vec![0]), "{version} {more}");
    }
}

#[test]
fn a_replica_that_restarts_after_an_unclean_shutdown_leaves_the_eligible_leader_replicas() {
    let (e, _) = leader_dies_after_its_isr_fell_to_itself("4.1", "", true);
    assert_eq!((metric(&e, "offline_partitions"), metric(&e, "elr_elections")), (1.0, 0.0));
}

#[test]
fn the_version_sets_the_rules_and_eligible_leader_replicas_need_4_0() {
    let rules = |version: &str, elr: Option<bool>| {
        let spec = LogSpec { version: version.into(), eligible_leader_replicas: elr, ..LogSpec::default() };
        Rules::of(&spec).map(|r| (r.strict_min_isr, r.elr))
    };
    assert_eq!(LogSpec::default().version, "4.1", "the newest modelled");
    assert_eq!(rules("3.6", None), Ok((false, false)));
    assert_eq!(rules("3.8", None), Ok((true, false)));
    assert_eq!(rules("4.0", None), Ok((true, false)), "4.0: ELR off by default");
    assert_eq!(rules("4.0", Some(true)), Ok((true, true)));
    assert_eq!(rules("4.1", None), Ok((true, true)));
    assert_eq!(rules("4.1", Some(false)), Ok((true, false)));
    let err = rules("3.6", Some(true)).unwrap_err();
    assert!(err.contains("4.0 or later"), "{err}");
    let err = rules("4.2", None).unwrap_err();
    assert!(err.contains("unknown Kafka version `4.2`; did you mean `4.1`?"), "{err}");
    assert!(rules("3", None).is_err() && rules("", None).is_err());
}

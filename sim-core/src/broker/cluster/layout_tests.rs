use super::*;
use crate::broker::TopicSpec;

fn spec(brokers: u32, replicas: u32, partitions: u32, racks: Option<u32>) -> LogSpec {
    let mut s = LogSpec { brokers: Some(brokers), replicas, racks, ..LogSpec::default() };
    s.topics.insert(
        "t".into(),
        TopicSpec {
            partitions,
            retention_messages: None,
            retention_ms: None,
            expected_rate_per_s: None,
            partition_rate_per_s: None,
        },
    );
    s
}

#[test]
fn every_partition_has_distinct_replicas_and_leadership_is_spread() {
    for n in 1..=9u32 {
        for rf in 1..=n.min(5) {
            let l = Layout::new(&spec(n, rf, 60, None), 0, (1..=n).collect());
            let mut leaders = vec![0usize; n as usize];
            for r in &l.replicas {
                assert_eq!(r.len(), rf as usize);
                let mut sorted = r.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), r.len(), "replicas {r:?} repeat a broker");
                leaders[usize::from(r[0])] += 1;
            }
            let (lo, hi) = (leaders.iter().min().unwrap(), leaders.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} brokers, rf {rf}: leaders {leaders:?} uneven");
        }
    }
}

#[test]
fn followers_spread_over_every_other_broker() {
    // With 60 partitions on 4 brokers at rf 2, each broker follows for
    // partitions led by each of the others (Kafka's shift).
    let l = Layout::new(&spec(4, 2, 60, None), 0, (1..=4).collect());
    let mut pairs = std::collections::BTreeSet::new();
    for r in &l.replicas {
        pairs.insert((r[0], r[1]));
    }
    assert_eq!(pairs.len(), 12, "every ordered pair of distinct brokers: {pairs:?}");
}

#[test]
fn racks_get_one_replica_each_while_there_are_enough() {
    let l = Layout::new(&spec(6, 3, 30, Some(3)), 0, (1..=6).collect());
    for r in &l.replicas {
        let mut racks: Vec<u16> = r.iter().map(|&b| l.racks[usize::from(b)]).collect();
        racks.sort_unstable();
        racks.dedup();
        assert_eq!(racks.len(), 3, "replicas {r:?} share a rack");
    }
}

#[test]
fn global_and_local_numbering_round_trip() {
    let mut s = spec(3, 3, 4, None);
    s.topics.insert(
        "u".into(),
        TopicSpec {
            partitions: 2,
            retention_messages: None,
            retention_ms: None,
            expected_rate_per_s: None,
            partition_rate_per_s: None,
        },
    );
    let l = Layout::new(&s, 9, vec![10, 11, 12]);
    assert_eq!(l.partition_count(), 6);
    for g in 0..6u32 {
        let (t, p) = l.local(g);
        assert_eq!(l.global(t, p), Some(g));
    }
    assert_eq!(l.global(0, 4), None);
    assert_eq!(l.broker_of(11), Some(1));
    assert_eq!(l.node_of(2), 12);
}

#[test]
fn a_group_is_coordinated_where_kafka_places_it() {
    // Java's "readers".hashCode() is s[0]*31^(n-1) + ... + s[n-1] =
    // 1080410128; % 50 = 28; offsets partition 28's preferred leader on 3
    // brokers is broker 28 % 3 = 1.
    assert_eq!(java_hash("g"), 103);
    assert_eq!(java_hash("readers"), 1_080_410_128);
    let l = Layout::new(&spec(3, 3, 1, None), 0, vec![1, 2, 3]).with_groups(["readers", "reader", "readers"]);
    // "reader".hashCode() is negative (3359987907 as an unsigned int): Kafka's
    // Utils.abs keeps the low 31 bits, 1212504259; % 50 = 9; 9 % 3 = 0.
    assert_eq!(java_hash("reader"), 3_359_987_907);
    assert_eq!((offsets_partition("readers"), offsets_partition("reader")), (28, 9));
    // One internal partition per offsets partition used, after the topic's,
    // in the offsets topic's order; the preferred leader as Kafka's.
    assert_eq!(l.offsets, vec![(9, 1), (28, 2)]);
    assert_eq!((l.offsets_of("reader"), l.offsets_of("readers"), l.offsets_of("other")), (Some(1), Some(2), None));
    assert_eq!(l.replicas[2][0], 1, "28 % 3");
    assert_eq!(l.replicas[1][0], 0, "9 % 3");
    assert!(l.replicas[1..].iter().all(|r| r.len() == 3), "offsets.topic.replication.factor 3");
    assert!(l.is_offsets(2) && !l.is_offsets(0));
    assert_eq!(l.clone().with_groups(["reader"]), l, "adding a group laid out already changes nothing");
    // On fewer brokers than 3, one replica per broker.
    let two = Layout::new(&spec(2, 1, 1, None), 0, vec![1, 2]).with_groups(["readers"]);
    assert_eq!(two.replicas[1].len(), 2);
}

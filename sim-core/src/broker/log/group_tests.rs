//! Unit tests of a consumer group's assignment and fencing rules.

use super::{Assignor, Group, GroupInfo, Member};
use crate::message::NodeId;

const A: NodeId = 4;
const B: NodeId = 6;

fn group(assignor: Assignor, partitions: usize, members: &[NodeId]) -> Group {
    let info = GroupInfo { name: "g".into(), topic: 0, domain: 0, assignor };
    let mut g = Group::new(info, partitions);
    g.members = members.iter().map(|&node| Member { node, session: 1, last_seen: 0 }).collect();
    g.generation = 1;
    g.assign();
    g
}

#[test]
fn range_gives_each_member_a_contiguous_run_and_the_first_ones_the_remainder() {
    let g = group(Assignor::Range, 5, &[A, B]);
    assert_eq!(g.owner, vec![Some(A), Some(A), Some(A), Some(B), Some(B)]);
    assert_eq!((g.partitions_of(A), g.partitions_of(B)), (vec![0, 1, 2], vec![3, 4]));
}

#[test]
fn round_robin_deals_the_partitions_in_turn() {
    let g = group(Assignor::RoundRobin, 5, &[A, B]);
    assert_eq!(g.owner, vec![Some(A), Some(B), Some(A), Some(B), Some(A)]);
}

#[test]
fn more_members_than_partitions_leaves_some_idle_and_none_leaves_all_unowned() {
    let g = group(Assignor::Range, 1, &[A, B]);
    assert_eq!((g.partitions_of(A), g.partitions_of(B)), (vec![0], vec![]));
    let g = group(Assignor::Range, 2, &[]);
    assert_eq!(g.owner, vec![None, None]);
}

#[test]
fn only_the_owner_in_the_current_generation_may_fetch_or_commit() {
    let g = group(Assignor::Range, 2, &[A, B]);
    assert!(g.may_fetch(A, 1, 0) && g.may_commit(A, 1, 0));
    assert!(!g.may_fetch(B, 1, 0) && !g.may_commit(B, 1, 0), "not B's partition");
    assert!(!g.may_fetch(A, 0, 0) && !g.may_commit(A, 0, 0), "a stale generation");
}

#[test]
fn during_a_rebalance_the_previous_owner_may_commit_but_nobody_may_fetch() {
    let mut g = group(Assignor::Range, 2, &[A, B]);
    // A rebalance starts, as the broker starts one.
    g.generation = 2;
    g.prev_owner = std::mem::replace(&mut g.owner, vec![None; 2]);
    g.rebalancing = true;
    assert!(g.may_commit(A, 1, 0), "its last chance to commit partition 0");
    assert!(!g.may_commit(A, 1, 1) && !g.may_commit(A, 2, 0), "not its partition, or not its generation");
    assert!(!g.may_fetch(A, 1, 0) && !g.may_fetch(A, 2, 0));
}

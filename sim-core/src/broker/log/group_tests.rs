//! Unit tests of a consumer group's assignment and fencing rules.

use super::{Assignor, Group, GroupInfo, Member, RebalanceProtocol};
use crate::message::NodeId;

const A: NodeId = 4;
const B: NodeId = 6;
const C: NodeId = 8;

fn member(node: NodeId) -> Member {
    let id = node;
    Member { id, node, session: 1, static_member: false, last_seen: 0, joined: true, synced: 1, owned: Vec::new() }
}

/// A group of `members` (member id = node id) in generation 1, assigned.
fn group(assignor: Assignor, partitions: usize, members: &[NodeId]) -> Group {
    let mut g = Group::new(GroupInfo::new("g", 0, 0, assignor), partitions);
    g.members = members.iter().map(|&node| member(node)).collect();
    g.generation = 1;
    g.assign();
    g
}

fn of(g: &Group, node: NodeId) -> Vec<usize> {
    g.assigned_to(node)
}

#[test]
fn range_gives_each_member_a_contiguous_run_and_the_first_ones_the_remainder() {
    let g = group(Assignor::Range, 5, &[A, B]);
    assert_eq!((of(&g, A), of(&g, B)), (vec![0, 1, 2], vec![3, 4]));
    assert_eq!(g.owner, g.target, "eager: the owners are the new assignment");
}

#[test]
fn round_robin_deals_the_partitions_in_turn() {
    let g = group(Assignor::RoundRobin, 5, &[A, B]);
    assert_eq!((of(&g, A), of(&g, B)), (vec![0, 2, 4], vec![1, 3]));
}

#[test]
fn more_members_than_partitions_leaves_some_idle_and_none_leaves_all_unowned() {
    let g = group(Assignor::Range, 1, &[A, B]);
    assert_eq!((of(&g, A), of(&g, B)), (vec![0], vec![]));
    let g = group(Assignor::Range, 2, &[]);
    assert_eq!(g.owner, vec![None, None]);
}

#[test]
fn only_the_owner_holding_the_generation_may_fetch_or_commit() {
    let g = group(Assignor::Range, 2, &[A, B]);
    assert!(g.may_fetch(A, 1, 0) && g.may_commit(A, 1, 0));
    assert!(!g.may_fetch(B, 1, 0) && !g.may_commit(B, 1, 0), "not B's partition");
    assert!(!g.may_commit(A, 0, 0), "a stale generation");
    assert!(!g.may_fetch(C, 1, 0) && !g.may_commit(C, 1, 0), "not a member");
}

#[test]
fn a_removed_member_s_partitions_have_no_owner() {
    let mut g = group(Assignor::Range, 2, &[A, B]);
    g.remove(0);
    assert_eq!(g.owner, vec![None, Some(B)]);
    assert!(!g.may_commit(A, 1, 0), "a zombie cannot commit");
}

#[test]
fn cooperative_sticky_keeps_owned_partitions_and_moves_only_the_excess_in_two_rounds() {
    let mut g = Group::new(
        GroupInfo { protocol: RebalanceProtocol::CooperativeSticky, ..GroupInfo::new("g", 0, 0, Assignor::Range) },
        4,
    );
    g.members = vec![member(A)];
    g.assign();
    assert_eq!(of(&g, A), vec![0, 1, 2, 3], "alone, A takes everything");
    // B joins: A keeps two, and the two that move stay A's until it revokes them.
    g.members.push(member(B));
    g.assign();
    assert_eq!((of(&g, A), of(&g, B)), (vec![0, 1], vec![]));
    assert_eq!(g.owner, vec![Some(A); 4], "nothing moves in the first round");
    // A revokes 2 and 3 and rejoins: the second round gives them to B.
    g.set_owned(0, &[0, 1]);
    g.assign();
    assert_eq!((of(&g, A), of(&g, B)), (vec![0, 1], vec![2, 3]));
    // C joins: each keeps what it can (4 over 3: one keeps two).
    g.members.push(member(C));
    g.assign();
    assert_eq!((of(&g, A), of(&g, B), of(&g, C)), (vec![0, 1], vec![2], vec![]));
}

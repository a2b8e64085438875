//! Unit tests of the quorum's Raft, without the engine: voters exchange
//! messages through a queue the test pumps, and may be cut off.

use super::*;
use crate::broker::cluster::controller::ClusterState;
use crate::broker::cluster::voter::replay;
use crate::protocol::cluster::PartState;

/// Voters and the messages between them, in order; `down` voters lose
/// what is sent to them.
struct Net {
    q: Vec<Quorum>,
    down: Vec<bool>,
    queue: Vec<(VoterIx, VoterIx, ClusterMsg)>,
}

impl Net {
    /// `n` voters, voter 0 leading epoch 1.
    fn new(n: usize) -> Self {
        Net { q: (0..n as VoterIx).map(|v| Quorum::new(v, n, 0)).collect(), down: vec![false; n], queue: Vec::new() }
    }

    fn send(&mut self, from: VoterIx, msgs: Vec<ToVoter>) {
        self.queue.extend(msgs.into_iter().map(|(to, m)| (from, to, m)));
    }

    /// Delivers everything queued (and what that sends) to the voters up.
    fn pump(&mut self) {
        while !self.queue.is_empty() {
            let (from, to, msg) = self.queue.remove(0);
            if self.down[usize::from(to)] || self.down[usize::from(from)] {
                continue;
            }
            let out = self.handle(to, msg);
            self.send(to, out);
        }
    }

    fn handle(&mut self, to: VoterIx, msg: ClusterMsg) -> Vec<ToVoter> {
        let q = &mut self.q[usize::from(to)];
        match msg {
            ClusterMsg::QuorumVote { epoch, candidate, last_epoch, end } => {
                vec![q.on_vote(epoch, candidate, last_epoch, end)]
            }
            ClusterMsg::QuorumVoteAnswer { epoch, voter, granted, leader } => {
                q.on_vote_answer(epoch, voter, granted, leader)
            }
            ClusterMsg::BeginQuorum { epoch, leader } => {
                q.on_begin(epoch, leader);
                Vec::new()
            }
            ClusterMsg::QuorumFetch { epoch, voter, end, last_epoch } => q
                .on_fetch(epoch, voter, end, last_epoch)
                .map(|(d, _)| vec![(voter, ClusterMsg::QuorumData(Box::new(d)))])
                .unwrap_or_default(),
            ClusterMsg::QuorumData(d) => {
                // A follower fetches again after each answer until it has
                // everything (the leader would hold the idle fetch).
                let more = q.on_data(&d) && (!d.entries.is_empty() || d.diverging.is_some());
                if more {
                    q.fetch().into_iter().collect()
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    /// Every follower up fetches once (and on, while there is news).
    fn fetch_round(&mut self) {
        for v in 0..self.q.len() {
            if !self.down[v] {
                let f = self.q[v].fetch().into_iter().collect();
                self.send(v as VoterIx, f);
            }
        }
        self.pump();
    }

    /// Voter `v` stands for election; the messages are delivered.
    fn stand(&mut self, v: VoterIx) {
        let votes = self.q[usize::from(v)].stand();
        self.send(v, votes);
        self.pump();
    }
}

fn fence(b: u16) -> MetadataRecord {
    MetadataRecord::Fence(vec![b])
}

#[test]
fn the_quorum_starts_led_by_voter_0_with_its_leader_change_committed() {
    let net = Net::new(3);
    assert!(net.q[0].is_leader());
    for q in &net.q {
        assert_eq!((q.epoch(), q.leader(), q.commit(), q.log().len()), (1, Some(0), 1, 1));
    }
    assert!(!net.q[1].is_leader() && !net.q[2].is_candidate());
}

#[test]
fn a_record_commits_once_a_majority_holds_it_and_not_before() {
    let mut net = Net::new(3);
    net.down[2] = true;
    assert_eq!(net.q[0].append(fence(1)), Some(2));
    // The leader alone holds it: 1 of 3.
    assert_eq!(net.q[0].commit(), 1);
    // Voter 1's first fetch copies it; its next fetch acknowledges it: 2 of 3.
    net.fetch_round();
    assert_eq!(net.q[0].commit(), 2);
    assert_eq!(net.q[1].log().len(), 2);
    // Voter 1 learns the commit from the next answer.
    net.fetch_round();
    assert_eq!(net.q[1].commit(), 2);
    assert_eq!(net.q[2].log().len(), 1, "a voter down has nothing");
}

#[test]
fn only_the_leader_appends() {
    let mut net = Net::new(3);
    assert_eq!(net.q[1].append(fence(0)), None);
    assert_eq!(net.q[1].log().len(), 1);
}

#[test]
fn a_candidate_with_a_majority_wins_and_the_others_follow_it() {
    let mut net = Net::new(3);
    net.down[0] = true;
    net.stand(1);
    assert!(net.q[1].is_leader());
    assert_eq!((net.q[1].epoch(), net.q[2].epoch(), net.q[2].leader()), (2, 2, Some(1)));
    // Its LeaderChange is its epoch's first record, committed with voter 2.
    assert_eq!(net.q[1].log().last().map(|e| (e.epoch, e.record.clone())), Some((2, MetadataRecord::LeaderChange)));
    net.fetch_round();
    assert_eq!(net.q[1].commit(), 2);
}

#[test]
fn without_a_majority_a_candidate_does_not_win() {
    let mut net = Net::new(3);
    net.down[0] = true;
    net.down[2] = true;
    net.stand(1);
    assert!(net.q[1].is_candidate());
    assert_eq!(net.q[1].leader(), None);
}

#[test]
fn a_vote_is_granted_once_per_epoch() {
    let mut q = Quorum::new(2, 3, 0);
    // Voter 2 knows leader 0 in epoch 1: it refuses a candidate of epoch 1.
    assert!(matches!(q.on_vote(1, 1, 1, 1).1, ClusterMsg::QuorumVoteAnswer { granted: false, .. }));
    // Epoch 2: it grants candidate 1, then refuses candidate 0, and grants 1 again (a repeat).
    assert!(matches!(q.on_vote(2, 1, 1, 1).1, ClusterMsg::QuorumVoteAnswer { granted: true, epoch: 2, .. }));
    assert!(matches!(q.on_vote(2, 0, 1, 1).1, ClusterMsg::QuorumVoteAnswer { granted: false, .. }));
    assert!(matches!(q.on_vote(2, 1, 1, 1).1, ClusterMsg::QuorumVoteAnswer { granted: true, .. }));
    // An older epoch is refused with the current one.
    assert!(matches!(q.on_vote(1, 0, 1, 1).1, ClusterMsg::QuorumVoteAnswer { granted: false, epoch: 2, .. }));
}

#[test]
fn a_vote_goes_only_to_a_log_at_least_as_up_to_date() {
    let mut net = Net::new(3);
    net.q[0].append(fence(1));
    net.fetch_round();
    // Voter 1 has 2 records; voter 2 was down and has 1.
    let mut q1 = net.q[1].clone();
    q1.crash();
    // Candidate 2 (end 1, last epoch 1) is behind voter 1 (end 2): refused.
    assert!(matches!(q1.on_vote(2, 2, 1, 1).1, ClusterMsg::QuorumVoteAnswer { granted: false, .. }));
    // A newer last epoch wins over a longer log.
    assert!(matches!(q1.on_vote(3, 2, 2, 1).1, ClusterMsg::QuorumVoteAnswer { granted: true, .. }));
}

#[test]
fn the_new_leader_keeps_every_committed_record() {
    let mut net = Net::new(3);
    net.down[2] = true;
    net.q[0].append(fence(1));
    net.q[0].append(fence(2));
    net.fetch_round();
    assert_eq!(net.q[0].commit(), 3);
    // The leader dies; voter 2 comes back; voter 2 is behind, so only voter 1 can win.
    net.down[0] = true;
    net.down[2] = false;
    net.stand(2);
    assert!(!net.q[2].is_leader(), "voter 1 refuses a log behind its own");
    net.stand(1);
    assert!(net.q[1].is_leader());
    net.fetch_round();
    net.fetch_round();
    let records: Vec<_> = net.q[2].log().iter().map(|e| e.record.clone()).collect();
    assert_eq!(records[1..3], [fence(1), fence(2)]);
    assert_eq!((net.q[1].commit(), net.q[2].commit()), (4, 4));
}

#[test]
fn a_deposed_leaders_uncommitted_records_are_truncated() {
    let mut net = Net::new(3);
    // Leader 0 is cut off and appends two records nobody else gets.
    net.down[0] = true;
    net.q[0].append(fence(1));
    net.q[0].append(fence(2));
    assert_eq!(net.q[0].commit(), 1);
    // The others elect voter 1, which appends one record, committed.
    net.stand(1);
    net.q[1].append(fence(0));
    net.fetch_round();
    assert_eq!(net.q[1].commit(), 3);
    // Voter 0 returns: a fetch of the new leader deposes it (epoch 2), and
    // its log is reconciled with the leader's.
    net.down[0] = false;
    net.q[0].on_begin(2, 1);
    assert!(!net.q[0].is_leader());
    net.fetch_round();
    net.fetch_round();
    assert_eq!(net.q[0].log(), net.q[1].log());
    assert!(!net.q[0].log().iter().any(|e| e.record == fence(2)));
    assert_eq!(net.q[0].commit(), 3);
}

#[test]
fn a_leader_that_resigns_stops_leading_and_a_newer_epoch_deposes_a_leader() {
    let mut q = Quorum::new(0, 3, 0);
    q.resign();
    assert!(!q.is_leader());
    assert_eq!((q.epoch(), q.leader()), (1, None));
    let mut q = Quorum::new(0, 3, 0);
    assert!(q.on_fetch(2, 1, 1, 1).is_none(), "a fetch of a newer epoch is not answered");
    assert!(!q.is_leader());
    assert_eq!(q.epoch(), 2);
}

#[test]
fn older_records_commit_only_with_one_of_the_new_leaders_epoch() {
    let mut net = Net::new(3);
    net.down[2] = true;
    // A record reaches voter 1 but the leader dies before it learns the commit.
    net.q[0].append(fence(1));
    let Some((0, ClusterMsg::QuorumFetch { epoch, voter, end, last_epoch })) = net.q[1].fetch() else { panic!() };
    let (data, _) = net.q[0].on_fetch(epoch, voter, end, last_epoch).expect("the leader answers");
    assert!(net.q[1].on_data(&data));
    assert_eq!((net.q[1].log().len(), net.q[1].commit()), (2, 1));
    net.down[0] = true;
    net.down[2] = false;
    net.stand(1);
    // Voter 1 leads epoch 2 with [LC1, fence, LC2]: nothing of epoch 2 is
    // acknowledged by a majority yet, so the fence is not committed.
    assert_eq!(net.q[1].commit(), 1);
    net.fetch_round();
    net.fetch_round();
    assert_eq!(net.q[1].commit(), 3);
}

#[test]
fn every_voter_applying_the_committed_records_reaches_the_same_state() {
    let mut leader = ClusterState::new(3, vec![vec![0, 1, 2]], 2, false);
    let mut follower = leader.clone();
    let alter = PartState { isr: vec![1, 2], ..leader.part(0).clone() };
    let records = [
        MetadataRecord::Heartbeat { broker: 0, incarnation: 0, version: 0 },
        fence(0),
        MetadataRecord::Heartbeat { broker: 0, incarnation: 1, version: 0 },
        MetadataRecord::AlterPartition { broker: 1, state: alter },
    ];
    for r in &records {
        replay(&mut leader, r);
    }
    for r in &records {
        replay(&mut follower, r);
    }
    assert_eq!(leader.part(0), follower.part(0));
    assert_eq!((leader.version(), leader.fenced_list()), (follower.version(), follower.fenced_list()));
    // The fence moved leadership to broker 1; its ISR proposal was stale
    // (made before the fence) and changed nothing.
    assert_eq!(leader.part(0).leader, Some(1));
    assert_eq!(leader.fenced_list(), vec![0]);
}

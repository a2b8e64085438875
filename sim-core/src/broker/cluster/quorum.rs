//! The controller quorum's Raft, without the engine: one voter's epoch,
//! vote, role and metadata log, and what each quorum message changes in
//! them (KRaft, KIP-595). The component ([`super::voter`]) sends what the
//! methods return and applies the records they commit.
//!
//! **Roles.** A voter is a follower (of a known leader or of none), a
//! candidate or the leader. A follower that hears nothing from its leader
//! for the fetch timeout becomes a candidate: it bumps the epoch, votes for
//! itself and asks the others ([`ClusterMsg::QuorumVote`]). A voter grants
//! one vote per epoch, to a candidate whose log is at least as up to date
//! as its own (by last record's epoch, then length), and only while it
//! knows no leader of that epoch. A majority of the voters elects: the new
//! leader appends a `LeaderChange` record and tells the others
//! ([`ClusterMsg::BeginQuorum`]). Any message of a newer epoch makes a
//! voter a follower of that epoch.
//!
//! **Replication.** Followers fetch the log from the leader
//! ([`ClusterMsg::QuorumFetch`]), saying where their log ends and the epoch
//! of their last record; a fetch also acknowledges everything before its
//! end. Where the follower's log diverged (its last epoch's records end
//! sooner in the leader's log), the leader answers with the offset to
//! truncate to; the follower truncates and fetches again (KRaft's
//! fetch-based reconciliation). A record is **committed** once a majority
//! of the voters holds it, and the newest one so held is of the leader's
//! epoch (Raft's rule: the leader's `LeaderChange` makes older records
//! committed once it is). Committed records are never truncated; the
//! uncommitted records of a deposed leader are.
//!
//! Left out: pre-vote (KIP-996) and check-quorum (a leader that a majority
//! stopped fetching from resigns, KAFKA-15489); observers (brokers here get
//! the metadata by pushes); snapshots; dynamic voter sets (KIP-853); the
//! `EndQuorumEpoch` a resigning leader sends.

use crate::protocol::cluster::{ClusterMsg, LogEntry, MetadataRecord, QuorumData};

/// A voter's index in the quorum (0 is the cluster's own node).
pub type VoterIx = u8;

/// Most records one fetch answer carries.
const FETCH_MAX_RECORDS: usize = 256;

/// A voter's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Follows `leader` (none known yet in this epoch).
    Follower,
    /// Stands for election: who granted its vote so far.
    Candidate(Vec<bool>),
    /// Leads: per voter, the log end it acknowledged.
    Leader(Vec<u64>),
}

/// One voter's Raft state.
#[derive(Debug, Clone)]
pub struct Quorum {
    me: VoterIx,
    voters: usize,
    /// Durable: the current epoch.
    epoch: u32,
    /// Durable: whom this voter voted for in `epoch`.
    voted: Option<VoterIx>,
    /// The leader of `epoch`, if known.
    leader: Option<VoterIx>,
    role: Role,
    /// Durable: the metadata log.
    log: Vec<LogEntry>,
    /// How many records are known committed.
    commit: u64,
}

/// A message to a voter.
pub type ToVoter = (VoterIx, ClusterMsg);

impl Quorum {
    /// Voter `me` of `voters` voters, at epoch 1 with `leader` elected (the
    /// quorum formed before the run), its log holding that leader's
    /// `LeaderChange`, committed.
    pub fn new(me: VoterIx, voters: usize, leader: VoterIx) -> Self {
        let log = vec![LogEntry { epoch: 1, record: MetadataRecord::LeaderChange }];
        let mut q = Quorum {
            me,
            voters,
            epoch: 1,
            voted: Some(leader),
            leader: Some(leader),
            role: Role::Follower,
            log,
            commit: 1,
        };
        if leader == me {
            q.role = Role::Leader(vec![1; voters]);
        }
        q
    }

    /// The epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The leader of the epoch, if known.
    pub fn leader(&self) -> Option<VoterIx> {
        self.leader
    }

    /// Whether this voter leads.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// Whether this voter stands for election.
    pub fn is_candidate(&self) -> bool {
        matches!(self.role, Role::Candidate(_))
    }

    /// How many records are known committed.
    pub fn commit(&self) -> u64 {
        self.commit
    }

    /// The metadata log.
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    fn majority(&self) -> usize {
        self.voters / 2 + 1
    }

    fn last_epoch(&self) -> u32 {
        self.log.last().map_or(0, |e| e.epoch)
    }

    fn end(&self) -> u64 {
        self.log.len() as u64
    }

    /// A crash: the epoch, the vote and the log are on disk; the role is
    /// not. A voter that led knows no leader on restart.
    pub fn crash(&mut self) {
        if self.leader == Some(self.me) {
            self.leader = None;
        }
        self.role = Role::Follower;
    }

    /// The leader gives up leading (it lost touch with a majority): it
    /// stays in its epoch, knowing no leader.
    pub fn resign(&mut self) {
        if self.is_leader() {
            self.leader = None;
            self.role = Role::Follower;
        }
    }

    /// Moves to `epoch` (newer than the current one) as a follower of
    /// `leader`, if known.
    fn step_to(&mut self, epoch: u32, leader: Option<VoterIx>) {
        if epoch > self.epoch {
            self.epoch = epoch;
            self.voted = None;
        }
        self.leader = leader;
        self.role = Role::Follower;
    }

    /// The fetch timeout (as a follower) or the election timeout (as a
    /// candidate) ran out: stand for election in a new epoch. Returns the
    /// vote requests (none if it won alone).
    pub fn stand(&mut self) -> Vec<ToVoter> {
        self.step_to(self.epoch + 1, None);
        self.voted = Some(self.me);
        let mut granted = vec![false; self.voters];
        granted[usize::from(self.me)] = true;
        self.role = Role::Candidate(granted);
        if self.majority() == 1 {
            return self.win();
        }
        let (epoch, candidate, last_epoch, end) = (self.epoch, self.me, self.last_epoch(), self.end());
        self.others().map(|v| (v, ClusterMsg::QuorumVote { epoch, candidate, last_epoch, end })).collect()
    }

    fn others(&self) -> impl Iterator<Item = VoterIx> {
        let me = self.me;
        (0..self.voters as VoterIx).filter(move |&v| v != me)
    }

    /// Answers candidate `candidate`'s vote request.
    pub fn on_vote(&mut self, epoch: u32, candidate: VoterIx, last_epoch: u32, end: u64) -> ToVoter {
        if epoch > self.epoch {
            self.step_to(epoch, None);
        }
        let up_to_date = (last_epoch, end) >= (self.last_epoch(), self.end());
        let granted =
            epoch == self.epoch && self.leader.is_none() && self.voted.is_none_or(|v| v == candidate) && up_to_date;
        if granted {
            self.voted = Some(candidate);
        }
        let answer = ClusterMsg::QuorumVoteAnswer { epoch: self.epoch, voter: self.me, granted, leader: self.leader };
        (candidate, answer)
    }

    /// Counts a vote answer; returns what a new leader sends.
    pub fn on_vote_answer(
        &mut self,
        epoch: u32,
        voter: VoterIx,
        granted: bool,
        leader: Option<VoterIx>,
    ) -> Vec<ToVoter> {
        if epoch > self.epoch || (epoch == self.epoch && leader.is_some() && !self.is_leader()) {
            self.step_to(epoch, leader);
            return Vec::new();
        }
        let Role::Candidate(votes) = &mut self.role else { return Vec::new() };
        if epoch != self.epoch || !granted {
            return Vec::new();
        }
        votes[usize::from(voter)] = true;
        if votes.iter().filter(|&&v| v).count() >= self.majority() {
            return self.win();
        }
        Vec::new()
    }

    /// Becomes leader: appends its `LeaderChange` and tells the others.
    fn win(&mut self) -> Vec<ToVoter> {
        self.leader = Some(self.me);
        self.role = Role::Leader(vec![0; self.voters]);
        self.append(MetadataRecord::LeaderChange);
        let (epoch, leader) = (self.epoch, self.me);
        self.others().map(|v| (v, ClusterMsg::BeginQuorum { epoch, leader })).collect()
    }

    /// A leader's `BeginQuorum`: follow it if its epoch is not older.
    pub fn on_begin(&mut self, epoch: u32, leader: VoterIx) {
        if epoch >= self.epoch && !(epoch == self.epoch && self.is_leader()) {
            self.step_to(epoch, Some(leader));
        }
    }

    /// Appends `record` (as leader); returns its offset + 1 (the log end
    /// that commits it), or none when this voter does not lead.
    pub fn append(&mut self, record: MetadataRecord) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        self.log.push(LogEntry { epoch: self.epoch, record });
        let end = self.end();
        if let Role::Leader(ends) = &mut self.role {
            ends[usize::from(self.me)] = end;
        }
        self.advance_commit();
        Some(end)
    }

    /// The leader's commit: the largest end a majority acknowledged, if its
    /// last record is of this epoch.
    fn advance_commit(&mut self) {
        let Role::Leader(ends) = &self.role else { return };
        let mut sorted = ends.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let acked = sorted[self.majority() - 1];
        let ours = acked > 0 && self.log[acked as usize - 1].epoch == self.epoch;
        if ours && acked > self.commit {
            self.commit = acked;
        }
    }

    /// The fetch a follower sends its leader, if it knows one.
    pub fn fetch(&self) -> Option<ToVoter> {
        let leader = self.leader.filter(|&l| l != self.me && !self.is_leader())?;
        let (epoch, voter, end, last_epoch) = (self.epoch, self.me, self.end(), self.last_epoch());
        Some((leader, ClusterMsg::QuorumFetch { epoch, voter, end, last_epoch }))
    }

    /// Answers voter `voter`'s fetch, as leader (none otherwise, or for a
    /// fetch of an older epoch), and counts its end as acknowledged.
    /// Returns the answer and whether it carries no record.
    pub fn on_fetch(&mut self, epoch: u32, voter: VoterIx, end: u64, last_epoch: u32) -> Option<(QuorumData, bool)> {
        if epoch > self.epoch {
            self.step_to(epoch, None);
        }
        if !self.is_leader() || epoch < self.epoch || usize::from(voter) >= self.voters {
            return None;
        }
        let mut data = QuorumData {
            epoch: self.epoch,
            leader: self.me,
            offset: end,
            entries: Vec::new(),
            commit: 0,
            diverging: None,
        };
        // The records of the fetcher's last epoch end here in this log.
        let epoch_end = self.log.iter().take_while(|e| e.epoch <= last_epoch).count() as u64;
        let matches = end == 0 || (end <= self.end() && self.log[end as usize - 1].epoch == last_epoch);
        if !matches {
            // Strictly before `end`: each round cuts at least one record.
            data.diverging = Some(epoch_end.min(end - 1));
            data.commit = self.commit;
            return Some((data, false));
        }
        if let Role::Leader(ends) = &mut self.role {
            ends[usize::from(voter)] = end;
        }
        self.advance_commit();
        let upto = (end as usize + FETCH_MAX_RECORDS).min(self.log.len());
        data.entries = self.log[end as usize..upto].to_vec();
        data.commit = self.commit;
        let idle = data.entries.is_empty();
        Some((data, idle))
    }

    /// Takes a leader's answer (as a follower). Returns whether to fetch
    /// again now (it is from the current leader).
    pub fn on_data(&mut self, d: &QuorumData) -> bool {
        if d.epoch < self.epoch || (d.epoch == self.epoch && self.is_leader()) {
            return false;
        }
        if d.epoch > self.epoch || self.leader != Some(d.leader) {
            self.step_to(d.epoch, Some(d.leader));
        }
        if let Some(to) = d.diverging {
            // Committed records are never cut.
            let to = to.max(self.commit);
            self.log.truncate(to as usize);
            return true;
        }
        if d.offset != self.end() {
            return true;
        }
        self.log.extend(d.entries.iter().cloned());
        self.commit = self.commit.max(d.commit.min(self.end()));
        true
    }
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;

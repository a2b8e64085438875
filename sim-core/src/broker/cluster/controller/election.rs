//! The controller's decisions, without the engine: the partition states,
//! which brokers are fenced, and the metadata version, and what each event
//! (a broker fenced, a heartbeat, an ISR proposal) changes in them. Each
//! public method makes at most one new metadata version and returns what
//! changed ([`Outcome`]); the component ([`super::Controller`]) turns that
//! into messages and metrics. The rules are explained in [`super`].

use crate::protocol::cluster::{BrokerIx, MetadataUpdate, PartState};

/// The durable state of a cluster's controller (its metadata log).
#[derive(Debug, Clone)]
pub struct ClusterState {
    /// Per partition, its replicas, preferred leader first.
    replicas: Vec<Vec<BrokerIx>>,
    /// `min_insync_replicas` (for the health counts only).
    min_isr: usize,
    /// Whether an unclean election may pick a replica outside the ISR.
    unclean_allowed: bool,
    /// Per partition, its state.
    parts: Vec<PartState>,
    /// Per partition, the metadata version that last changed it (0: never).
    changed_at: Vec<u64>,
    /// Per broker, whether it is fenced.
    fenced: Vec<bool>,
    /// Per broker, its newest incarnation heard of (none yet: the first
    /// heard is its first registration, whatever its number).
    incarnation: Vec<Option<u32>>,
    /// Per broker, the version of its registration: a fenced broker is
    /// unfenced once it has applied the metadata up to there.
    registered: Vec<u64>,
    /// The metadata version.
    version: u64,
}

/// What one decision changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The change as brokers receive it, if anything changed.
    pub update: Option<MetadataUpdate>,
    /// Elections that gave a partition a leader (clean or unclean).
    pub elections: u32,
    /// Of those, elections from outside the ISR.
    pub unclean: u32,
    /// Partitions left without a leader.
    pub offline: u32,
    /// ISR changes that removed a member (proposed by a leader).
    pub shrinks: u32,
    /// ISR changes that added a member (proposed by a leader).
    pub expands: u32,
    /// Brokers fenced by this decision.
    pub fenced: Vec<BrokerIx>,
    /// Brokers unfenced by this decision.
    pub unfenced: Vec<BrokerIx>,
}

/// What a heartbeat led to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beat {
    /// False for a heartbeat of an incarnation older than the newest heard
    /// of (a message from before a restart): it is ignored.
    pub current: bool,
    /// What changed (a restarted broker fenced, a caught-up one unfenced).
    pub outcome: Outcome,
    /// The answer to the heartbeat: what the broker lacks, if anything.
    pub answer: Option<MetadataUpdate>,
}

/// The controller's verdict on an ISR proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the proposal is now in force.
    pub accepted: bool,
    /// The partition's state now.
    pub state: PartState,
    /// What changed.
    pub outcome: Outcome,
}

/// The health counts operators watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Partitions without a leader.
    pub offline: u32,
    /// Partitions with a leader whose ISR lacks some replica.
    pub under_replicated: u32,
    /// Partitions with a leader whose ISR is smaller than the minimum.
    pub under_min_isr: u32,
    /// Fenced brokers.
    pub fenced: u32,
}

/// Changes being gathered for one new version.
#[derive(Default)]
struct Pending {
    parts: Vec<u32>,
    out: Outcome,
    /// A change no partition shows (a fencing, a registration).
    registration: bool,
}

impl ClusterState {
    /// The initial state of a cluster of `brokers` brokers whose partitions
    /// have `replicas`: every partition led by its preferred leader, with
    /// every replica in sync, all epochs 0, version 0, nobody fenced.
    pub fn new(brokers: usize, replicas: Vec<Vec<BrokerIx>>, min_isr: usize, unclean_allowed: bool) -> Self {
        let parts = replicas.iter().enumerate().map(|(p, r)| PartState::initial(p as u32, r)).collect();
        ClusterState {
            changed_at: vec![0; replicas.len()],
            replicas,
            min_isr,
            unclean_allowed,
            parts,
            fenced: vec![false; brokers],
            incarnation: vec![None; brokers],
            registered: vec![0; brokers],
            version: 0,
        }
    }

    /// The number of brokers.
    pub fn brokers(&self) -> usize {
        self.fenced.len()
    }

    /// The metadata version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The state of partition `p`.
    pub fn part(&self, p: u32) -> &PartState {
        &self.parts[p as usize]
    }

    /// Whether broker `b` is fenced.
    pub fn is_fenced(&self, b: BrokerIx) -> bool {
        self.fenced[usize::from(b)]
    }

    /// Whether an incarnation of broker `b` was heard of.
    pub fn knows(&self, b: BrokerIx) -> bool {
        self.incarnation.get(usize::from(b)).is_some_and(Option::is_some)
    }

    /// The fenced brokers, in index order.
    pub fn fenced_list(&self) -> Vec<BrokerIx> {
        (0..self.brokers() as BrokerIx).filter(|&b| self.is_fenced(b)).collect()
    }

    /// The health counts now.
    pub fn health(&self) -> Health {
        let mut h = Health { fenced: self.fenced.iter().filter(|&&f| f).count() as u32, ..Health::default() };
        for (s, r) in self.parts.iter().zip(&self.replicas) {
            if s.leader.is_none() {
                h.offline += 1;
                continue;
            }
            h.under_replicated += u32::from(s.isr.len() < r.len());
            h.under_min_isr += u32::from(s.isr.len() < self.min_isr);
        }
        h
    }

    /// What a broker at version `since` lacks: every partition changed
    /// after it, and who is fenced now.
    pub fn since(&self, since: u64) -> MetadataUpdate {
        let parts =
            (0..self.parts.len()).filter(|&p| self.changed_at[p] > since).map(|p| self.parts[p].clone()).collect();
        MetadataUpdate { since, version: self.version, parts, fenced: self.fenced_list() }
    }

    /// Fences the brokers of `brokers` that are not fenced yet (their
    /// session expired): each leaves every ISR it is in, unless it is the
    /// last member, and each partition it led gets a new leader, or none.
    pub fn fence(&mut self, brokers: &[BrokerIx]) -> Outcome {
        let mut pending = Pending::default();
        for &b in brokers {
            self.fence_one(b, &mut pending);
        }
        self.commit(pending)
    }

    /// Handles a heartbeat from broker `b`, incarnation `incarnation`, which
    /// has applied the metadata up to `version`. A new incarnation (the
    /// broker restarted) is fenced and registered anew; a fenced broker
    /// that has caught up with its registration is unfenced, and leads the
    /// partitions left without a leader that it may lead. The answer is
    /// what the broker lacks.
    pub fn heartbeat(&mut self, b: BrokerIx, incarnation: u32, version: u64) -> Beat {
        let bi = usize::from(b);
        let known = *self.incarnation[bi].get_or_insert(incarnation);
        if incarnation < known {
            return Beat::default();
        }
        let mut pending = Pending::default();
        let renewed = incarnation > known;
        if renewed {
            // Fence, then register the new incarnation: it must catch up
            // with the metadata including this change before it is unfenced.
            self.incarnation[bi] = Some(incarnation);
            self.fence_one(b, &mut pending);
            pending.registration = true;
        } else if self.fenced[bi] && version >= self.registered[bi] {
            self.unfence_one(b, &mut pending);
        }
        let outcome = self.commit(pending);
        if renewed {
            self.registered[bi] = self.version;
        }
        let answer = (version < self.version).then(|| self.since(version));
        Beat { current: true, outcome, answer }
    }

    /// Decides leader `b`'s proposal `p`: accepted when `b` leads the
    /// partition with the proposal's leader epoch and partition epoch, and
    /// the proposed ISR holds the leader, only replicas, each once, and no
    /// fenced broker. An accepted ISR equal to the current one changes
    /// nothing. Either way the verdict carries the state in force.
    pub fn alter_partition(&mut self, b: BrokerIx, p: &PartState) -> Option<Verdict> {
        let pi = p.partition as usize;
        let cur = self.parts.get(pi)?;
        let valid = cur.leader == Some(b)
            && p.leader_epoch == cur.leader_epoch
            && p.partition_epoch == cur.partition_epoch
            && self.valid_isr(pi, b, &p.isr);
        if !valid {
            return Some(Verdict { accepted: false, state: cur.clone(), outcome: Outcome::default() });
        }
        let isr = self.in_assignment_order(pi, &p.isr);
        let old = std::mem::replace(&mut self.parts[pi].isr, isr.clone());
        let mut pending = Pending::default();
        if isr != old {
            pending.out.shrinks += u32::from(old.iter().any(|r| !isr.contains(r)));
            pending.out.expands += u32::from(isr.iter().any(|r| !old.contains(r)));
            self.touch(pi, false, &mut pending);
        }
        let outcome = self.commit(pending);
        Some(Verdict { accepted: true, state: self.parts[pi].clone(), outcome })
    }

    fn valid_isr(&self, pi: usize, leader: BrokerIx, isr: &[BrokerIx]) -> bool {
        let replicas = &self.replicas[pi];
        isr.contains(&leader)
            && isr.iter().all(|r| replicas.contains(r) && !self.fenced[usize::from(*r)])
            && isr.iter().enumerate().all(|(i, r)| !isr[..i].contains(r))
    }

    fn in_assignment_order(&self, pi: usize, isr: &[BrokerIx]) -> Vec<BrokerIx> {
        self.replicas[pi].iter().copied().filter(|r| isr.contains(r)).collect()
    }

    fn fence_one(&mut self, b: BrokerIx, pending: &mut Pending) {
        let bi = usize::from(b);
        if self.fenced[bi] {
            // Already out: a restart only drops it from the ISRs it was
            // left in as the last member, which it keeps (no change).
            return;
        }
        self.fenced[bi] = true;
        pending.registration = true;
        pending.out.fenced.push(b);
        for pi in 0..self.parts.len() {
            let s = &mut self.parts[pi];
            if !s.isr.contains(&b) {
                continue;
            }
            let led = s.leader == Some(b);
            // The last member stays: an ISR is never empty (without
            // eligible leader replicas, which clusters do not model).
            let shrunk = s.isr.len() > 1;
            if shrunk {
                s.isr.retain(|&r| r != b);
            }
            if led {
                self.elect(pi, shrunk, pending);
            } else if shrunk {
                self.touch(pi, false, pending);
            }
        }
    }

    fn unfence_one(&mut self, b: BrokerIx, pending: &mut Pending) {
        self.fenced[usize::from(b)] = false;
        pending.registration = true;
        pending.out.unfenced.push(b);
        for pi in 0..self.parts.len() {
            if self.parts[pi].leader.is_none() && self.replicas[pi].contains(&b) {
                self.elect(pi, false, pending);
            }
        }
    }

    /// Elects a leader of partition `pi`, whose leader is fenced or gone:
    /// the first replica in assignment order that is in the ISR and not
    /// fenced (clean); else, if allowed, the first replica not fenced
    /// (unclean: the ISR becomes it alone); else none (offline).
    /// `isr_changed`: the caller changed the ISR already.
    fn elect(&mut self, pi: usize, mut isr_changed: bool, pending: &mut Pending) {
        let up = |r: &&BrokerIx| !self.fenced[usize::from(**r)];
        let s = &self.parts[pi];
        let clean = self.replicas[pi].iter().filter(|r| s.isr.contains(r)).find(up).copied();
        let unclean =
            if clean.is_none() && self.unclean_allowed { self.replicas[pi].iter().find(up).copied() } else { None };
        let was = s.leader;
        let s = &mut self.parts[pi];
        match (clean, unclean) {
            (Some(l), _) => {
                s.leader = Some(l);
                s.unclean = false;
                pending.out.elections += 1;
            }
            (None, Some(l)) => {
                s.leader = Some(l);
                isr_changed |= s.isr != [l];
                s.isr = vec![l];
                s.unclean = true;
                pending.out.elections += 1;
                pending.out.unclean += 1;
            }
            (None, None) => {
                s.leader = None;
                if was.is_some() {
                    pending.out.offline += 1;
                }
            }
        }
        let leader_changed = s.leader != was;
        if leader_changed || isr_changed {
            self.touch(pi, leader_changed, pending);
        }
    }

    /// Marks partition `pi` changed: its partition epoch (and, with a new
    /// leader, its leader epoch) is bumped once per version.
    fn touch(&mut self, pi: usize, leader_changed: bool, pending: &mut Pending) {
        let s = &mut self.parts[pi];
        let first = !pending.parts.contains(&(pi as u32));
        if leader_changed {
            s.leader_epoch += 1;
        }
        if first {
            s.partition_epoch += 1;
            pending.parts.push(pi as u32);
        }
    }

    /// Makes the gathered changes one new version.
    fn commit(&mut self, pending: Pending) -> Outcome {
        let Pending { mut parts, mut out, registration } = pending;
        if parts.is_empty() && !registration {
            return out;
        }
        let since = self.version;
        self.version += 1;
        parts.sort_unstable();
        for &p in &parts {
            self.changed_at[p as usize] = self.version;
        }
        let states = parts.iter().map(|&p| self.parts[p as usize].clone()).collect();
        out.update = Some(MetadataUpdate { since, version: self.version, parts: states, fenced: self.fenced_list() });
        out
    }
}

//! The Kafka version a log broker behaves as (`version`), and the two
//! replication rules that changed between the modelled versions: strict
//! min ISR and eligible leader replicas (ELR).
//!
//! **Strict min ISR** (Kafka 3.7 and later: KAFKA-15583, released in 3.7.0).
//! While a partition's ISR is smaller than `min_insync_replicas`, its high
//! watermark (HW) does not advance. Before 3.7 only `acks = "all"` writes
//! cared about the minimum; the HW followed the ISR down to the leader
//! alone. Now `acks = "1"` and `"0"` writes appended meanwhile are neither
//! committed nor visible to consumers until enough replicas are in sync
//! again, and an `acks = "all"` write appended before the ISR shrank waits
//! (its producer times out and retries) instead of being refused after
//! the fact. The time a partition's HW spends held this way is
//! `metrics.hw_held_ms`.
//!
//! **Eligible leader replicas** (KIP-966 part 1; in Kafka 4.0 behind
//! `eligible.leader.replicas.version`, off by default, and on by default
//! for new clusters from 4.1: `eligible_leader_replicas` here). Because the
//! HW stands still while the ISR is below the minimum, a replica that left
//! the ISR then still holds every committed record. The controller keeps
//! such replicas as the partition's ELR: when the ISR shrinks below the
//! minimum, those it loses join the ELR; when it is back at the minimum,
//! the ELR is emptied; a replica that rejoins the ISR leaves the ELR. An
//! election picks a live in-sync replica, else a live ELR member (a clean
//! election: `metrics.elr_elections`, and it becomes the ISR), else, with
//! `unclean_leader_election` only, any live replica. A replica that
//! restarts after an unclean shutdown leaves the ELR (KAFKA-15586: the
//! controller cannot know what it lost). Every crash here is unclean, as a
//! restart without a controlled shutdown is in Kafka.
//!
//! Left out: the ISR of a dead leader is kept, not emptied (so the last
//! in-sync replica returning leads again, as Kafka's "last known leader"
//! rule and earlier versions do); the ELR is not cleared when
//! `min_insync_replicas` changes (it never changes during a run); a
//! replica leaves the ELR when it restarts rather than when it registers
//! with the controller; KIP-966's unclean recovery (part 2) and the
//! "last known ELR" are not modelled; the ELR is only tracked, as Kafka's
//! controller does, from the ISR changes it sees.

use super::kind::LogSpec;
use super::{LogBroker, LogTimer};
use crate::engine::Ctx;
use crate::time::{Time, NS_PER_MS};

/// The versions accepted in `version`, oldest first.
pub const VERSIONS: &[&str] = &["3.6", "3.7", "3.8", "3.9", "4.0", "4.1"];

/// The version a log broker behaves as when none is given: the newest
/// modelled, as the other defaults are Kafka 4.x's.
pub const DEFAULT_VERSION: &str = "4.1";

/// The replication rules of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Rules {
    /// The HW stands still while the ISR is below the minimum (3.7 and later).
    pub strict_min_isr: bool,
    /// Eligible leader replicas are tracked and elected.
    pub elr: bool,
}

impl Rules {
    /// The rules of `spec`'s version and ELR setting, or why they are wrong.
    pub fn of(spec: &LogSpec) -> Result<Rules, String> {
        let Some(i) = VERSIONS.iter().position(|v| *v == spec.version) else {
            let hint = nearest(&spec.version).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
            let all = crate::kind::quoted(VERSIONS.iter().copied());
            return Err(format!("unknown Kafka version `{}`{hint} (modelled: {all})", spec.version));
        };
        let at_least = |v: &str| VERSIONS.iter().position(|x| *x == v).is_some_and(|j| i >= j);
        let elr = spec.eligible_leader_replicas.unwrap_or(at_least("4.1"));
        if elr && !at_least("4.0") {
            return Err(format!(
                "eligible leader replicas need version 4.0 or later (`version` is `{}`)",
                spec.version
            ));
        }
        Ok(Rules { strict_min_isr: at_least("3.7"), elr })
    }
}

/// The modelled version to suggest for `version`: for a release outside
/// the modelled ones, the oldest or newest (they share its rules here);
/// else the closest spelling.
fn nearest(version: &str) -> Option<&'static str> {
    let number = |v: &str| {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    };
    let (first, last) = (VERSIONS[0], VERSIONS[VERSIONS.len() - 1]);
    match number(version) {
        Some(v) if number(first).is_some_and(|f| v < f) => Some(first),
        Some(v) if number(last).is_some_and(|l| v > l) => Some(last),
        _ => {
            let listed: Vec<String> = VERSIONS.iter().map(|v| v.to_string()).collect();
            let near = crate::expect::closest(version, &listed)?;
            VERSIONS.iter().copied().find(|v| *v == near)
        }
    }
}

/// A partition's ELR and the state of its held HW.
#[derive(Debug, Clone, Default)]
pub(super) struct Elr {
    /// Per replica: an eligible leader replica.
    pub members: Vec<bool>,
    /// The ISR as last seen, to tell who left it.
    seen_isr: Vec<bool>,
    /// Since when the HW has been held (strict min ISR), as last accounted.
    held_since: Option<Time>,
}

impl Elr {
    pub fn new(replicas: usize) -> Self {
        Elr { members: vec![false; replicas], seen_isr: vec![true; replicas], held_since: None }
    }

    /// Takes in the ISR changes since last seen: below the minimum, those
    /// that left it join the ELR; at or above it, the ELR is emptied; an
    /// in-sync replica is never in the ELR.
    pub fn track(&mut self, isr: &[bool], min_isr: usize) {
        let below = isr.iter().filter(|&&x| x).count() < min_isr;
        for (r, &in_sync) in isr.iter().enumerate() {
            let left = self.seen_isr[r] && !in_sync;
            self.members[r] = below && !in_sync && (self.members[r] || left);
        }
        self.seen_isr.copy_from_slice(isr);
    }
}

impl LogBroker {
    /// Strict min ISR: whether the HW of `pi` must stand still now (its ISR
    /// is below the minimum); accounts the time it is held. Also brings
    /// the partition's ELR up to date with its ISR.
    pub(super) fn hw_held(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) -> bool {
        let now = ctx.now();
        let p = &mut self.parts[pi];
        if self.rules.elr {
            p.elr.track(&p.isr, self.min_isr);
        }
        let held = self.rules.strict_min_isr && p.isr_count() < self.min_isr;
        if let Some(since) = p.elr.held_since.take() {
            ctx.metric_add("hw_held_ms", now.saturating_sub(since) as f64 / NS_PER_MS as f64);
        }
        if held {
            p.elr.held_since = Some(now);
        }
        held
    }

    /// The eligible leader replica of `pi` to elect when no in-sync replica
    /// is alive: the first live one.
    pub(super) fn elr_candidate(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize) -> Option<usize> {
        if !self.rules.elr {
            return None;
        }
        // The ISR may have changed since the ELR last saw it.
        self.hw_held(ctx, pi);
        let p = &self.parts[pi];
        (0..self.alive.len()).find(|&r| self.alive[r] && p.elr.members[r])
    }

    /// Eligible leader replica `leader` was elected: it alone is the ISR.
    pub(super) fn elr_elected(&mut self, ctx: &mut Ctx<LogTimer>, pi: usize, leader: usize) {
        let p = &mut self.parts[pi];
        for (r, in_sync) in p.isr.iter_mut().enumerate() {
            *in_sync = r == leader;
        }
        p.elr.members[leader] = false;
        ctx.metric_add("elr_elections", 1.0);
    }

    /// Replica `r` restarts after an unclean shutdown: it leaves every ELR.
    pub(super) fn elr_forget(&mut self, r: usize) {
        for p in &mut self.parts {
            p.elr.members[r] = false;
        }
    }
}

//! The windowed ledger against the reference (the dense ledger it
//! replaced, `reference.rs`): random sequences of facts, with a window
//! and archive blocks small enough that messages leave the window, get
//! stuck, settle late and are rewritten in the archive; every count,
//! cause, histogram and list must agree. And its memory over ten million
//! messages.

use super::reference::RefLedger;
use super::*;
use proptest::prelude::*;

/// One fact; ids are picked from what was produced so far (and a little
/// beyond, which both must ignore).
#[derive(Debug, Clone)]
enum Op {
    Produce {
        producer: u32,
        key: u64,
        confirmed: bool,
    },
    Acked(u32),
    Confirm(u32),
    Delivered(u16, u32),
    Started(u32),
    Applied(u16, u32),
    /// Applies the oldest unapplied-looking recent message: keeps most
    /// messages flowing through, as a queue does.
    AppliedRecent(u16, u8),
    AtRisk(u32, u8, Option<u16>),
    Copied(u32, u8),
    DeadLettered(u32),
    Crashed(Vec<u32>, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..3, 0u64..4, any::<bool>()).prop_map(|(producer, key, confirmed)| Op::Produce { producer, key, confirmed }),
        2 => any::<u32>().prop_map(Op::Acked),
        1 => any::<u32>().prop_map(Op::Confirm),
        2 => (0u16..4, any::<u32>()).prop_map(|(d, i)| Op::Delivered(d, i)),
        1 => any::<u32>().prop_map(Op::Started),
        2 => (0u16..4, any::<u32>()).prop_map(|(d, i)| Op::Applied(d, i)),
        6 => (0u16..3, 0u8..6).prop_map(|(d, back)| Op::AppliedRecent(d, back)),
        1 => (any::<u32>(), 0..LossCause::ALL.len() as u8, proptest::option::of(0u16..3))
            .prop_map(|(i, c, d)| Op::AtRisk(i, c, d)),
        1 => (any::<u32>(), 0..DupCause::ALL.len() as u8).prop_map(|(i, c)| Op::Copied(i, c)),
        1 => any::<u32>().prop_map(Op::DeadLettered),
        1 => (proptest::collection::vec(any::<u32>(), 0..4), any::<u8>()).prop_map(|(v, k)| Op::Crashed(v, k)),
    ]
}

/// An id from a selector: most often a recent one, sometimes any, now and
/// then one not produced yet.
fn pick(sel: u32, produced: u64) -> MsgId {
    let span = produced + 2;
    match sel % 4 {
        0 | 1 => produced.saturating_sub(1 + u64::from(sel >> 2) % 8),
        _ => u64::from(sel >> 2) % span,
    }
}

/// Both ledgers, fed the same facts.
struct Pair {
    new: Ledger,
    old: RefLedger,
    now: Time,
}

impl Pair {
    fn apply(&mut self, op: &Op) {
        self.now += 3;
        let (now, n) = (self.now, self.old.produced());
        let (new, old) = (&mut self.new, &mut self.old);
        match *op {
            Op::Produce { producer, key, confirmed } => {
                assert_eq!(new.produce(now, producer, key, confirmed), old.produce(now, producer, key, confirmed));
            }
            Op::Acked(s) => {
                new.acked(pick(s, n));
                old.acked(pick(s, n));
            }
            Op::Confirm(s) => {
                new.confirm(pick(s, n));
                old.confirm(pick(s, n));
            }
            Op::Delivered(d, s) => {
                new.delivered(d, pick(s, n));
                old.delivered(d, pick(s, n));
            }
            Op::Started(s) => {
                new.started(now, pick(s, n));
                old.started(now, pick(s, n));
            }
            Op::Applied(d, s) => {
                new.applied(now, d, pick(s, n));
                old.applied(now, d, pick(s, n));
            }
            Op::AppliedRecent(d, back) => {
                let id = n.saturating_sub(1 + u64::from(back));
                new.applied(now, d, id);
                old.applied(now, d, id);
            }
            Op::AtRisk(s, c, d) => {
                let c = LossCause::ALL[c as usize];
                new.at_risk(pick(s, n), c, d);
                old.at_risk(pick(s, n), c, d);
            }
            Op::Copied(s, c) => {
                let c = DupCause::ALL[c as usize];
                new.copied(pick(s, n), c);
                old.copied(pick(s, n), c);
            }
            Op::DeadLettered(s) => {
                new.dead_lettered(pick(s, n));
                old.dead_lettered(pick(s, n));
            }
            Op::Crashed(ref v, keep) => {
                let mut before: Vec<MsgId> = v.iter().map(|&s| pick(s, n)).collect();
                before.sort_unstable();
                let after: Vec<MsgId> = before.iter().copied().filter(|&id| id % 3 == u64::from(keep % 3)).collect();
                new.crashed(&before, &after);
                old.crashed(&before, &after);
            }
        }
    }

    /// What can be read before the end agrees.
    fn check_running(&self) -> Result<(), TestCaseError> {
        let (new, old) = (&self.new, &self.old);
        prop_assert_eq!(new.counts(), old.counts());
        prop_assert_eq!(
            (new.produced(), new.processed(), new.unapplied()),
            (old.produced(), old.processed(), old.unapplied())
        );
        prop_assert_eq!(new.last_applied(), old.last_applied());
        prop_assert_eq!(new.mean_in_system(self.now).to_bits(), old.mean_in_system(self.now).to_bits());
        prop_assert_eq!(new.latency.summary(), old.latency.summary());
        prop_assert_eq!(new.wait.summary(), old.wait.summary());
        Ok(())
    }
}

fn domains(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// On any sequence of facts, the windowed ledger says what the dense
    /// one says: counts, causes, latencies, lost list, dead letters.
    #[test]
    fn the_windowed_ledger_agrees_with_the_dense_one(
        ops in proptest::collection::vec(op(), 0..400),
        n_domains in 1usize..4,
        window in 1usize..6,
        block in 2usize..6,
        held_sel in proptest::collection::vec(any::<u32>(), 0..6),
        held_in_sel in proptest::collection::vec((any::<u32>(), 0u16..3), 0..6),
    ) {
        let mut p = Pair { new: Ledger::with_window(domains(n_domains), window, block), old: RefLedger::new(domains(n_domains)), now: 0 };
        for (i, op) in ops.iter().enumerate() {
            p.apply(op);
            if i % 16 == 0 {
                p.check_running()?;
            }
        }
        p.check_running()?;
        let n = p.old.produced();
        let held: Vec<MsgId> = held_sel.iter().map(|&s| pick(s, n)).collect();
        let held_in: Vec<(MsgId, DomainId)> = held_in_sel.iter().map(|&(s, d)| (pick(s, n), d)).collect();
        let a = p.new.finish(&mut held.clone(), &mut held_in.clone());
        let b = p.old.finish(&mut held.clone(), &mut held_in.clone());
        prop_assert_eq!(a.counts, b.counts);
        prop_assert_eq!(a.domains, b.domains);
        prop_assert_eq!(a.inconsistent, b.inconsistent);
        prop_assert_eq!(a.lost, b.lost);
        prop_assert_eq!(a.dead_letters, b.dead_letters);
    }
}

/// A fire-and-forget stream through a queue with up to `depth` in flight,
/// applied in order, `n` messages: the ledger's memory at the end.
fn steady_run(l: &mut Ledger, n: u64, depth: u64) -> usize {
    let mut peak = 0;
    let mut next_apply = 0;
    for i in 0..n {
        l.produce(i * 10, 0, i % 16, true);
        l.delivered(0, i);
        // A depth that swings between 0 and `depth`, like a busy queue's.
        let target = (i % (2 * depth)).min(2 * depth - i % (2 * depth));
        while next_apply + target < i + 1 {
            l.started(i * 10 + 5, next_apply);
            l.applied(i * 10 + 5, 0, next_apply);
            next_apply += 1;
        }
        if i % 4096 == 0 {
            peak = peak.max(l.memory_bytes());
        }
    }
    peak
}

#[test]
fn memory_stays_bounded_over_ten_million_messages() {
    let mut l = Ledger::default();
    let at_1m = steady_run(&mut l, 1_000_000, 300);
    let mut l = Ledger::default();
    let at_10m = steady_run(&mut l, 10_000_000, 300);
    assert_eq!(at_1m, at_10m, "the same in flight, the same memory, whatever was processed");
    // The window (its slots, up to twice the minimum while it grows) and
    // the archive's tail: well under 100 kB, against 10 MB for a byte a message.
    assert!(at_10m < 100_000, "{at_10m} bytes");
    assert_eq!(l.counts().processed + l.unapplied(), 10_000_000);
}

#[test]
fn a_message_lost_for_good_does_not_pin_the_window() {
    let mut l = Ledger::default();
    let lost = l.produce(0, 0, 0, true);
    l.at_risk(lost, LossCause::NetworkLoss, None);
    for i in 1..200_000u64 {
        l.produce(i, 0, 0, true);
        l.applied(i, 0, i);
    }
    assert!(l.msgs.base() > 190_000, "the window moved on: base {}", l.msgs.base());
    assert_eq!(l.msgs.stuck_len(), 1);
    assert!(l.memory_bytes() < 100_000, "{} bytes", l.memory_bytes());
    // Applied at last: it settles, and applying it again is a duplicate.
    l.applied(300_000, 0, lost);
    l.applied(300_001, 0, lost);
    assert_eq!(l.msgs.stuck_len(), 0);
    let v = l.finish(&mut vec![], &mut vec![]);
    assert_eq!((v.counts.processed, v.counts.duplicated, v.counts.lost), (200_000, 1, 0));
}

#[test]
fn a_backlog_stays_in_the_dense_window() {
    let mut l = Ledger::default();
    for i in 0..50_000u64 {
        l.produce(i, 0, 0, true);
    }
    assert_eq!((l.msgs.base(), l.msgs.stuck_len()), (0, 0), "unapplied messages stay dense while most are");
    for i in 0..50_000u64 {
        l.applied(60_000 + i, 0, i);
    }
    assert_eq!(l.counts().processed, 50_000);
}

#[test]
fn facts_about_archived_messages_are_judged_as_before() {
    let mut l = Ledger::with_window(domains(2), 2, 4);
    let ids: Vec<MsgId> = (0..40).map(|t| l.produce(t, 0, 0, false)).collect();
    for &id in &ids {
        l.applied(100, 0, id);
        l.applied(100, 1, id);
    }
    l.produce(101, 0, 0, false);
    assert!(l.msgs.base() >= 30, "base {}", l.msgs.base());
    l.acked(ids[3]);
    l.acked(ids[3]);
    l.delivered(1, ids[4]);
    l.copied(ids[5], DupCause::Redelivered);
    l.applied(200, 1, ids[5]);
    l.applied(200, 0, ids[6]);
    let v = l.finish(&mut vec![], &mut vec![]);
    assert_eq!(v.counts.acked, 1, "an ack counts once, archived or not");
    assert_eq!(v.domains["d1"].delivered, 1);
    assert_eq!(v.domains["d1"].duplicated_by_cause.get("redelivered"), Some(&1));
    assert_eq!(v.domains["d0"].duplicated_by_cause.get("unexplained"), Some(&1));
}

//! Unit tests of the projection, the crawler and the watcher, driven by a
//! Harness; a property test of replay against live state.

use super::projection::Applied;
use super::*;
use crate::engine::{Effect, Emitted, Harness, Metric, NoTimer};
use crate::message::Msg;
use crate::observer::StateFact;
use crate::protocol::{Record, SyncMsg};
use proptest::prelude::*;

/// Writes (id, key, version), in production order: ids 0.., keys as given,
/// each key's versions 1, 2, ...
fn writes(keys: &[u64]) -> Vec<(MsgId, u64, u64)> {
    let mut versions = BTreeMap::new();
    keys.iter()
        .enumerate()
        .map(|(i, &k)| {
            let v = versions.entry(k).or_insert(0);
            *v += 1;
            (i as MsgId, k, *v)
        })
        .collect()
}

/// A harness that keeps every effect its handlers emitted.
struct Rig {
    h: Harness,
    effects: Vec<Effect>,
}

impl Rig {
    fn keep(&mut self, out: Emitted) -> Emitted {
        self.effects.extend(out.0.iter().cloned());
        out
    }

    /// A metric's value: what was added to it, or the last value set.
    fn metric(&self, name: &str) -> f64 {
        let mut total = 0.0;
        for e in &self.effects {
            match e {
                Effect::Metric(Metric::Add(n, v)) if *n == name => total += v,
                Effect::Metric(Metric::Set(n, v)) if *n == name => total = *v,
                _ => {}
            }
        }
        total
    }

    /// The `holds` facts reported, in order: (key, write).
    fn holds(&self) -> Vec<(u64, Option<MsgId>)> {
        Emitted(self.effects.clone())
            .state_facts()
            .into_iter()
            .filter_map(|f| match f {
                StateFact::Holds { key, id } => Some((key, id)),
                _ => None,
            })
            .collect()
    }

    fn stores(&mut self) -> &mut crate::store::Stores {
        self.h.stores()
    }
}

/// A rig whose stores hold the versions of `ws`.
fn harness(ws: &[(MsgId, u64, u64)]) -> Rig {
    let mut h = Harness::new(3);
    for &(id, _, v) in ws {
        h.stores().set_header(id, crate::dedup::Header::Version, v);
    }
    Rig { h, effects: Vec::new() }
}

/// Feeds write `w` at `offset`; returns the ids applied.
fn feed(h: &mut Rig, p: &mut Projection, w: (MsgId, u64, u64), offset: u64) -> Vec<MsgId> {
    let (_, out) = h.h.act::<Applied, _>(|ctx| p.write(ctx, 2, Record::new(w.0, w.1), 0, offset));
    h.keep(out).applied()
}

/// The state the writes make applied in production order: per key, its
/// newest write.
fn truth(ws: &[(MsgId, u64, u64)]) -> BTreeMap<u64, (MsgId, u64)> {
    ws.iter().map(|&(id, k, v)| (k, (id, v))).collect()
}

#[test]
fn a_sequence_projection_holds_an_early_event_until_the_gap_fills() {
    let ws = writes(&[7, 7, 7]);
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Sequence, None);
    let out = h.h.start(&mut p);
    assert_eq!(h.keep(out).state_facts(), [StateFact::Replica { complete: true }]);
    assert!(feed(&mut h, &mut p, ws[1], 0).is_empty(), "version 2 before 1 waits");
    assert_eq!(p.waiting(), 1);
    assert_eq!(h.metric("out_of_order_events"), 1.0);
    assert_eq!(feed(&mut h, &mut p, ws[0], 1), [0, 1], "version 1 fills the gap: both, in order");
    assert_eq!(p.waiting(), 0);
    assert_eq!(feed(&mut h, &mut p, ws[2], 2), [2]);
    assert_eq!(p.state(), &truth(&ws));
    assert_eq!(h.holds(), [(7, Some(0)), (7, Some(1)), (7, Some(2))], "the observer hears each step");
}

#[test]
fn a_sequence_projection_skips_a_duplicate() {
    let ws = writes(&[1, 1]);
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Sequence, None);
    assert_eq!(feed(&mut h, &mut p, ws[0], 0), [0]);
    assert!(feed(&mut h, &mut p, ws[0], 1).is_empty(), "applied once");
    assert_eq!(h.metric("duplicate_events"), 1.0);
    // A duplicate of an event still waiting is skipped too.
    let ws2 = writes(&[2, 2, 2]);
    let mut h = harness(&ws2);
    let mut p = Projection::simple(Order::Sequence, None);
    feed(&mut h, &mut p, ws2[2], 0);
    feed(&mut h, &mut p, ws2[2], 1);
    assert_eq!(h.metric("duplicate_events"), 1.0);
    assert_eq!(p.waiting(), 1);
}

#[test]
fn regression_a_reordered_event_without_the_sequence_check_overwrites_newer_state() {
    let ws = writes(&[4, 4]);
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Arrival, None);
    assert_eq!(feed(&mut h, &mut p, ws[1], 0), [1]);
    assert_eq!(feed(&mut h, &mut p, ws[0], 1), [0], "applied although older");
    assert_eq!(p.state()[&4], (0, 1), "the projection went back to version 1");
    assert_eq!(h.holds(), [(4, Some(1)), (4, Some(0))], "and told the observer it went back");
    assert_eq!(feed(&mut h, &mut p, ws[0], 2), [0], "and a duplicate is applied again");
    // The same arrivals with the check end on the newest.
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Sequence, None);
    for (i, w) in [ws[1], ws[0], ws[0]].into_iter().enumerate() {
        feed(&mut h, &mut p, w, i as u64);
    }
    assert_eq!(p.state(), &truth(&ws));
}

#[test]
fn a_versioned_projection_refuses_an_older_version_without_waiting() {
    let ws = writes(&[3, 3, 3]);
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Version, None);
    assert_eq!(feed(&mut h, &mut p, ws[2], 0), [2], "a newer version is applied over a gap");
    assert_eq!(feed(&mut h, &mut p, ws[0], 1), [0], "refused, its effect superseded: counted once");
    assert!(feed(&mut h, &mut p, ws[0], 2).is_empty(), "and never again");
    assert_eq!(h.metric("stale_refused"), 2.0);
    assert_eq!(p.waiting(), 0);
    assert_eq!(p.state(), &truth(&ws));
}

#[test]
fn time_travel_reaches_the_state_of_the_first_n_events() {
    let ws = writes(&[1, 2, 1, 3, 2, 1, 4]);
    let n = 4;
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Sequence, Some(n));
    let mut applied = Vec::new();
    for (offset, &w) in ws.iter().enumerate() {
        applied.extend(feed(&mut h, &mut p, w, offset as u64));
    }
    assert!(applied.is_empty(), "a time-travel projection applies no effect in the ledger");
    assert!(h.effects.iter().all(|e| !matches!(e, Effect::Fact(crate::engine::Fact::State(_)))), "and is no replica");
    let direct = truth(&ws[..n as usize]);
    assert_eq!(p.state(), &direct);
    assert_eq!(h.metric("travel_events"), n as f64);
    assert_eq!(h.metric("travel_keys"), direct.len() as f64);
    assert_eq!(h.metric("travel_digest"), digest_of(&direct) as f64);
    assert_ne!(digest_of(&direct), digest_of(&truth(&ws)), "the past differs from the present here");
}

/// Sends a copy of `w` to `p`.
fn copy(h: &mut Rig, p: &mut Projection, w: (MsgId, u64, u64)) {
    let out = h.h.message(p, 9, SyncMsg::Copy { key: w.1 as u32, id: w.0, version: w.2 as u32, repair: false });
    h.keep(out);
}

#[test]
fn regression_lost_update_a_stale_crawler_copy_overwrites_a_newer_live_change_without_versions() {
    let ws = writes(&[5, 5]);
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Arrival, None);
    feed(&mut h, &mut p, ws[1], 0);
    copy(&mut h, &mut p, ws[0]);
    assert_eq!(p.state()[&5].0, 0, "the destination went back to the older write");
    assert_eq!(h.holds(), [(5, Some(1)), (5, Some(0))], "holds reports the older id");
    assert_eq!(h.metric("copies_applied"), 1.0);
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Version, None);
    feed(&mut h, &mut p, ws[1], 0);
    copy(&mut h, &mut p, ws[0]);
    assert_eq!(p.state()[&5].0, 1, "versioned: the older copy is refused");
    assert_eq!(h.metric("stale_refused"), 1.0);
}

#[test]
fn a_copy_supersedes_waiting_events_and_each_effect_counts_once() {
    let ws = writes(&[6, 6, 6]);
    let mut h = harness(&ws);
    let mut p = Projection::simple(Order::Sequence, None);
    feed(&mut h, &mut p, ws[1], 0);
    let out = h.h.message(&mut p, 9, SyncMsg::Copy { key: 6, id: 2, version: 3, repair: true });
    let out = h.keep(out);
    assert_eq!(out.applied(), [1], "the copy holds the waiting event's write: its effect, once");
    assert_eq!(h.metric("repairs"), 1.0);
    assert_eq!(p.waiting(), 0, "version 3 is held now: nothing waits for version 1");
    assert_eq!(feed(&mut h, &mut p, ws[2], 1), [2], "the event of the copied write: counted once");
    assert_eq!(feed(&mut h, &mut p, ws[0], 2), [0], "an older event, superseded: counted once");
    assert!(feed(&mut h, &mut p, ws[0], 3).is_empty(), "a repeat is not counted again");
}

#[test]
fn the_crawler_copies_each_key_once_at_its_pace_after_its_transform_time() {
    let mut r = Rig { h: Harness::new(4), effects: Vec::new() };
    r.stores().source_write(1, 10, 1);
    r.stores().source_write(2, 11, 1);
    let mut c = Syncer::new(Role::Crawler, 3, 5.0, 10.0, 2.0);
    let h = &mut r.h;
    let out = h.start(&mut c);
    assert_eq!(out.timers::<SyncTimer>(), [(5_000_000, SyncTimer::Begin)]);
    h.now = 5_000_000;
    h.timer(&mut c, SyncTimer::Begin);
    let out = h.timer(&mut c, SyncTimer::Read);
    assert_eq!(out.timers::<SyncTimer>(), [(2_000_000, SyncTimer::Send), (10_000_000, SyncTimer::Read)]);
    // The source moves on before the copy leaves: the copy is stale.
    h.stores().source_write(1, 12, 2);
    h.now = 7_000_000;
    let out = h.timer(&mut c, SyncTimer::Send);
    assert_eq!(out.sent(), [(3, Msg::Sync(SyncMsg::Copy { key: 1, id: 10, version: 1, repair: false }))]);
    h.now = 15_000_000;
    let out = h.timer(&mut c, SyncTimer::Read);
    assert!(out.timers::<SyncTimer>().iter().all(|t| t.1 != SyncTimer::Read), "the crawl is done");
    r.keep(out);
    assert_eq!(r.metric("crawled_keys"), 2.0);
}

#[test]
fn the_watcher_copies_every_key_each_round() {
    let mut r = Rig { h: Harness::new(4), effects: Vec::new() };
    r.stores().source_write(1, 10, 1);
    r.stores().source_write(2, 11, 3);
    let mut w = Syncer::new(Role::Watcher, 3, 0.0, 1000.0, 0.0);
    r.h.start(&mut w);
    let out = r.h.timer(&mut w, SyncTimer::Begin);
    let out = r.keep(out);
    assert!(out.timers::<SyncTimer>().contains(&(1_000_000_000, SyncTimer::Begin)));
    let out = r.h.timer(&mut w, SyncTimer::Send);
    let sent: Vec<Msg> = out.sent().into_iter().map(|(_, m)| m).collect();
    assert_eq!(
        sent,
        [
            Msg::Sync(SyncMsg::Copy { key: 1, id: 10, version: 1, repair: true }),
            Msg::Sync(SyncMsg::Copy { key: 2, id: 11, version: 3, repair: true })
        ]
    );
    assert_eq!(r.metric("watch_rounds"), 1.0);
}

#[test]
fn the_source_of_truth_stamps_versions_and_fills_its_table() {
    let mut h = Harness::new(0);
    let mut versions = BTreeMap::new();
    let (_, out) = h.act::<NoTimer, _>(|ctx| {
        stamp_version(ctx, &mut versions, 8, 0);
        stamp_version(ctx, &mut versions, 9, 1);
        stamp_version(ctx, &mut versions, 8, 2);
    });
    let mut version = |id| h.stores().header(id, crate::dedup::Header::Version);
    assert_eq!([version(0), version(1), version(2)], [Some(1), Some(1), Some(2)]);
    assert_eq!(h.stores().source()[&8], (2, 2));
    assert_eq!(out.state_facts(), [], "the producer's write hook reports the writes, once");
}

proptest! {
    /// Event replay equals live state for any interleaving: the events of
    /// a run, shuffled and with duplicates, fed to a sequence projection,
    /// give the state of applying them in production order, and each
    /// event's effect is applied exactly once, in its key's order.
    #[test]
    fn replay_equals_live_state_for_any_interleaving(
        keys in prop::collection::vec(0u64..5, 1..40),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..80),
    ) {
        let ws = writes(&keys);
        // Every event at least once, then duplicates, in a shuffled order.
        let mut arrivals: Vec<(MsgId, u64, u64)> = ws.clone();
        arrivals.extend(order.iter().take(ws.len()).map(|i| ws[i.index(ws.len())]));
        for (i, ix) in order.iter().enumerate() {
            let n = arrivals.len();
            arrivals.swap(i % n, ix.index(n));
        }
        let mut h = harness(&ws);
        let mut p = Projection::simple(Order::Sequence, None);
        let mut applied = Vec::new();
        for (offset, &w) in arrivals.iter().enumerate() {
            applied.extend(feed(&mut h, &mut p, w, offset as u64));
        }
        prop_assert_eq!(p.state(), &truth(&ws));
        prop_assert_eq!(p.waiting(), 0);
        let mut sorted = applied.clone();
        sorted.sort_unstable();
        prop_assert_eq!(&sorted, &ws.iter().map(|w| w.0).collect::<Vec<_>>(), "each once");
        for k in 0..5 {
            let per_key: Vec<MsgId> = applied.iter().copied().filter(|&id| ws[id as usize].1 == k).collect();
            prop_assert!(per_key.windows(2).all(|w| w[0] < w[1]), "key {}'s events in sequence", k);
        }
    }
}

#[test]
fn a_snapshot_plus_the_tail_replays_fewer_events_than_the_whole_log() {
    let ws = writes(&[1, 2, 1, 3, 2]);
    let mut h = harness(&ws);
    for &(id, k, v) in &ws {
        h.stores().source_write(k, id, v);
    }
    let setup = Setup { snapshot: Some((2, 0)), apply: 1_000_000, ..Setup::default() };
    let mut primary = Projection::new(setup);
    for (offset, &w) in ws.iter().enumerate().take(3) {
        feed(&mut h, &mut primary, w, offset as u64);
    }
    assert_eq!(h.metric("snapshots_taken"), 1.0, "one snapshot, after 2 events");
    let (state, offsets) = h.stores().snapshot(0).cloned().expect("a snapshot");
    assert_eq!(state, truth(&ws[..2]));
    assert_eq!(offsets, BTreeMap::from([(0, 2)]), "it includes offsets 0 and 1");
    // A late projection restores it and applies only the tail.
    let mut late = Projection::new(Setup { restore: Some(0), replay: true, apply: 1_000_000, ..Setup::default() });
    let out = h.h.start(&mut late);
    h.keep(out);
    assert_eq!(late.state(), &truth(&ws[..2]));
    let mut applied = Vec::new();
    for (offset, &w) in ws.iter().enumerate() {
        applied.extend(feed(&mut h, &mut late, w, offset as u64));
    }
    assert_eq!(applied, [0, 1, 2, 3, 4], "every effect once: two from the snapshot, three applied");
    assert_eq!(h.metric("snapshot_events"), 2.0);
    assert_eq!(h.metric("replay_events"), 3.0, "caught up after the tail alone");
    assert_eq!(late.state(), &truth(&ws));
}

#[test]
fn applying_takes_apply_ms_one_event_at_a_time() {
    let ws = writes(&[1, 2]);
    let mut h = harness(&ws);
    let mut p = Projection::new(Setup { apply: 2_000_000, ..Setup::default() });
    let (_, out) = h.h.act::<Applied, _>(|ctx| p.write(ctx, 2, Record::new(0, 1), 0, 0));
    assert_eq!(out.timers::<Applied>(), [(2_000_000, Applied)], "the first is done in 2 ms");
    let (_, out) = h.h.act::<Applied, _>(|ctx| p.write(ctx, 2, Record::new(1, 2), 0, 1));
    assert!(out.timers::<Applied>().is_empty(), "the second waits behind it");
    h.h.now = 2_000_000;
    let out = h.h.timer(&mut p, Applied);
    assert_eq!(out.timers::<Applied>(), [(2_000_000, Applied)], "and is done 2 ms later");
}

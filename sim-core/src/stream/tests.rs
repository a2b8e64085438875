use super::*;
use crate::engine::Harness;
use crate::ledger::LossCause;
use crate::time::ms_to_ns;
use proptest::prelude::*;
use std::collections::BTreeMap;

const MIN: u64 = 60_000_000_000;

fn rules(event_time: bool, lateness_ms: f64, ooo_ms: f64, dedup: bool) -> WindowRules {
    WindowRules { size: MIN, event_time, lateness: ms_to_ns(lateness_ms), out_of_order: ms_to_ns(ooo_ms), dedup }
}

fn s(secs: u64) -> u64 {
    secs * 1_000_000_000
}

#[test]
fn an_event_time_window_fires_when_the_watermark_reaches_its_last_instant() {
    let mut w = Windows::new(rules(true, 0.0, 5_000.0, false));
    let mut out = Vec::new();
    w.add(0, 7, s(10), &mut out);
    w.add(1, 7, s(50), &mut out);
    assert!(out.is_empty());
    // Watermark = 64 s - 5 s - 1 ns: below 60 s - 1 ns, the window stays open.
    w.add(2, 7, s(64), &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(w.watermark(), Some(s(59) - 1));
    // 65 s - 5 s - 1 ns = 60 s - 1 ns: the last instant of window 0.
    w.add(3, 8, s(65), &mut out);
    assert_eq!(out, [((7, 0), 2)]);
    assert_eq!(w.fired(), 1);
}

#[test]
fn a_late_event_within_the_lateness_fires_its_window_again() {
    let mut w = Windows::new(rules(true, 10_000.0, 0.0, false));
    let mut out = Vec::new();
    w.add(0, 1, s(30), &mut out);
    w.add(1, 1, s(61), &mut out);
    assert_eq!(out, [((1, 0), 1)], "the watermark 61 s - 1 ns passed window 0");
    out.clear();
    let v = w.add(2, 1, s(40), &mut out);
    assert_eq!(v, Verdict::Counted { behind: true, late: true });
    assert_eq!(out, [((1, 0), 2)], "a late firing replaces the result");
    assert_eq!(w.fired(), 1, "a late firing is not a new window");
}

#[test]
fn an_event_past_the_lateness_is_dropped() {
    let mut w = Windows::new(rules(true, 10_000.0, 0.0, false));
    let mut out = Vec::new();
    w.add(0, 1, s(30), &mut out);
    // Watermark 71 s - 1 ns: window 0's last instant + 10 s = 70 s - 1 ns is below it.
    w.add(1, 1, s(71), &mut out);
    out.clear();
    assert_eq!(w.add(2, 1, s(59), &mut out), Verdict::TooLate);
    assert!(out.is_empty());
    assert_eq!(w.open_buckets(), 1, "window 0 was purged; window 1 holds one event");
}

#[test]
fn an_event_behind_the_watermark_in_an_open_window_is_reordered_not_late() {
    let mut w = Windows::new(rules(true, 0.0, 0.0, false));
    let mut out = Vec::new();
    w.add(0, 1, s(20), &mut out);
    assert_eq!(w.add(1, 1, s(10), &mut out), Verdict::Counted { behind: true, late: false });
    assert!(out.is_empty());
}

#[test]
fn dedup_drops_a_second_copy_and_without_it_the_copy_counts() {
    for dedup in [true, false] {
        let mut w = Windows::new(rules(true, 0.0, 0.0, dedup));
        let mut out = Vec::new();
        w.add(5, 1, s(1), &mut out);
        let v = w.add(5, 1, s(1), &mut out);
        w.end(&mut out);
        if dedup {
            assert_eq!(v, Verdict::Duplicate);
            assert_eq!(out, [((1, 0), 1)]);
        } else {
            assert_eq!(out, [((1, 0), 2)], "the duplicate overcounts");
        }
    }
}

#[test]
fn processing_time_windows_close_by_the_clock_and_are_never_late() {
    let mut w = Windows::new(rules(false, 0.0, 0.0, false));
    let mut out = Vec::new();
    w.add(0, 1, s(59), &mut out);
    w.add(1, 1, s(61), &mut out);
    assert_eq!(w.add(2, 1, s(1), &mut out), Verdict::Counted { behind: false, late: false });
    assert!(out.is_empty(), "no watermark");
    w.close_through(0, &mut out);
    assert_eq!(out, [((1, 0), 2)]);
    out.clear();
    w.end(&mut out);
    assert_eq!(out, [((1, 1), 1)]);
}

#[test]
fn the_end_of_input_fires_every_window_and_later_events_are_too_late() {
    let mut w = Windows::new(rules(true, 60_000.0, 0.0, false));
    let mut out = Vec::new();
    w.add(0, 1, s(10), &mut out);
    w.add(1, 2, s(70), &mut out);
    w.end(&mut out);
    assert_eq!(out, [((1, 0), 1), ((2, 1), 1)]);
    assert_eq!(w.add(2, 1, s(80), &mut out), Verdict::TooLate);
}

fn aggregator(rules: WindowRules) -> (Aggregator, Clock) {
    (Aggregator::new(rules, ms_to_ns(5_000.0)), Clock)
}

/// Stamps event times in a harness's stores, as a click source does.
struct Clock;

impl Clock {
    fn stamp(&self, h: &mut Harness, id: MsgId, t: u64) {
        h.stores().set_header(id, Header::EventTime, t);
    }
}

fn write(h: &mut Harness, a: &mut Aggregator, id: u64, key: u64) -> crate::engine::Emitted {
    h.act(|ctx| a.write(ctx, Record::new(id, key))).1
}

#[test]
fn a_counted_write_applies_its_effect_a_duplicate_does_not() {
    let (mut a, clock) = aggregator(rules(true, 0.0, 0.0, true));
    let mut h = Harness::new(3);
    clock.stamp(&mut h, 4, s(1));
    h.now = s(2);
    let first = write(&mut h, &mut a, 4, 9);
    assert_eq!(first.applied(), [4]);
    let again = write(&mut h, &mut a, 4, 9);
    assert!(again.applied().is_empty());
    assert_eq!(again.metric("duplicates_dropped"), 1.0);
}

#[test]
fn a_write_past_the_lateness_is_discarded_as_too_late() {
    let (mut a, clock) = aggregator(rules(true, 0.0, 0.0, false));
    let mut h = Harness::new(3);
    clock.stamp(&mut h, 0, s(100));
    clock.stamp(&mut h, 1, s(10));
    h.now = s(101);
    write(&mut h, &mut a, 0, 1);
    let late = write(&mut h, &mut a, 1, 1);
    assert!(late.applied().is_empty());
    assert_eq!(late.discarded(), [(1, LossCause::TooLate)]);
    assert_eq!(late.metric("late_dropped"), 1.0);
}

#[test]
fn an_event_without_a_stamp_counts_at_its_arrival() {
    let (mut a, _clock) = aggregator(rules(true, 0.0, 0.0, false));
    let mut h = Harness::new(3);
    h.now = s(61);
    write(&mut h, &mut a, 0, 1);
    assert_eq!(a.windows().watermark(), Some(s(61) - 1));
}

#[test]
fn processing_time_sets_one_close_timer_per_window() {
    let (mut a, _clock) = aggregator(rules(false, 0.0, 0.0, false));
    let mut h = Harness::new(3);
    h.now = s(10);
    assert_eq!(write(&mut h, &mut a, 0, 1).timers::<AggTimer>(), [(s(50), AggTimer::Close(0))]);
    h.now = s(20);
    assert!(write(&mut h, &mut a, 1, 1).timers::<AggTimer>().is_empty());
    h.now = s(60);
    let fired = h.timer(&mut a, AggTimer::Close(0));
    assert_eq!(fired.metric("windows_fired"), 1.0);
    assert_eq!(a.windows().open_buckets(), 0);
}

#[test]
fn in_the_drain_the_input_ends_after_a_quiet_spell() {
    let (mut a, clock) = aggregator(rules(true, 0.0, 0.0, false));
    let mut h = Harness::new(3);
    clock.stamp(&mut h, 0, s(1));
    write(&mut h, &mut a, 0, 1);
    assert_eq!(h.drain(&mut a).timers::<AggTimer>(), [(s(5), AggTimer::EndOfInput)]);
    let end = h.timer(&mut a, AggTimer::EndOfInput);
    assert_eq!(end.metric("windows_fired"), 1.0);
}

#[test]
fn a_crash_loses_the_windows_and_the_dedup_ids() {
    let (mut a, clock) = aggregator(rules(true, 0.0, 0.0, true));
    let mut h = Harness::new(3);
    clock.stamp(&mut h, 0, s(1));
    write(&mut h, &mut a, 0, 1);
    a.crash();
    assert_eq!(a.windows().open_buckets(), 0);
    assert_eq!(write(&mut h, &mut a, 0, 1).applied(), [0], "no longer known as a duplicate");
}

#[test]
fn timers_round_trip_through_their_word() {
    for t in [AggTimer::Close(0), AggTimer::Close(12345), AggTimer::EndOfInput] {
        assert_eq!(AggTimer::from_word(t.to_word()), Some(t));
    }
}

/// The events of one case: (id, key, event time in s), each delivered
/// once or more, in any order, whose delay behind the highest event time
/// seen before it stays within the allowed lateness.
fn counts_by_bucket(events: &[(u64, u64, u64)]) -> BTreeMap<Bucket, u64> {
    let mut truth = BTreeMap::new();
    for &(_, key, t) in events {
        *truth.entry((key, s(t) / MIN)).or_insert(0) += 1;
    }
    truth
}

proptest! {
    /// Event-time aggregation with dedup equals the true count of every
    /// window, for any interleaving and duplication of events that are
    /// never later than the allowed lateness.
    #[test]
    fn event_time_with_dedup_counts_every_window_exactly(
        times in prop::collection::vec((0u64..5, 0u64..600), 1..80),
        copies in prop::collection::vec(1usize..4, 80),
        order in prop::collection::vec(any::<u32>(), 240),
        lateness_s in 0u64..120,
        ooo_s in 0u64..30,
    ) {
        let events: Vec<(u64, u64, u64)> =
            times.iter().enumerate().map(|(i, &(k, t))| (i as u64, k, t)).collect();
        // Every copy, shuffled by a random sort key.
        let mut deliveries: Vec<(u32, (u64, u64, u64))> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            for c in 0..copies[i] {
                deliveries.push((order[(i * 3 + c) % order.len()], *e));
            }
        }
        deliveries.sort_by_key(|d| d.0);
        // Keep the case within the lateness: drop the deliveries that come
        // more than the lateness behind the highest event time before them
        // (and every copy of their event, so the truth is what remains).
        let bound = s(lateness_s + ooo_s);
        let mut max = 0;
        let mut too_late = std::collections::BTreeSet::new();
        for &(_, (id, _, t)) in &deliveries {
            if s(t) + bound < max {
                too_late.insert(id);
            }
            max = max.max(s(t));
        }
        let kept: Vec<_> = deliveries.iter().map(|d| d.1).filter(|e| !too_late.contains(&e.0)).collect();
        let truth_events: Vec<_> = events.iter().copied().filter(|e| !too_late.contains(&e.0)).collect();

        let mut w = Windows::new(rules(true, (lateness_s * 1000) as f64, (ooo_s * 1000) as f64, true));
        let mut results = BTreeMap::new();
        let mut out = Vec::new();
        for &(id, key, t) in &kept {
            let v = w.add(id, key, s(t), &mut out);
            prop_assert!(v != Verdict::TooLate, "event {id} at {t} s was within the lateness");
        }
        w.end(&mut out);
        for (bucket, count) in out {
            results.insert(bucket, count);
        }
        prop_assert_eq!(results, counts_by_bucket(&truth_events));
    }
}

#[test]
fn a_fired_window_and_its_late_update_are_reported_to_the_observer() {
    use crate::observer::StateFact;
    let (mut a, clock) = aggregator(rules(true, 30_000.0, 0.0, false));
    let mut h = Harness::new(3);
    for (id, t) in [(0, 10), (1, 70), (2, 20)] {
        clock.stamp(&mut h, id, s(t));
    }
    assert!(write(&mut h, &mut a, 0, 7).state_facts().is_empty(), "window 0 is still open");
    let fired = write(&mut h, &mut a, 1, 8);
    assert_eq!(fired.state_facts(), [StateFact::Counted { bucket: (7, 0), count: 1 }]);
    let late = write(&mut h, &mut a, 2, 7);
    assert_eq!(late.state_facts(), [StateFact::Counted { bucket: (7, 0), count: 2 }], "the late update replaces it");
    assert_eq!(late.metric("late_updates"), 1.0);
}

#[test]
fn a_click_source_stamps_the_event_time_and_reports_its_true_bucket_once() {
    use crate::observer::StateFact;
    let clicks = Clicks::with_window(&crate::dist::Dist::constant_ms(30_000.0), s(60));
    let mut h = Harness::new(0);
    h.now = s(100);
    let (t, e) = h.act::<AggTimer, _>(|ctx| clicks.happened(ctx, 5, 9));
    assert_eq!(t, s(70));
    assert_eq!(h.stores().header(5, Header::EventTime), Some(s(70)));
    assert_eq!(e.state_facts(), [StateFact::Happened { bucket: (9, 1) }], "70 s is in minute 1");
}

#[test]
fn an_event_delay_is_a_function_of_the_message_alone() {
    let d = crate::dist::Dist::Exponential { mean_ms: crate::units::Millis(20_000.0) }.sampler();
    assert_eq!(event_delay_ns(&d, 0.25), event_delay_ns(&d, 0.25));
    assert_ne!(event_delay_ns(&d, 0.25), event_delay_ns(&d, 0.75));
}

#[test]
fn every_sink_write_is_answered_a_dropped_one_too() {
    use crate::protocol::SinkMsg;
    let (mut a, clock) = aggregator(rules(true, 0.0, 0.0, true));
    let mut h = Harness::new(3);
    clock.stamp(&mut h, 0, s(100));
    clock.stamp(&mut h, 1, s(1));
    for id in [0, 0, 1] {
        let rec = Record::new(id, 2);
        let e = h.message(&mut a, 7, SinkMsg::Write { rec, partition: 0, offset: id });
        assert_eq!(e.sent(), [(7, Msg::Sink(SinkMsg::Written { id }))]);
    }
}

//! The engine's progress hook (`Engine::watch`): what a watched run
//! publishes, read after every step as another thread would read it.

use sim_core::engine::{Engine, Phase, Progress, Snapshot, RUN_SHARE};
use sim_core::scenario::{build_engine, Scenario};
use std::sync::Arc;

/// An M/M/1 queue: `bound` ends its run phase (a duration or a count).
fn engine(bound: &str) -> Engine {
    let text = format!(
        r#"
name = "p"
concept = "progress"
run = {{ {bound} }}
[producers.p]
target = "q"
arrival = {{ process = "poisson", rate_per_s = 1000 }}
messages = 50000
[brokers.q]
kind = "queue"
[consumers.c]
source = "q"
processing = {{ dist = "exponential", mean_ms = 0.8 }}
"#
    );
    let s = Scenario::parse("p.toml", &text).expect("a valid scenario");
    build_engine(&s.configs().expect("valid").remove(0).1, 7, 0)
}

/// Steps `engine` to its end, reading `progress` after every step.
fn follow(mut engine: Engine, progress: &Progress, planned: Option<u64>) {
    let mut last = progress.snapshot();
    assert_eq!((last.phase, last.fraction(planned)), (None, Some(0.0)));
    let mut publications = 0;
    while engine.step() {
        let s = progress.snapshot();
        assert!(s.now >= last.now && s.events >= last.events, "{s:?} after {last:?}");
        assert!(s.now <= engine.now() && s.events <= engine.events(), "never ahead of the run");
        let (f, g) = (s.fraction(planned).unwrap(), last.fraction(planned).unwrap());
        assert!((g..=1.0).contains(&f), "the fraction only grows: {f} after {g}");
        if s.phase != Some(Phase::Done) {
            assert!(f < 1.0, "not done yet: {s:?}");
        }
        publications += usize::from(s != last);
        last = s;
    }
    let end = progress.snapshot();
    assert!(publications > 3, "published along the way, not only at the end: {publications}");
    assert_eq!((end.now, end.events, end.phase), (engine.now(), engine.events(), Some(Phase::Done)));
    assert_eq!(end.fraction(planned), Some(1.0));
    let out = engine.run();
    assert_eq!(out.events, end.events, "the last publication has the run's final event count");
}

#[test]
fn a_watched_run_publishes_monotone_progress_and_ends_at_its_final_time_and_count() {
    let mut e = engine("duration_ms = 20000, drain_ms = 5000");
    let progress = Arc::new(Progress::new());
    e.watch(progress.clone());
    assert_eq!(progress.snapshot().run_ns, Some(20_000_000_000));
    follow(e, &progress, Some(50_000));
}

#[test]
fn a_run_bound_by_its_message_count_is_measured_by_messages_produced() {
    let mut e = engine("drain_ms = 5000");
    let progress = Arc::new(Progress::new());
    e.watch(progress.clone());
    assert_eq!(progress.snapshot().run_ns, None);
    follow(e, &progress, Some(50_000));
    // Half the messages produced, half-way through the run phase.
    let s = Snapshot { produced: 25_000, phase: Some(Phase::Run), ..progress.snapshot() };
    assert_eq!(s.fraction(Some(50_000)), Some(RUN_SHARE * 0.5));
    assert_eq!(s.fraction(None), None, "no plan, no estimate");
}

#[test]
fn watching_changes_nothing_in_the_run() {
    let plain = engine("duration_ms = 20000").run();
    let mut e = engine("duration_ms = 20000");
    e.watch(Arc::new(Progress::new()));
    let watched = e.run();
    assert_eq!((watched.digest, watched.events), (plain.digest, plain.events));
}

//! The engine's own behaviour, with two small components: effects applied
//! in the order emitted, timers cancelled by value, and nodes stopped and
//! started by an effect.

use super::*;
use crate::dist::Dist;
use crate::net::LinkModel;
use crate::protocol::QueueMsg;
use crate::time::ms_to_ns;
use std::cell::RefCell;
use std::rc::Rc;

/// What the components saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// (time, node, what)
    log: Vec<(Time, NodeId, String)>,
}

type Shared = Rc<RefCell<Seen>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    A,
    B,
    Stop,
    Start,
}

impl Timer for T {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(w: u64) -> Option<Self> {
        [T::A, T::B, T::Stop, T::Start].get(w as usize).copied()
    }
}

/// Node 0: at start sends three acks to node 1 in a row, sets timers A and
/// B at 5 ms and cancels A; at 10 ms stops node 1, at 20 ms starts it.
struct Boss(Shared);

impl Component for Boss {
    type Timer = T;
    fn start(&mut self, ctx: &mut Ctx<T>) {
        for tag in 0..3 {
            ctx.send(1, QueueMsg::Ack { tag });
        }
        ctx.set_timer(ms_to_ns(5.0), T::A);
        ctx.set_timer(ms_to_ns(5.0), T::B);
        ctx.cancel_timer(T::A);
        ctx.set_timer(ms_to_ns(10.0), T::Stop);
        ctx.set_timer(ms_to_ns(20.0), T::Start);
    }
    fn on_message(&mut self, _: &mut Ctx<T>, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, ctx: &mut Ctx<T>, t: T) {
        self.0.borrow_mut().log.push((ctx.now(), 0, format!("{t:?}")));
        match t {
            T::Stop => ctx.stop_node(1),
            T::Start => ctx.start_node(1),
            T::A | T::B => {}
        }
    }
    fn crash(&mut self) {}
}

/// Node 1: logs what it receives, and its crashes and starts; keeps a
/// timer pending that a crash must cancel.
struct Worker(Shared);

impl Component for Worker {
    type Timer = T;
    fn start(&mut self, ctx: &mut Ctx<T>) {
        self.0.borrow_mut().log.push((ctx.now(), 1, "start".into()));
        ctx.set_timer(ms_to_ns(15.0), T::A);
    }
    fn on_message(&mut self, ctx: &mut Ctx<T>, _: NodeId, msg: Msg) {
        if let Msg::Queue(QueueMsg::Ack { tag }) = msg {
            self.0.borrow_mut().log.push((ctx.now(), 1, format!("ack {tag}")));
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<T>, t: T) {
        self.0.borrow_mut().log.push((ctx.now(), 1, format!("{t:?}")));
    }
    fn crash(&mut self) {
        self.0.borrow_mut().log.push((0, 1, "crash".into()));
    }
}

fn run_pair() -> (Vec<(Time, NodeId, String)>, RunOutput) {
    run_pair_stepping(0)
}

/// [`run_pair`], with the first `steps` events dispatched one
/// [`Engine::step`] at a time before [`Engine::run`] finishes it.
fn run_pair_stepping(steps: usize) -> (Vec<(Time, NodeId, String)>, RunOutput) {
    let seen: Shared = Rc::default();
    let names = vec!["boss".to_string(), "worker".to_string()];
    let link = LinkModel::reliable(Dist::constant_ms(1.0).sampler());
    let network = Network::new(1, &names, link);
    let nodes: Vec<(String, Box<dyn DynComponent>)> =
        vec![(names[0].clone(), boxed(Boss(seen.clone()))), (names[1].clone(), boxed(Worker(seen.clone())))];
    let limits = RunLimits {
        run_ns: Some(ms_to_ns(50.0)),
        drain_ns: ms_to_ns(1.0),
        sample_ns: ms_to_ns(1000.0),
        max_events: 1000,
        max_memory_bytes: u64::MAX,
        trace_limit: 1000,
    };
    let mut engine = Engine::new(1, nodes, network, Vec::new(), limits);
    for _ in 0..steps {
        engine.step();
    }
    let out = engine.run().completed().expect("the run ends");
    let log = std::mem::take(&mut seen.borrow_mut().log);
    (log, out)
}

#[test]
fn stepping_then_running_makes_the_same_history_as_running() {
    let (log, out) = run_pair();
    // Three arrivals, timers B, Stop, Start and the restarted worker's A,
    // the two deadlines: a handful of events.
    assert!(out.events >= 5, "a run with a few events: {}", out.events);
    // Stop stepping before the start, mid-run, and after the end.
    for steps in [1, 7, out.events as usize + 5] {
        let (log2, out2) = run_pair_stepping(steps);
        assert_eq!(log2, log, "after {steps} steps");
        assert_eq!((out2.events, &out2.digest, out2.trace.len()), (out.events, &out.digest, out.trace.len()));
    }
}

#[test]
fn sends_arrive_in_the_order_they_were_emitted() {
    let (log, _) = run_pair();
    let acks: Vec<&str> =
        log.iter().filter(|(_, n, w)| *n == 1 && w.starts_with("ack")).map(|(_, _, w)| w.as_str()).collect();
    assert_eq!(acks, ["ack 0", "ack 1", "ack 2"]);
}

#[test]
fn a_timer_cancelled_by_value_never_fires_and_others_do() {
    let (log, _) = run_pair();
    let boss: Vec<&str> = log.iter().filter(|(_, n, _)| *n == 0).map(|(_, _, w)| w.as_str()).collect();
    assert_eq!(boss, ["B", "Stop", "Start"], "A was cancelled, B of the same time was not");
}

#[test]
fn stop_and_start_effects_crash_and_restart_a_node_and_its_timers_die() {
    let (log, out) = run_pair();
    let worker: Vec<(Time, &str)> = log.iter().filter(|(_, n, _)| *n == 1).map(|(t, _, w)| (*t, w.as_str())).collect();
    let at = |ms: f64| ms_to_ns(ms);
    assert_eq!(worker[0], (0, "start"));
    assert!(worker.contains(&(0, "crash")), "stopped at 10 ms: {worker:?}");
    assert!(worker.contains(&(at(20.0), "start")), "started at 20 ms: {worker:?}");
    // The timer set at the first start (due at 15 ms) died with the crash;
    // the one set at the restart fires at 35 ms.
    assert!(!worker.iter().any(|&(t, w)| w == "A" && t == at(15.0)), "{worker:?}");
    assert!(worker.contains(&(at(35.0), "A")), "{worker:?}");
    let crashes: Vec<bool> = out
        .trace
        .iter()
        .filter_map(|e| match e.what {
            TraceWhat::Crash(1, up) => Some(up),
            _ => None,
        })
        .collect();
    assert_eq!(crashes, [false, true], "the trace shows the stop, then the start");
}

#[test]
fn the_trace_names_timers_by_their_type() {
    let (_, out) = run_pair();
    let names: Vec<&str> = out
        .trace
        .iter()
        .filter_map(|e| match &e.what {
            TraceWhat::Timer(0, name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["B", "Stop", "Start"]);
}

/// Node 0 of the state test: writes key 7 at start (write 1) and again at
/// 5 ms (write 2), telling node 1 of the first only; stops node 1 at 10 ms.
struct Writer;

impl Component for Writer {
    type Timer = T;
    fn start(&mut self, ctx: &mut Ctx<T>) {
        ctx.wrote(7, 1, false);
        ctx.send(1, QueueMsg::Ack { tag: 1 });
        ctx.set_timer(ms_to_ns(5.0), T::A);
        ctx.set_timer(ms_to_ns(10.0), T::Stop);
    }
    fn on_message(&mut self, _: &mut Ctx<T>, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, ctx: &mut Ctx<T>, t: T) {
        match t {
            T::A => ctx.wrote(7, 2, false),
            _ => ctx.stop_node(1),
        }
    }
    fn crash(&mut self) {}
}

/// Node 1 of the state test: a cache that holds what it is told and reads
/// it back at once.
struct Cache;

impl Component for Cache {
    type Timer = T;
    fn start(&mut self, ctx: &mut Ctx<T>) {
        ctx.replica(false);
    }
    fn on_message(&mut self, ctx: &mut Ctx<T>, _: NodeId, msg: Msg) {
        if let Msg::Queue(QueueMsg::Ack { tag }) = msg {
            ctx.holds(7, Some(tag));
            ctx.read(7, Some(tag), true);
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<T>, _: T) {}
    fn crash(&mut self) {}
}

#[test]
fn the_observer_hears_state_facts_and_a_crash_empties_a_cache() {
    let names = vec!["writer".to_string(), "cache".to_string()];
    let link = LinkModel::reliable(Dist::constant_ms(1.0).sampler());
    let network = Network::new(1, &names, link);
    let nodes: Vec<(String, Box<dyn DynComponent>)> =
        vec![(names[0].clone(), boxed(Writer)), (names[1].clone(), boxed(Cache))];
    let limits = RunLimits {
        run_ns: Some(ms_to_ns(50.0)),
        drain_ns: ms_to_ns(1.0),
        sample_ns: ms_to_ns(1000.0),
        max_events: 1000,
        max_memory_bytes: u64::MAX,
        trace_limit: 0,
    };
    let out = Engine::new(1, nodes, network, Vec::new(), limits).run().completed().expect("the run ends");
    let c = out.state.consistency.expect("state facts were reported");
    assert_eq!((c.writes, c.reads, c.stale_reads, c.replicas), (2, 1, 0, 1));
    // Write 2 (5 ms) was never sent to the cache, which held write 1 until
    // its crash at 10 ms emptied it: a window of 5 ms.
    assert_eq!((c.window_ms.count, c.window_ms.max, c.open_windows, c.diverged), (2, 5.0, 0, 0));
    assert!(out.state.money.is_none() && out.state.aggregation.is_none(), "only what was fed reports");
}

/// Marks "tick" 1,500 times at start, then "rare" once.
struct Marker;

impl Component for Marker {
    type Timer = T;
    fn start(&mut self, ctx: &mut Ctx<T>) {
        for _ in 0..1_500 {
            ctx.mark("tick");
        }
        ctx.mark("rare");
    }
    fn on_message(&mut self, _: &mut Ctx<T>, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, _: &mut Ctx<T>, _: T) {}
    fn crash(&mut self) {}
}

#[test]
fn a_run_keeps_at_most_a_thousand_marks_of_one_name_and_the_rare_ones_still() {
    let names = vec!["marker".to_string()];
    let link = LinkModel::reliable(Dist::constant_ms(1.0).sampler());
    let network = Network::new(1, &names, link);
    let nodes: Vec<(String, Box<dyn DynComponent>)> = vec![(names[0].clone(), boxed(Marker))];
    let limits = RunLimits {
        run_ns: Some(ms_to_ns(1.0)),
        drain_ns: ms_to_ns(1.0),
        sample_ns: ms_to_ns(1000.0),
        max_events: 1000,
        max_memory_bytes: u64::MAX,
        trace_limit: 0,
    };
    let out = Engine::new(1, nodes, network, Vec::new(), limits).run().completed().expect("the run ends");
    let count = |what: &str| out.marks.iter().filter(|m| m.2 == what).count();
    assert_eq!((count("tick"), count("rare")), (core::MAX_MARKS_EACH as usize, 1));
}

//! Unit and property tests of the event queue.

use super::*;
use proptest::prelude::*;

fn queue() -> EventQueue {
    EventQueue::new()
}

fn timer(node: NodeId, tag: u64) -> Ev {
    Ev::Timer { node, incarnation: 0, tag }
}

fn drain(q: &mut EventQueue) -> Vec<(Time, NodeId, u64)> {
    let mut out = Vec::new();
    while let Some((t, ev)) = q.pop() {
        if let Ev::Timer { node, tag, .. } = ev {
            out.push((t, node, tag));
        }
    }
    out
}

#[test]
fn cancelling_by_value_takes_only_that_nodes_timers_with_that_word() {
    let mut q = queue();
    q.push(1, timer(0, 7));
    q.push(2, timer(1, 7));
    q.push(3, timer(0, 8));
    q.push(4, timer(0, 7));
    q.cancel_timer(0, 7);
    assert_eq!(q.work(), 2);
    assert_eq!(drain(&mut q), vec![(2, 1, 7), (3, 0, 8)]);
}

#[test]
fn a_slot_reused_after_firing_is_not_cancelled_for_its_old_owner() {
    let mut q = queue();
    q.push(1, timer(0, 7));
    assert_eq!(drain(&mut q), vec![(1, 0, 7)]);
    // The freed slot now holds node 1's timer with the same word.
    q.push(5, timer(1, 7));
    q.cancel_timer(0, 7);
    q.cancel_timers_of(0);
    assert_eq!(drain(&mut q), vec![(5, 1, 7)]);
}

#[test]
fn a_crash_cancels_all_of_a_nodes_timers_and_ticks_but_not_its_messages() {
    let mut q = queue();
    q.push(1, timer(2, 1));
    q.push(2, Ev::Tick { node: 2, incarnation: 0, tag: 3 });
    q.push(3, timer(3, 1));
    q.cancel_timers_of(2);
    assert_eq!(q.work(), 1);
    assert_eq!(drain(&mut q), vec![(3, 3, 1)]);
}

/// A node that sets a million timers, one at a time, keeps nothing but its
/// pending ones: a timer leaves its node's list when it fires.
#[test]
fn a_nodes_list_of_timers_holds_only_its_pending_ones() {
    let mut q = queue();
    for t in 0..1_000_000 {
        q.push(t, timer(0, 1));
        q.pop().expect("the timer fires");
    }
    assert_eq!(q.heads[0], NONE, "the fired timers left the list");
    q.push(5, timer(0, 1));
    q.push(6, timer(0, 2));
    q.push(7, timer(0, 1));
    q.pop().expect("the first timer fires");
    let mut listed = Vec::new();
    let mut slot = q.heads[0];
    while slot != NONE {
        listed.push(Some(q.timers[slot as usize].tag));
        slot = q.timers[slot as usize].next;
    }
    assert_eq!(listed, vec![Some(1), Some(2)], "latest first");
    let lists = q.memory_bytes() - q.keys.memory_bytes();
    assert!(lists < 4096, "{lists} bytes");
}

/// Cancelling is linear in the node's own timers: 50,000 nodes each
/// cancelling one timer among 100,000 pending takes well under the
/// 5 x 10^9 slab checks a scan would.
#[test]
fn many_nodes_each_cancelling_a_timer_leave_the_others_alone() {
    let mut q = queue();
    let n = 50_000;
    for node in 0..n {
        q.push(10, timer(node, 1));
        q.push(20, timer(node, 2));
    }
    for node in 0..n {
        q.cancel_timer(node, 1);
    }
    assert_eq!(q.work(), u64::from(n));
    let fired = drain(&mut q);
    assert_eq!(fired.len(), n as usize);
    assert!(fired.iter().all(|&(t, _, tag)| t == 20 && tag == 2));
}

/// One step of a random use of the queue.
#[derive(Debug, Clone)]
enum Op {
    /// Pushes an event of `kind` (timer, tick, fault, sample) `delay` after
    /// (or, when `past`, before) the last popped time.
    Push {
        delay: u64,
        past: bool,
        node: NodeId,
        word: u64,
        kind: u8,
    },
    Pop,
    Cancel {
        node: NodeId,
        word: u64,
    },
    Crash {
        node: NodeId,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let delay = prop_oneof![0u64..3, 0u64..1_000, 0u64..1 << 40, 0u64..u64::MAX];
    prop_oneof![
        5 => (delay, 0u8..50, 0u32..4, 0u64..3, 0u8..4)
            .prop_map(|(delay, p, node, word, kind)| Op::Push { delay, past: p == 0, node, word, kind }),
        4 => Just(Op::Pop),
        1 => (0u32..4, 0u64..3).prop_map(|(node, word)| Op::Cancel { node, word }),
        1 => (0u32..4).prop_map(|node| Op::Crash { node }),
    ]
}

/// What a popped event was: (kind, node, id, word).
type Seen = (u8, NodeId, u64, u64);

/// The event of `kind` numbered `id`, and what it is seen as.
fn event(kind: u8, node: NodeId, id: u64, word: u64) -> (Ev, Seen) {
    let incarnation = id as u32;
    match kind {
        0 => (Ev::Timer { node, incarnation, tag: word }, (0, node, id, word)),
        1 => (Ev::Tick { node, incarnation, tag: word }, (1, node, id, word)),
        2 => (Ev::FaultBegin(id as usize), (2, 0, id, 0)),
        _ => (Ev::Sample, (3, 0, 0, 0)),
    }
}

fn seen(ev: &Ev) -> Seen {
    match *ev {
        Ev::Timer { node, incarnation, tag } => (0, node, u64::from(incarnation), tag),
        Ev::Tick { node, incarnation, tag } => (1, node, u64::from(incarnation), tag),
        Ev::FaultBegin(id) => (2, 0, id as u64, 0),
        _ => (3, 0, 0, 0),
    }
}

/// The reference: pending events as (time, seq, what), the earliest
/// (time, seq) popped first.
#[derive(Default)]
struct Reference {
    pending: Vec<(Time, u64, Seen)>,
    seq: u64,
}

impl Reference {
    fn pop(&mut self) -> Option<(Time, Seen)> {
        let at = (0..self.pending.len()).min_by_key(|&i| (self.pending[i].0, self.pending[i].1))?;
        let (time, _, what) = self.pending.remove(at);
        Some((time, what))
    }

    fn count(&self, kind: u8) -> u64 {
        self.pending.iter().filter(|p| p.2 .0 == kind).count() as u64
    }
}

/// Runs `ops` on a queue ordered by `keys` and on the reference: they pop
/// the same events at the same times and agree on the counts throughout.
fn agree<K: Keys>(keys: K, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut q = EventQueue::with_keys(keys);
    let mut r = Reference::default();
    let mut now: Time = 0;
    for (id, op) in ops.iter().enumerate() {
        match *op {
            Op::Push { delay, past, node, word, kind } => {
                let time = if past { now.saturating_sub(delay) } else { now.saturating_add(delay) };
                let (ev, what) = event(kind, node, id as u64, word);
                q.push(time, ev);
                r.pending.push((time, r.seq, what));
                r.seq += 1;
            }
            Op::Pop => {
                let got = q.pop().map(|(t, ev)| (t, seen(&ev)));
                prop_assert_eq!(got, r.pop());
                if let Some((t, _)) = got {
                    now = t;
                }
            }
            Op::Cancel { node, word } => {
                q.cancel_timer(node, word);
                r.pending.retain(|p| !(p.2 .0 < 2 && p.2 .1 == node && p.2 .3 == word));
            }
            Op::Crash { node } => {
                q.cancel_timers_of(node);
                r.pending.retain(|p| !(p.2 .0 < 2 && p.2 .1 == node));
            }
        }
        prop_assert_eq!(q.work(), r.count(0));
        prop_assert_eq!(q.steering(), r.count(2));
        prop_assert_eq!(q.pending().count(), r.pending.len());
    }
    while let Some(want) = r.pop() {
        prop_assert_eq!(q.pop().map(|(t, ev)| (t, seen(&ev))), Some(want));
    }
    prop_assert!(q.pop().is_none());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_ordering_pops_what_sorting_by_time_and_sequence_pops(ops in prop::collection::vec(op(), 0..300)) {
        agree(Binary24::default(), &ops)?;
        agree(Binary16::default(), &ops)?;
        agree(Quad16::default(), &ops)?;
        agree(Radix::default(), &ops)?;
    }

    /// Packed keys renumber their 32-bit sequence when it runs out: with a
    /// limit of 8, every few pushes.
    #[test]
    fn renumbering_the_sequence_keeps_the_order(ops in prop::collection::vec(op(), 0..300)) {
        agree(Binary16::with_seq_limit(8), &ops)?;
        agree(Quad16::with_seq_limit(8), &ops)?;
        agree(Radix::with_seq_limit(8), &ops)?;
    }
}

/// One step of a use of the queue that mostly pushes at the present (the
/// lane's case): zero-latency hops and timers, among later ones.
#[derive(Debug, Clone)]
enum LaneOp {
    /// A message arriving `delay` after now (`past`: before it).
    Arrive {
        delay: u64,
        past: bool,
        to: NodeId,
    },
    /// A timer (a tick when `background`) of `node` `delay` after now.
    Timer {
        delay: u64,
        node: NodeId,
        word: u64,
        background: bool,
    },
    /// A sample (not work, not a timer) `delay` after now.
    Sample {
        delay: u64,
    },
    Pop,
    Cancel {
        node: NodeId,
        word: u64,
    },
    Crash {
        node: NodeId,
    },
}

fn lane_op() -> impl Strategy<Value = LaneOp> {
    // Half of the pushes at the present, the rest soon or much later.
    let delay = || prop_oneof![4 => Just(0u64), 2 => 1u64..3, 1 => 0u64..1 << 40];
    prop_oneof![
        4 => (delay(), 0u8..40, 0u32..4).prop_map(|(delay, p, to)| LaneOp::Arrive { delay, past: p == 0, to }),
        3 => (delay(), 0u32..4, 0u64..3, any::<bool>())
            .prop_map(|(delay, node, word, background)| LaneOp::Timer { delay, node, word, background }),
        1 => delay().prop_map(|delay| LaneOp::Sample { delay }),
        6 => Just(LaneOp::Pop),
        1 => (0u32..4, 0u64..3).prop_map(|(node, word)| LaneOp::Cancel { node, word }),
        1 => (0u32..4).prop_map(|node| LaneOp::Crash { node }),
    ]
}

/// What a popped event is seen as: (kind, node, the number of the push).
type Id = (u8, NodeId, u64);

fn id_of(ev: &Ev) -> Id {
    match ev {
        Ev::Arrive { to, msg: Msg::Queue(crate::protocol::QueueMsg::Ack { tag }), .. } => (0, *to, *tag),
        Ev::Timer { node, incarnation, .. } => (1, *node, u64::from(*incarnation)),
        Ev::Tick { node, incarnation, .. } => (2, *node, u64::from(*incarnation)),
        Ev::Sample => (3, 0, 0),
        other => panic!("not pushed: {other:?}"),
    }
}

/// The reference: a binary heap of (time, push number), the live events
/// by push number (a cancel removes them; the heap skips what is gone),
/// and each live timer's word.
#[derive(Default)]
struct HeapReference {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(Time, u64)>>,
    live: std::collections::BTreeMap<u64, (Id, Option<u64>)>,
}

impl HeapReference {
    fn pop(&mut self) -> Option<(Time, Id)> {
        while let Some(std::cmp::Reverse((time, n))) = self.heap.pop() {
            if let Some((id, _)) = self.live.remove(&n) {
                return Some((time, id));
            }
        }
        None
    }

    fn cancel(&mut self, node: NodeId, word: Option<u64>) {
        self.live.retain(|_, (id, w)| !(id.0 != 0 && id.0 != 3 && id.1 == node && (word.is_none() || *w == word)));
    }
}

/// Runs `ops` on a queue ordered by `keys` and on the heap reference: they
/// pop the same events at the same times, and the queue's counts and
/// pending events agree with the reference throughout.
fn agree_with_heap<K: Keys>(keys: K, ops: &[LaneOp]) -> Result<(), TestCaseError> {
    let mut q = EventQueue::with_keys(keys);
    let mut r = HeapReference::default();
    let mut now: Time = 0;
    for (n, op) in ops.iter().enumerate() {
        let n = n as u64;
        let file = |r: &mut HeapReference, delay: u64, id: Id, word: Option<u64>| {
            let time = now.saturating_add(delay);
            r.heap.push(std::cmp::Reverse((time, n)));
            r.live.insert(n, (id, word));
            time
        };
        match *op {
            LaneOp::Arrive { delay, past, to } => {
                let time = if past { now.saturating_sub(delay) } else { now.saturating_add(delay) };
                r.heap.push(std::cmp::Reverse((time, n)));
                r.live.insert(n, ((0, to, n), None));
                q.push_arrive(time, 9, to, Msg::Queue(crate::protocol::QueueMsg::Ack { tag: n }));
            }
            LaneOp::Timer { delay, node, word, background } => {
                let time = file(&mut r, delay, (1 + u8::from(background), node, n), Some(word));
                q.push_timer(time, node, n as u32, word, background);
            }
            LaneOp::Sample { delay } => {
                let time = file(&mut r, delay, (3, 0, 0), None);
                q.push(time, Ev::Sample);
            }
            LaneOp::Pop => {
                let got = q.pop().map(|(t, ev)| (t, id_of(&ev)));
                prop_assert_eq!(got, r.pop());
                if let Some((t, _)) = got {
                    now = t;
                }
            }
            LaneOp::Cancel { node, word } => {
                q.cancel_timer(node, word);
                r.cancel(node, Some(word));
            }
            LaneOp::Crash { node } => {
                q.cancel_timers_of(node);
                r.cancel(node, None);
            }
        }
        let count = |kinds: &[u8]| r.live.values().filter(|(id, _)| kinds.contains(&id.0)).count() as u64;
        prop_assert_eq!(q.work(), count(&[0, 1]));
        prop_assert_eq!(q.steering(), 0);
        let mut pending: Vec<Id> = q.pending().map(|ev| id_of(&ev)).collect();
        let mut want: Vec<Id> = r.live.values().map(|(id, _)| *id).collect();
        pending.sort_unstable();
        want.sort_unstable();
        prop_assert_eq!(pending, want);
        prop_assert!(q.memory_bytes() > 0 || r.live.is_empty());
    }
    while let Some(want) = r.pop() {
        prop_assert_eq!(q.pop().map(|(t, ev)| (t, id_of(&ev))), Some(want));
    }
    prop_assert!(q.pop().is_none());
    prop_assert_eq!(q.work(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The lane (events pushed at the present) keeps exactly the (time,
    /// sequence) order of a binary heap, with cancels and crashes of
    /// timers in the lane and in the ordering, and pushes into the past.
    #[test]
    fn the_lane_pops_in_a_binary_heaps_order(ops in prop::collection::vec(lane_op(), 0..300)) {
        agree_with_heap(Radix::default(), &ops)?;
        agree_with_heap(Radix::with_seq_limit(8), &ops)?;
        agree_with_heap(Quad16::default(), &ops)?;
    }
}

/// A hold run (pop one, push one later) at a steady size: after the queue
/// has seen its spread of delays, its memory stops growing.
fn hold_memory<K: Keys>() -> (usize, usize) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut q: EventQueue<K> = EventQueue::new();
    let delay = |rng: &mut rand_chacha::ChaCha8Rng| {
        if rng.random_bool(0.9) {
            rng.random_range(500_000..1_500_000)
        } else {
            rng.random_range(0..2_000_000_000)
        }
    };
    for node in 0..1_000 {
        q.push(delay(&mut rng), timer(node % 50, 1));
    }
    let mut at = |q: &mut EventQueue<K>, n: usize| {
        for _ in 0..n {
            let (t, ev) = q.pop().expect("a pending timer");
            let Ev::Timer { node, .. } = ev else { unreachable!() };
            q.push(t + delay(&mut rng), timer(node, 1));
            // A cancel-heavy mix: one pop in 4 also sets a timer and cancels it.
            if t % 4 == 0 {
                q.push(t + delay(&mut rng), timer(node, 2));
                q.cancel_timer(node, 2);
            }
        }
        q.memory_bytes()
    };
    let early = at(&mut q, 200_000);
    let late = at(&mut q, 2_000_000);
    (early, late)
}

#[test]
fn memory_stays_bounded_in_a_long_hold_run() {
    for (name, (early, late)) in [
        ("binary24", hold_memory::<Binary24>()),
        ("binary16", hold_memory::<Binary16>()),
        ("quad16", hold_memory::<Quad16>()),
        ("radix", hold_memory::<Radix>()),
    ] {
        assert!(late <= early * 2, "{name}: {early} bytes after 200k holds, {late} after 2.2M");
    }
}

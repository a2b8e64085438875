//! Connections: per-pair FIFO under any jitter and slow-node faults, and
//! the ways a message may still be overtaken (a reconnect, explicit
//! reordering). They drive `Network::send` directly, with no engine.

use super::*;
use crate::dist::Dist;
use crate::protocol::Notice;
use crate::units::{Millis, Positive};
use proptest::prelude::*;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("n{i}")).collect()
}

fn send_at(net: &mut Network, now: Time, from: NodeId, to: NodeId) -> Delivery {
    net.send(now, from, to, &Msg::Notice(Notice::PeerDown), &mut Trace::new(false, 0))
}

/// The arrival times of one send (the original, then a copy if any).
fn arrivals(now: Time, d: Delivery) -> Vec<Time> {
    match d {
        Delivery::Arrives { delay, copy } => std::iter::once(delay).chain(copy).map(|x| now + x).collect(),
        Delivery::Dropped(_) => vec![],
    }
}

/// A latency distribution of any shape the scenario format offers.
fn any_latency() -> impl Strategy<Value = Dist> {
    let ms = 0.0..50.0f64;
    prop_oneof![
        ms.clone().prop_map(|m| Dist::Constant { ms: Millis(m) }),
        (ms.clone(), ms.clone())
            .prop_map(|(a, b)| Dist::Uniform { min_ms: Millis(a.min(b)), max_ms: Millis(a.max(b)) }),
        ms.clone().prop_map(|m| Dist::Exponential { mean_ms: Millis(m) }),
        (ms.clone(), ms.clone()).prop_map(|(m, s)| Dist::Normal { mean_ms: Millis(m), stddev_ms: Millis(s) }),
        (0.1..50.0f64, ms.clone()).prop_map(|(m, s)| Dist::Lognormal { mean_ms: Millis(m), stddev_ms: Millis(s) }),
        (0.1..10.0f64, 0.5..3.0f64).prop_map(|(a, k)| Dist::Pareto { scale_ms: Millis(a), shape: Positive(k) }),
    ]
}

/// One step of a schedule: wait, then send on a pair, or start or stop
/// slowing a node.
#[derive(Debug, Clone)]
enum Step {
    Send { gap_us: u64, from: NodeId, to: NodeId },
    Slow { node: NodeId, factor: f64 },
    Fast { node: NodeId },
}

fn any_step(n: NodeId) -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..3_000u64, 0..n, 0..n).prop_map(|(gap_us, from, to)| Step::Send { gap_us, from, to }),
        1 => (0..n, 1.0..20.0f64).prop_map(|(node, factor)| Step::Slow { node, factor }),
        1 => (0..n).prop_map(|node| Step::Fast { node }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the latency distribution, duplication and slow-node faults,
    /// every copy sent on a pair arrives no earlier than every copy sent
    /// before it on that pair.
    #[test]
    fn each_connection_is_fifo_under_any_jitter_and_slow_faults(
        latency in any_latency(),
        duplicate in prop_oneof![Just(0.0), 0.0..0.5f64],
        seed in any::<u64>(),
        steps in prop::collection::vec(any_step(4), 1..300),
    ) {
        let model = LinkModel { duplicate_probability: duplicate, ..LinkModel::reliable(latency.sampler()) };
        let mut net = Network::new(seed, &names(4), model);
        let mut now: Time = 0;
        // Per pair, the latest arrival of anything sent on it so far.
        let mut latest: BTreeMap<(NodeId, NodeId), Time> = BTreeMap::new();
        for (id, step) in steps.iter().enumerate() {
            match *step {
                Step::Send { gap_us, from, to } => {
                    now += gap_us * 1_000;
                    let times = arrivals(now, send_at(&mut net, now, from, to));
                    let before = latest.get(&(from, to)).copied().unwrap_or(0);
                    for &t in &times {
                        prop_assert!(t >= before, "{from}->{to}: sent at {now}, arrives at {t}, before {before}");
                    }
                    let last = times.iter().copied().max().unwrap_or(before).max(before);
                    latest.insert((from, to), last);
                }
                Step::Slow { node, factor } => net.begin(id, &FaultAction::Slow { node, factor }),
                Step::Fast { node } => {
                    // End every slow fault of the node begun so far.
                    for (i, s) in steps[..id].iter().enumerate() {
                        if let Step::Slow { node: n, factor } = *s {
                            if n == node {
                                net.end(i, &FaultAction::Slow { node, factor });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A network of two nodes with 1 ms links; node 0 is slowed 100 times (so
/// its first message takes 100 ms), then the slowdown ends.
fn slow_start() -> (Network, Time) {
    let mut net = Network::new(1, &names(3), LinkModel::reliable(Dist::constant_ms(1.0).sampler()));
    let slow = FaultAction::Slow { node: 0, factor: 100.0 };
    net.begin(0, &slow);
    let first = arrivals(0, send_at(&mut net, 0, 0, 1));
    assert_eq!(first, [100 * NS_PER_MS]);
    net.end(0, &slow);
    (net, first[0])
}

use crate::time::NS_PER_MS;

#[test]
fn a_later_message_waits_for_an_earlier_slow_one_on_its_connection() {
    let (mut net, first) = slow_start();
    assert_eq!(arrivals(NS_PER_MS, send_at(&mut net, NS_PER_MS, 0, 1)), [first], "held back to keep the order");
    assert_eq!(arrivals(NS_PER_MS, send_at(&mut net, NS_PER_MS, 0, 2)), [2 * NS_PER_MS], "another connection");
    assert_eq!(arrivals(NS_PER_MS, send_at(&mut net, NS_PER_MS, 1, 0)), [2 * NS_PER_MS], "the other direction");
}

#[test]
fn a_crash_of_either_end_breaks_the_connection_so_the_next_message_may_overtake() {
    for crashed in [0, 1] {
        let (mut net, first) = slow_start();
        net.break_connections(crashed);
        let t = arrivals(NS_PER_MS, send_at(&mut net, NS_PER_MS, 0, 1));
        assert_eq!(t, [2 * NS_PER_MS], "node {crashed} crashed: a new connection");
        assert!(t[0] < first);
        // The new connection keeps its own order again.
        let again = arrivals(NS_PER_MS, send_at(&mut net, NS_PER_MS, 0, 1));
        assert_eq!(again, [2 * NS_PER_MS]);
    }
    // A crash of a third node leaves the connection alone.
    let (mut net, first) = slow_start();
    net.break_connections(2);
    assert_eq!(arrivals(NS_PER_MS, send_at(&mut net, NS_PER_MS, 0, 1)), [first]);
}

#[test]
fn a_partition_breaks_the_connection_it_blocks() {
    let (mut net, first) = slow_start();
    let cut = FaultAction::Partition { blocked: vec![(0, 1)] };
    net.begin(1, &cut);
    net.end(1, &cut);
    let t = arrivals(NS_PER_MS, send_at(&mut net, NS_PER_MS, 0, 1));
    assert_eq!(t, [2 * NS_PER_MS]);
    assert!(t[0] < first, "a reconnect after the partition does not wait for the old connection");
}

#[test]
fn reordered_messages_leave_the_connections_order_and_others_do_not() {
    // Constant 1 ms links, half the messages reordered: a reordered message
    // takes two latency draws (2 ms) and holds nobody back, so the next
    // message, sent 0.5 ms later, overtakes it.
    let model = LinkModel { reorder_probability: 0.5, ..LinkModel::reliable(Dist::constant_ms(1.0).sampler()) };
    let mut net = Network::new(3, &names(2), model);
    let (mut overtaken, mut in_order) = (0, 0);
    let mut prev: Option<(Time, bool)> = None;
    for k in 0..400u64 {
        let now = k * NS_PER_MS / 2;
        let t = arrivals(now, send_at(&mut net, now, 0, 1))[0];
        let reordered = t - now == 2 * NS_PER_MS;
        assert!(reordered || t - now == NS_PER_MS, "{}", t - now);
        if let Some((p, was_reordered)) = prev {
            if t < p {
                assert!(was_reordered, "only a reordered message is overtaken");
                overtaken += 1;
            } else {
                in_order += 1;
            }
        }
        prev = Some((t, reordered));
    }
    assert!(overtaken > 50 && in_order > 50, "{overtaken} overtaken, {in_order} in order");
}

#[test]
fn a_reorder_fault_reorders_only_links_it_touches_and_only_while_in_force() {
    let mut net = Network::new(3, &names(3), LinkModel::reliable(Dist::constant_ms(1.0).sampler()));
    let fault = FaultAction::Reorder { probability: 1.0, nodes: vec![1] };
    let delay = |net: &mut Network, from, to| arrivals(0, send_at(net, 0, from, to))[0];
    assert_eq!(delay(&mut net, 0, 1), NS_PER_MS);
    net.begin(0, &fault);
    assert_eq!(delay(&mut net, 0, 1), 2 * NS_PER_MS, "a link touching node 1");
    assert_eq!(delay(&mut net, 1, 2), 2 * NS_PER_MS, "a link touching node 1");
    assert_eq!(delay(&mut net, 0, 2), NS_PER_MS, "a link away from node 1");
    net.end(0, &fault);
    assert_eq!(delay(&mut net, 0, 1), NS_PER_MS, "over");
}

#[test]
fn a_duplicate_spike_raises_duplication_only_while_in_force() {
    let mut net = Network::new(3, &names(2), LinkModel::reliable(Dist::constant_ms(1.0).sampler()));
    let copies = |net: &mut Network| arrivals(0, send_at(net, 0, 0, 1)).len();
    assert_eq!(copies(&mut net), 1);
    let spike = FaultAction::DuplicateSpike { probability: 1.0, nodes: vec![] };
    net.begin(4, &spike);
    assert_eq!(copies(&mut net), 2);
    net.end(4, &spike);
    assert_eq!(copies(&mut net), 1);
}

#[test]
fn no_reordering_draws_nothing() {
    // With reorder probability 0 the link draws exactly what it drew before
    // connections existed: one latency draw per message.
    let model = LinkModel::reliable(Dist::Exponential { mean_ms: Millis(1.0) }.sampler());
    let mut net = Network::new(9, &names(2), model.clone());
    let mut rng = crate::rng::stream(9, "link:n0->n1");
    for k in 0..100 {
        let now = k * 10 * NS_PER_MS; // far apart: FIFO never delays
        let want = model.latency.sample_scaled_ns(&mut rng, 1.0);
        assert_eq!(arrivals(now, send_at(&mut net, now, 0, 1)), [now + want]);
    }
}

/// A step of a schedule with every kind of network fault.
#[derive(Debug, Clone)]
enum Chaos {
    Send { gap_us: u64, from: NodeId, to: NodeId },
    Arrive { from: NodeId, to: NodeId, alive: bool },
    Begin(FaultAction),
    End,
    Crash(NodeId),
}

fn any_chaos(n: NodeId) -> impl Strategy<Value = Chaos> {
    let nodes = prop::collection::vec(0..n, 0..2);
    prop_oneof![
        12 => (0..3_000u64, 0..n, 0..n).prop_map(|(gap_us, from, to)| Chaos::Send { gap_us, from, to }),
        3 => (0..n, 0..n, prop::bool::weighted(0.8)).prop_map(|(from, to, alive)| Chaos::Arrive { from, to, alive }),
        1 => (0..n, 1.0..5.0f64).prop_map(|(node, factor)| Chaos::Begin(FaultAction::Slow { node, factor })),
        1 => (0..n, 0..n).prop_map(|(a, b)| Chaos::Begin(FaultAction::Partition { blocked: vec![(a, b)] })),
        1 => (0.0..1.0f64, nodes.clone())
            .prop_map(|(probability, nodes)| Chaos::Begin(FaultAction::LossSpike { probability, nodes })),
        1 => (0.0..1.0f64, nodes.clone())
            .prop_map(|(probability, nodes)| Chaos::Begin(FaultAction::DuplicateSpike { probability, nodes })),
        1 => (0.0..1.0f64, nodes).prop_map(|(probability, nodes)| Chaos::Begin(FaultAction::Reorder { probability, nodes })),
        2 => Just(Chaos::End),
        1 => (0..n).prop_map(Chaos::Crash),
    ]
}

/// Runs `steps` on a network of four nodes whose links 0->1 and 1->0 are
/// jittery and lossy, and the others constant (one of them 0 ms), and
/// returns every send's and arrival's outcome with the final counts.
fn outcomes(seed: u64, steps: &[Chaos], general_only: bool) -> (Vec<String>, NetStats) {
    let mut net = Network::new(seed, &names(4), LinkModel::reliable(Dist::constant_ms(1.0).sampler()));
    net.general_only = general_only;
    let jitter = Dist::Uniform { min_ms: Millis(0.5), max_ms: Millis(1.5) }.sampler();
    net.set_link(0, 1, LinkModel { loss_probability: 0.1, ..LinkModel::reliable(jitter.clone()) });
    net.set_link(1, 0, LinkModel { duplicate_probability: 0.1, ..LinkModel::reliable(jitter) });
    net.set_link(2, 3, LinkModel::reliable(Dist::constant_ms(0.0).sampler()));
    let (mut now, mut seen, mut active) = (0, Vec::new(), Vec::new());
    for (id, step) in steps.iter().enumerate() {
        match step {
            &Chaos::Send { gap_us, from, to } => {
                now += gap_us * 1_000;
                seen.push(format!("{:?}", send_at(&mut net, now, from, to)));
            }
            &Chaos::Arrive { from, to, alive } => seen.push(format!("{:?}", net.on_arrival(from, to, alive))),
            Chaos::Begin(action) => {
                net.begin(id, action);
                active.push((id, action.clone()));
            }
            Chaos::End => {
                if let Some((i, action)) = active.pop() {
                    net.end(i, &action);
                }
            }
            &Chaos::Crash(node) => {
                seen.push(format!("{:?}", net.close_connections(node)));
                net.break_connections(node);
            }
        }
    }
    (seen, net.stats)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The fast path of `Network::send` and `Network::on_arrival` decides
    /// exactly what the general path decides, under any schedule of
    /// faults, crashes and sends: same delays, same drops, same draws
    /// (a difference in draws shows in the later jittery sends).
    #[test]
    fn the_fast_path_decides_as_the_general_path_does(
        seed in any::<u64>(),
        steps in prop::collection::vec(any_chaos(4), 1..200),
    ) {
        let fast = outcomes(seed, &steps, false);
        let general = outcomes(seed, &steps, true);
        prop_assert_eq!(fast, general);
    }
}

//! Unit and property tests of a queue broker with declared queues and
//! exchanges, driven through its handlers: routing by exchange type,
//! unroutable publishes, dead-letter exchanges, and the dead-letter cycle
//! rule.

use super::exchange::{BindingSpec, ExchangeSpec, ExchangeType};
use super::routing::{resolve, route_ids, Publishers};
use super::{QueueArgs, QueueBroker, QueueSpec, QueueTimer};
use crate::engine::Harness;
use crate::ledger::LossCause;
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::QueueMsg;
use crate::time::NS_PER_MS;
use crate::units::Millis;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const BROKER: NodeId = 10;
const P: NodeId = 1;
const C1: NodeId = 2;

/// A broker with `spec`, whose producer `p` publishes with `keys` to
/// `exchange`; consumers by queue number in `readers`. Returns the route
/// number of each key.
fn routed(
    spec: &QueueSpec,
    exchange: &str,
    keys: &[&str],
    readers: &[(NodeId, usize)],
) -> (Harness, QueueBroker, Vec<u16>) {
    let mut publishers = Publishers::new();
    publishers.insert("p".into(), (exchange.into(), keys.iter().map(|k| k.to_string()).collect()));
    let (router, routes, dlx) = resolve(spec, &publishers);
    let ids = route_ids(&publishers).remove(0).1;
    let b = QueueBroker::new(spec, None, readers.iter().copied().collect()).with_routing(router, routes, dlx);
    (Harness::new(BROKER), b, ids)
}

fn queues(names: &[(&str, QueueArgs)]) -> BTreeMap<String, QueueArgs> {
    names.iter().map(|(n, a)| (n.to_string(), a.clone())).collect()
}

fn publish(h: &mut Harness, b: &mut QueueBroker, id: MsgId, route: u16) -> crate::engine::Emitted {
    let rec = Record::new(id, 0);
    h.message(
        b,
        P,
        QueueMsg::Publish {
            rec,
            want_ack: true,
            attempt: 1,
            channel: 0,
            tag: 0,
            persistent: false,
            route,
            expiration: crate::protocol::NO_EXPIRATION,
        },
    )
}

/// The ids waiting in each queue, by queue number.
fn contents(b: &QueueBroker) -> Vec<Vec<MsgId>> {
    b.subs.iter().map(|q| q.queue.iter().map(|e| e.rec.id).collect()).collect()
}

fn dead_lettered_to(key: &str) -> QueueArgs {
    QueueArgs { dead_letter_routing_key: Some(key.into()), ..QueueArgs::default() }
}

fn with_ttl(ms: f64, key: &str) -> QueueArgs {
    QueueArgs { ttl_ms: Some(Millis(ms)), ..dead_lettered_to(key) }
}

#[test]
fn a_topic_exchange_copies_a_publish_into_each_queue_a_binding_matches() {
    let bind = |queue: &str, key: &str| BindingSpec { queue: queue.into(), key: key.into() };
    let x = ExchangeSpec { kind: ExchangeType::Topic, bindings: vec![bind("audit", "#"), bind("paid", "order.paid")] };
    let spec = QueueSpec {
        queues: queues(&[("audit", QueueArgs::default()), ("paid", QueueArgs::default())]),
        exchanges: [("orders".to_string(), x)].into(),
        ..QueueSpec::default()
    };
    let (mut h, mut b, ids) = routed(&spec, "orders", &["order.paid", "order.made"], &[]);
    let e = publish(&mut h, &mut b, 0, ids[0]);
    assert_eq!(e.sent(), vec![(P, Msg::Queue(crate::protocol::publish_ack(0, true, 1, 0)))]);
    publish(&mut h, &mut b, 1, ids[1]);
    assert_eq!(contents(&b), vec![vec![0, 1], vec![0]], "audit gets both, paid only order.paid");
}

#[test]
fn an_unroutable_publish_is_confirmed_and_dropped_with_its_cause() {
    let spec = QueueSpec { queues: queues(&[("work", QueueArgs::default())]), ..QueueSpec::default() };
    let (mut h, mut b, ids) = routed(&spec, "", &["wrok"], &[]);
    let e = publish(&mut h, &mut b, 7, ids[0]);
    assert_eq!(e.sent(), vec![(P, Msg::Queue(crate::protocol::publish_ack(7, true, 1, 0)))]);
    assert_eq!(e.metric("unroutable"), 1.0);
    assert_eq!(e.discarded(), vec![(7, LossCause::Unroutable)]);
    assert_eq!(contents(&b), vec![Vec::<MsgId>::new()]);
}

/// work dead-letters to wait (TTL 5 ms), which dead-letters back to work.
fn retry_loop() -> QueueSpec {
    QueueSpec {
        dead_letter_exchange: Some(String::new()),
        queues: queues(&[("wait", with_ttl(5.0, "work")), ("work", dead_lettered_to("wait"))]),
        ..QueueSpec::default()
    }
}

#[test]
fn a_rejected_message_waits_out_the_ttl_and_comes_back_to_work_through_the_cycle() {
    let (mut h, mut b, ids) = routed(&retry_loop(), "", &["work"], &[(C1, 1)]);
    h.message(&mut b, C1, QueueMsg::Subscribe { prefetch: 1, session: 1, auto_ack: false });
    publish(&mut h, &mut b, 0, ids[0]);
    let e = h.message(&mut b, C1, QueueMsg::Nack { tag: 0, requeue: false });
    assert!(e.sent().is_empty(), "nothing to deliver while it waits");
    assert_eq!(contents(&b), vec![vec![0], vec![]], "in the wait queue");
    assert_eq!(e.timers::<QueueTimer>(), vec![(5 * NS_PER_MS, QueueTimer::Expire(0))]);
    for round in 0..3 {
        h.now += 5 * NS_PER_MS;
        let e = h.timer(&mut b, QueueTimer::Expire(0));
        let back = Msg::Queue(QueueMsg::Deliver { rec: Record::new(0, 0), tag: round + 1, redelivered: false });
        assert_eq!(e.sent(), vec![(C1, back)], "round {round}: back at work, delivered as a new message");
        assert_eq!(e.metric("dead_letter_cycles"), 0.0, "a rejection on every round: not a cycle to break");
        h.message(&mut b, C1, QueueMsg::Nack { tag: round + 1, requeue: false });
    }
}

#[test]
fn a_cycle_of_expiries_alone_is_dropped_when_it_comes_round() {
    let spec = QueueSpec {
        dead_letter_exchange: Some(String::new()),
        queues: queues(&[("a", with_ttl(1.0, "b")), ("b", with_ttl(1.0, "a"))]),
        ..QueueSpec::default()
    };
    let (mut h, mut b, ids) = routed(&spec, "", &["a"], &[]);
    publish(&mut h, &mut b, 0, ids[0]);
    h.now += NS_PER_MS;
    h.timer(&mut b, QueueTimer::Expire(0));
    assert_eq!(contents(&b), vec![vec![], vec![0]], "a expired it into b");
    h.now += NS_PER_MS;
    let e = h.timer(&mut b, QueueTimer::Expire(1));
    assert_eq!(contents(&b), vec![Vec::<MsgId>::new(), vec![]], "back to a: a cycle with no rejection");
    assert_eq!(e.metric("dead_letter_cycles"), 1.0);
    assert_eq!(e.discarded().last(), Some(&(0, LossCause::DeadLetterCycle)));
}

#[test]
fn dead_letters_keep_their_routing_key_unless_their_queue_sets_one() {
    let bind = |queue: &str, key: &str| BindingSpec { queue: queue.into(), key: key.into() };
    let dlx = ExchangeSpec { kind: ExchangeType::Topic, bindings: vec![bind("eu", "eu.#"), bind("us", "us.#")] };
    let spec = QueueSpec {
        dead_letter_exchange: Some("dlx".into()),
        queues: queues(&[("eu", QueueArgs::default()), ("us", QueueArgs::default()), ("work", QueueArgs::default())]),
        exchanges: [
            ("dlx".to_string(), dlx),
            ("in".to_string(), ExchangeSpec { kind: ExchangeType::Fanout, bindings: vec![bind("work", "")] }),
        ]
        .into(),
        ..QueueSpec::default()
    };
    let (mut h, mut b, ids) = routed(&spec, "in", &["eu.paid", "us.paid"], &[(C1, 2)]);
    h.message(&mut b, C1, QueueMsg::Subscribe { prefetch: 2, session: 1, auto_ack: false });
    publish(&mut h, &mut b, 0, ids[0]);
    publish(&mut h, &mut b, 1, ids[1]);
    h.message(&mut b, C1, QueueMsg::Nack { tag: 1, requeue: false });
    h.message(&mut b, C1, QueueMsg::Nack { tag: 0, requeue: false });
    assert_eq!(contents(&b), vec![vec![0], vec![1], vec![]], "each by the key it was published with");
}

/// An independent topic matcher (recursive over words), the oracle of the
/// property below.
fn oracle_topic(pattern: &[&str], words: &[&str]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        Some((&"#", rest)) => (0..=words.len()).any(|i| oracle_topic(rest, &words[i..])),
        Some((&"*", rest)) => !words.is_empty() && oracle_topic(rest, &words[1..]),
        Some((w, rest)) => words.first() == Some(w) && oracle_topic(rest, &words[1..]),
    }
}

/// Whether `binding` of an exchange of `kind` admits `key`, by the oracle.
fn oracle(kind: ExchangeType, binding: &str, key: &str) -> bool {
    match kind {
        ExchangeType::Fanout => true,
        ExchangeType::Direct => binding == key,
        ExchangeType::Topic => {
            let words: Vec<&str> = key.split('.').collect();
            oracle_topic(&binding.split('.').collect::<Vec<_>>(), &words)
        }
    }
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("q0"), Just("q1")].prop_map(String::from)
}

fn pattern_word() -> impl Strategy<Value = String> {
    prop_oneof![word(), Just("*".to_string()), Just("#".to_string())]
}

fn dotted(w: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::collection::vec(w, 1..4).prop_map(|ws| ws.join("."))
}

fn exchange_type() -> impl Strategy<Value = ExchangeType> {
    prop_oneof![Just(ExchangeType::Direct), Just(ExchangeType::Fanout), Just(ExchangeType::Topic)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every publish lands in exactly the queues whose bindings match its
    /// routing key (one copy each), through any exchange, the default one
    /// (a queue by its name) included.
    #[test]
    fn routing_delivers_each_message_to_exactly_the_queues_its_bindings_match(
        n_queues in 1usize..4,
        exchanges in prop::collection::vec(
            (exchange_type(), prop::collection::vec((0usize..4, dotted(pattern_word())), 0..5)), 1..4),
        keys in prop::collection::vec(dotted(word()), 1..6),
    ) {
        let names: Vec<String> = (0..n_queues).map(|i| format!("q{i}")).collect();
        let mut xs = BTreeMap::new();
        for (i, (kind, bindings)) in exchanges.iter().enumerate() {
            let bindings = bindings.iter().map(|(q, key)| BindingSpec { queue: names[q % n_queues].clone(), key: key.clone() }).collect();
            xs.insert(format!("x{i}"), ExchangeSpec { kind: *kind, bindings });
        }
        let spec = QueueSpec {
            queues: names.iter().map(|n| (n.clone(), QueueArgs::default())).collect(),
            exchanges: xs.clone(),
            ..QueueSpec::default()
        };
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut id = 0;
        for x in std::iter::once(String::new()).chain(xs.keys().cloned()) {
            let (mut h, mut b, ids) = routed(&spec, &x, &keys, &[]);
            let mut want: Vec<BTreeSet<MsgId>> = vec![BTreeSet::new(); n_queues];
            for (k, &route) in keys.iter().zip(&ids) {
                let e = publish(&mut h, &mut b, id, route);
                for (d, cause) in e.discarded() {
                    prop_assert_eq!((d, cause), (id, LossCause::Unroutable), "only an unroutable publish is dropped");
                }
                for (q, name) in names.iter().enumerate() {
                    let hit = match xs.get(&x) {
                        Some(spec) => spec.bindings.iter().any(|bd| bd.queue == *name && oracle(spec.kind, &bd.key, k)),
                        None => name == k,
                    };
                    if hit {
                        want[q].insert(id);
                    }
                }
                id += 1;
            }
            let got: Vec<Vec<MsgId>> = contents(&b);
            for q in 0..n_queues {
                let as_set: BTreeSet<MsgId> = got[q].iter().copied().collect();
                prop_assert_eq!(as_set.len(), got[q].len(), "one copy per queue");
                prop_assert_eq!(&as_set, &want[q], "queue {} through exchange {:?}", names[q], x);
            }
        }
    }
}

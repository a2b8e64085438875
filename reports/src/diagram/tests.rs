//! The collector, driven with hand-made trace events, and the drawing of
//! what it kept, parsed back as XML.

use super::*;
use sim_core::ledger::LossCause;

const P: NodeId = 0; // a producer
const B: NodeId = 1; // a broker
const C: NodeId = 2; // a consumer
const D: NodeId = 3; // another consumer

fn wire(from: NodeId, to: NodeId, msg: &'static str, id: Option<MsgId>) -> Wire {
    Wire { from, to, msg, id }
}

fn collect(window: Window, events: &[(Time, TraceWhat)]) -> Collected {
    let mut c = Collected::new(window);
    for (time, what) in events {
        c.event(&TraceEvent { time: *time, what: what.clone() });
    }
    c
}

fn all(max: usize) -> Window {
    Window { from: 0, to: None, max_messages: max }
}

#[test]
fn arrivals_pair_with_their_sends_and_a_copy_with_its_own_arrival() {
    let w = wire(P, B, "publish", Some(1));
    let c = collect(
        all(10),
        &[
            (0, TraceWhat::Duplicate(w)),
            (0, TraceWhat::Send(w, 5)),
            (3, TraceWhat::Arrive(w)),
            (5, TraceWhat::Arrive(w)),
        ],
    );
    let got: Vec<(Style, Fate)> = c.arrows.iter().map(|a| (a.style, a.fate)).collect();
    assert_eq!(got, [(Style::NetworkCopy, Fate::Arrived(3)), (Style::Original, Fate::Arrived(5))]);
}

#[test]
fn drops_are_placed_where_they_happened() {
    let (a, b, d, e) = (
        wire(P, B, "publish", Some(1)),
        wire(P, B, "publish", Some(2)),
        wire(P, B, "publish", Some(3)),
        wire(B, C, "deliver", Some(2)),
    );
    let c = collect(
        all(10),
        &[
            (10, TraceWhat::Drop(a, DropReason::Loss)),
            (20, TraceWhat::Send(b, 4)),
            (24, TraceWhat::Drop(b, DropReason::Partition)),
            (30, TraceWhat::Drop(d, DropReason::Partition)),
            (40, TraceWhat::Send(e, 2)),
            (42, TraceWhat::Drop(e, DropReason::Crashed)),
        ],
    );
    let fates: Vec<Fate> = c.arrows.iter().map(|a| a.fate).collect();
    assert_eq!(
        fates,
        [
            Fate::DroppedAtSend(DropReason::Loss),
            Fate::DroppedAtArrival(24, DropReason::Partition),
            Fate::DroppedAtSend(DropReason::Partition),
            Fate::DroppedAtArrival(42, DropReason::Crashed),
        ]
    );
}

#[test]
fn retries_redeliveries_fan_out_and_replies_are_told_apart() {
    let c = collect(
        all(10),
        &[
            (0, TraceWhat::Send(wire(P, B, "publish", Some(7)), 1)),
            (10, TraceWhat::Send(wire(P, B, "publish", Some(7)), 1)),
            (11, TraceWhat::Send(wire(B, P, "publish-ack", Some(7)), 1)),
            (12, TraceWhat::Send(wire(B, P, "publish-ack", Some(7)), 1)),
            (20, TraceWhat::Send(wire(B, C, "deliver", Some(7)), 1)),
            (30, TraceWhat::Send(wire(B, D, "deliver", Some(7)), 1)),
            (40, TraceWhat::Crash(C, false)),
            (50, TraceWhat::Send(wire(B, D, "deliver", Some(7)), 1)),
            (60, TraceWhat::Send(wire(B, C, "deliver", Some(7)), 1)),
        ],
    );
    let styles: Vec<Style> = c.arrows.iter().map(|a| a.style).collect();
    use Style::*;
    // The second send to D follows C's crash, which had it before: a redelivery.
    assert_eq!(styles, [Original, Retry, Original, Original, Original, Original, Redelivery, Redelivery]);
}

#[test]
fn the_window_and_the_sample_bound_what_is_kept() {
    let send = |t: Time, id: MsgId| (t, TraceWhat::Send(wire(P, B, "publish", Some(id)), 3));
    let mut events = vec![send(50, 1), (53, TraceWhat::Arrive(wire(P, B, "publish", Some(1))))];
    events.extend([send(110, 2), send(120, 3), send(130, 4), send(150, 2), send(250, 5), send(260, 2)]);
    events.push((111, TraceWhat::Process(B, 2, false)));
    events.push((112, TraceWhat::Process(B, 4, false)));
    let c = collect(Window { from: 100, to: Some(200), max_messages: 2 }, &events);
    assert_eq!(c.sampled, [2, 3], "the first two ids sent in the window");
    assert_eq!(c.ids_in_window, 3, "ids 2, 3 and 4 were sent in the window");
    let sent: Vec<(MsgId, Time)> = c.arrows.iter().map(|a| (a.wire.id.unwrap(), a.sent)).collect();
    assert_eq!(sent, [(2, 110), (3, 120), (2, 150)], "nothing outside the window, nothing unsampled");
    assert_eq!(c.steps.iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
}

#[test]
fn messages_without_an_id_are_kept_and_drawn_at_most_n() {
    let fetch = wire(C, B, "fetch", None);
    let events: Vec<(Time, TraceWhat)> = (0..50).map(|i| (i * 10, TraceWhat::Send(fetch, 2))).collect();
    let c = collect(all(5), &events);
    assert_eq!(c.idless.len(), 50, "kept, to pick from once the drawn time is known");
    let svg = render(&c, &info(&names(4), &[]));
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    let drawn = doc.descendants().filter(|n| n.attribute("class").is_some_and(|c| c.contains("no-id"))).count();
    assert!(drawn <= 5 + 1, "at most 5 drawn (and the legend's sample): {drawn}");
}

fn names(n: usize) -> Vec<String> {
    ["producer", "broker", "consumer-a", "consumer-b", "x"][..n].iter().map(|s| s.to_string()).collect()
}

fn info<'a>(names: &'a [String], lost: &'a [(MsgId, LossCause)]) -> Info<'a> {
    Info { scenario: "test <&>", variant: "v", seed: 1, names, lost, note: None }
}

fn has_class(n: &roxmltree::Node, class: &str) -> bool {
    n.attribute("class").is_some_and(|c| c.split(' ').any(|x| x == class))
}

#[test]
fn the_drawing_marks_every_loss_once_and_titles_every_arrow() {
    let (p1, p2, d3) = (wire(P, B, "publish", Some(1)), wire(P, B, "publish", Some(2)), wire(B, C, "deliver", Some(3)));
    let events = [
        (0, TraceWhat::Drop(p1, DropReason::Loss)),
        (1_000, TraceWhat::Send(p2, 500_000)),
        (501_000, TraceWhat::Arrive(p2)),
        (600_000, TraceWhat::Send(d3, 400_000)),
        (1_000_000, TraceWhat::Arrive(d3)),
        (1_100_000, TraceWhat::Process(C, 3, false)),
        (1_200_000, TraceWhat::Crash(C, false)),
        (1_300_000, TraceWhat::Fault("crash consumer-a".into(), FaultEvent::Begins)),
        (1_300_000, TraceWhat::Mark(B, "leader elected")),
    ];
    let c = collect(Window { from: 0, to: Some(2_000_000), max_messages: 10 }, &events);
    let lost = [(1, LossCause::NetworkLoss), (3, LossCause::Crash), (99, LossCause::Ttl)];
    let names = names(4);
    let svg = render(&c, &info(&names, &lost));
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    let ledger: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("data-source") == Some("ledger"))
        .filter_map(|n| n.attribute("data-cause"))
        .collect();
    assert_eq!(ledger, ["network_loss", "crash"], "one cross per lost message shown; #99 is not shown");
    let msgs: Vec<_> = doc.descendants().filter(|n| has_class(n, "msg")).collect();
    assert_eq!(msgs.len(), 3);
    assert!(msgs.iter().all(|m| m.children().any(|k| k.has_tag_name("title"))), "every arrow has a title");
    let lanes: Vec<&str> =
        doc.descendants().filter(|n| has_class(n, "lane")).filter_map(|n| n.attribute("data-node")).collect();
    assert_eq!(lanes, ["producer", "broker", "consumer-a", "consumer-b"]);
    assert_eq!(doc.descendants().filter(|n| has_class(n, "crashed") && n.attribute("data-node").is_some()).count(), 1);
    assert!(svg.contains("test &lt;&amp;&gt;"), "names are escaped");
}

#[test]
fn a_run_with_many_nodes_draws_the_busiest_lanes_and_says_so() {
    let mut events = Vec::new();
    for to in 1..20u32 {
        for k in 0..u64::from(to % 3 + 1) {
            let w = wire(0, to, "deliver", Some(u64::from(to) * 10 + k));
            events.push((u64::from(to) * 1_000 + k, TraceWhat::Send(w, 500)));
        }
    }
    let c = collect(all(1_000), &events);
    let names: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
    let svg = render(&c, &info(&names, &[]));
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    let lanes: Vec<&str> =
        doc.descendants().filter(|n| has_class(n, "lane")).filter_map(|n| n.attribute("data-node")).collect();
    assert_eq!(lanes.len(), MAX_LANES);
    assert!(lanes.contains(&"n0") && lanes.contains(&"n2"), "the sender and the busiest receivers: {lanes:?}");
    assert!(!lanes.contains(&"n3"), "n3 had one message, fewer than the 11 kept (3 each): {lanes:?}");
    let drawn = doc.descendants().filter(|n| has_class(n, "msg")).count();
    let left_out = c.arrows.len() - drawn;
    assert!(left_out > 0);
    assert!(svg.contains(&format!("12 of 20 nodes drawn (the busiest; {left_out} messages")), "the caption says so");
}

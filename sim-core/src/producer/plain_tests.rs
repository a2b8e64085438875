//! The plain producer's arrival path ([`Producer::produce_plain`]) against
//! the general one ([`Producer::produce_one`] with the flag off): the same
//! effects, in the same order, draw for draw.

use super::{Producer, ProducerSpec, ProducerTimer};
use crate::engine::{Emitted, Harness};
use crate::message::NodeId;

const B: NodeId = 5;

/// A started producer of `table`, with its flag forced off when `general`.
fn started(table: &str, general: bool) -> (Harness, Producer, Emitted) {
    let spec: ProducerSpec = toml::from_str(table).expect("a valid producer table");
    let mut h = Harness::new(0);
    let mut p = Producer::new(&spec, B, None).with_routes(vec![3, 1, 4]);
    let e = h.start(&mut p);
    if general {
        p.plain = false;
    }
    (h, p, e)
}

/// Every arrival's effects, taken at the times the producer's own timers say.
fn arrivals(table: &str, general: bool) -> (bool, Vec<Emitted>) {
    let (mut h, mut p, first) = started(table, general);
    let plain = p.plain;
    let mut out = vec![first];
    for _ in 0..200 {
        let Some((gap, _)) = out.last().and_then(|e| e.timers::<ProducerTimer>().last().copied()) else { break };
        h.now += gap;
        out.push(h.timer(&mut p, ProducerTimer::Arrival));
    }
    out.push(h.drain(&mut p));
    (plain, out)
}

#[test]
fn a_plain_producer_makes_what_the_general_path_makes() {
    let base = "target = \"b\"\narrival = { process = \"poisson\", rate_per_s = 900 }\nmessages = 150\n";
    let plain = [
        "",
        "keys = { distribution = \"uniform\", count = 7 }",
        "keys = { distribution = \"zipf\", count = 20, exponent = 1.1 }\nmessage_bytes = 512",
        "message_ttl_ms = 250\npersistent = true",
    ];
    for extra in plain {
        let table = format!("{base}{extra}");
        let (fast, got) = arrivals(&table, false);
        let (slow, want) = arrivals(&table, true);
        assert!(fast && !slow, "{extra}: plain, and forced off");
        assert_eq!(got, want, "{extra}");
        assert!(got.len() > 100, "{extra}: arrivals made");
    }
    // Options a message's path depends on are not plain.
    for extra in ["acks = \"broker\"", "rate_limit = { rate_per_s = 100, burst = 2 }"] {
        let (fast, _) = arrivals(&format!("{base}{extra}"), false);
        assert!(!fast, "{extra}");
    }
}

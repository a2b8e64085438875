//! A plain consumer's slot end ([`Consumer::finish_plain`]) against the
//! general one ([`Consumer::finish`], with the flag off): the same effects,
//! in the same order, draw for draw.

use super::{Consumer, ConsumerSpec, ConsumerTimer};
use crate::engine::{Emitted, Harness};
use crate::message::{NodeId, Record};
use crate::net::NodeFault;
use crate::protocol::QueueMsg;

const Q: NodeId = 10;

/// Every step's effects: deliveries (some buffered behind busy slots) and
/// the slot timers each sets, an `errors` fault in force for a while.
fn run(extra: &str, general: bool) -> (bool, Vec<Emitted>) {
    let table = format!("source = \"q\"\nprocessing = {{ dist = \"exponential\", mean_ms = 1.0 }}\n{extra}");
    let spec: ConsumerSpec = toml::from_str(&table).expect("a valid consumer table");
    let mut c = Consumer::new(&spec, Q, None);
    let mut h = Harness::new(4);
    let mut out = vec![h.start(&mut c)];
    if general {
        c.plain = false;
    }
    let plain = c.plain;
    out.push(h.message(&mut c, Q, QueueMsg::Subscribed { session: 1 }));
    let fault = NodeFault::Errors { ppm: 500_000 };
    for round in 0..40u64 {
        if round == 10 || round == 20 {
            out.push(h.fault(&mut c, &fault, round == 10));
        }
        for i in 0..3 {
            let id = round * 3 + i;
            let rec = Record::new(id, 0);
            out.push(h.message(&mut c, Q, QueueMsg::Deliver { rec, tag: id + 1, redelivered: false }));
        }
        for slot in 0..2 {
            h.now += 1_000_000;
            out.push(h.timer(&mut c, ConsumerTimer::Slot(slot)));
        }
    }
    (plain, out)
}

#[test]
fn a_plain_consumer_ends_a_job_as_the_general_path_does() {
    for extra in ["concurrency = 2\nprefetch = 4", "concurrency = 2\nack = \"before\"", "on_failure = \"retry\""] {
        let (fast, got) = run(extra, false);
        let (slow, want) = run(extra, true);
        assert!(fast && !slow, "{extra}: plain, and forced off");
        assert_eq!(got, want, "{extra}");
    }
}

//! Memory grows linearly with the number of nodes (issue 8, defect 2).
//! Before, every directed pair of nodes had a link with its own random
//! stream and a connection flag, made up front: 1,000 producers used
//! 410 MB and 5,000 aborted trying to allocate 9.2 GB. Now a pair costs
//! memory only once something happens on it.

use crate::common;

use common::*;
use std::fmt::Write;

/// A queue broker, one consumer and `n` producers that each send a few
/// messages.
fn many_producers(n: usize) -> String {
    let mut s = String::from(
        r#"
name = "many-producers"
concept = "many producers share one broker"
seed = 1
expect = ["lost == 0"]

[network]
latency = { dist = "constant", ms = 1 }

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
processing = { dist = "constant", ms = 0.01 }
"#,
    );
    for i in 0..n {
        let _ = write!(
            s,
            "\n[producers.p{i}]\ntarget = \"broker\"\narrival = {{ process = \"poisson\", rate_per_s = 1 }}\nmessages = 2\n"
        );
    }
    s
}

/// One producer, a broker and `n` consumers, each with its own configured
/// link from the broker (a few links per node).
fn many_consumers(n: usize) -> String {
    let mut s = String::from(
        r#"
name = "many-consumers"
concept = "many consumers share one queue"
seed = 1

[network]
latency = { dist = "constant", ms = 1 }

[brokers.broker]
kind = "queue"

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 1000 }
messages = 5000
"#,
    );
    for i in 0..n {
        let _ = write!(s, "\n[consumers.c{i}]\nsource = \"broker\"\nprocessing = {{ dist = \"constant\", ms = 1 }}\n");
    }
    for i in 0..n {
        let _ = write!(
            s,
            "\n[[network.links]]\nfrom = \"broker\"\nto = \"c{i}\"\nlatency = {{ dist = \"constant\", ms = 2 }}\n"
        );
    }
    s
}

fn run_measured(name: &str, text: &str) -> (Measured, TempDir) {
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let out = dir.path().join("out");
    let m = asyncsim_measured(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()], dir.path());
    (m, dir)
}

#[test]
fn five_thousand_producers_run_in_under_500_mb() {
    let (m, _dir) = run_measured("producers-5000", &many_producers(5000));
    assert_eq!(m.output.status.code(), Some(0), "{}", describe(&m.output));
    if let Some(kib) = m.peak_rss_kib {
        assert!(kib < 500 * 1024, "5,000 producers peaked at {kib} KiB");
    }
}

#[test]
fn twenty_thousand_consumers_with_their_own_links_run_in_a_few_hundred_mb() {
    let (m, dir) = run_measured("consumers-20000", &many_consumers(20_000));
    assert_eq!(m.output.status.code(), Some(0), "{}", describe(&m.output));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap()).unwrap();
    let v = s["variants"].as_object().unwrap().values().next().unwrap();
    assert_eq!(num(v, "processed"), 5000.0, "every message is processed: {v}");
    if let Some(kib) = m.peak_rss_kib {
        assert!(kib < 300 * 1024, "20,000 consumers peaked at {kib} KiB");
    }
}

/// Peak memory per node stays flat as the node count quadruples: with a
/// cost per pair of nodes, 4x the producers would cost 16x the memory.
#[test]
fn memory_per_producer_does_not_grow_with_the_number_of_producers() {
    let (small, _a) = run_measured("producers-1000", &many_producers(1000));
    let (large, _b) = run_measured("producers-4000", &many_producers(4000));
    for m in [&small, &large] {
        assert_eq!(m.output.status.code(), Some(0), "{}", describe(&m.output));
    }
    let (Some(s), Some(l)) = (small.peak_rss_kib, large.peak_rss_kib) else { return };
    // The binary and the runtime cost a fixed few MB in both runs, so the
    // ratio of peaks is below 4 when the cost per node is constant; a
    // quadratic cost would make it near 16.
    assert!(l < 6 * s, "4x the producers took {l} KiB against {s} KiB");
}

//! What the synchronous and the asynchronous chains promise, over random
//! fault schedules (crashes of the services and the database, the
//! database answering errors, slow nodes, network loss). The drain heals
//! every fault.
//!
//! - synchronous: a user is never told "200" for a request whose write
//!   failed downstream: every request confirmed to its user is applied in
//!   the database (`domains.db.lost == 0`);
//! - asynchronous: a request the edge accepted (202) is never lost once
//!   the faults heal: it is applied in the database, and its user learns
//!   of it (`lost == 0` in every domain, nothing left in flight).

use crate::common::{run, show};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Faults {
    loss: f64,
    crashes: Vec<(&'static str, u32, u32)>,
    errors: Option<(u32, u32, f64)>,
    slow: Option<(&'static str, u32, u32)>,
}

fn faults(crashable: Vec<&'static str>) -> impl Strategy<Value = Faults> {
    let crash = (prop::sample::select(crashable), 0..3_000u32, 1..2_000u32);
    (
        0.0..0.05f64,
        prop::collection::vec(crash, 0..3),
        prop::option::of((0..3_000u32, 1..2_000u32, 0.1..1.0f64)),
        prop::option::of((prop::sample::select(vec!["a", "b", "db"]), 0..3_000u32, 1..2_000u32)),
    )
        .prop_map(|(loss, crashes, errors, slow)| Faults { loss, crashes, errors, slow })
}

/// 300 requests at 100/s from users to a (sync) or to the edge (async),
/// with a calling b calling the database; `extra` added at the end.
fn scenario(f: &Faults, extra: &str) -> String {
    let mut s = format!(
        r#"
name = "sync-async"
concept = "test"
[run]
drain_ms = 300000
[network]
latency = {{ dist = "exponential", mean_ms = 1 }}
loss_probability = {loss}
[users.web]
target = "a"
arrival = {{ process = "poisson", rate_per_s = 100 }}
messages = 300
timeout_ms = 500
retries = 1
retry_backoff_ms = 50
[services.a]
workers = 8
queue_limit = 8
processing = {{ dist = "exponential", mean_ms = 2 }}
[[services.a.dependencies]]
target = "b"
timeout_ms = 200
retries = 1
[services.b]
workers = 8
processing = {{ dist = "exponential", mean_ms = 5 }}
[[services.b.dependencies]]
target = "db"
timeout_ms = 100
[stores.db]
latency = {{ dist = "exponential", mean_ms = 1 }}
[edges.front]
queue = "jobs"
[brokers.jobs]
kind = "queue"
redelivery_timeout_ms = 1000     # a delivery the network lost comes back after 1 s, not 30 min
"#,
        loss = f.loss
    );
    for (node, at, len) in &f.crashes {
        s += &format!("[[faults]]\nkind = \"crash\"\nnode = \"{node}\"\nat_ms = {at}\nuntil_ms = {}\n", at + len);
    }
    if let Some((at, len, p)) = f.errors {
        s += &format!(
            "[[faults]]\nkind = \"errors\"\nnode = \"db\"\nprobability = {p}\nat_ms = {at}\nuntil_ms = {}\n",
            at + len
        );
    }
    if let Some((node, at, len)) = f.slow {
        s += &format!(
            "[[faults]]\nkind = \"slow\"\nnode = \"{node}\"\nfactor = 20\nat_ms = {at}\nuntil_ms = {}\n",
            at + len
        );
    }
    s + extra
}

/// The async variant: users call the edge and poll it; a works the queue.
const ASYNC: &str = r#"
[variants.async]
[variants.async.set]
"users.web.target" = "front"
"users.web.outcome" = "poll"
"users.web.poll_interval_ms" = 200
"services.a.source" = "jobs"
"services.a.notify" = "front"
"#;

proptest! {
    #![proptest_config(crate::common::proptest_config(32))]

    #[test]
    fn a_sync_user_is_never_told_success_for_a_request_that_failed_downstream(
        f in faults(vec!["a", "b", "db"]),
        seed in 0..1000u64,
    ) {
        let out = run(&scenario(&f, ""), seed);
        let db = &out.domains["db"];
        prop_assert_eq!(db.lost, 0, "a request confirmed to its user was never written:\n{}", show(&out));
        let c = &out.counts;
        prop_assert_eq!(c.produced, 300);
    }

    #[test]
    fn an_async_request_once_accepted_is_never_lost_once_faults_heal(
        f in faults(vec!["a", "b", "db"]),
        seed in 0..1000u64,
    ) {
        let outs = crate::common::run_variants("sync-async", &scenario(&f, ASYNC), seed);
        let out = &outs["async"];
        let c = &out.counts;
        prop_assert_eq!((c.lost, c.in_flight), (0, 0), "{}", show(out));
        prop_assert_eq!(out.errors.get("job-failed").copied().unwrap_or(0), 0);
        prop_assert_eq!(out.counts.duplicated_by_cause.get("unexplained").copied().unwrap_or(0), 0, "{}", show(out));
    }
}

//! Queue clusters (`kind = "queue"` with `nodes = N`) through the CLI: the
//! bundled scenario of a partition and a lost node against a classic and a
//! quorum queue, and the checks of a cluster's fields and of `node-loss`.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, run_summary, TempDir};
use serde_json::Value;

/// A number at a dotted path in a variant (absent metrics and causes count as 0).
fn num(s: &Value, variant: &str, path: &str) -> f64 {
    let mut x = &s["variants"][variant];
    assert!(!x.is_null(), "no variant `{variant}`");
    for seg in path.split('.') {
        x = match x.get(seg) {
            Some(v) => v,
            None if ["metrics.", "lost_by_cause.", "errors_by_kind."].iter().any(|p| path.starts_with(p)) => {
                return 0.0
            }
            None => panic!("no key `{path}` in variant `{variant}`"),
        };
    }
    x.as_f64().unwrap_or_else(|| panic!("`{path}` of `{variant}` is not a number"))
}

#[test]
fn a_classic_queue_loses_confirmed_messages_with_its_node_and_a_quorum_queue_loses_none() {
    for seed in ["1", "2"] {
        let dir = TempDir::new(&format!("rabbitmq-partition-{seed}"));
        let s = run_summary("scenarios/rabbitmq-partition.toml", seed, &dir.path().join("out")).0;
        // Every message was confirmed in both (retries outlast the faults).
        for v in ["classic", "quorum"] {
            assert_eq!(num(&s, v, "acked"), num(&s, v, "produced"), "{v}, seed {seed}");
            assert_eq!(num(&s, v, "in_flight"), 0.0, "{v}, seed {seed}");
            // The isolated node's publishers timed out: nothing was confirmed there.
            assert!(num(&s, v, "errors_by_kind.ack-timeout") > 0.0, "{v}, seed {seed}");
        }
        // The classic queue's backlog went with its node: every loss is that.
        let lost = num(&s, "classic", "lost");
        assert!(lost > 0.0, "seed {seed}");
        assert_eq!(num(&s, "classic", "lost_by_cause.node_lost"), lost, "seed {seed}");
        // The quorum queue elected a new leader and kept every confirmed message.
        assert_eq!(num(&s, "quorum", "lost"), 0.0, "seed {seed}");
        assert!(num(&s, "quorum", "metrics.leader_elections") >= 1.0, "seed {seed}");
        assert_eq!(num(&s, "classic", "metrics.leader_elections"), 0.0, "seed {seed}");
    }
}

/// A cluster scenario with `extra` lines in the cluster's table and `rest` after it.
fn cluster(extra: &str, rest: &str) -> String {
    format!(
        r#"name = "bad-queue-cluster"
concept = "checks"
[run]
duration_ms = 1_000
[producers.p]
target = "rabbit-1"
arrival = {{ process = "constant", rate_per_s = 10 }}
acks = "broker"
[brokers.rabbit]
kind = "queue"
{extra}
{rest}
"#
    )
}

fn check_bad(name: &str, text: &str, needle: &str, field: &str) -> String {
    let line = text.lines().position(|l| l.contains(needle)).expect("the needle is in the scenario") + 1;
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().expect("UTF-8")]));
    assert_names(&err, &file, line, field);
    err
}

#[test]
fn a_wrong_queue_cluster_is_refused_with_its_field() {
    // (The producer publishes to another broker: with no nodes, `rabbit-1` does not exist.)
    let elsewhere = |extra: &str| {
        cluster(extra, "[brokers.other]\nkind = \"queue\"").replace("target = \"rabbit-1\"", "target = \"other\"")
    };
    let err = check_bad("qc-zero", &elsewhere("nodes = 0"), "nodes = 0", "brokers.rabbit.nodes");
    assert!(err.contains("from 1 to 16"), "{err}");
    check_bad("qc-huge", &elsewhere("nodes = 4000000000"), "nodes = 4000000000", "brokers.rabbit.nodes");
    check_bad("qc-home", &cluster("nodes = 3\nhome = 4", ""), "home = 4", "brokers.rabbit.home");
    let err =
        check_bad("qc-group", &cluster("nodes = 3\ngroup_size = 3", ""), "group_size", "brokers.rabbit.group_size");
    assert!(err.contains("quorum"), "{err}");
    let transient = "nodes = 3\nqueue_type = \"quorum\"\ndurable = false";
    check_bad("qc-durable", &cluster(transient, ""), "durable = false", "brokers.rabbit.durable");
    check_bad("qc-alone", &elsewhere("queue_type = \"quorum\""), "queue_type", "brokers.rabbit.queue_type");
    check_bad("qc-type", &cluster("nodes = 3\nqueue_type = \"stream\"", ""), "queue_type", "brokers.rabbit.queue_type");
    // Clients connect to a node, not to the cluster's name.
    let text = cluster("nodes = 3", "").replace("target = \"rabbit-1\"", "target = \"rabbit\"");
    let err = check_bad("qc-target", &text, "target = \"rabbit\"", "producers.p.target");
    assert!(err.contains("`rabbit-1` .. `rabbit-3`"), "{err}");
    let consumer = "[consumers.c]\nprocessing = { dist = \"constant\", ms = 1 }\nsource = \"rabbit\"";
    check_bad("qc-source", &cluster("nodes = 3", consumer), "source = \"rabbit\"", "consumers.c.source");
    let idem = cluster("nodes = 3", "").replace("acks = \"broker\"", "acks = \"broker\"\nidempotent = true");
    check_bad("qc-idempotent", &idem, "idempotent", "producers.p.idempotent");
    // node-loss hits a cluster's node only.
    let loss = "[[faults]]\nkind = \"node-loss\"\nnode = \"p\"\nat_ms = 100";
    let err = check_bad("qc-loss", &cluster("nodes = 3", loss), "node = \"p\"", "faults.0.node");
    assert!(err.contains("queue cluster"), "{err}");
}

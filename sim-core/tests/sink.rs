//! A log consumer's `sink`: each record a group member processes is
//! written to another node, which applies the effect in its own domain and
//! answers; the member commits only what was written. A small sink kind,
//! registered here, plays the table.

use sim_core::engine::{boxed, Component, Ctx, DynComponent, NoTimer, RunOutput};
use sim_core::kind::{Build, Kind, Node, Topology};
use sim_core::message::{Msg, NodeId};
use sim_core::protocol::SinkMsg;
use sim_core::registry::Registry;
use sim_core::scenario::{run_config, Scenario};

/// A table: applies every write it is given (duplicates too) and answers.
struct Table;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TableSpec {}

struct Running;

impl Component for Running {
    type Timer = NoTimer;
    fn start(&mut self, ctx: &mut Ctx<NoTimer>) {
        ctx.replica(true);
    }
    fn on_message(&mut self, ctx: &mut Ctx<NoTimer>, from: NodeId, msg: Msg) {
        if let Msg::Sink(SinkMsg::Write { rec, .. }) = msg {
            ctx.apply_effect(rec.id);
            ctx.holds(rec.key(), Some(rec.id));
            ctx.send(from, SinkMsg::Written { id: rec.id });
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<NoTimer>, _: NoTimer) {}
    fn crash(&mut self) {}
}

impl Kind for Table {
    type Spec = TableSpec;
    const NAME: &'static str = "test-table";
    const SECTION: &'static str = "test-tables";
    const SINK: bool = true;

    fn domain(&self, _: &TableSpec, _: &Topology) -> Option<String> {
        Some("table".into())
    }

    fn build(&self, _: &Node, _: &TableSpec, _: &mut Build) -> Box<dyn DynComponent> {
        boxed(Running)
    }
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register(Table);
    r
}

const BASE: &str = r#"
name = "sink"
concept = "a consumer writes to a table"
[run]
duration_ms = 2_000
drain_ms = 20_000
[network]
latency = { dist = "constant", ms = 1 }
[producers.p]
target = "kafka"
topic = "t"
arrival = { process = "poisson", rate_per_s = 200 }
keys = { distribution = "uniform", count = 10 }
[brokers.kafka]
kind = "log"
initial_rebalance_delay_ms = 0
session_timeout_ms = 500
topics = { t = { partitions = 2 } }
[consumers.writer]
source = "kafka"
topic = "t"
group = "database-writer"
processing = { dist = "constant", ms = 1 }
ack = "after"
heartbeat_interval_ms = 100
sink = "db"
[test-tables.db]
"#;

fn run(extra: &str) -> RunOutput {
    let s = Scenario::parse_with("sink.toml", &format!("{BASE}{extra}"), registry()).unwrap_or_else(|e| panic!("{e}"));
    run_config(&s.configs().unwrap().remove(0).1, 1, 0).completed().expect("the run ends")
}

#[test]
fn every_record_is_applied_once_in_the_sinks_domain_and_nowhere_else() {
    let out = run("");
    let c = &out.counts;
    assert!(c.produced > 300, "{c:?}");
    assert_eq!((c.processed, c.lost, c.duplicated, c.in_flight), (c.produced, 0, 0, 0), "{c:?}");
    assert_eq!(out.domains.keys().collect::<Vec<_>>(), ["table"], "the consumer has the sink's domain");
    let state = out.state.consistency.expect("the table is a replica");
    assert_eq!(state.replicas, 1);
}

#[test]
fn a_crash_between_the_write_and_the_commit_writes_again_and_the_sink_sees_duplicates() {
    let out = run("[[faults]]\nkind = \"crash\"\nnode = \"writer\"\nat_ms = 1_000\nuntil_ms = 1_200\n");
    let c = &out.counts;
    assert_eq!((c.lost, c.in_flight), (0, 0), "at least once: {c:?}");
    assert!(c.duplicated > 0, "the batch written before the crash was not committed: {c:?}");
}

#[test]
fn a_lost_write_is_written_again_until_answered() {
    let out =
        run("[[faults]]\nkind = \"partition\"\ngroups = [[\"writer\"], [\"db\"]]\nat_ms = 500\nuntil_ms = 1_500\n");
    let c = &out.counts;
    assert_eq!((c.processed, c.lost, c.in_flight), (c.produced, 0, 0), "{c:?}");
}

fn refusal(consumer_extra: &str) -> String {
    let text = BASE.replace("sink = \"db\"\n", consumer_extra);
    let err = Scenario::parse_with("sink.toml", &text, registry()).unwrap_err();
    format!("{} {}", err.field.unwrap_or_default(), err.message)
}

#[test]
fn a_sink_must_be_a_node_that_takes_writes_and_leaves_the_consumer_no_effect_of_its_own() {
    let e = refusal("sink = \"bd\"\n");
    assert!(e.starts_with("consumers.writer.sink") && e.contains("did you mean `db`?"), "{e}");
    let e = refusal("sink = \"p\"\n");
    assert!(e.contains("takes no writes") && e.contains("`db`"), "{e}");
    let e = refusal("sink = \"db\"\ndomain = \"orders\"\n");
    assert!(e.starts_with("consumers.writer.domain") && e.contains("applies no effect of its own"), "{e}");
    let e = refusal("sink = \"db\"\nsink_timeout_ms = 0\n");
    assert!(e.starts_with("consumers.writer.sink_timeout_ms"), "{e}");
}

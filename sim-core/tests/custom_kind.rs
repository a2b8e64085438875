//! A kind defined outside sim-core, registered at run time: parsed,
//! validated, numbered and run through the library, with the same errors
//! as a built-in kind. And the optional `kind` field of the built-in
//! sections.

use sim_core::engine::{boxed, Component, Ctx, DynComponent, NoTimer};
use sim_core::kind::{Build, Invalid, Kind, Node, Topology};
use sim_core::message::{Msg, NodeId};
use sim_core::registry::Registry;
use sim_core::scenario::{run_config, Scenario};

/// A node that counts what reaches it: `[sinks.NAME]`.
struct Sink;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkSpec {
    /// A node it watches (must exist).
    watches: String,
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

struct Counting;

impl Component for Counting {
    type Timer = NoTimer;
    fn start(&mut self, _: &mut Ctx<NoTimer>) {}
    fn on_message(&mut self, ctx: &mut Ctx<NoTimer>, _: NodeId, _: Msg) {
        ctx.metric_add("sink_messages", 1.0);
    }
    fn on_timer(&mut self, _: &mut Ctx<NoTimer>, _: NoTimer) {}
    fn crash(&mut self) {}
}

impl Kind for Sink {
    type Spec = SinkSpec;
    const NAME: &'static str = "sink";
    const SECTION: &'static str = "sinks";
    const METRICS: &'static [&'static str] = &["sink_messages"];

    fn validate(&self, node: &Node, spec: &SinkSpec, topology: &Topology) -> Result<(), Invalid> {
        if topology.node(&spec.watches).is_none() {
            return node.fail("watches", format!("no node named `{}`", spec.watches));
        }
        if spec.weight == 0 {
            return node.fail("weight", "expected at least 1");
        }
        Ok(())
    }

    fn domain(&self, _: &SinkSpec, _: &Topology) -> Option<String> {
        Some("sunk".into())
    }

    fn build(&self, _: &Node, _: &SinkSpec, _: &mut Build) -> Box<dyn DynComponent> {
        boxed(Counting)
    }
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register(Sink);
    r
}

const MM1: &str = include_str!("../../scenarios/mm1.toml");

fn with_sinks(extra: &str) -> String {
    format!("{MM1}\n[sinks.a-sink]\nkind = \"sink\"\nwatches = \"broker\"\n{extra}")
}

#[test]
fn a_registered_kind_is_parsed_numbered_after_the_built_in_sections_and_run() {
    let s = Scenario::parse_with("sinks.toml", &with_sinks(""), registry()).unwrap();
    let config = &s.configs().unwrap()[0].1;
    // A user section ranks after clients, whatever its name's order.
    let names = config.topology().names();
    assert_eq!(names, ["producer", "broker", "consumer", "a-sink"]);
    assert_eq!(config.effect_domains(), ["default", "sunk"]);
    assert_eq!(config.spec::<SinkSpec>("a-sink").map(|s| s.weight), Some(1));
    let out = run_config(config, 1, 0).completed().unwrap();
    assert_eq!(out.names, names);
}

#[test]
fn a_registered_kind_is_refused_by_the_built_in_registry() {
    let err = Scenario::parse("sinks.toml", &with_sinks("")).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("sinks"), "{err}");
    assert!(err.message.contains("unknown field `sinks`"), "{err}");
}

#[test]
fn a_registered_kinds_errors_name_line_and_field() {
    let text = with_sinks("wieght = 2\n");
    let err = Scenario::parse_with("sinks.toml", &text, registry()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("sinks.a-sink.wieght"), "{err}");
    assert_eq!(err.line, Some(text.lines().position(|l| l.starts_with("wieght")).unwrap() + 1), "{err}");
    assert!(err.message.contains("`weight`"), "the error lists the fields: {err}");

    let text = with_sinks("weight = 0\n");
    let err = Scenario::parse_with("sinks.toml", &text, registry()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("sinks.a-sink.weight"), "{err}");
    assert_eq!(err.line, Some(text.lines().position(|l| l.starts_with("weight")).unwrap() + 1), "{err}");

    // A section a registered kind opens is that kind's: `kind` may be left
    // out; a wrong one is refused with the kinds the section has.
    let text = format!("{MM1}\n[sinks.b]\nwatches = \"broker\"\n");
    assert!(Scenario::parse_with("sinks.toml", &text, registry()).is_ok());
    let text = format!("{MM1}\n[sinks.b]\nkind = \"sunk\"\nwatches = \"broker\"\n");
    let err = Scenario::parse_with("sinks.toml", &text, registry()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("sinks.b.kind"), "{err}");
    assert!(err.message.contains("`sink`"), "{err}");
}

#[test]
fn a_node_name_is_unique_across_built_in_and_registered_sections() {
    let text = format!("{MM1}\n[sinks.consumer]\nkind = \"sink\"\nwatches = \"broker\"\n");
    let err = Scenario::parse_with("sinks.toml", &text, registry()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("sinks.consumer"), "{err}");
    assert!(err.message.contains("already used in `consumers`"), "{err}");
}

#[test]
fn the_kind_field_of_built_in_sections_is_optional_and_means_the_default() {
    let plain = Scenario::parse("mm1.toml", MM1).unwrap();
    let explicit = MM1.replacen("[producers.producer]\n", "[producers.producer]\nkind = \"producer\"\n", 1).replacen(
        "[consumers.consumer]\n",
        "[consumers.consumer]\nkind = \"consumer\"\n",
        1,
    );
    assert_ne!(explicit, MM1, "mm1's tables changed");
    let explicit = Scenario::parse("mm1.toml", &explicit).unwrap();
    assert_eq!(plain.config, explicit.config);

    // A queue consumer cannot read a log broker.
    let log = include_str!("../../scenarios/delivery-guarantees.toml");
    let at = log.find("[consumers.").expect("a consumer");
    let header_end = at + log[at..].find('\n').unwrap() + 1;
    let text = format!("{}kind = \"consumer\"\n{}", &log[..header_end], &log[header_end..]);
    let err = Scenario::parse("log.toml", &text).unwrap_err();
    assert!(err.field.as_deref().is_some_and(|f| f.starts_with("consumers.")), "{err}");
    assert!(err.message.contains("log-consumer"), "the error names the kind that takes the field: {err}");
}

//! The registry of component kinds a scenario may use, and of the sections
//! of a scenario file that hold their tables.
//!
//! A section (`[producers.NAME]`, `[brokers.NAME]`, ...) has a rank, which
//! orders node ids (producers 0, brokers 1, consumers 2, clients 3, then
//! sections added by registered kinds, in order of registration), and a
//! rule for the kind of a table that names none with `kind = "..."`:
//! producers are `producer`s, clients `client`s, a broker must say, and a
//! consumer is a `log-consumer` when its `source` is a log broker, else a
//! (queue) `consumer`.
//!
//! [`Registry::builtin`] lists the built-in kinds; adding one to sim-core
//! is one module plus one line there. A library user can
//! [`Registry::register`] their own and read scenarios with it:
//!
//! ```
//! use sim_core::engine::{boxed, Component, Ctx, DynComponent, NoTimer};
//! use sim_core::kind::{Build, Kind, Node};
//! use sim_core::message::{Msg, NodeId};
//! use sim_core::registry::Registry;
//! use sim_core::scenario::{run_config, Scenario};
//!
//! /// A node that does nothing: `[sinks.NAME]`, with one optional field.
//! struct Sink;
//! #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct SinkSpec {
//!     #[serde(default)]
//!     note: String,
//! }
//! struct Idle;
//! impl Component for Idle {
//!     type Timer = NoTimer;
//!     fn start(&mut self, _: &mut Ctx<NoTimer>) {}
//!     fn on_message(&mut self, _: &mut Ctx<NoTimer>, _: NodeId, _: Msg) {}
//!     fn on_timer(&mut self, _: &mut Ctx<NoTimer>, _: NoTimer) {}
//!     fn crash(&mut self) {}
//! }
//! impl Kind for Sink {
//!     type Spec = SinkSpec;
//!     const NAME: &'static str = "sink";
//!     const SECTION: &'static str = "sinks";
//!     fn build(&self, _: &Node, _: &SinkSpec, _: &mut Build) -> Box<dyn DynComponent> {
//!         boxed(Idle)
//!     }
//! }
//!
//! let mut registry = Registry::builtin();
//! registry.register(Sink);
//! let text = "name = \"s\"\nconcept = \"c\"\nrun = { duration_ms = 10 }\n[sinks.quiet]\nkind = \"sink\"\n";
//! let scenario = Scenario::parse_with("s.toml", text, registry).unwrap();
//! let config = &scenario.configs().unwrap()[0].1;
//! assert_eq!(run_config(config, 1, 0).completed().unwrap().names, ["quiet"]);
//! ```

use crate::broker::{LogBrokerKind, QueueBrokerKind};
use crate::client::ClientKind;
use crate::consumer::ConsumerKind;
use crate::kind::{DynKind, Kind, Node, Typed};
use crate::log_consumer::LogConsumerKind;
use crate::producer::ProducerKind;
use std::fmt;
use std::sync::Arc;

/// How the kind of a table without `kind = "..."` is chosen.
#[derive(Clone, Copy)]
pub enum DefaultKind {
    /// The table must name its kind.
    Required,
    /// This kind.
    Fixed(&'static str),
    /// Chosen from the table and the nodes of sections of lower rank:
    /// returns the kind's name and, to explain the choice in errors, why.
    Pick(fn(&toml::Table, &[Node]) -> (&'static str, Option<String>)),
}

/// A section of a scenario file that holds node tables.
#[derive(Clone)]
pub struct Section {
    /// Its name, the top-level key (`producers`).
    pub name: &'static str,
    /// How a table that names no kind gets one.
    pub default: DefaultKind,
}

/// The kinds a scenario may use, and the sections that hold them.
#[derive(Clone)]
pub struct Registry {
    sections: Vec<Section>,
    kinds: Vec<Arc<dyn DynKind>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self.kinds.iter().map(|k| format!("{}.{}", k.section(), k.name())).collect();
        f.debug_struct("Registry").field("kinds", &kinds).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    /// The built-in sections with no kind in them.
    pub fn empty() -> Self {
        let sections = vec![
            Section { name: "producers", default: DefaultKind::Fixed("producer") },
            Section { name: "brokers", default: DefaultKind::Required },
            Section { name: "consumers", default: DefaultKind::Pick(consumer_kind) },
            Section { name: "clients", default: DefaultKind::Fixed("client") },
        ];
        Registry { sections, kinds: Vec::new() }
    }

    /// Every built-in kind.
    pub fn builtin() -> Self {
        let mut r = Registry::empty();
        r.register(ProducerKind);
        r.register(QueueBrokerKind);
        r.register(LogBrokerKind);
        r.register(ConsumerKind);
        r.register(LogConsumerKind);
        r.register(ClientKind);
        r.register(crate::users::UsersKind).register(crate::users::EdgeKind);
        r.register(crate::service::ServiceKind);
        r.register(crate::store::StoreKind);
        r.register(crate::saga::SagaKind).register(crate::saga::StepKind);
        r.register(crate::bank::BankKind).register(crate::bank::AtmKind);
        r.register(crate::stream::AggregatorKind);
        r.register(crate::views::TableKind).register(crate::views::CacheKind).register(crate::views::ReadersKind);
        r.register(crate::events::ProjectionKind);
        r.register(crate::events::CrawlerKind).register(crate::events::WatcherKind);
        r.set_default("syncs", DefaultKind::Required);
        r
    }

    /// Adds `kind`. Its section is added after the others if it is new,
    /// with `kind` as its default (its tables need not name their kind).
    ///
    /// # Panics
    ///
    /// If its section already has a kind of the same name.
    pub fn register<K: Kind>(&mut self, kind: K) -> &mut Self {
        assert!(
            self.kind(K::SECTION, K::NAME).is_none(),
            "the kind `{}.{}` is already registered",
            K::SECTION,
            K::NAME
        );
        // A section this kind opens is its own: its tables need not say
        // `kind` (`set_default` changes that, e.g. once a second kind joins).
        if self.section(K::SECTION).is_none() {
            self.sections.push(Section { name: K::SECTION, default: DefaultKind::Fixed(K::NAME) });
        }
        self.kinds.push(Arc::new(Typed(kind)));
        self
    }

    /// Sets how a table of `section` that names no kind gets one (adding
    /// the section if it is new).
    pub fn set_default(&mut self, section: &'static str, default: DefaultKind) -> &mut Self {
        match self.sections.iter_mut().find(|s| s.name == section) {
            Some(s) => s.default = default,
            None => self.sections.push(Section { name: section, default }),
        }
        self
    }

    /// The sections, in rank order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The section called `name`, with its rank.
    pub fn section(&self, name: &str) -> Option<(usize, &Section)> {
        self.sections.iter().enumerate().find(|(_, s)| s.name == name)
    }

    /// Every kind, in registration order.
    pub fn kinds(&self) -> impl Iterator<Item = &dyn DynKind> {
        self.kinds.iter().map(|k| &**k)
    }

    /// The kinds of `section`.
    pub fn kinds_of<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a dyn DynKind> + 'a {
        self.kinds().filter(move |k| k.section() == section)
    }

    /// The kind `name` of `section`.
    pub fn kind(&self, section: &str, name: &str) -> Option<&dyn DynKind> {
        self.kinds().find(|k| k.section() == section && k.name() == name)
    }

    /// The kind `name` of `section`, shared.
    pub(crate) fn kind_arc(&self, section: &str, name: &str) -> Option<Arc<dyn DynKind>> {
        self.kinds.iter().find(|k| k.section() == section && k.name() == name).cloned()
    }

    /// Every metric name some kind declares, sorted, each once.
    pub fn metric_names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.kinds().flat_map(|k| k.metrics().iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every error kind some kind declares, sorted, each once.
    pub fn error_kinds(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.kinds().flat_map(|k| k.errors().iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// A consumer of a log broker is a log consumer; any other, a queue consumer.
fn consumer_kind(table: &toml::Table, earlier: &[Node]) -> (&'static str, Option<String>) {
    let Some(source) = table.get("source").and_then(toml::Value::as_str) else {
        return ("consumer", None);
    };
    match earlier.iter().find(|n| n.name() == source && n.section() == "brokers").map(Node::kind) {
        Some("log") => ("log-consumer", Some(format!("a consumer of log broker `{source}`"))),
        Some("queue") => ("consumer", Some(format!("a consumer of queue broker `{source}`"))),
        _ => ("consumer", None),
    }
}

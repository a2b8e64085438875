//! Component kinds: what a scenario's node tables are read into, and how a
//! node is checked and built.
//!
//! A **kind** is one model of a node (the producer, the queue broker, the
//! log broker, ...). It owns its table in the scenario file (a serde
//! [`Kind::Spec`] with its defaults and `deny_unknown_fields`), the checks
//! serde cannot make (relations between its fields, and references to other
//! nodes through a read-only [`Topology`]), its effect domain, whether it is
//! a source that ends the run, the metric names and error kinds it reports,
//! and its construction into the engine's boxed component
//! ([`crate::engine::DynComponent`], made with [`crate::engine::boxed`]).
//! The [`crate::registry::Registry`] lists the kinds a scenario may use.
//! The component itself (its handlers, its typed timers) lives beside the
//! kind; the protocols it speaks live in [`crate::protocol`].
//!
//! Left out: faults aimed at a part of a node (a log broker's replicas)
//! are checked by the scenario, not by the kind.

use crate::engine::DynComponent;
use crate::ledger::DomainId;
use crate::message::NodeId;
use serde::de::{DeserializeOwned, Visitor};
use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Why a configuration is refused: the field's full path
/// (`["producers", "p", "arrival"]`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The field's path from the top of the file.
    pub path: Vec<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl Invalid {
    /// A refusal of the field at `path`.
    pub fn at(path: &[&str], message: impl Into<String>) -> Invalid {
        Invalid { path: path.iter().map(|s| s.to_string()).collect(), message: message.into() }
    }
}

/// A model of one node: its table, checks and construction. Implement it
/// and add it with [`crate::registry::Registry::register`]. The doctest of
/// [`crate::registry`] shows a whole one.
pub trait Kind: Send + Sync + 'static {
    /// The node's table as written, read with serde (use
    /// `#[serde(deny_unknown_fields)]`, and serde defaults for defaults).
    type Spec: DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync + 'static;
    /// The name that `kind = "NAME"` selects.
    const NAME: &'static str;
    /// The section of the file whose tables it reads (`producers`, ...).
    const SECTION: &'static str;
    /// The metric names it reports (`metrics.NAME` in a summary).
    const METRICS: &'static [&'static str] = &[];
    /// The error kinds it reports (`errors_by_kind.NAME`).
    const ERRORS: &'static [&'static str] = &[];
    /// The plots it adds to a scenario's report, over the gauges its
    /// components report ([`crate::engine::Component::gauges`]).
    const PLOTS: &'static [KindPlot] = &[];
    /// The gauges it reports ([`crate::engine::Component::gauges`]): a name,
    /// or the prefix of a family (`lag_seconds` for `lag_seconds.GROUP`).
    /// An alarm may watch only a gauge some node of the scenario reports.
    const GAUGES: &'static [&'static str] = &[];
    /// Whether its nodes answer calls and so may be given an `errors`
    /// fault ([`crate::net::NodeFault::Errors`]), which they act out in
    /// `on_fault`: a scenario's `errors` fault on a node of any other kind
    /// is refused.
    const ACCEPTS_ERRORS_FAULT: bool = false;
    /// Whether its nodes take a log consumer's writes
    /// ([`crate::protocol::SinkMsg`]) and answer each: only such a node may
    /// be named as a consumer's `sink`.
    const SINK: bool = false;

    /// The fields its table accepts (besides `kind`); by default those
    /// serde reads into [`Kind::Spec`].
    fn fields(&self) -> &'static [&'static str] {
        fields_of::<Self::Spec>()
    }

    /// Checks what serde cannot: relations between fields, and references
    /// to other nodes. Paths in the refusal start at the file's top
    /// ([`Node::fail`] builds them).
    fn validate(&self, _node: &Node, _spec: &Self::Spec, _topology: &Topology) -> Result<(), Invalid> {
        Ok(())
    }

    /// The effect domain its effects belong to; `None` when it applies none.
    fn domain(&self, _spec: &Self::Spec, _topology: &Topology) -> Option<String> {
        None
    }

    /// For a source of messages (the run phase ends when every source is
    /// done): its `messages` count, `Some(None)` when unlimited.
    fn messages(&self, _spec: &Self::Spec) -> Option<Option<u64>> {
        None
    }

    /// What the node costs and does, roughly, for the pre-flight estimate
    /// (nothing, by default).
    fn footprint(&self, _spec: &Self::Spec) -> Footprint {
        Footprint::default()
    }

    /// Before any node is built, leaves the [`Build::note`]s that nodes
    /// built before this one need from it (nothing, by default): a
    /// producer tells its queue broker the routing keys it will publish
    /// with. Called for every node, in id order.
    fn declare(&self, _node: &Node, _spec: &Self::Spec, _build: &mut Build) {}

    /// Builds the running component of a validated node.
    fn build(&self, node: &Node, spec: &Self::Spec, build: &mut Build) -> Box<dyn DynComponent>;

    /// The nodes its table makes besides its own node `name` (a cluster's
    /// brokers), each of a kind that no table names; none by default.
    /// They share the table's section, so their names must not clash
    /// with any other node's.
    fn members(&self, _name: &str, _spec: &Self::Spec) -> Vec<Member> {
        Vec::new()
    }
}

/// A node that another node's table makes (see [`Kind::members`]).
pub struct Member {
    /// Its name.
    pub name: String,
    kind: Arc<dyn DynKind>,
    spec: Arc<dyn AnySpec>,
}

impl Member {
    /// Member `name` of `kind`, with `spec`.
    pub fn new<K: Kind>(name: String, kind: K, spec: K::Spec) -> Member {
        Member { name, kind: Arc::new(Typed(kind)), spec: Arc::new(spec) }
    }

    /// The member as a node of the section of rank `rank`.
    pub(crate) fn into_node(self, rank: usize) -> Node {
        Node::new(self.name, rank, self.kind, self.spec)
    }
}

/// A plot a kind adds to every scenario that has one of its nodes: the
/// gauges it lists, each a gauge's name or the prefix before a `.` of a
/// family of gauges (one line each, per variant), over simulated time,
/// with the fault windows shaded like the built-in time plots, and the
/// threshold of every alarm set on one of them. Data only: the `reports`
/// crate draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindPlot {
    /// The file name's stem (`lag-records` writes `lag-records.svg`).
    pub name: &'static str,
    /// The title.
    pub title: &'static str,
    /// The y axis label, with its unit (`records`, `seconds`).
    pub y_label: &'static str,
    /// The gauges, or the prefixes before a `.` of families of gauges.
    pub gauges: &'static [&'static str],
}

/// The gauge that makes a [`KindPlot`] the **staleness CDF**: every read's
/// staleness by percentile ([`crate::observer::replicas`]), drawn like the
/// latency CDF rather than over time. A kind whose nodes answer reads
/// declares `KindPlot { name: "staleness-cdf", gauges: &[STALENESS], .. }`.
pub const STALENESS: &str = "@staleness";

/// A gauge entry of a [`KindPlot`] that starts a new panel below the
/// previous ones, sharing the time axis: `gauges: &["lag_seconds",
/// PANEL_BREAK, "consumers"]` draws lag above and the consumer count below,
/// with the panels' y labels separated by `" | "` in `y_label`.
pub const PANEL_BREAK: &str = "|";

impl KindPlot {
    /// True for the staleness CDF (see [`STALENESS`]).
    pub fn is_staleness(&self) -> bool {
        self.gauges == [STALENESS]
    }

    /// The plot as panels, each with its y label and gauges (one panel
    /// unless it has a [`PANEL_BREAK`]).
    pub fn panels(&self) -> Vec<KindPlot> {
        let mut labels = self.y_label.split(" | ");
        self.gauges
            .split(|g| *g == PANEL_BREAK)
            .map(|gauges| KindPlot { y_label: labels.next().unwrap_or(self.y_label), gauges, ..*self })
            .collect()
    }

    /// True when gauge `name` belongs on this plot; the part after the
    /// prefix (the series' label) is returned, or the whole name when it is
    /// one of the gauges.
    pub fn series_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        self.gauges.iter().filter(|g| **g != PANEL_BREAK).find_map(|g| {
            if name == *g {
                Some(name)
            } else {
                name.strip_prefix(g)?.strip_prefix('.')
            }
        })
    }
}

/// What a node costs and does, roughly: the pre-flight estimate adds these
/// up to refuse a scenario whose sizes alone exceed the memory budget, and
/// to warn about runs that will be long or will grow.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Footprint {
    /// Bytes its structures take from the start, whatever it does (a log
    /// broker's partitions and their replicas' state).
    pub bytes: f64,
    /// Mean messages per second it produces, for a source.
    pub produces_per_s: f64,
    /// Mean messages per second it can serve, for a consumer (infinite
    /// when its processing takes no time).
    pub serves_per_s: f64,
}

/// The kind-independent face of a [`Kind`], as the registry and the
/// scenario use it. Implemented for every kind; not meant to be
/// implemented by hand.
pub trait DynKind: Send + Sync {
    /// [`Kind::NAME`].
    fn name(&self) -> &'static str;
    /// [`Kind::SECTION`].
    fn section(&self) -> &'static str;
    /// [`Kind::fields`].
    fn fields(&self) -> &'static [&'static str];
    /// [`Kind::METRICS`].
    fn metrics(&self) -> &'static [&'static str];
    /// [`Kind::ERRORS`].
    fn errors(&self) -> &'static [&'static str];
    /// [`Kind::PLOTS`].
    fn plots(&self) -> &'static [KindPlot];
    /// [`Kind::GAUGES`].
    fn gauges(&self) -> &'static [&'static str];
    /// [`Kind::ACCEPTS_ERRORS_FAULT`].
    fn accepts_errors_fault(&self) -> bool;
    /// [`Kind::SINK`].
    fn sink(&self) -> bool;
    /// Reads a table (without its `kind`) into the kind's spec. The path of
    /// a refusal is relative to the table.
    fn read(&self, table: toml::Value) -> Result<Arc<dyn AnySpec>, Invalid>;
    /// [`Kind::validate`].
    fn validate(&self, node: &Node, topology: &Topology) -> Result<(), Invalid>;
    /// [`Kind::domain`].
    fn domain(&self, node: &Node, topology: &Topology) -> Option<String>;
    /// [`Kind::messages`].
    fn messages(&self, node: &Node) -> Option<Option<u64>>;
    /// [`Kind::footprint`].
    fn footprint(&self, node: &Node) -> Footprint;
    /// [`Kind::build`].
    fn build(&self, node: &Node, build: &mut Build) -> Box<dyn DynComponent>;
    /// [`Kind::declare`].
    fn declare(&self, node: &Node, build: &mut Build);
    /// [`Kind::members`].
    fn members(&self, node: &Node) -> Vec<Member>;
}

/// A spec of any kind, held by a [`Node`].
pub trait AnySpec: fmt::Debug + Send + Sync + 'static {
    /// For downcasting to the concrete spec.
    fn as_any(&self) -> &dyn Any;
    /// Equality with a spec of any kind.
    fn eq_spec(&self, other: &dyn AnySpec) -> bool;
}

impl<T: fmt::Debug + PartialEq + Send + Sync + 'static> AnySpec for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn eq_spec(&self, other: &dyn AnySpec) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}

/// Wraps a [`Kind`] as a [`DynKind`].
pub(crate) struct Typed<K>(pub(crate) K);

impl<K: Kind> Typed<K> {
    fn spec<'a>(&self, node: &'a Node) -> &'a K::Spec {
        node.spec::<K::Spec>().expect("a node's spec is of its kind's type")
    }
}

impl<K: Kind> DynKind for Typed<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }
    fn section(&self) -> &'static str {
        K::SECTION
    }
    fn fields(&self) -> &'static [&'static str] {
        self.0.fields()
    }
    fn metrics(&self) -> &'static [&'static str] {
        K::METRICS
    }
    fn errors(&self) -> &'static [&'static str] {
        K::ERRORS
    }
    fn plots(&self) -> &'static [KindPlot] {
        K::PLOTS
    }
    fn gauges(&self) -> &'static [&'static str] {
        K::GAUGES
    }
    fn accepts_errors_fault(&self) -> bool {
        K::ACCEPTS_ERRORS_FAULT
    }
    fn sink(&self) -> bool {
        K::SINK
    }
    fn read(&self, table: toml::Value) -> Result<Arc<dyn AnySpec>, Invalid> {
        match serde_path_to_error::deserialize::<_, K::Spec>(table) {
            Ok(spec) => Ok(Arc::new(spec)),
            Err(e) => Err(Invalid { path: path_of(e.path()), message: plain(e.into_inner().message()) }),
        }
    }
    fn validate(&self, node: &Node, topology: &Topology) -> Result<(), Invalid> {
        self.0.validate(node, self.spec(node), topology)
    }
    fn domain(&self, node: &Node, topology: &Topology) -> Option<String> {
        self.0.domain(self.spec(node), topology)
    }
    fn messages(&self, node: &Node) -> Option<Option<u64>> {
        self.0.messages(self.spec(node))
    }
    fn footprint(&self, node: &Node) -> Footprint {
        self.0.footprint(self.spec(node))
    }
    fn build(&self, node: &Node, build: &mut Build) -> Box<dyn DynComponent> {
        self.0.build(node, self.spec(node), build)
    }
    fn declare(&self, node: &Node, build: &mut Build) {
        self.0.declare(node, self.spec(node), build)
    }
    fn members(&self, node: &Node) -> Vec<Member> {
        self.0.members(node.name(), self.spec(node))
    }
}

/// One node of a configuration: its name, its kind, and its spec.
#[derive(Clone)]
pub struct Node {
    name: String,
    rank: usize,
    kind: Arc<dyn DynKind>,
    spec: Arc<dyn AnySpec>,
}

impl Node {
    /// A node named `name` of `kind`, in the section of rank `rank`.
    pub(crate) fn new(name: String, rank: usize, kind: Arc<dyn DynKind>, spec: Arc<dyn AnySpec>) -> Node {
        Node { name, rank, kind, spec }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The section it is written in (`producers`, ...).
    pub fn section(&self) -> &'static str {
        self.kind.section()
    }

    /// Its kind's name.
    pub fn kind(&self) -> &'static str {
        self.kind.name()
    }

    /// Its kind.
    pub fn kind_ref(&self) -> &dyn DynKind {
        &*self.kind
    }

    /// Its spec, if it is a `T`.
    pub fn spec<T: 'static>(&self) -> Option<&T> {
        self.spec.as_any().downcast_ref::<T>()
    }

    /// The path of `field` (dotted segments) of this node.
    pub fn path(&self, field: &[&str]) -> Vec<String> {
        let mut p = vec![self.section().to_string(), self.name.clone()];
        p.extend(field.iter().map(|s| s.to_string()));
        p
    }

    /// A refusal of this node's `field`.
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> Invalid {
        self.invalid_at(&[field], message)
    }

    /// A refusal of this node's nested field (`["keys", "count"]`).
    pub fn invalid_at(&self, field: &[&str], message: impl Into<String>) -> Invalid {
        Invalid { path: self.path(field), message: message.into() }
    }

    /// Refuses `value`, given in this node's `field`, unless it follows the
    /// name rule of [`crate::names`] (it becomes a key or a file name).
    pub fn check_name(&self, field: &str, value: Option<&str>) -> Result<(), Invalid> {
        match value {
            Some(v) => crate::names::check(&format!("`{field}`"), v).map_err(|m| self.invalid(field, m)),
            None => Ok(()),
        }
    }

    /// `Err` refusing this node's `field`.
    pub fn fail<T>(&self, field: &str, message: impl Into<String>) -> Result<T, Invalid> {
        Err(self.invalid(field, message))
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({}): {:?}", self.section(), self.name, self.kind(), self.spec)
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.name == other.name
            && self.rank == other.rank
            && self.kind() == other.kind()
            && self.section() == other.section()
            && self.spec.eq_spec(&*other.spec)
    }
}

/// Every node of a configuration, in the canonical order that numbers them:
/// by section rank (producers, brokers, consumers, clients, then sections
/// that registered kinds add), then by name. A node's id is its position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    nodes: Vec<Node>,
    index: BTreeMap<String, usize>,
}

impl Topology {
    /// The topology of `nodes`, put in canonical order. Names must be unique.
    pub(crate) fn new(mut nodes: Vec<Node>) -> Topology {
        nodes.sort_by(|a, b| (a.rank, &a.name).cmp(&(b.rank, &b.name)));
        let index = nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        Topology { nodes, index }
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// The id of the node called `name`.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).map(|&i| i as NodeId)
    }

    /// The names of every node, in id order.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The nodes written in `section`, in name order.
    pub fn section<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.iter().filter(move |n| n.section() == section)
    }

    /// Whether `name` is a node of `section`.
    pub fn is_in(&self, name: &str, section: &str) -> bool {
        self.node(name).is_some_and(|n| n.section() == section)
    }

    /// The names of the nodes of `section`, quoted: "`a`, `b`".
    pub fn list(&self, section: &str) -> String {
        quoted(self.section(section).map(Node::name))
    }

    /// Every node's name, quoted and sorted: "`a`, `b`".
    pub fn list_all(&self) -> String {
        quoted(self.index.keys().map(String::as_str))
    }

    /// The spec of node `name`, if it is a `T`.
    pub fn spec<T: 'static>(&self, name: &str) -> Option<&T> {
        self.node(name).and_then(Node::spec::<T>)
    }

    /// Every node whose spec is a `T`, with its name, in id order.
    pub fn specs<T: 'static>(&self) -> impl Iterator<Item = (&str, &T)> + '_ {
        self.nodes.iter().filter_map(|n| Some((n.name(), n.spec::<T>()?)))
    }

    /// The effect domains, numbered in id order of the nodes that apply
    /// effects (each named once), and each node's domain (0 for a node
    /// without one).
    pub fn domains(&self) -> (Vec<String>, Vec<DomainId>) {
        let mut names: Vec<String> = Vec::new();
        let mut of = vec![0; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(d) = n.kind.domain(n, self) else { continue };
            of[i] = names.iter().position(|x| *x == d).unwrap_or_else(|| {
                names.push(d);
                names.len() - 1
            }) as DomainId;
        }
        (names, of)
    }
}

/// Quotes names: "`a`, `b`".
pub fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

/// What a kind's [`Kind::build`] may ask while the engine is assembled.
///
/// Nodes are built section by section from the last rank to the first
/// (clients, consumers, brokers, producers), each section in name order,
/// so that a node can leave a [`Build::note`] for a node of an earlier
/// section that it reads from (a consumer tells its broker which
/// subscription or group it belongs to). A node that a node of an earlier
/// section needs to hear from leaves its note in [`Kind::declare`], which
/// runs for every node before any is built. Ids do not follow this order:
/// they follow the [`Topology`].
pub struct Build<'a> {
    topology: &'a Topology,
    domain_of: &'a [DomainId],
    stores: Vec<String>,
    notes: BTreeMap<(String, TypeId), Box<dyn Any>>,
}

impl<'a> Build<'a> {
    /// Builds every node of `topology` (whose nodes apply effects in
    /// `domain_of`), returned in id order with their names.
    pub(crate) fn all(topology: &'a Topology, domain_of: &'a [DomainId]) -> Vec<(String, Box<dyn DynComponent>)> {
        let mut build = Build { topology, domain_of, stores: Vec::new(), notes: BTreeMap::new() };
        let nodes = topology.nodes();
        for node in nodes {
            node.kind.declare(node, &mut build);
        }
        let mut order: Vec<usize> = (0..nodes.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(nodes[i].rank), i));
        let mut built: Vec<Option<Box<dyn DynComponent>>> = nodes.iter().map(|_| None).collect();
        for i in order {
            built[i] = Some(nodes[i].kind.build(&nodes[i], &mut build));
        }
        nodes.iter().zip(built).map(|(n, c)| (n.name.clone(), c.expect("every node is built"))).collect()
    }

    /// The whole topology.
    pub fn topology(&self) -> &'a Topology {
        self.topology
    }

    /// The id of node `name`, which validation made sure exists.
    pub fn id(&self, name: &str) -> NodeId {
        self.topology.id(name).unwrap_or_else(|| panic!("no node `{name}`: the configuration was not validated"))
    }

    /// The effect domain of node `name`.
    pub fn domain(&self, name: &str) -> DomainId {
        self.domain_of[self.id(name) as usize]
    }

    /// The number of dedup store `name`: stores are numbered in order of
    /// first use, in build order.
    pub fn store(&mut self, name: String) -> usize {
        match self.stores.iter().position(|s| *s == name) {
            Some(i) => i,
            None => {
                self.stores.push(name);
                self.stores.len() - 1
            }
        }
    }

    /// The note of type `T` for node `name` (created empty), for a node of
    /// a later section to fill before `name` is built.
    pub fn note<T: Default + 'static>(&mut self, name: &str) -> &mut T {
        let note = self.notes.entry((name.to_string(), TypeId::of::<T>())).or_insert_with(|| Box::new(T::default()));
        note.downcast_mut::<T>().expect("a note is keyed by its type")
    }

    /// Takes the note of type `T` left for node `name` (empty if none was).
    pub fn take_note<T: Default + 'static>(&mut self, name: &str) -> T {
        self.notes
            .remove(&(name.to_string(), TypeId::of::<T>()))
            .and_then(|b| b.downcast::<T>().ok())
            .map_or_else(T::default, |b| *b)
    }
}

/// A serde error's message in a user's words: serde names Rust types
/// (`expected f64`, `expected u32`) where a user needs "a number" or "a
/// whole number".
pub(crate) fn plain(message: &str) -> String {
    const WORDS: [(&str, &str); 10] = [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected u8", "expected a whole number (0 or more)"),
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
    ];
    let mut out = with_did_you_mean(message);
    for (rust, user) in WORDS {
        // Whole words only: `expected u8` must not rewrite `expected u8x`.
        if let Some(at) = out.find(rust) {
            let end = at + rust.len();
            if !out[end..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                out.replace_range(at..end, user);
            }
        }
    }
    out
}

/// serde's "unknown field `wieght`, expected one of `watches`, `weight`",
/// with "; did you mean `weight`?" when a field it lists is close.
fn with_did_you_mean(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else { return message.to_string() };
    let Some((field, listed)) = rest.split_once('`') else { return message.to_string() };
    // The listed fields are the backticked words after the unknown one.
    let fields: Vec<String> = listed.split('`').skip(1).step_by(2).map(str::to_string).collect();
    match crate::expect::closest(field, &fields) {
        Some(near) if near != field => format!("{message}; did you mean `{near}`?"),
        _ => message.to_string(),
    }
}

/// A serde error's path as segments.
pub(crate) fn path_of(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The fields serde reads into the struct `T`, in declaration order.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct S { a: u32, #[serde(default)] b: bool }
/// assert_eq!(sim_core::kind::fields_of::<S>(), ["a", "b"]);
/// ```
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut caught = None;
    let _ = T::deserialize(FieldCatcher(&mut caught));
    caught.unwrap_or(&[])
}

/// A deserializer that only records the field list a struct asks for.
struct FieldCatcher<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldCatcher<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(serde::de::Error::custom("fields caught"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn serde_messages_name_numbers_not_rust_types() {
        assert_eq!(
            plain("invalid type: string \"fast\", expected f64"),
            "invalid type: string \"fast\", expected a number"
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected u32"),
            "invalid value: integer `-1`, expected a whole number (0 or more)"
        );
        assert_eq!(
            plain("invalid type: integer `1`, expected a boolean"),
            "invalid type: integer `1`, expected true or false"
        );
        assert_eq!(plain("missing field `target`"), "missing field `target`");
        assert_eq!(
            plain("unknown field `wieght`, expected one of `watches`, `weight`"),
            "unknown field `wieght`, expected one of `watches`, `weight`; did you mean `weight`?"
        );
        assert_eq!(plain("unknown field `zzz`, expected `a`"), "unknown field `zzz`, expected `a`", "nothing close");
    }
}

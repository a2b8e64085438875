//! Reads one merged configuration table into a [`Config`]: the top-level
//! fields with serde, and each node table by the kind it names (or its
//! section's default kind). Knows no kind's fields: a kind's serde spec
//! refuses what it does not take, and this module only adds, to such a
//! refusal, which other kind of the section takes the field.

use super::schema::Config;
use crate::kind::{quoted, DynKind, Invalid, Node, Topology};
use crate::registry::{DefaultKind, Registry, Section};
use std::collections::BTreeMap;
use std::sync::Arc;
use toml::{Table, Value};

/// Reads `table` with the kinds of `registry`.
pub(super) fn read(registry: &Registry, table: Table) -> Result<Config, Invalid> {
    let base_fields = crate::kind::fields_of::<Config>();
    let mut base = Table::new();
    let mut sections: BTreeMap<String, Value> = BTreeMap::new();
    for (key, value) in table {
        if registry.section(&key).is_some() {
            sections.insert(key, value);
        } else if base_fields.contains(&key.as_str()) {
            base.insert(key, value);
        } else {
            let expected = base_fields.iter().copied().chain(registry.sections().iter().map(|s| s.name));
            let message = format!("unknown field `{key}`, expected one of {}", quoted(expected));
            return Err(Invalid::at(&[&key], crate::kind::plain(&message)));
        }
    }
    let mut config: Config = serde_path_to_error::deserialize(Value::Table(base)).map_err(|e| Invalid {
        path: crate::kind::path_of(e.path()),
        message: crate::kind::plain(e.into_inner().message()),
    })?;
    let mut nodes = Vec::new();
    for (rank, section) in registry.sections().iter().enumerate() {
        if let Some(value) = sections.remove(section.name) {
            read_section(registry, rank, section, value, &mut nodes)?;
        }
    }
    check_names(&nodes)?;
    config.nodes = Topology::new(nodes);
    Ok(config)
}

/// Reads the tables of one section, appending its nodes to `nodes`.
fn read_section(
    registry: &Registry,
    rank: usize,
    section: &Section,
    value: Value,
    nodes: &mut Vec<Node>,
) -> Result<(), Invalid> {
    let s = section.name;
    let Value::Table(tables) = value else {
        return Err(Invalid::at(&[s], format!("expected tables `[{s}.NAME]`")));
    };
    for (name, value) in tables {
        let Value::Table(mut table) = value else {
            return Err(Invalid::at(&[s, &name], format!("expected a table: `[{s}.{name}]`")));
        };
        let (kind, why) = pick_kind(registry, section, &name, &mut table, nodes)?;
        let spec = kind.read(Value::Table(table)).map_err(|e| {
            let mut path = vec![s.to_string(), name.clone()];
            path.extend(e.path);
            let hint = other_kind_hint(registry, s, &*kind, &name, why.as_deref(), &e.message);
            Invalid { path, message: e.message + &hint }
        })?;
        let node = Node::new(name, rank, kind, spec);
        let members = node.kind_ref().members(&node);
        nodes.push(node);
        nodes.extend(members.into_iter().map(|m| m.into_node(rank)));
    }
    Ok(())
}

/// The kind of a table: the one it names in `kind` (removed from the
/// table), else its section's default. With the kind, why it was chosen
/// (for errors), when the section's rule says.
fn pick_kind(
    registry: &Registry,
    section: &Section,
    name: &str,
    table: &mut Table,
    earlier: &[Node],
) -> Result<(Arc<dyn DynKind>, Option<String>), Invalid> {
    let s = section.name;
    let kinds = || quoted(registry.kinds_of(s).map(|k| k.name()));
    let (kind, why) = match table.remove("kind") {
        Some(Value::String(k)) => (k, None),
        Some(_) => return Err(Invalid::at(&[s, name, "kind"], format!("expected a string, one of {}", kinds()))),
        None => match section.default {
            DefaultKind::Required => {
                return Err(Invalid::at(&[s, name], format!("missing field `kind` (one of {})", kinds())))
            }
            DefaultKind::Fixed(k) => (k.to_string(), None),
            DefaultKind::Pick(pick) => {
                let (k, why) = pick(table, earlier);
                (k.to_string(), why)
            }
        },
    };
    match registry.kind_arc(s, &kind) {
        Some(k) => Ok((k, why)),
        None => {
            Err(Invalid::at(&[s, name, "kind"], format!("unknown kind `{kind}` in `{s}`, expected one of {}", kinds())))
        }
    }
}

/// For a refused unknown field that another kind of the section takes:
/// says so, and why this node is of its kind.
fn other_kind_hint(
    registry: &Registry,
    section: &str,
    kind: &dyn DynKind,
    name: &str,
    why: Option<&str>,
    message: &str,
) -> String {
    let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()) else {
        return String::new();
    };
    let others: Vec<&str> = registry
        .kinds_of(section)
        .filter(|k| k.name() != kind.name() && k.fields().contains(&field))
        .map(|k| k.name())
        .collect();
    if others.is_empty() {
        return String::new();
    }
    let why = why.map(|w| format!(": {w}")).unwrap_or_default();
    format!(
        " (`{field}` belongs to kind {}, but `{name}` is of kind `{}`{why})",
        quoted(others.into_iter()),
        kind.name()
    )
}

/// Node names follow [`crate::names`] and are unique across sections.
/// Checked in id order, so a clash is blamed on the later node.
fn check_names(nodes: &[Node]) -> Result<(), Invalid> {
    let sorted = Topology::new(nodes.to_vec());
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for n in sorted.nodes() {
        let (section, name) = (n.section(), n.name());
        crate::names::check("a node name", name).map_err(|m| Invalid::at(&[section, name], m))?;
        if let Some(other) = seen.insert(name, section) {
            return Err(Invalid::at(
                &[section, name],
                format!("the name `{name}` is already used in `{other}`: node names must be unique"),
            ));
        }
    }
    Ok(())
}

//! docs/scenario-format.md documents every field of every kind, and no
//! field that no kind takes.
//!
//! The doc has a section `## `[SECTION.NAME]`` per node section, with field
//! tables (a header row starting `| Field |`, the field's name in backticks
//! in the first column). A table under a `### ` heading that names a kind
//! (`kind = "log"`) lists that kind's own fields; any other field table of
//! the section lists fields every kind of the section takes. Tables of
//! nested tables (a topic's fields) use another header (`| Topic field |`)
//! and are not compared: only a kind's top-level fields are.

use sim_core::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};

type Documented = BTreeMap<(String, Option<String>), BTreeSet<String>>;

/// The text between the first pair of `open` and `close` in `s`.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

/// The fields the doc lists, by (section, kind): `None` for the tables of
/// the section's shared fields.
fn documented(doc: &str) -> Documented {
    let mut out = Documented::new();
    let mut section: Option<String> = None;
    let mut kind: Option<String> = None;
    let mut in_table = false;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = between(h, "`[", ".NAME]`").map(str::to_string);
            kind = None;
        } else if let Some(h) = line.strip_prefix("### ") {
            kind = between(h, "kind = \"", "\"").map(str::to_string);
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let Some(s) = &section else { continue };
        if line.starts_with("| Field |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let cell = line.split('|').nth(1).unwrap_or("").trim();
        let field = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).unwrap_or(cell);
        out.entry((s.clone(), kind.clone())).or_default().insert(field.to_string());
    }
    out
}

#[test]
fn the_scenario_format_documents_every_field_of_every_kind_and_no_other() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/scenario-format.md");
    let doc = std::fs::read_to_string(path).expect("read docs/scenario-format.md");
    let docs = documented(&doc);
    let registry = Registry::builtin();
    let mut problems = Vec::new();
    for section in registry.sections() {
        let shared = docs.get(&(section.name.to_string(), None)).cloned().unwrap_or_default();
        for k in registry.kinds_of(section.name) {
            let mut written = shared.clone();
            written.extend(
                docs.get(&(section.name.to_string(), Some(k.name().to_string()))).into_iter().flatten().cloned(),
            );
            let taken: BTreeSet<String> =
                k.fields().iter().map(|f| f.to_string()).chain(["kind".to_string()]).collect();
            let at = format!("[{}.NAME] of kind `{}`", section.name, k.name());
            for f in taken.difference(&written) {
                problems.push(format!("{at}: `{f}` is taken but not documented"));
            }
            for f in written.difference(&taken) {
                problems.push(format!("{at}: `{f}` is documented but not taken"));
            }
        }
    }
    // A table for a kind that does not exist documents nothing real.
    for (section, kind) in docs.keys() {
        if let Some(kind) = kind {
            if registry.kind(section, kind).is_none() {
                problems
                    .push(format!("[{section}.NAME]: the doc has a table for kind `{kind}`, which is no kind of it"));
            }
        }
    }
    assert!(problems.is_empty(), "docs/scenario-format.md and the kinds disagree:\n{}", problems.join("\n"));
    // The parse found what it should: the sections, and their kinds' tables.
    for section in ["producers", "brokers", "consumers", "clients"] {
        assert!(docs.keys().any(|(s, _)| s == section), "no field table found for [{section}.NAME]");
    }
}

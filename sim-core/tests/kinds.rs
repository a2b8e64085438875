//! The registry's kinds against their sources: every metric name and error
//! kind a component reports is declared by its kind (and nothing more), and
//! every field a kind lists is one its serde table takes (and nothing more).

use sim_core::registry::Registry;
use sim_core::summary::{ENGINE_ERRORS, ENGINE_METRICS};
use std::collections::BTreeSet;
use std::path::Path;

/// The source files of each built-in kind's component, relative to `src/`.
const SOURCES: [(&str, &[&str]); 21] = [
    ("producer", &["producer.rs", "producer/cluster.rs", "producer/sequence.rs"]),
    (
        "queue",
        &[
            "broker/queue.rs",
            "broker/queue/core.rs",
            "broker/queue/confirm.rs",
            "broker/queue/replay.rs",
            "broker/queue_cluster/node.rs",
            "broker/queue_cluster/raft.rs",
        ],
    ),
    (
        "log",
        &[
            "broker/log/mod.rs",
            "broker/log/group.rs",
            "broker/log/partition.rs",
            "broker/log/membership.rs",
            "broker/log/coordinator.rs",
            "broker/log/coordinator_durable.rs",
            "broker/log/txn.rs",
            "broker/log/disk.rs",
            "broker/log/elr.rs",
            "broker/cluster/controller.rs",
            "broker/cluster/voter.rs",
            "broker/cluster/node.rs",
            "broker/cluster/leader.rs",
            "broker/cluster/follower.rs",
            "broker/cluster/txn.rs",
            "broker/cluster/group_log.rs",
        ],
    ),
    ("consumer", &["consumer.rs", "consumer/failure.rs"]),
    (
        "log-consumer",
        &["log_consumer.rs", "log_consumer/membership.rs", "log_consumer/cluster.rs", "log_consumer/failure.rs"],
    ),
    ("client", &["client.rs"]),
    ("store", &["store/mod.rs"]),
    ("saga", &["saga/coordinator.rs"]),
    ("saga-step", &["saga/step.rs"]),
    ("service", &["service/mod.rs", "service/calls.rs", "service/worker.rs"]),
    ("users", &["users/mod.rs"]),
    ("edge", &["users/edge.rs"]),
    ("bank", &["bank/mod.rs"]),
    ("atm", &["bank/atm.rs"]),
    ("aggregator", &["stream/mod.rs"]),
    ("table", &["views/table.rs"]),
    ("cache", &["views/cache.rs"]),
    ("readers", &["views/readers.rs"]),
    ("projection", &["events/projection.rs"]),
    ("crawler", &["events/syncer.rs"]),
    ("watcher", &["events/syncer.rs"]),
];

/// Files that report metrics or errors but belong to no kind (the engine's own).
const NOT_A_KIND: [&str; 1] = ["engine/"];

fn source(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The string literals in `text`.
fn literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        out.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

/// The argument text of every call `.NAME(...)` in `text`, for each NAME in `names`.
fn call_arguments<'a>(text: &'a str, names: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for name in names {
        let needle = format!(".{name}(");
        let mut from = 0;
        while let Some(at) = text[from..].find(&needle) {
            let open = from + at + needle.len();
            let mut depth = 1;
            let mut end = open;
            for (i, c) in text[open..].char_indices() {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                if depth == 0 {
                    end = open + i;
                    break;
                }
            }
            out.push(&text[open..end]);
            from = end;
        }
    }
    out
}

const METRIC_CALLS: [&str; 3] = ["metric_add", "metric_set", "metric_max"];

#[test]
fn every_metric_and_error_a_component_reports_is_declared_by_its_kind() {
    let registry = Registry::builtin();
    for (kind, files) in SOURCES {
        let k = registry.kinds().find(|k| k.name() == kind).unwrap_or_else(|| panic!("no kind `{kind}`"));
        let text: String = files.iter().map(|f| source(f)).collect();
        for (calls, declared, what) in
            [(&METRIC_CALLS[..], k.metrics(), "metric"), (&["error"][..], k.errors(), "error kind")]
        {
            for args in call_arguments(&text, calls) {
                for name in literals(args) {
                    assert!(
                        declared.contains(&name.as_str()),
                        "kind `{kind}` reports the {what} `{name}` without declaring it"
                    );
                }
            }
            // And no stale declaration: each name is written in the sources.
            let written: BTreeSet<String> = literals(&text).into_iter().collect();
            for name in declared {
                assert!(
                    written.contains(*name),
                    "kind `{kind}` declares the {what} `{name}`, which its sources never name"
                );
            }
        }
    }
}

#[test]
fn every_file_that_reports_metrics_or_errors_belongs_to_a_kind() {
    let covered: Vec<&str> = SOURCES.iter().flat_map(|(_, files)| files.iter().copied()).collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            if covered.contains(&rel.as_str()) || NOT_A_KIND.iter().any(|p| rel.starts_with(p)) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let calls = call_arguments(&text, &METRIC_CALLS).len() + call_arguments(&text, &["error"]).len();
            assert_eq!(calls, 0, "{rel} reports metrics or errors: list it under its kind in SOURCES");
        }
    }
}

/// The files of `dir` under `src/`, recursively, relative to `src/`.
fn files_under(dir: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.join(dir)];
    let mut out = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}

#[test]
fn every_metric_and_error_the_engine_reports_is_in_its_own_lists() {
    // Expectations may name these in any scenario, whatever its nodes.
    for dir in NOT_A_KIND {
        for rel in files_under(dir) {
            let text = source(&rel);
            for (calls, declared, what) in
                [(&METRIC_CALLS[..], ENGINE_METRICS, "metric"), (&["error"][..], ENGINE_ERRORS, "error kind")]
            {
                for args in call_arguments(&text, calls) {
                    for name in literals(args) {
                        assert!(
                            declared.contains(&name.as_str()),
                            "{rel} reports the {what} `{name}`: list it in summary::ENGINE_{}",
                            if what == "metric" { "METRICS" } else { "ERRORS" }
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_listed_field_is_taken_and_no_other() {
    let registry = Registry::builtin();
    for k in registry.kinds() {
        assert!(!k.fields().is_empty(), "kind `{}` lists no field", k.name());
        for field in k.fields() {
            // A value of no field's type: refused, but not as an unknown field.
            let mut table = toml::Table::new();
            table.insert(field.to_string(), toml::Value::Array(vec![toml::Value::Array(Vec::new())]));
            let err = k.read(toml::Value::Table(table)).expect_err("a list of a list is no field's type");
            let unknown = format!("unknown field `{field}`");
            assert!(
                !err.message.contains(&unknown),
                "kind `{}` lists `{field}` but refuses it: {}",
                k.name(),
                err.message
            );
        }
        let mut table = toml::Table::new();
        table.insert("no_such_field".into(), toml::Value::Integer(1));
        let err = k.read(toml::Value::Table(table)).expect_err("an unknown field");
        assert!(err.message.contains("unknown field `no_such_field`"), "kind `{}`: {}", k.name(), err.message);
    }
}

#[test]
fn kinds_are_unique_within_their_section_and_sections_rank_as_before() {
    let registry = Registry::builtin();
    let sections: Vec<&str> = registry.sections().iter().map(|s| s.name).collect();
    // The built-in sections first, then those registered kinds open.
    assert_eq!(sections[..4], ["producers", "brokers", "consumers", "clients"]);
    for s in [
        "users",
        "edges",
        "services",
        "stores",
        "sagas",
        "participants",
        "banks",
        "atms",
        "processors",
        "tables",
        "caches",
        "readers",
        "projections",
        "syncs",
    ] {
        assert!(sections.contains(&s), "{s}");
    }
    let mut seen = BTreeSet::new();
    for k in registry.kinds() {
        assert!(seen.insert((k.section(), k.name())), "{}.{} twice", k.section(), k.name());
        assert!(sections.contains(&k.section()), "kind `{}` in an unknown section", k.name());
    }
    assert_eq!(registry.kinds().count(), 21);
}

/// `messages = 0` switches a source off (a variant comparing two sources
/// of one file runs one of them): it makes nothing and does not hold the
/// run phase open.
#[test]
fn a_producer_asked_for_no_messages_is_switched_off() {
    let text = r#"
name = "off"
concept = "c"
[producers.on]
target = "q"
messages = 50
arrival = { process = "constant", rate_per_s = 100 }
[producers.off]
target = "q"
messages = 0
arrival = { process = "constant", rate_per_s = 100 }
[brokers.q]
kind = "queue"
[consumers.c]
source = "q"
processing = { dist = "constant", ms = 1 }
"#;
    let out = crate::common::run(text, 1);
    assert_eq!(out.counts.produced, 50, "{}", crate::common::show(&out));
    assert_eq!(out.counts.processed, 50);
    assert!(out.run_end < 1_000_000_000, "the run phase ended with the producer that had work: {}", out.run_end);
}

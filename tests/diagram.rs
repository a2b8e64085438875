//! `asyncsim diagram`, run as a user runs it: the real binary draws a
//! bundled scenario, and the SVG it writes is parsed as XML and checked
//! against the same run made here in memory (its trace and its ledger),
//! never against numbers copied from an earlier run.

use crate::common;

use common::{assert_bad_input, asyncsim, describe, repo, stdout, TempDir};
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};
use sim_core::trace::TraceWhat;
use std::collections::BTreeSet;
use std::path::Path;

const FILE: &str = "scenarios/delivery-guarantees.toml";

fn p(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The variant's run, made here with its whole trace in memory.
fn run_here(variant: &str) -> RunOutput {
    let path = repo().join(FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = Scenario::parse(FILE, &text).unwrap();
    let seed = scenario.config.seed;
    let (_, config) = scenario.configs().unwrap().into_iter().find(|(v, _)| v.name == variant).expect("the variant");
    run_config(&config, seed, 10_000_000).completed().expect("the run ends by itself")
}

/// The ids of messages sent (or dropped as sent) in [from, to], in the
/// order first sent: what the diagram samples from.
fn ids_sent(out: &RunOutput, from: u64, to: u64) -> Vec<u64> {
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for e in out.trace.iter().filter(|e| e.time >= from && e.time <= to) {
        let w = match &e.what {
            TraceWhat::Send(w, _) | TraceWhat::Duplicate(w) | TraceWhat::Drop(w, _) => w,
            _ => continue,
        };
        // A drop at a receiver follows its send, so the id is already seen.
        if let Some(id) = w.id {
            if seen.insert(id) {
                order.push(id);
            }
        }
    }
    order
}

fn has_class(n: &roxmltree::Node, class: &str) -> bool {
    n.attribute("class").is_some_and(|c| c.split(' ').any(|x| x == class))
}

/// Runs `asyncsim diagram FILE ARGS --out DIR`; returns the SVG's text.
fn draw(dir: &Path, args: &[&str], variant: &str) -> String {
    let mut all = vec!["diagram", FILE, "--variant", variant, "--out", p(dir)];
    all.extend_from_slice(args);
    let o = asyncsim(&all);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let path = dir.join(format!("diagram-{variant}.svg"));
    assert_eq!(stdout(&o).trim(), p(&path), "it prints the path it wrote");
    std::fs::read_to_string(&path).expect("the SVG was written")
}

#[test]
fn the_acceptance_diagram_marks_every_lost_message_shown_with_its_ledger_cause() {
    let dir = TempDir::new("diagram-accept");
    let svg = draw(dir.path(), &["--max-messages", "30"], "at-most-once");
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    let out = run_here("at-most-once");

    let sent = ids_sent(&out, 0, u64::MAX);
    let shown: BTreeSet<u64> = sent.iter().take(30).copied().collect();
    let msgs: Vec<roxmltree::Node> = doc.descendants().filter(|n| has_class(n, "msg")).collect();
    let drawn: BTreeSet<u64> = msgs.iter().filter_map(|m| m.attribute("data-id")).map(|i| i.parse().unwrap()).collect();
    assert_eq!(drawn, shown, "the first 30 messages sent, and only those");
    let caption = format!("30 of {} messages shown", sent.len());
    assert!(svg.contains(&caption), "the caption says `{caption}`");

    let lost_shown: Vec<(u64, &str)> =
        out.lost.iter().filter(|(id, _)| shown.contains(id)).map(|(id, c)| (*id, c.name())).collect();
    assert!(!lost_shown.is_empty(), "at-most-once loses some of its first 30 messages");
    let marks: Vec<roxmltree::Node> =
        doc.descendants().filter(|n| n.attribute("data-source") == Some("ledger")).collect();
    assert_eq!(marks.len(), lost_shown.len(), "one cross with the ledger's cause per lost message shown");
    for (id, cause) in &lost_shown {
        let on_wire = marks.iter().any(|m| {
            m.attribute("data-cause") == Some(*cause)
                && m.ancestors().any(|a| has_class(&a, "msg") && a.attribute("data-id") == Some(&id.to_string()))
        });
        let on_lane = marks
            .iter()
            .any(|m| m.attribute("data-cause") == Some(*cause) && m.attribute("data-id") == Some(&id.to_string()));
        assert!(on_wire || on_lane, "#{id} ({cause}) is crossed");
        if *cause == "network_loss" {
            assert!(on_wire, "#{id}, lost by the network, is crossed on its dropped arrow");
        }
    }

    assert!(msgs.iter().all(|m| m.children().any(|k| k.has_tag_name("title"))), "every arrow has a <title>");
    let lanes: Vec<&str> =
        doc.descendants().filter(|n| has_class(n, "lane")).filter_map(|n| n.attribute("data-node")).collect();
    assert_eq!(lanes, out.names.iter().map(String::as_str).collect::<Vec<_>>(), "one lane per node");
}

#[test]
fn a_window_excludes_what_happened_outside_it() {
    let dir = TempDir::new("diagram-window");
    let svg = draw(dir.path(), &["--from-ms", "2995", "--to-ms", "3150"], "at-most-once");
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    let (from, to) = (2_995_000_000u64, 3_150_000_000u64);
    let sent: Vec<u64> = doc
        .descendants()
        .filter(|n| has_class(n, "msg"))
        .map(|m| m.attribute("data-sent-ns").expect("an arrow says when it was sent").parse().unwrap())
        .collect();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|&t| t >= from && t <= to), "every arrow was sent in the window");

    let out = run_here("at-most-once");
    let expected: BTreeSet<u64> = ids_sent(&out, from, to).into_iter().take(40).collect();
    let drawn: BTreeSet<u64> = doc
        .descendants()
        .filter(|n| has_class(n, "msg"))
        .filter_map(|m| m.attribute("data-id"))
        .map(|i| i.parse().unwrap())
        .collect();
    assert_eq!(drawn, expected, "the first 40 (the default) messages sent in the window");
    // The leader crash at 3000 ms is in the window: its band is drawn, the
    // consumer crashes (1500 ms, 4200 ms) are not.
    let faults: Vec<&str> =
        doc.descendants().filter(|n| has_class(n, "fault")).filter_map(|n| n.attribute("data-label")).collect();
    assert!(faults.len() == 1 && faults[0].contains("leader"), "{faults:?}");
    assert_eq!(doc.descendants().filter(|n| has_class(n, "crashed") && n.attribute("data-node").is_some()).count(), 0);
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let dir = TempDir::new("diagram-bad");
    let o = asyncsim(&["diagram", FILE, "--variant", "at-most-twice", "--out", p(dir.path())]);
    let err = assert_bad_input(&o);
    assert!(err.contains("no variant named `at-most-twice`") && err.contains("at-least-once"), "{err}");
    for (from, to) in [("200", "100"), ("100", "100")] {
        let o = asyncsim(&["diagram", FILE, "--from-ms", from, "--to-ms", to, "--out", p(dir.path())]);
        let err = assert_bad_input(&o);
        assert!(err.contains("--from-ms") && err.contains("--to-ms"), "{err}");
    }
    let o = asyncsim(&["diagram", FILE, "--max-messages", "0", "--out", p(dir.path())]);
    assert_bad_input(&o);
    assert!(!dir.path().join("diagram-at-most-once.svg").exists(), "nothing drawn for bad input");
}

#[test]
fn a_diagram_joins_a_runs_output_without_removing_it_and_is_deterministic() {
    let dir = TempDir::new("diagram-folder");
    let o = asyncsim(&["run", "scenarios/mm1.toml", "--out", p(dir.path())]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let o = asyncsim(&["diagram", "scenarios/mm1.toml", "--out", p(dir.path()), "--max-messages", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(dir.path().join("summary.json").exists(), "the run's output stays");
    let first = std::fs::read(stdout(&o).trim()).expect("the diagram");
    let manifest = std::fs::read_to_string(dir.path().join(".asyncsim-manifest.json")).unwrap();
    assert!(manifest.contains("summary.json") && manifest.contains("diagram-"), "{manifest}");
    let o = asyncsim(&["diagram", "scenarios/mm1.toml", "--out", p(dir.path()), "--max-messages", "5"]);
    assert_eq!(std::fs::read(stdout(&o).trim()).unwrap(), first, "same scenario and seed, same bytes");
}

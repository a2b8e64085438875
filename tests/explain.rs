//! `asyncsim explain` (issue 18, item 1): on every bundled scenario it
//! prints every section, and every figure and cause count it prints is the
//! one `summary.json` holds for the same file and seed (the stored
//! references in tests/reference/ are `asyncsim run`'s summary.json at
//! seeds 1 to 5, kept identical by scripts/compare-summaries.sh; the five
//! heaviest scenarios are shortened by overrides and compared with
//! `asyncsim run` itself under the same overrides, and so is one run with
//! a changed loss probability). The figures and
//! causes follow the seed and the overrides; every cause code the ledger
//! has has words; every "try next" command applies through the scenario
//! loader; `--message` tells a lost and a duplicated message's verdict and
//! cause; a bad id or variant exits 2.

use crate::common;
use serde_json::Value;
use sim_core::ledger::{DupCause, LossCause};
use sim_core::scenario::{run_config, Scenario};
use std::sync::OnceLock;

/// The value at a dotted path of a summary, trying keys with dots first
/// (a domain may be named `a.b`).
fn at<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(json);
    }
    let obj = json.as_object()?;
    (1..=path.len()).rev().filter(|&i| i == path.len() || path.as_bytes()[i] == b'.').find_map(|i| {
        let v = obj.get(&path[..i])?;
        at(v, path.get(i + 1..).unwrap_or(""))
    })
}

/// Every bundled scenario's explanation at seed 1: (file stem, exit code, stdout).
fn explained() -> &'static Vec<(String, Option<i32>, String)> {
    static ALL: OnceLock<Vec<(String, Option<i32>, String)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut files: Vec<_> = std::fs::read_dir(common::repo().join("scenarios"))
            .expect("the scenarios folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let stem = f.file_stem().expect("a name").to_string_lossy().into_owned();
                let file = format!("scenarios/{stem}.toml");
                let mut args = vec!["explain", &file, "--seed", "1", "--no-progress"];
                args.extend(cheaper(&stem));
                let o = common::asyncsim(&args);
                (stem, o.status.code(), common::stdout(&o))
            })
            .collect()
    })
}

/// Overrides that make the heaviest bundled scenarios cheap to explain
/// here (each of them runs for seconds: millions of messages, days of
/// simulated time, or 20 replications); their explanations are compared
/// with `asyncsim run`'s summary.json under the same overrides.
fn cheaper(stem: &str) -> &'static [&'static str] {
    match stem {
        "mm1" => &["--set", "run.replications=2", "--set", "producers.producer.messages=20000"],
        "mmc" => &["--set", "producers.producer.messages=100000"],
        "md1" => &["--set", "producers.producer.messages=100000"],
        "consumer-lag-autoscaling" => &["--set", "run.duration_ms=60000"],
        "fire-and-forget" => &["--set", "run.duration_ms=21600000"],
        _ => &[],
    }
}

/// The summary.json the explanation of `stem` is compared with: the
/// stored reference at seed 1, or a run with [`cheaper`]'s overrides.
fn summary_of(stem: &str) -> Value {
    let text = if cheaper(stem).is_empty() {
        std::fs::read_to_string(common::repo().join(format!("tests/reference/{stem}-seed1.json")))
            .unwrap_or_else(|_| panic!("a reference summary of {stem}"))
    } else {
        let dir = common::TempDir::new("explain-ref");
        let out = dir.path().to_str().expect("UTF-8");
        let file = format!("scenarios/{stem}.toml");
        let mut args = vec!["run", &file, "--seed", "1", "--no-plots", "--no-progress", "--out", out];
        args.extend(cheaper(stem));
        let o = common::asyncsim(&args);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{}", common::describe(&o));
        std::fs::read_to_string(dir.path().join("summary.json")).expect("summary.json")
    };
    serde_json::from_str(&text).expect("JSON")
}

/// The variants' sections of an explanation: (name, text up to the next).
fn variant_sections(out: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    for chunk in out.split("\nVariant `").skip(1) {
        let name = chunk.split('`').next().expect("a name").to_string();
        let body = chunk.split("\nContrast\n").next().expect("text").split("\nTry next\n").next().expect("text");
        parts.push((name, body.to_string()));
    }
    parts
}

/// The lines of block `title` (a line of two spaces and the title) of a
/// variant's section: the lines indented deeper that follow it.
fn block<'a>(section: &'a str, title: &str) -> Vec<&'a str> {
    let head = format!("  {title}");
    let mut lines = section.lines().skip_while(|l| *l != head);
    if lines.next().is_none() {
        return Vec::new();
    }
    lines.take_while(|l| l.starts_with("    ")).collect()
}

/// Checks every figure line and every cause line of one variant's section
/// against its summary. Returns how many figures it compared.
fn check_variant(what: &str, section: &str, summary: &Value) -> usize {
    let figures = block(section, "What happened");
    assert!(!figures.is_empty(), "{what}: no figures:\n{section}");
    for line in &figures {
        let mut words = line.split_whitespace();
        let (path, value) = (words.next().expect("a path"), words.next().expect("a value"));
        let want =
            at(summary, path).and_then(Value::as_f64).unwrap_or_else(|| panic!("{what}: no `{path}` in the summary"));
        let got: f64 = value.parse().unwrap_or_else(|_| panic!("{what}: `{value}` is not a number: {line}"));
        assert_eq!(got, want, "{what}: `{path}` printed {got}, summary.json holds {want}");
    }
    let mut domain = String::new();
    let mut seen: Vec<(String, String, u64)> = Vec::new();
    for line in block(section, "Why") {
        if let Some(rest) = line.trim().strip_prefix("in effect domain `") {
            domain = format!("domains.{}.", rest.split('`').next().expect("a name"));
            continue;
        }
        let Some((count, rest)) = line.trim().split_once(" of the ") else { continue };
        let Ok(n) = count.parse::<u64>() else { continue };
        let lost = rest.split_whitespace().nth(1) == Some("losses");
        let code = rest.split('[').nth(1).and_then(|r| r.split(']').next()).expect("a [code]");
        let by = format!("{domain}{}", if lost { "lost_by_cause" } else { "duplicated_by_cause" });
        let want = at(summary, &format!("{by}.{code}")).and_then(Value::as_u64);
        assert_eq!(Some(n), want, "{what}: {line}");
        seen.push((by, code.to_string(), n));
    }
    // Every cause of the summary is told (per domain when there are several).
    let domains = summary["domains"].as_object().expect("domains");
    let prefixes: Vec<String> =
        if domains.len() > 1 { domains.keys().map(|d| format!("domains.{d}.")).collect() } else { vec![String::new()] };
    for p in prefixes {
        for by in ["lost_by_cause", "duplicated_by_cause"] {
            let key = format!("{p}{by}");
            for (code, n) in at(summary, &key).and_then(Value::as_object).into_iter().flatten() {
                let told = seen.iter().any(|(b, c, m)| *b == key && c == code && Some(*m) == n.as_u64());
                assert!(told, "{what}: `{key}.{code}` = {n} is not explained:\n{section}");
            }
        }
    }
    figures.len()
}

/// The acceptance point: every bundled scenario's explanation has every
/// section, and quotes summary.json's own figures and causes.
#[test]
fn explain_quotes_the_summary_of_every_bundled_scenario() {
    for (stem, code, out) in explained() {
        let summary = summary_of(stem);
        let variants = summary["variants"].as_object().expect("variants");
        for part in ["\nThe concept\n", "The guide teaches it in Chapter ", "\nTry next\n"] {
            assert!(out.contains(part), "{stem}: `{}` missing:\n{out}", part.trim());
        }
        assert!(out.contains(summary["concept"].as_str().expect("a concept")), "{stem}: the concept");
        let sections = variant_sections(out);
        let mut told: Vec<&String> = sections.iter().map(|(n, _)| n).collect();
        told.sort();
        assert_eq!(told, variants.keys().collect::<Vec<_>>(), "{stem}: one section per variant");
        let mut held = true;
        for (name, section) in &sections {
            let v = &variants[name];
            for part in ["  What happened\n", "  Why\n"] {
                assert!(section.contains(part), "{stem}/{name}: `{}` missing", part.trim());
            }
            if variants.len() > 1 {
                assert!(section.contains("  What it does differently\n"), "{stem}/{name}: what differs");
            }
            check_variant(&format!("{stem}/{name}"), section, v);
            let outcomes = v["expectations"].as_array().expect("expectations");
            held &= outcomes.iter().all(|o| o["held"] == true)
                && v.get("invariants").and_then(Value::as_array).is_none_or(|j| j.iter().all(|o| o["held"] == true));
        }
        assert_eq!(*code, Some(if held { 0 } else { 1 }), "{stem}: the exit status as `run`'s");
    }
}

/// The commands of an explanation's "Try next" section.
fn try_next(out: &str) -> Vec<String> {
    let section = out.split("\nTry next\n").nth(1).expect("a Try next section");
    section.lines().filter_map(|l| l.strip_prefix("  asyncsim ")).map(str::to_string).collect()
}

/// Splits a command line as a shell would (single quotes only, as the
/// commands are written).
fn shell_words(s: &str) -> Vec<String> {
    let (mut words, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for ch in s.chars() {
        match ch {
            '\'' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    words.extend((!cur.is_empty()).then_some(cur));
    words
}

/// Every "try next" command of every bundled scenario is a valid command:
/// its file loads, its overrides apply through the scenario loader and
/// change the variant it names.
#[test]
fn every_try_next_command_applies() {
    for (stem, _, out) in explained() {
        let commands = try_next(out);
        assert!((2..=4).contains(&commands.len()), "{stem}: {} suggestions:\n{out}", commands.len());
        for cmd in commands {
            let words = shell_words(&cmd);
            assert!(["run", "explain"].contains(&words[0].as_str()), "{stem}: {cmd}");
            let file = &words[1];
            let text = std::fs::read_to_string(common::repo().join(file)).expect("the file exists");
            let mut scenario = Scenario::parse(file, &text).expect("it loads");
            let base = scenario.clone();
            let flag = |name: &str| words.windows(2).filter(|w| w[0] == name).map(|w| w[1].clone()).collect::<Vec<_>>();
            let sets = flag("--set");
            // As the command runs: `--variant` keeps its variants before `--set` applies.
            scenario.keep_variants(&flag("--variant"));
            scenario.set_overrides(&sets).unwrap_or_else(|e| panic!("{stem}: `{cmd}` does not apply: {e}"));
            for v in flag("--variant") {
                assert!(scenario.variants().iter().any(|x| x.name == v), "{stem}: `{cmd}`: no variant {v}");
                if !sets.is_empty() {
                    assert_ne!(scenario.resolved_table(&v), base.resolved_table(&v), "{stem}: `{cmd}` changes nothing");
                }
            }
        }
    }
}

/// The figure `path` of variant `name` in an explanation.
fn figure(out: &str, name: &str, path: &str) -> f64 {
    let (_, section) = variant_sections(out).into_iter().find(|(n, _)| n == name).expect("the variant");
    let line = block(&section, "What happened").into_iter().find(|l| l.split_whitespace().next() == Some(path));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or_else(|| panic!("no {path}:\n{section}"))
}

/// Changing the seed or an override changes the figures and the causes,
/// and explain with an override quotes what `asyncsim run` with the same
/// override writes. At-most-once on delivery-guarantees loses to network
/// drops, so five times the loss probability must drop more.
#[test]
fn figures_and_causes_follow_the_seed_and_the_overrides() {
    let file = "scenarios/delivery-guarantees.toml";
    let base = ["explain", file, "--variant", "at-most-once", "--no-progress"];
    let one = common::stdout(&common::asyncsim(&[&base[..], &["--seed", "1"]].concat()));
    let two = common::stdout(&common::asyncsim(&[&base[..], &["--seed", "2"]].concat()));
    let set = ["--seed", "3", "--set", "network.loss_probability=0.05"];
    let lossy = common::stdout(&common::asyncsim(&[&base[..], &set[..]].concat()));
    let dir = common::TempDir::new("explain-set");
    let out = dir.path().to_str().expect("UTF-8");
    let run = ["run", file, "--variant", "at-most-once", "--no-plots", "--no-progress", "--out", out];
    let o = common::asyncsim(&[&run[..], &set[..]].concat());
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", common::describe(&o));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).expect("summary"))
            .expect("JSON");
    let v = &summary["variants"]["at-most-once"];
    let (_, section) = variant_sections(&lossy).into_iter().next().expect("a section");
    assert!(check_variant("lossy", &section, v) >= 3);
    let (a, b) = (figure(&one, "at-most-once", "lost"), figure(&two, "at-most-once", "lost"));
    let cause =
        |out: &str| variant_sections(out)[0].1.lines().find(|l| l.contains("[network_loss]")).map(str::to_string);
    assert!(a != b || cause(&one) != cause(&two), "seeds 1 and 2 tell the same:\n{one}\n{two}");
    let drops = |out: &str| -> u64 {
        let line = cause(out).unwrap_or_default();
        line.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    assert!(drops(&lossy) > drops(&one), "5% loss drops more than 1%:\n{one}\n{lossy}");
    assert!(lossy.contains("with --set network.loss_probability = 0.05"), "{lossy}");
}

/// Every cause code the ledger records has plain words.
#[test]
fn every_cause_code_has_words() {
    let o = common::asyncsim(&["explain", "--causes"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::describe(&o));
    let out = common::stdout(&o);
    let names = LossCause::ALL.iter().map(|c| c.name()).chain(DupCause::ALL.iter().map(|c| c.name()));
    for name in names {
        let line = out.lines().find(|l| l.split_whitespace().next() == Some(name));
        let line = line.unwrap_or_else(|| panic!("no words for `{name}`:\n{out}"));
        assert!(line.len() > name.len() + 30, "`{name}` is barely explained: {line}");
    }
}

/// A message the ledger lost and one it applied twice, in a variant of
/// delivery-guarantees at seed 1, run in-process: (lost id and cause name,
/// duplicated id).
fn lost_and_duplicated() -> ((u64, &'static str), u64) {
    let text = std::fs::read_to_string(common::repo().join("scenarios/delivery-guarantees.toml")).expect("file");
    let scenario = Scenario::parse("delivery-guarantees.toml", &text).expect("valid");
    let configs = scenario.configs().expect("resolves");
    let config = |name: &str| configs.iter().find(|(v, _)| v.name == name).map(|(_, c)| c).expect("variant");
    let lossy = run_config(config("at-most-once"), 1, 0);
    let (id, cause) = *lossy.lost.first().expect("at-most-once loses");
    let twice = run_config(config("at-least-once"), 1, usize::MAX);
    let mut applied = std::collections::BTreeMap::<u64, u32>::new();
    for ev in &twice.trace {
        if let sim_core::trace::TraceWhat::Process(_, m, true) = ev.what {
            *applied.entry(m).or_default() += 1;
        }
    }
    let dup = applied.iter().find(|(_, n)| **n > 1).map(|(m, _)| *m).expect("at-least-once duplicates");
    ((id, cause.name()), dup)
}

/// `--message` on a lost message names the ledger's cause; on a duplicated
/// one, the duplicate's cause (at-least-once's duplicates all come from
/// producer retries at seed 1, per its summary); on one applied once, says so.
#[test]
fn message_story_tells_the_verdict_and_the_cause() {
    let ((lost, cause), dup) = lost_and_duplicated();
    let file = "scenarios/delivery-guarantees.toml";
    let story = |variant: &str, id: u64| {
        let o =
            common::asyncsim(&["explain", file, "--variant", variant, "--message", &id.to_string(), "--no-progress"]);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{}", common::describe(&o));
        common::stdout(&o)
    };
    let told = story("at-most-once", lost);
    assert!(told.contains(&format!("the story of message {lost}")), "{told}");
    assert!(told.contains(&format!("Verdict: LOST [{cause}]")), "{told}");
    assert!(told.contains(" ms  "), "times in ms:\n{told}");
    let told = story("at-least-once", dup);
    assert!(told.contains("Verdict: DUPLICATED") && told.contains("[producer_retry]"), "{told}");
    assert!(told.matches("APPLIED its effect").count() >= 2, "{told}");
    assert!(told.contains("again: a retry"), "the retry is shown:\n{told}");
    let told = story("exactly-once", dup);
    assert!(told.contains("Verdict: applied once in every effect domain"), "{told}");
}

/// A message id the run did not produce, and an unknown variant, are bad
/// input: exit 2, saying what exists.
#[test]
fn a_bad_message_id_or_variant_exits_2() {
    let file = "scenarios/delivery-guarantees.toml";
    let o =
        common::asyncsim(&["explain", file, "--variant", "exactly-once", "--message", "100000000", "--no-progress"]);
    let err = common::assert_bad_input(&o);
    assert!(err.contains("no message 100000000") && err.contains("ids 0 to "), "{err}");
    let o = common::asyncsim(&["explain", file, "--variant", "nope", "--no-progress"]);
    let err = common::assert_bad_input(&o);
    assert!(err.contains("no variant named `nope`") && err.contains("at-most-once"), "{err}");
}

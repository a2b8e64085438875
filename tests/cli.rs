//! Integration tests of the `asyncsim` command line: they run the real
//! binary on real scenario files (bundled ones, and variations of them
//! written to fresh temporary folders) and check the output contract of
//! `/work/shared/DESIGN.md`: exit statuses 0/1/2, errors that name the file,
//! the line and the field, byte-for-byte determinism, the keys of
//! `summary.json`, `timeseries.csv`, output-folder protection, `list` and
//! `validate`.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, bin, describe, repo, stderr, stdout, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn p(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_string()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The text of the bundled M/M/1 scenario, which the bad-input tests modify.
fn mm1_text() -> String {
    std::fs::read_to_string(repo().join("scenarios/mm1.toml")).expect("read scenarios/mm1.toml")
}

/// Replaces the first line whose trimmed text starts with `prefix` by
/// `new` (which may hold several lines). Panics if there is none.
fn replace_line(text: &str, prefix: &str, new: &str) -> String {
    let mut done = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if !done && line.trim_start().starts_with(prefix) {
            out.push(new.to_string());
            done = true;
        } else {
            out.push(line.to_string());
        }
    }
    assert!(done, "no line starts with `{prefix}` in the scenario");
    out.join("\n") + "\n"
}

/// The 1-based number of the only line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let hits: Vec<usize> = text.lines().enumerate().filter(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1).collect();
    assert_eq!(hits.len(), 1, "`{needle}` must occur on exactly one line");
    hits[0]
}

/// Removes every top-level `expect = [...]` list (possibly over several
/// lines) from a scenario text.
fn without_top_level_expect(text: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        if skipping {
            if line.trim_end().ends_with(']') {
                skipping = false;
            }
            continue;
        }
        if line.trim_start().starts_with("expect") && line.contains('=') {
            if !line.trim_end().ends_with(']') {
                skipping = true;
            }
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n") + "\n"
}

/// A small, quick scenario with three variants that differ by loss
/// probability; the producer is fire-and-forget, so network loss of a
/// publish is counted as lost. Variants are deliberately not in
/// alphabetical order.
const THREE: &str = r#"name = "three-losses"
concept = "test scenario: fire-and-forget under three loss probabilities"
seed = 5

[run]
drain_ms = 20_000
sample_interval_ms = 500

[network]
latency = { dist = "exponential", mean_ms = 2.0 }

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 1000 }
messages = 4000
keys = { distribution = "uniform", count = 8 }

[brokers.broker]
kind = "queue"
redelivery_timeout_ms = 200

[consumers.consumer]
source = "broker"
processing = { dist = "exponential", mean_ms = 0.5 }
concurrency = 2

[variants.zero_loss]
description = "a perfect network"
set = { "network.loss_probability" = 0.0 }

[variants.heavy_loss]
description = "one message in five dropped"
set = { "network.loss_probability" = 0.2 }

[variants.light_loss]
description = "one message in fifty dropped"
set = { "network.loss_probability" = 0.02 }
"#;

const THREE_NAMES: [&str; 3] = ["zero_loss", "heavy_loss", "light_loss"];

/// Runs `args` and returns (output, summary.json) from `out`.
fn run_to(args: &[String], out: &Path) -> (Output, Value) {
    let mut all = args.to_vec();
    all.push("--out".into());
    all.push(p(out));
    let o = asyncsim(&all);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "run failed:\n{}", describe(&o));
    let summary = read_json(&out.join("summary.json"));
    (o, summary)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Bad input: exit 2, file, line and field named, no panic, nothing written
// ---------------------------------------------------------------------------

/// Writes `text` as a scenario, runs it, and checks the bad-input contract:
/// exit 2, no panic, `FILE:LINE:` and `field` in stderr, no output folder.
fn check_bad_scenario(name: &str, text: &str, line: usize, field: &str) -> String {
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let out = dir.path().join("out");
    let o = asyncsim(&[
        "run".to_string(),
        p(&file),
        "--out".into(),
        p(&out),
        "--set".into(),
        "producers.producer.messages=100".into(),
    ]);
    let err = assert_bad_input(&o);
    assert_names(&err, &file, line, field);
    assert!(!out.exists(), "bad input must not create the output folder");

    // `validate` says the same thing.
    let v = asyncsim(&["validate".to_string(), p(&file)]);
    assert_names(&assert_bad_input(&v), &file, line, field);
    err
}

#[test]
fn a_misspelt_field_names_file_line_and_field() {
    let text = replace_line(&mm1_text(), "[network]", "[network]\nlos_probability = 0.1");
    let line = line_of(&text, "los_probability");
    let err = check_bad_scenario("misspelt", &text, line, "network.los_probability");
    assert!(err.contains("loss_probability"), "the error should suggest the right name:\n{err}");
}

#[test]
fn a_wrong_type_names_file_line_and_field() {
    let text = replace_line(&mm1_text(), "arrival =", r#"arrival = { process = "poisson", rate_per_s = "fast" }"#);
    let line = line_of(&text, r#""fast""#);
    let err = check_bad_scenario("wrongtype", &text, line, "producers.producer.arrival");
    assert!(err.contains("fast"), "{err}");
}

#[test]
fn a_wrong_type_inside_a_tagged_table_names_the_key_and_its_line() {
    // The arrival process as its own table, the bad key on its own line.
    let text = replace_line(&mm1_text(), "arrival =", "");
    let text = format!("{text}\n[producers.producer.arrival]\nprocess = \"poisson\"\nrate_per_s = \"fast\"\n");
    let line = line_of(&text, r#""fast""#);
    check_bad_scenario("tagged", &text, line, "producers.producer.arrival.rate_per_s");

    let text = format!("{}\n[[faults]]\nkind = \"crash\"\nnode = \"consumer\"\nat_ms = -5\n", mm1_text());
    let line = line_of(&text, "at_ms = -5");
    check_bad_scenario("tagged-fault", &text, line, "faults.0.at_ms");
}

#[test]
fn a_probability_above_one_names_file_line_and_field() {
    let text = replace_line(&mm1_text(), "[network]", "[network]\nloss_probability = 1.5");
    let line = line_of(&text, "loss_probability = 1.5");
    let err = check_bad_scenario("prob", &text, line, "network.loss_probability");
    assert!(err.contains("1.5"), "{err}");
}

#[test]
fn a_consumer_of_no_broker_names_file_line_and_field() {
    let text = replace_line(&mm1_text(), "source =", r#"source = "nowhere""#);
    let line = line_of(&text, "nowhere");
    let err = check_bad_scenario("source", &text, line, "consumers.consumer.source");
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn a_bad_expectation_names_file_line_and_field() {
    // A one-line `expect` in the base...
    let base = without_top_level_expect(&mm1_text());
    let text = replace_line(&base, "seed =", "seed = 1\nexpect = [\"lost == 0\", \"lost = 0\"]");
    let line = line_of(&text, "\"lost = 0\"");
    let err = check_bad_scenario("expect", &text, line, "expect");
    assert!(err.contains("lost = 0"), "{err}");

    // ...and in a variant.
    let text = format!(
        "{base}\n[variants.fine]\ndescription = \"ok\"\n\n[variants.odd]\ndescription = \"bad expectation\"\nexpect = [\"lots == 0\"]\n"
    );
    let line = line_of(&text, "lots == 0");
    let err = check_bad_scenario("expect-variant", &text, line, "variants.odd.expect");
    assert!(err.contains("lots"), "{err}");
}

#[test]
fn a_bad_expectation_in_a_multi_line_list_names_its_own_line() {
    let base = without_top_level_expect(&mm1_text());
    let text = replace_line(&base, "seed =", "seed = 1\nexpect = [\n  \"lost == 0\",\n  \"duplicated = 0\",\n]");
    let line = line_of(&text, "\"duplicated = 0\"");
    check_bad_scenario("expect-multi", &text, line, "expect");
}

/// The M/M/1 scenario (a producer, a queue broker, a queue consumer) with
/// `expect` replaced by `list`.
fn mm1_expecting(list: &str) -> String {
    replace_line(&without_top_level_expect(&mm1_text()), "seed =", &format!("seed = 1\nexpect = [{list}]"))
}

#[test]
fn a_misspelt_error_kind_in_an_expectation_exits_2_with_did_you_mean() {
    let text = mm1_expecting("\"lost == 0\", \"errors_by_kind.rejeted == 0\"");
    let line = line_of(&text, "rejeted");
    let err = check_bad_scenario("expect-error-kind", &text, line, "expect");
    assert!(err.contains("errors_by_kind.rejeted == 0"), "names the expectation:\n{err}");
    assert!(err.contains("did you mean `rejected`"), "suggests the right name:\n{err}");
    assert!(err.contains("`delivery-timeout`") && err.contains("`expired`"), "lists the possible kinds:\n{err}");
}

#[test]
fn a_misspelt_metric_in_a_variant_expectation_exits_2_with_did_you_mean() {
    let base = without_top_level_expect(&mm1_text());
    let text = format!(
        "{base}\n[variants.fine]\ndescription = \"ok\"\n\n[variants.odd]\ndescription = \"typo\"\nexpect = [\"metrics.dropped_no_subscribr == 0\"]\n"
    );
    let line = line_of(&text, "dropped_no_subscribr");
    let err = check_bad_scenario("expect-metric", &text, line, "variants.odd.expect");
    assert!(err.contains("did you mean `dropped_no_subscriber`"), "suggests the right name:\n{err}");
    assert!(err.contains("`deleted_with_subscription`"), "lists the possible metrics:\n{err}");
}

#[test]
fn a_metric_or_error_kind_declared_by_a_kind_present_but_never_reported_reads_as_0() {
    let dir = TempDir::new("expect-absent");
    let text = mm1_expecting("\"metrics.dropped_no_subscriber == 0\", \"errors_by_kind.rejected == 0\"");
    let file = dir.write("absent.toml", &text);
    let out = dir.path().join("out");
    let o = asyncsim(&["run", &p(&file), "--out", &p(&out), "--set", "producers.producer.messages=200"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v = &read_json(&out.join("summary.json"))["variants"]["default"];
    assert!(v["metrics"].get("dropped_no_subscriber").is_none(), "never reported: {}", v["metrics"]);
    for e in v["expectations"].as_array().expect("expectations") {
        assert_eq!((&e["held"], e["actual"].as_f64()), (&Value::Bool(true), Some(0.0)), "{e}");
    }
}

#[test]
fn a_metric_declared_only_by_a_kind_absent_from_the_scenario_is_refused() {
    // `late_responses` is a client's; the M/M/1 scenario has no client.
    let text = mm1_expecting("\"metrics.late_responses == 0\"");
    let line = line_of(&text, "late_responses");
    let err = check_bad_scenario("expect-absent-kind", &text, line, "expect");
    assert!(err.contains("late_responses"), "{err}");
    assert!(err.contains("`dropped_no_subscriber`"), "lists what the scenario's nodes can report:\n{err}");
    assert!(!err.contains("did you mean"), "nothing close to suggest:\n{err}");
}

#[test]
fn invalid_toml_names_file_and_line() {
    let text = replace_line(&mm1_text(), "source =", "source = = \"broker\"");
    let line = line_of(&text, "source = =");
    let dir = TempDir::new("syntax");
    let file = dir.write("syntax.toml", &text);
    let out = dir.path().join("out");
    let o = asyncsim(&["run".to_string(), p(&file), "--out".into(), p(&out)]);
    let err = assert_bad_input(&o);
    let at = format!("{}:{line}:", p(&file));
    assert!(err.contains(&at), "stderr must name `{at}`:\n{err}");
    assert!(!out.exists());
}

#[test]
fn an_error_in_a_variant_override_names_the_override_line() {
    let base = mm1_text();
    // An inline `set` table.
    let text = format!(
        "{base}\n[variants.fine]\ndescription = \"ok\"\n\n[variants.broken]\ndescription = \"bad override\"\nset = {{ \"network.loss_probability\" = 1.5 }}\n"
    );
    let line = line_of(&text, "= 1.5");
    let err = check_bad_scenario("override-inline", &text, line, "network.loss_probability");
    assert!(err.contains("broken"), "the variant should be named:\n{err}");

    // A `[variants.X.set]` table with bare dotted keys, the bad one last.
    let text = format!(
        "{base}\n[variants.fine]\ndescription = \"ok\"\n\n[variants.broken.set]\nconsumers.consumer.concurrency = 2\nnetwork.los_probability = 0.5\n"
    );
    let line = line_of(&text, "los_probability");
    let err = check_bad_scenario("override-dotted", &text, line, "los_probability");
    assert!(err.contains("broken"), "{err}");

    // A nested `[variants.X.set.network]` table.
    let text = format!(
        "{base}\n[variants.broken.set.network]\nlatency = {{ dist = \"constant\", ms = 1 }}\nloss_probability = 1.5\n"
    );
    let line = line_of(&text, "= 1.5");
    check_bad_scenario("override-nested", &text, line, "network.loss_probability");
}

#[test]
fn an_error_in_a_quoted_dotted_override_names_the_override_line() {
    let text = format!(
        "{}\n[variants.broken.set]\n\"consumers.consumer.concurrency\" = 2\n\"network.loss_probability\" = 1.5\n",
        mm1_text()
    );
    let line = line_of(&text, "= 1.5");
    check_bad_scenario("override-quoted", &text, line, "network.loss_probability");
}

#[test]
fn a_bad_set_missing_file_or_unknown_variant_exits_2() {
    let dir = TempDir::new("badargs");
    let mm1 = p(&repo().join("scenarios/mm1.toml"));

    let out = dir.path().join("out-set");
    let o = asyncsim(&["run", &mm1, "--out", &p(&out), "--set", "network.loss_probability=2"]);
    let err = assert_bad_input(&o);
    assert!(err.contains("--set"), "stderr must name --set:\n{err}");
    assert!(err.contains("network.loss_probability"), "{err}");
    assert!(!out.exists());

    let missing = dir.path().join("no-such-scenario.toml");
    let out = dir.path().join("out-missing");
    let o = asyncsim(&["run", &p(&missing), "--out", &p(&out)]);
    let err = assert_bad_input(&o);
    assert!(err.contains("no-such-scenario.toml"), "{err}");
    assert!(!out.exists());

    let out = dir.path().join("out-variant");
    let o = asyncsim(&["run", &mm1, "--out", &p(&out), "--variant", "no_such_variant"]);
    let err = assert_bad_input(&o);
    assert!(err.contains("no_such_variant"), "{err}");
    assert!(!out.exists());

    // `validate` refuses a bad --set too.
    let o = asyncsim(&["validate", &mm1, "--set", "network.loss_probability=2"]);
    let err = assert_bad_input(&o);
    assert!(err.contains("--set"), "{err}");
}

// ---------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------

#[test]
fn the_same_seed_gives_identical_summaries_and_traces() {
    let dir = TempDir::new("determinism");
    let file = dir.write("three.toml", &THREE.replace("messages = 4000", "messages = 1500"));
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let base = args(&["run", &p(&file), "--trace"]);
    let with_seed = |s: &str| {
        let mut v = base.clone();
        v.extend(args(&["--seed", s]));
        v
    };
    let (_, sa) = run_to(&with_seed("42"), &a);
    let (_, _) = run_to(&with_seed("42"), &b);
    let (_, sc) = run_to(&with_seed("43"), &c);

    let bytes = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", d.display()));
    assert!(bytes(&a, "summary.json") == bytes(&b, "summary.json"), "seed 42 twice: summary.json differs");
    assert!(bytes(&a, "timeseries.csv") == bytes(&b, "timeseries.csv"));
    for v in THREE_NAMES {
        let f = format!("trace-{v}.csv");
        let ta = bytes(&a, &f);
        assert!(ta.iter().filter(|&&c| c == b'\n').count() > 1000, "{f} should hold a real trace");
        assert!(ta == bytes(&b, &f), "seed 42 twice: {f} differs");
    }

    assert_eq!(sa["seed"], 42);
    assert_eq!(sc["seed"], 43);
    assert_ne!(sa["variants"], sc["variants"], "seed 43 should give a different run from seed 42");
    for v in THREE_NAMES {
        assert_ne!(
            sa["variants"][v]["run"]["trace_digest"], sc["variants"][v]["run"]["trace_digest"],
            "variant {v}: seeds 42 and 43 gave the same history"
        );
    }
}

#[test]
fn the_number_of_threads_does_not_change_the_results() {
    let dir = TempDir::new("threads");
    let file = dir.write("three.toml", THREE);
    let (one, four) = (dir.path().join("one"), dir.path().join("four"));
    let (_, s1) = run_to(&args(&["run", &p(&file), "--threads", "1"]), &one);
    let (_, _) = run_to(&args(&["run", &p(&file), "--threads", "4"]), &four);
    let a = std::fs::read(one.join("summary.json")).unwrap();
    let b = std::fs::read(four.join("summary.json")).unwrap();
    assert!(a == b, "--threads 1 and --threads 4 give different summaries");

    // The variants really differ, so the comparison above means something.
    let lost = |v: &str| s1["variants"][v]["lost"].as_u64().unwrap();
    assert_eq!(lost("zero_loss"), 0);
    assert!(lost("light_loss") > 0, "2% loss should lose publishes");
    assert!(lost("heavy_loss") > lost("light_loss"), "20% loss should lose more than 2%");
}

// ---------------------------------------------------------------------------
// Failed expectations: exit 1 and a command that reproduces the failure
// ---------------------------------------------------------------------------

/// Splits a shell command line as `shell_quote` writes it: words separated
/// by spaces, single-quoted words with `'\''` for a quote.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if !quoted => {}
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[test]
fn a_failed_expectation_exits_1_with_a_command_that_reproduces_it() {
    let dir = TempDir::new("reproduce");
    let text = THREE
        .replace(
            "description = \"one message in five dropped\"",
            "description = \"one message in five dropped\"\nexpect = [\"lost == 0\"]",
        )
        .replace(
            "description = \"a perfect network\"",
            "description = \"a perfect network\"\nexpect = [\"lost == 0\"]",
        );
    let file = dir.write("failing.toml", &text);
    let out = dir.path().join("out");
    let o =
        asyncsim(&["run", &p(&file), "--seed", "9", "--out", &p(&out), "--set", "producers.producer.messages=3000"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let first = read_json(&out.join("summary.json"));
    assert!(first["variants"]["heavy_loss"]["lost"].as_u64().unwrap() > 0);

    let text_out = stdout(&o);
    let repro: Vec<&str> = text_out.lines().filter(|l| l.trim_start().starts_with("reproduce")).collect();
    assert_eq!(repro.len(), 1, "exactly the failing variant gets a reproduce line:\n{text_out}");
    let line = repro[0];
    assert!(line.contains("heavy_loss"), "{line}");
    let cmd = &line[line.find("asyncsim").expect("the command starts with asyncsim")..];
    let mut words = shell_words(cmd);
    assert_eq!(words[0], "asyncsim");
    assert!(words.windows(2).any(|w| w == ["--seed", "9"]), "the command must carry the seed: {cmd}");
    assert!(words.windows(2).any(|w| w == ["--variant", "heavy_loss"]), "the command must name the variant: {cmd}");
    assert!(
        words.windows(2).any(|w| w == ["--set", "producers.producer.messages=3000"]),
        "the command must carry the overrides: {cmd}"
    );

    // Run it exactly, from a fresh folder (it writes to the default `out`).
    words[0] = bin().to_string();
    let cwd = TempDir::new("reproduce-cwd");
    let again =
        Command::new(&words[0]).args(&words[1..]).current_dir(cwd.path()).output().expect("run the reproduce command");
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(stdout(&again).contains("reproduce `heavy_loss`"), "{}", describe(&again));
    let second = read_json(&cwd.path().join("out/summary.json"));
    let names: Vec<&String> = second["variants"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["heavy_loss"], "only the named variant runs");
    assert_eq!(
        second["variants"]["heavy_loss"], first["variants"]["heavy_loss"],
        "the reproduction must fail the same way"
    );
    assert_eq!(second["seed"], 9);
}

#[test]
fn held_expectations_exit_0_without_a_reproduce_line() {
    let dir = TempDir::new("held");
    let text = THREE.replace(
        "description = \"a perfect network\"",
        "description = \"a perfect network\"\nexpect = [\"lost == 0\", \"duplicated >= 0\"]",
    );
    let file = dir.write("held.toml", &text);
    let out = dir.path().join("out");
    let o = asyncsim(&["run", &p(&file), "--out", &p(&out), "--set", "producers.producer.messages=500"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(!stdout(&o).contains("reproduce"), "{}", describe(&o));
    let s = read_json(&out.join("summary.json"));
    let e = &s["variants"]["zero_loss"]["expectations"];
    assert_eq!(e.as_array().map(Vec::len), Some(2), "{e}");
    assert!(e.as_array().unwrap().iter().all(|x| x["held"] == true), "{e}");
}

// ---------------------------------------------------------------------------
// summary.json and timeseries.csv
// ---------------------------------------------------------------------------

fn assert_variant_keys(name: &str, v: &Value) {
    for key in ["produced", "acked", "delivered", "processed", "lost", "duplicated", "reordered", "errors"] {
        assert!(v[key].is_u64(), "variant {name}: `{key}` must be a count, got {}", v[key]);
    }
    assert!(v["throughput_per_s"].is_number(), "variant {name}");
    for key in ["mean", "p50", "p90", "p99", "p999", "max"] {
        assert!(v["latency_ms"][key].is_number(), "variant {name}: latency_ms.{key} missing, got {}", v["latency_ms"]);
    }
    assert!(v["expectations"].is_array(), "variant {name}");
}

#[test]
fn summary_json_has_the_documented_keys_overrides_and_variant_order() {
    let dir = TempDir::new("summary");
    let file = dir.write("three.toml", THREE);
    let out = dir.path().join("out");
    let (_, s) = run_to(
        &args(&[
            "run",
            &p(&file),
            "--seed",
            "11",
            "--set",
            "producers.producer.messages=1200",
            "--set",
            "consumers.consumer.concurrency=3",
        ]),
        &out,
    );
    assert_eq!(s["scenario"], "three-losses");
    assert_eq!(s["seed"], 11);
    let overrides = s["overrides"].as_object().expect("overrides is an object");
    assert_eq!(overrides.len(), 2, "{overrides:?}");
    assert_eq!(overrides["producers.producer.messages"], 1200);
    assert_eq!(overrides["consumers.consumer.concurrency"], 3);

    let variants = s["variants"].as_object().expect("variants is an object");
    assert_eq!(variants.len(), 3);
    for name in THREE_NAMES {
        let v = &variants[name];
        assert_variant_keys(name, v);
        // The override took effect in every variant.
        assert_eq!(v["produced"], 1200, "variant {name}");
        let (processed, delivered) = (v["processed"].as_u64(), v["delivered"].as_u64());
        assert!(processed <= delivered, "variant {name}");
    }

    // Variants keep file order (which is not alphabetical here).
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let at = text.find("\"variants\"").expect("a variants key");
    let positions: Vec<usize> = THREE_NAMES
        .iter()
        .map(|n| text[at..].find(&format!("\"{n}\":")).unwrap_or_else(|| panic!("variant {n} missing")))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "variants must keep file order {THREE_NAMES:?}, positions {positions:?}"
    );
}

#[test]
fn a_scenario_without_variants_has_one_variant_named_default() {
    let dir = TempDir::new("default");
    let out = dir.path().join("out");
    let (_, s) = run_to(
        &args(&["run", &p(&repo().join("scenarios/mm1.toml")), "--set", "producers.producer.messages=20000"]),
        &out,
    );
    assert_eq!(s["scenario"], "mm1");
    let variants = s["variants"].as_object().unwrap();
    let names: Vec<&String> = variants.keys().collect();
    assert_eq!(names, ["default"]);
    assert_variant_keys("default", &variants["default"]);
    assert_eq!(variants["default"]["produced"], 20000);
    assert_eq!(s["overrides"]["producers.producer.messages"], 20000);
    // Without --seed, the scenario's own seed is used and recorded.
    let file_seed: toml::Table = toml::from_str(&mm1_text()).unwrap();
    let seed = file_seed.get("seed").and_then(|v| v.as_integer()).unwrap_or(1);
    assert_eq!(s["seed"], seed);
}

#[test]
fn timeseries_csv_has_a_header_and_rows_for_every_variant() {
    let dir = TempDir::new("timeseries");
    let file = dir.write("three.toml", THREE);
    let out = dir.path().join("out");
    run_to(&args(&["run", &p(&file)]), &out);
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    assert_eq!(header[0], "variant", "{header:?}");
    assert!(header.contains(&"time_s"), "{header:?}");
    assert!(header.iter().any(|h| h.contains("queue_depth")), "{header:?}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "row {r:?} does not match the header");
        for cell in &r[1..] {
            assert!(cell.parse::<f64>().is_ok(), "non-numeric cell in {r:?}");
        }
    }
    // 4000 messages at 1000/s sampled every 500 ms: several rows each.
    for name in THREE_NAMES {
        let n = rows.iter().filter(|r| r[0] == name).count();
        assert!(n >= 4, "variant {name} has {n} rows in timeseries.csv");
    }
    // Produced per second sums back to the messages produced, per variant.
    let t = header.iter().position(|h| *h == "time_s").unwrap();
    let pr = header.iter().position(|h| *h == "produced_per_s");
    if let Some(pr) = pr {
        for name in THREE_NAMES {
            let mut last_t = 0.0;
            let mut total = 0.0;
            for r in rows.iter().filter(|r| r[0] == name) {
                let now: f64 = r[t].parse().unwrap();
                total += r[pr].parse::<f64>().unwrap() * (now - last_t);
                last_t = now;
            }
            assert!((total - 4000.0).abs() < 1.0, "variant {name}: timeseries says {total} produced, not 4000");
        }
    }
}

// ---------------------------------------------------------------------------
// Output protection
// ---------------------------------------------------------------------------

#[test]
fn a_foreign_output_folder_is_refused_unless_forced() {
    let dir = TempDir::new("protect");
    let file = dir.write("three.toml", THREE);
    let out = dir.path().join("precious");
    std::fs::create_dir_all(&out).unwrap();
    let precious = out.join("thesis.txt");
    std::fs::write(&precious, "four years of work").unwrap();

    let o = asyncsim(&["run", &p(&file), "--out", &p(&out)]);
    let err = assert_bad_input(&o);
    assert!(err.contains("precious"), "stderr should name the folder:\n{err}");
    assert!(err.contains("--force"), "stderr should say how to proceed:\n{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "four years of work");
    let entries: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing may be written into the folder");

    let o = asyncsim(&["run", &p(&file), "--out", &p(&out), "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(out.join("summary.json").is_file());
    assert!(out.join("timeseries.csv").is_file());
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "four years of work");

    // An existing empty folder is fine without --force.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = asyncsim(&["run", &p(&file), "--out", &p(&empty), "--set", "producers.producer.messages=200"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(empty.join("summary.json").is_file());
}

// ---------------------------------------------------------------------------
// Issue 8, defect 6: names escape the output folder and break CSV
// ---------------------------------------------------------------------------

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn defect_6_a_variant_named_like_a_path_is_refused_and_nothing_escapes_out() {
    let dir = TempDir::new("escape");
    let text = mm1_text() + "\n[variants.\"logs/../../../ESCAPED\"]\ndescription = \"tries to leave --out\"\n";
    let file = dir.write("escape.toml", &text);
    let line = line_of(&text, "ESCAPED");
    // The layout that let the old code write `a/ESCAPED.csv`: a
    // `trace-logs/` folder inside --out.
    let out = dir.path().join("a").join("b").join("out");
    std::fs::create_dir_all(out.join("trace-logs")).unwrap();
    let o = asyncsim(&[
        "run",
        &p(&file),
        "--out",
        &p(&out),
        "--trace",
        "--force",
        "--set",
        "producers.producer.messages=100",
    ]);
    let err = assert_bad_input(&o);
    assert_names(&err, &file, line, "variants.logs/../../../ESCAPED");
    assert!(err.contains("letters, digits"), "the error says what a name may hold:\n{err}");
    let escaped: Vec<PathBuf> = files_under(dir.path()).into_iter().filter(|f| p(f).contains("ESCAPED")).collect();
    assert!(escaped.is_empty(), "nothing may be written for the variant: {escaped:?}");
    assert!(!out.join("summary.json").exists(), "refused before any simulation");

    let v = asyncsim(&["validate".to_string(), p(&file)]);
    assert_names(&assert_bad_input(&v), &file, line, "variants.logs/../../../ESCAPED");
}

#[test]
fn defect_6_a_node_name_with_a_comma_is_refused() {
    let text = replace_line(&mm1_text(), "[consumers.consumer]", "[consumers.\"web,eu\"]");
    let line = line_of(&text, "web,eu");
    let err = check_bad_scenario("comma-node", &text, line, "consumers.web,eu");
    assert!(err.contains("a node name"), "{err}");
}

#[test]
fn defect_6_a_domain_with_a_slash_is_refused() {
    let text = replace_line(&mm1_text(), "concurrency = 1", "concurrency = 1\ndomain = \"db/../x\"");
    let line = line_of(&text, "db/../x");
    check_bad_scenario("slash-domain", &text, line, "consumers.consumer.domain");
}

#[test]
fn defect_6_csv_text_fields_are_quoted_and_neutralised() {
    assert_eq!(reports::csv_text("web-eu_1"), "web-eu_1");
    assert_eq!(reports::csv_text("a,b"), "\"a,b\"");
    assert_eq!(reports::csv_text("a\"b"), "\"a\"\"b\"");
    assert_eq!(reports::csv_text("a\nb"), "\"a\nb\"");
    assert_eq!(reports::csv_text("=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
    for lead in ["+", "-", "@"] {
        assert_eq!(reports::csv_text(&format!("{lead}x")), format!("\"'{lead}x\""));
    }
    let sample = sim_core::metrics::Sample {
        time_s: 1.0,
        produced_per_s: 2.0,
        processed_per_s: 3.0,
        errors_per_s: 0.0,
        queue_depth: 5,
        lag: 6,
        errors_by_kind: Vec::new(),
        gauges: Vec::new(),
    };
    let csv = reports::timeseries_csv(&[("x,=y", std::slice::from_ref(&sample))]);
    assert_eq!(csv.lines().nth(1), Some("\"x,=y\",1,2,3,0,5,6"));
}

#[test]
fn defect_6_a_read_only_output_folder_fails_before_simulating() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("read-only");
    let file = dir.write("mm1.toml", &mm1_text());
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Already asyncsim's folder, so only the final writes would fail.
    std::fs::write(out.join(".asyncsim-output"), "asyncsim output\n").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    let restore = || std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    if std::fs::write(out.join("probe"), "x").is_ok() {
        // Running as root (or on a file system that ignores modes): the
        // folder is writable anyway, there is nothing to test.
        let _ = std::fs::remove_file(out.join("probe"));
        restore();
        eprintln!("skipped: a read-only folder is writable here");
        return;
    }
    let start = std::time::Instant::now();
    // Ten million messages take seconds to simulate; refusing takes none.
    let o = asyncsim(&["run", &p(&file), "--out", &p(&out), "--set", "producers.producer.messages=10000000"]);
    let took = start.elapsed();
    restore();
    let err = assert_bad_input(&o);
    assert!(err.contains("not writable"), "the error says the folder is not writable:\n{err}");
    assert!(took < std::time::Duration::from_secs(2), "refused after {took:?}: it simulated first");
    assert!(!out.join("summary.json").exists());
}

// ---------------------------------------------------------------------------
// list and validate
// ---------------------------------------------------------------------------

fn bundled() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn list_shows_every_bundled_scenario_with_its_concept() {
    let o = asyncsim(&["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let text = stdout(&o);
    for file in bundled() {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        let t: toml::Table = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let concept = t["concept"].as_str().expect("a concept").to_string();
        assert!(
            text.lines().any(|l| l.contains(&name) && l.contains(&concept)),
            "`asyncsim list` must show {name} with its concept `{concept}`:\n{text}"
        );
    }
}

#[test]
fn validate_accepts_every_bundled_scenario() {
    let files = bundled();
    let mut a = vec!["validate".to_string()];
    a.extend(files.iter().map(|f| p(f)));
    let o = asyncsim(&a);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(!stderr(&o).contains("panicked"));
    let text = stdout(&o);
    for f in &files {
        assert!(
            text.lines().any(|l| l.contains(&p(f)) && l.contains("ok")),
            "{} not reported ok:\n{text}",
            f.display()
        );
    }
}

#[test]
fn check_finds_every_bundled_scenario_deterministic() {
    let dir = format!("{}/scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.iter().filter(|p| p.extension().is_some_and(|x| x == "toml")) {
        // Scenarios with a producer named `producer` are cut to 5000 messages.
        let text = std::fs::read_to_string(f).unwrap();
        let mut args = vec!["check", "--determinism", f.to_str().unwrap()];
        if text.contains("[producers.producer]") {
            args.extend(["--set", "producers.producer.messages=5000"]);
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_asyncsim")).args(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {stdout}{}", f.display(), String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("identical") && !stdout.contains("NOT DETERMINISTIC"), "{stdout}");
    }
}

//! The terminal table of `asyncsim run`, from the real binary: variants as
//! columns when few and narrow enough, as rows past four variants or on a
//! narrow terminal (`COLUMNS`), errors broken down by kind with what each
//! kind means, and the README's example output kept true.

use crate::common;

use common::{bin, describe, num, repo, stdout, TempDir};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `asyncsim run FILE --out OUT` from the repository root with
/// `COLUMNS` set to `columns`; every expectation must hold.
fn run_at(file: &str, out: &Path, columns: &str) -> (String, Value, Vec<String>) {
    let o = Command::new(bin())
        .args(["run", file, "--no-progress", "--out", out.to_str().expect("a UTF-8 path")])
        .env("COLUMNS", columns)
        .current_dir(repo())
        .output()
        .expect("run the asyncsim binary");
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let parsed: Value = serde_json::from_str(&summary).expect("summary.json is JSON");
    let names = variant_names(&parsed, &summary);
    (stdout(&o), parsed, names)
}

/// The variant names of a summary, in file order: serde_json sorts them
/// when it parses, so their order is read off the text.
fn variant_names(summary: &Value, text: &str) -> Vec<String> {
    let mut names: Vec<String> = summary["variants"].as_object().expect("variants").keys().cloned().collect();
    names.sort_by_key(|n| text.find(&format!("\n    \"{n}\": {{")).expect("a variant key"));
    names
}

/// The table's lines: after the concept line, up to the expectations.
fn table_lines(out: &str) -> Vec<&str> {
    out.lines().skip(1).take_while(|l| *l != "expectations:").collect()
}

/// The cells after `label` on the line that starts with it (columns mode).
fn column_row<'a>(out: &'a str, label: &str) -> Vec<&'a str> {
    let line = out
        .lines()
        .find(|l| l.strip_prefix(label).is_some_and(|rest| rest.starts_with("  ")))
        .unwrap_or_else(|| panic!("no row `{label}` in:\n{out}"));
    line[label.len()..].split_whitespace().collect()
}

#[test]
fn more_than_four_variants_are_rows() {
    let tmp = TempDir::new("table-rows");
    let (out, summary, names) = run_at("scenarios/ordering.toml", tmp.path(), "200");
    assert!(names.len() > 4, "ordering.toml has more than four variants: {names:?}");
    assert!(!out.lines().any(|l| l.starts_with("produced ")), "no row per figure:\n{out}");
    let header =
        out.lines().find(|l| l.starts_with("messages ")).unwrap_or_else(|| panic!("no messages block:\n{out}"));
    let heads: Vec<&str> = header.split_whitespace().collect();
    // The group's name heads the names' column, so cells and headers align.
    let lost_col = heads.iter().position(|h| *h == "lost").expect("a lost column");
    // Each variant's row holds its own counts, read from its summary.
    let lines: Vec<&str> = out.lines().skip_while(|l| *l != header).skip(1).take(names.len()).collect();
    for (name, line) in names.iter().zip(&lines) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[0], name, "variants are rows, in order:\n{out}");
        let v = &summary["variants"][name];
        assert_eq!(cells[1], num(v, "produced").to_string(), "{line}");
        assert_eq!(cells[lost_col], num(v, "lost").to_string(), "{line}");
    }
    assert!(table_lines(&out).iter().all(|l| l.chars().count() <= 200), "{out}");
    // On 80 columns too, every line fits.
    let (out, _, _) = run_at("scenarios/ordering.toml", tmp.path(), "80");
    let too_wide: Vec<&str> = table_lines(&out).into_iter().filter(|l| l.chars().count() > 80).collect();
    assert!(too_wide.is_empty(), "lines wider than COLUMNS=80: {too_wide:?}\n{out}");
}

#[test]
fn a_narrow_terminal_gets_rows_that_fit() {
    let tmp = TempDir::new("table-narrow");
    let (wide, _, _) = run_at("scenarios/network-faults.toml", tmp.path(), "100");
    assert!(wide.lines().any(|l| l.starts_with("produced ")), "two variants fit 100 columns as columns:\n{wide}");
    let (narrow, _, names) = run_at("scenarios/network-faults.toml", tmp.path(), "40");
    assert!(!narrow.lines().any(|l| l.starts_with("produced ")), "40 columns: variants as rows:\n{narrow}");
    let table = table_lines(&narrow);
    let too_wide: Vec<&&str> = table.iter().filter(|l| l.chars().count() > 40).collect();
    assert!(too_wide.is_empty(), "lines wider than COLUMNS=40: {too_wide:?}\n{narrow}");
    // Every variant still shows every count: its name starts a row of each block.
    for name in names {
        let rows = table.iter().filter(|l| l.split_whitespace().next() == Some(name.as_str())).count();
        assert!(rows >= 3, "`{name}` has a row in each block (messages, errors, latency):\n{narrow}");
    }
}

#[test]
fn errors_are_broken_down_by_kind_and_explained() {
    let tmp = TempDir::new("table-errors");
    let (out, summary, names) = run_at("scenarios/network-faults.toml", tmp.path(), "100");
    let mut kinds = std::collections::BTreeSet::new();
    for name in &names {
        kinds.extend(summary["variants"][name]["errors_by_kind"].as_object().expect("errors_by_kind").keys().cloned());
    }
    assert!(kinds.contains("ack-timeout"), "acks-retries times acks out: {kinds:?}");
    for kind in &kinds {
        let cells = column_row(&out, &format!("errors: {kind}"));
        let want: Vec<String> = names
            .iter()
            .map(|n| {
                summary["variants"][n]["errors_by_kind"].get(kind).and_then(Value::as_u64).unwrap_or(0).to_string()
            })
            .collect();
        assert_eq!(cells, want, "errors: {kind}");
        let note = out.lines().find(|l| l.trim_start().starts_with(&format!("{kind} ")));
        assert!(note.is_some(), "a line says what `{kind}` means:\n{out}");
    }
    let ack = out.lines().find(|l| l.trim_start().starts_with("ack-timeout ")).expect("ack-timeout note");
    assert!(ack.contains("retried"), "an ack timeout is a retry, not a loss: {ack}");
    let total = column_row(&out, "errors");
    let want: Vec<String> = names.iter().map(|n| num(&summary["variants"][n], "errors").to_string()).collect();
    assert_eq!(total, want);
}

/// The README's example: the command of the `sh` block after "## Running
/// one scenario", and the output block that follows it.
fn readme_example() -> (Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = &readme[readme.find("## Running one scenario").expect("the section")..];
    let blocks: Vec<&str> = section.split("```").collect();
    // blocks[1] is "sh\n<command>\n", blocks[3] the output.
    let command = blocks[1].strip_prefix("sh\n").expect("an sh block").trim();
    let args = command.strip_prefix("cargo run --release -- ").expect("a cargo run command");
    let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
    let output = blocks[3].strip_prefix('\n').expect("an output block").lines().map(str::to_string).collect();
    (args, output)
}

/// Whether `block` (lines, `...` standing for any number of lines left
/// out) is `actual`: the lines between two `...` appear as consecutive
/// lines, in order; without a `...` first (last), the block starts (ends)
/// where the output does.
fn matches_with_elisions(block: &[String], actual: &[&str]) -> Result<(), String> {
    let segments: Vec<&[String]> = block.split(|l| l.trim() == "...").collect();
    let mut at = 0;
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            continue;
        }
        let anchored = i == 0;
        let found = (at..=actual.len().saturating_sub(seg.len()))
            .take(if anchored { 1 } else { usize::MAX })
            .find(|&s| seg.iter().zip(&actual[s..]).all(|(a, b)| a == b));
        let Some(s) = found else {
            return Err(format!("these README lines are not in the output, in this order:\n{}", seg.join("\n")));
        };
        at = s + seg.len();
    }
    if !segments.last().is_some_and(|s| s.is_empty()) && at != actual.len() {
        return Err(format!("the output goes on after the README's last line:\n{}", actual[at..].join("\n")));
    }
    Ok(())
}

#[test]
fn the_elision_rule_is_strict() {
    let block = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    let actual = ["a", "b", "c", "d", "e"];
    assert!(matches_with_elisions(&block("a\nb\n...\ne"), &actual).is_ok());
    assert!(matches_with_elisions(&block("...\nc\n..."), &actual).is_ok());
    assert!(matches_with_elisions(&block("a\nc\n...\ne"), &actual).is_err(), "lines without ... are consecutive");
    assert!(matches_with_elisions(&block("b\n...\ne"), &actual).is_err(), "no leading ...: starts at the start");
    assert!(matches_with_elisions(&block("a\n...\nd"), &actual).is_err(), "no trailing ...: ends at the end");
    assert!(matches_with_elisions(&block("a\n...\nd\n...\nc\n..."), &actual).is_err(), "in order");
}

#[test]
fn the_readme_example_output_is_what_the_command_prints() {
    let (args, block) = readme_example();
    assert!(args.iter().any(|a| a == "run"), "the README's command runs a scenario: {args:?}");
    let out_at = args.iter().position(|a| a == "--out").expect("the README's command names --out") + 1;
    let tmp = TempDir::new("table-readme");
    let out = tmp.path().join("nf");
    let readme_out = args[out_at].clone();
    let mut real_args = args.clone();
    real_args[out_at] = out.to_str().expect("a UTF-8 path").to_string();
    // As on an 80-column terminal, which the README's block shows.
    let o: Output = Command::new(bin())
        .args(&real_args)
        .env("COLUMNS", "80")
        .current_dir(repo())
        .output()
        .expect("run the asyncsim binary");
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let printed = stdout(&o).replace(out.to_str().expect("a UTF-8 path"), &readme_out);
    let actual: Vec<&str> = printed.lines().collect();
    if let Err(e) = matches_with_elisions(&block, &actual) {
        panic!("README.md's example output is out of date: {e}\n--- the command printed ---\n{printed}");
    }
}

//! The guide's exercises as tests (issue 18): every claim the guide makes is
//! checked against the simulator, so the guide cannot drift from it.
//!
//! It reads every `docs/guide/*.md`, finds each fenced block whose info
//! string is `exercise` and parses it as `docs/guide/writing.md` says:
//! lines `NAME: asyncsim run ...` (runs, in order) and `expect: LEFT OP
//! RIGHT` (checks over the runs' summary.json). A malformed block fails,
//! naming file and line. Each run executes the real binary from the
//! repository root with its `--out` replaced by a temporary folder and
//! `--no-progress` (and `--no-plots`) added; a failed expectation names the chapter, the
//! exercise heading, the expectation and both sides' values.
//!
//! It also checks the chapter list (`docs/guide/chapters.toml`): every
//! chapter has its file `NN-slug.md`, names each of its scenarios, runs at
//! least one of them and holds at least two exercises; and every relative
//! link of a chapter leads to a file of the repository (links into `out/`,
//! the reader's own output, excepted).
//!
//! Exercise blocks run in parallel on a pool of two threads (the CI
//! machine has two cores); the runs of one block run in order.

use crate::common;
use rayon::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A comparison operator of an `expect:` line.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }
}

/// One side of an expectation: a number, or a number times a value read
/// from a run (`RUN.exit`, or `RUN.VARIANT.field...` in its summary.json).
#[derive(Clone, Debug, PartialEq)]
enum Side {
    Number(f64),
    Path { factor: f64, run: String, keys: Vec<String> },
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Side::Number(n) => write!(f, "{n}"),
            Side::Path { factor, run, keys } if *factor == 1.0 => write!(f, "{run}.{}", keys.join(".")),
            Side::Path { factor, run, keys } => write!(f, "{factor} * {run}.{}", keys.join(".")),
        }
    }
}

#[derive(Clone, Debug)]
struct Expect {
    text: String,
    line: usize,
    left: Side,
    op: Op,
    right: Side,
}

#[derive(Clone, Debug)]
struct Run {
    name: String,
    line: usize,
    /// The arguments after `asyncsim`, as the reader's shell would split them.
    args: Vec<String>,
}

/// One `exercise` block and the heading above it.
#[derive(Clone, Debug)]
struct Block {
    file: String,
    /// The line of the opening fence (1-based).
    line: usize,
    heading: String,
    runs: Vec<Run>,
    expects: Vec<Expect>,
}

/// A parse error: the file and line it is about, and what is wrong.
#[derive(Debug)]
struct ParseError {
    file: String,
    line: usize,
    message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Splits a command line as a POSIX shell would split plain words and
/// single- and double-quoted strings (a backslash escapes `"`, `\`, `$` and
/// `` ` `` inside double quotes, any character outside quotes).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unclosed double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a backslash ends the line".into()),
                }
            }
            c if "|&;<>()$`*?[#~".contains(c) && !in_word => {
                return Err(format!("`{c}` is shell syntax the exercise runner does not follow; quote it"))
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A number as the guide writes it: digits, an optional sign, decimals or
/// an exponent; never NaN nor infinite.
fn parse_number(s: &str) -> Option<f64> {
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
    let n: f64 = if ok { s.parse().ok()? } else { return None };
    n.is_finite().then_some(n)
}

fn is_run_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s != "expect"
}

/// A path `RUN.exit` or `RUN.VARIANT.field[.subfield...]`.
fn parse_path(s: &str, factor: f64) -> Result<Side, String> {
    let parts: Vec<&str> = s.split('.').collect();
    let key_ok = |k: &&str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !parts.iter().all(key_ok) {
        return Err(format!("`{s}` is neither a number nor a path RUN.VARIANT.field"));
    }
    if !is_run_name(parts[0]) {
        return Err(format!("`{s}` does not start with a run's name"));
    }
    let keys: Vec<String> = parts[1..].iter().map(|k| k.to_string()).collect();
    match keys.as_slice() {
        [k] if k == "exit" => {}
        [_, _, ..] => {}
        _ => return Err(format!("`{s}` is too short: write RUN.exit or RUN.VARIANT.field")),
    }
    Ok(Side::Path { factor, run: parts[0].to_string(), keys })
}

/// One side: `NUMBER`, `PATH`, `NUMBER * PATH` or `PATH * NUMBER`.
fn parse_side(s: &str) -> Result<Side, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("a side of the comparison is empty".into());
    }
    if let Some((a, b)) = s.split_once('*') {
        let (a, b) = (a.trim(), b.trim());
        return match (parse_number(a), parse_number(b)) {
            (Some(x), Some(y)) => Ok(Side::Number(x * y)),
            (Some(x), None) => parse_path(b, x),
            (None, Some(y)) => parse_path(a, y),
            (None, None) => Err(format!("`{s}`: one side of `*` must be a number")),
        };
    }
    match parse_number(s) {
        Some(n) => Ok(Side::Number(n)),
        None => parse_path(s, 1.0),
    }
}

/// `LEFT OP RIGHT`, OP one of `<` `<=` `>` `>=` `==` `!=`.
fn parse_expect(text: &str) -> Result<(Side, Op, Side), String> {
    let is_op = |c: char| "<>=!".contains(c);
    let start = text.find(is_op).ok_or_else(|| format!("`{text}` has no comparison (< <= > >= == !=)"))?;
    let len = text[start..].find(|c: char| !is_op(c)).unwrap_or(text.len() - start);
    let op_text = &text[start..start + len];
    let op = Op::parse(op_text).ok_or_else(|| format!("`{op_text}` is not a comparison: use < <= > >= == !="))?;
    let (left, right) = (&text[..start], &text[start + len..]);
    if right.contains(is_op) {
        return Err(format!("`{text}` holds more than one comparison"));
    }
    Ok((parse_side(left)?, op, parse_side(right)?))
}

/// A run line's command: `asyncsim run ...`.
fn parse_command(command: &str) -> Result<Vec<String>, String> {
    let words = split_words(command)?;
    match words.first().map(String::as_str) {
        Some("asyncsim") => {}
        _ => return Err(format!("`{command}`: a run must be an `asyncsim run ...` command")),
    }
    if words.get(1).map(String::as_str) != Some("run") {
        return Err(format!("`{command}`: only `asyncsim run` commands may appear in an exercise"));
    }
    if words.len() < 3 {
        return Err(format!("`{command}` names no scenario file"));
    }
    Ok(words[1..].to_vec())
}

/// Parses the lines of one block (without its fences). `first_line` is
/// the file's line number of the first of them.
fn parse_block_lines(lines: &[&str], first_line: usize, block: &mut Block) -> Result<(), (usize, String)> {
    for (i, raw) in lines.iter().enumerate() {
        let line = first_line + i;
        let text = raw.trim();
        if text.is_empty() {
            continue;
        }
        let (name, rest) = text
            .split_once(':')
            .ok_or((line, format!("`{text}` is neither `NAME: asyncsim run ...` nor `expect: ...`")))?;
        let (name, rest) = (name.trim(), rest.trim());
        if name == "expect" {
            let (left, op, right) = parse_expect(rest).map_err(|e| (line, e))?;
            for side in [&left, &right] {
                if let Side::Path { run, .. } = side {
                    if !block.runs.iter().any(|r| &r.name == run) {
                        return Err((line, format!("`{rest}` reads run `{run}`, which no line above defines")));
                    }
                }
            }
            block.expects.push(Expect { text: rest.to_string(), line, left, op, right });
        } else if is_run_name(name) {
            if block.runs.iter().any(|r| r.name == name) {
                return Err((line, format!("run `{name}` is defined twice")));
            }
            let args = parse_command(rest).map_err(|e| (line, e))?;
            block.runs.push(Run { name: name.to_string(), line, args });
        } else {
            return Err((line, format!("`{name}` is not a run name (a lowercase identifier) nor `expect`")));
        }
    }
    if block.runs.is_empty() || block.expects.is_empty() {
        return Err((first_line - 1, "an exercise needs at least one run and one `expect:` line".into()));
    }
    Ok(())
}

/// The chapter number of a file `NN-slug.md`, if it has one.
fn chapter_number(file: &str) -> Option<u32> {
    let name = Path::new(file).file_name()?.to_str()?;
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    (digits.len() == 2 && name[2..].starts_with('-')).then(|| digits.parse().ok()).flatten()
}

/// Checks an exercise heading: `### Exercise N.M: what to try`, N the
/// chapter's number when the file has one.
fn check_heading(heading: &str, file: &str) -> Result<(), String> {
    let rest = heading.strip_prefix("### Exercise ").ok_or_else(|| {
        format!("the heading above an exercise block must be `### Exercise N.M: what to try`, not `{heading}`")
    })?;
    let (number, title) =
        rest.split_once(':').ok_or_else(|| format!("`{heading}`: write `### Exercise N.M: what to try`"))?;
    let (n, m) = number.split_once('.').ok_or_else(|| format!("`{heading}`: the exercise number must be N.M"))?;
    let (n, m): (u32, u32) = match (n.parse(), m.parse()) {
        (Ok(n), Ok(m)) => (n, m),
        _ => return Err(format!("`{heading}`: the exercise number must be N.M")),
    };
    if m == 0 || title.trim().is_empty() {
        return Err(format!("`{heading}`: number exercises from 1 and say what to try"));
    }
    match chapter_number(file) {
        Some(chapter) if chapter != n => Err(format!("`{heading}` is in chapter {chapter}: number it {chapter}.{m}")),
        _ => Ok(()),
    }
}

/// Every `exercise` block of one markdown file. Each must sit under its
/// own `### Exercise N.M: ...` heading.
fn parse_markdown(file: &str, text: &str) -> Result<Vec<Block>, ParseError> {
    let err = |line: usize, message: String| ParseError { file: file.to_string(), line, message };
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut heading: Option<(usize, String)> = None;
    let mut heading_used = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        let fence: String = line.trim_start().chars().take_while(|&c| c == '`' || c == '~').collect();
        if fence.len() >= 3 {
            let info = line.trim_start()[fence.len()..].trim();
            let close = (i + 1..lines.len()).find(|&j| {
                let t = lines[j].trim();
                t.starts_with(&fence) && t.chars().all(|c| c == fence.chars().next().unwrap_or('`'))
            });
            let close =
                close.ok_or_else(|| err(i + 1, format!("the block opened here with {fence} is never closed")))?;
            if info == "exercise" {
                let (hline, htext) = heading.clone().ok_or_else(|| {
                    err(i + 1, "an exercise block needs a `### Exercise N.M: ...` heading above it".into())
                })?;
                if heading_used {
                    return Err(err(
                        i + 1,
                        format!("a second exercise block under `{htext}` (line {hline}): one block per exercise"),
                    ));
                }
                check_heading(&htext, file).map_err(|m| err(hline, m))?;
                let mut block =
                    Block { file: file.to_string(), line: i + 1, heading: htext, runs: vec![], expects: vec![] };
                parse_block_lines(&lines[i + 1..close], i + 2, &mut block).map_err(|(l, m)| err(l, m))?;
                heading_used = true;
                blocks.push(block);
            }
            i = close + 1;
            continue;
        }
        if line.starts_with('#') {
            heading = Some((i + 1, line.to_string()));
            heading_used = false;
        }
        i += 1;
    }
    Ok(blocks)
}

/// The guide's folder.
fn guide_dir() -> PathBuf {
    common::repo().join("docs/guide")
}

/// Every markdown file of the guide, by name, with its text.
fn guide_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(guide_dir())
        .expect("read docs/guide")
        .map(|e| e.expect("list docs/guide").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            let name = format!("docs/guide/{}", p.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {name}: {e}"));
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// Every block of the guide; panics listing every malformed one.
fn all_blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in guide_files() {
        match parse_markdown(&name, &text) {
            Ok(b) => blocks.extend(b),
            Err(e) => errors.push(e.to_string()),
        }
    }
    assert!(errors.is_empty(), "malformed exercise blocks:\n{}", errors.join("\n"));
    blocks
}

/// The arguments the test runs: `--out` (either form) replaced by `out`,
/// `--no-progress` added, and `--no-plots`: the plots do not change
/// summary.json and drawing them costs about a second a run.
fn test_args(args: &[String], out: &Path) -> Vec<String> {
    let mut result = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--out" {
            i += 2;
            continue;
        }
        if !a.starts_with("--out=") && a != "--no-progress" && a != "--no-plots" {
            result.push(a.clone());
        }
        i += 1;
    }
    result.push("--out".into());
    result.push(out.display().to_string());
    result.push("--no-progress".into());
    result.push("--no-plots".into());
    result
}

/// What one run left: its exit status and its summary.json.
struct Outcome {
    exit: i32,
    summary: Value,
}

/// Runs one block's commands in order; an error says which run failed how.
fn run_block(block: &Block) -> Result<BTreeMap<String, Outcome>, String> {
    let scratch = common::TempDir::new("guide");
    let mut outcomes = BTreeMap::new();
    for run in &block.runs {
        let out = scratch.path().join(&run.name);
        let args = test_args(&run.args, &out);
        let o = Command::new(common::bin())
            .args(&args)
            .current_dir(common::repo())
            .output()
            .expect("run the asyncsim binary");
        let exit = o.status.code().unwrap_or(-1);
        let summary_path = out.join("summary.json");
        let summary = std::fs::read_to_string(&summary_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| {
                format!(
                    "{}:{}: run `{}` wrote no summary.json:\n{}",
                    block.file,
                    run.line,
                    run.name,
                    common::describe(&o)
                )
            })?;
        outcomes.insert(run.name.clone(), Outcome { exit, summary });
    }
    Ok(outcomes)
}

/// The value of a side, or why it cannot be read.
fn value_of(side: &Side, outcomes: &BTreeMap<String, Outcome>) -> Result<f64, String> {
    let (factor, run, keys) = match side {
        Side::Number(n) => return Ok(*n),
        Side::Path { factor, run, keys } => (factor, run, keys),
    };
    let outcome = outcomes.get(run).ok_or_else(|| format!("no run `{run}`"))?;
    if keys.len() == 1 {
        return Ok(factor * f64::from(outcome.exit));
    }
    let variants = &outcome.summary["variants"];
    let mut v = variants.get(&keys[0]).ok_or_else(|| {
        let names: Vec<&String> = variants.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        format!("run `{run}` has no variant `{}` (it has {names:?})", keys[0])
    })?;
    for (i, key) in keys.iter().enumerate().skip(1) {
        match v.get(key) {
            Some(next) => v = next,
            None if keys[..=i].iter().any(|k| k.ends_with("_by_cause")) => return Ok(0.0),
            None => return Err(format!("`{side}`: run `{run}`'s summary.json has no key `{key}` here")),
        }
    }
    v.as_f64().map(|x| factor * x).ok_or_else(|| format!("`{side}` is {v}, not a number"))
}

/// Checks a block's expectations; each failure names the chapter, the
/// exercise, the expectation and both sides' values.
fn check_block(block: &Block) -> Vec<String> {
    let outcomes = match run_block(block) {
        Ok(o) => o,
        Err(e) => return vec![format!("{} ({}): {e}", block.file, block.heading)],
    };
    let mut failures = Vec::new();
    for e in &block.expects {
        let where_ = format!("{}:{} ({}): expect: {}", block.file, e.line, block.heading, e.text);
        match (value_of(&e.left, &outcomes), value_of(&e.right, &outcomes)) {
            (Ok(l), Ok(r)) if e.op.holds(l, r) => {}
            (Ok(l), Ok(r)) => {
                failures.push(format!("{where_}\n    failed: left {} = {l}, right {} = {r}", e.left, e.right))
            }
            (Err(m), _) | (_, Err(m)) => failures.push(format!("{where_}\n    cannot be read: {m}")),
        }
    }
    if !failures.is_empty() {
        let commands: Vec<String> =
            block.runs.iter().map(|r| format!("    {}: asyncsim {}", r.name, r.args.join(" "))).collect();
        failures.push(format!("  runs of that exercise:\n{}", commands.join("\n")));
    }
    failures
}

#[test]
fn every_exercise_of_the_guide_holds() {
    let blocks = all_blocks();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool of two threads");
    let failures: Vec<String> = pool.install(|| blocks.par_iter().flat_map(check_block).collect());
    assert!(failures.is_empty(), "{} exercise expectation(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// A chapter of `docs/guide/chapters.toml`.
#[derive(serde::Deserialize)]
struct Chapter {
    slug: String,
    title: String,
    scenarios: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Chapters {
    chapter: Vec<Chapter>,
}

fn chapters() -> Vec<Chapter> {
    let text = include_str!("../docs/guide/chapters.toml");
    toml::from_str::<Chapters>(text).expect("docs/guide/chapters.toml parses").chapter
}

/// Until the last commit of the guide's first half, only the chapters
/// already written are checked; then every chapter must exist.
const EVERY_CHAPTER_MUST_EXIST: bool = false;

/// What is wrong with one chapter's file, if anything.
fn chapter_problems(n: usize, chapter: &Chapter, blocks: &[Block]) -> Vec<String> {
    let file = format!("docs/guide/{n:02}-{}.md", chapter.slug);
    let Ok(text) = std::fs::read_to_string(common::repo().join(&file)) else {
        return if EVERY_CHAPTER_MUST_EXIST {
            vec![format!("chapter {n} ({}): {file} is missing", chapter.title)]
        } else {
            vec![]
        };
    };
    let mine: Vec<&Block> = blocks.iter().filter(|b| b.file == file).collect();
    let mut problems = Vec::new();
    if mine.len() < 2 {
        problems.push(format!("{file}: {} exercise block(s), at least two needed", mine.len()));
    }
    for s in &chapter.scenarios {
        if !text.contains(&format!("scenarios/{s}.toml")) {
            problems.push(format!("{file}: never names its scenario scenarios/{s}.toml"));
        }
    }
    let runs_one = mine
        .iter()
        .flat_map(|b| &b.runs)
        .any(|r| chapter.scenarios.iter().any(|s| r.args.get(1) == Some(&format!("scenarios/{s}.toml"))));
    if !runs_one {
        problems.push(format!("{file}: no exercise runs one of the chapter's scenarios {:?}", chapter.scenarios));
    }
    problems.extend(broken_links(&file, &text));
    problems
}

/// Relative links `](target)` of a guide file that lead nowhere. Links
/// into `out/` (the reader's own output) and to web pages are not checked;
/// nor, until every chapter must exist, links to other chapters and to the
/// guide's front page (the second half of the guide is written apart).
fn broken_links(file: &str, text: &str) -> Vec<String> {
    let dir = common::repo().join(file);
    let dir = dir.parent().expect("a guide file has a folder");
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for piece in line.split("](").skip(1) {
            let Some(end) = piece.find(')') else { continue };
            let (target, fragment) = piece[..end].split_once('#').unwrap_or((&piece[..end], ""));
            let external = target.contains("://") || target.starts_with("mailto:");
            if target.is_empty() || external || target.starts_with("out/") || target.contains("/out/") {
                continue;
            }
            let unwritten_chapter = !EVERY_CHAPTER_MUST_EXIST
                && !target.contains('/')
                && (target == "README.md" || chapter_number(target).is_some());
            let path = dir.join(target);
            if unwritten_chapter && !path.exists() {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Err(_) if !path.exists() => {
                    problems.push(format!("{file}:{}: the link `{target}` leads to no file", i + 1))
                }
                Ok(text) if !fragment.is_empty() && !anchors(&text).contains(&fragment.to_string()) => {
                    problems.push(format!("{file}:{}: `{target}` has no anchor `#{fragment}`", i + 1))
                }
                _ => {}
            }
        }
    }
    problems
}

/// The anchors a markdown file offers: its `<a id="...">` tags and its
/// headings' slugs as GitHub makes them (lower case, spaces to hyphens,
/// punctuation dropped).
fn anchors(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        for piece in line.split("<a id=\"").skip(1) {
            if let Some(end) = piece.find('"') {
                found.push(piece[..end].to_string());
            }
        }
        if line.starts_with('#') {
            let title = line.trim_start_matches('#').trim().to_lowercase();
            let slug: String = title
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            found.push(slug);
        }
    }
    found
}

#[test]
fn every_chapter_has_its_file_its_scenarios_and_two_exercises() {
    let blocks = all_blocks();
    let chapters = chapters();
    assert_eq!(chapters.len(), 23, "chapters.toml lists the 23 concepts of issue 18");
    let mut problems = Vec::new();
    for (i, chapter) in chapters.iter().enumerate() {
        problems.extend(chapter_problems(i + 1, chapter, &blocks));
    }
    let known: Vec<String> =
        chapters.iter().enumerate().map(|(i, c)| format!("docs/guide/{:02}-{}.md", i + 1, c.slug)).collect();
    for (name, _) in guide_files() {
        if chapter_number(&name).is_some() && !known.contains(&name) {
            problems.push(format!("{name} is not a chapter of chapters.toml (number and slug must match)"));
        }
    }
    assert!(problems.is_empty(), "the guide's chapters:\n{}", problems.join("\n"));
}

#[cfg(test)]
mod parser {
    use super::*;

    fn block(body: &str) -> Result<Vec<Block>, ParseError> {
        let text = format!("# Chapter\n\n### Exercise 6.1: try\n\n```exercise\n{body}\n```\n");
        parse_markdown("docs/guide/06-x.md", &text)
    }

    fn fails_at(body: &str, line: usize, words: &str) {
        let e = block(body).expect_err("a malformed block");
        assert_eq!((e.file.as_str(), e.line), ("docs/guide/06-x.md", line), "{e}");
        assert!(e.message.contains(words), "`{e}` should say `{words}`");
    }

    #[test]
    fn a_block_parses_runs_and_paths() {
        let b = block("before: asyncsim run scenarios/a.toml --seed 7 --out out/b\nexpect: before.v-1.lost_by_cause.network_loss >= 2 * before.v-1.lost\nexpect: before.exit == 0").unwrap();
        assert_eq!(b.len(), 1);
        let b = &b[0];
        assert_eq!((b.line, b.heading.as_str()), (5, "### Exercise 6.1: try"));
        assert_eq!(b.runs[0].args, ["run", "scenarios/a.toml", "--seed", "7", "--out", "out/b"]);
        let e = &b.expects[0];
        assert_eq!(e.line, 7);
        assert_eq!(e.op, Op::Ge);
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            e.left,
            Side::Path { factor: 1.0, run: "before".into(), keys: keys(&["v-1", "lost_by_cause", "network_loss"]) }
        );
        assert_eq!(e.right, Side::Path { factor: 2.0, run: "before".into(), keys: keys(&["v-1", "lost"]) });
        assert_eq!(b.expects[1].left, Side::Path { factor: 1.0, run: "before".into(), keys: keys(&["exit"]) });
        assert_eq!(b.expects[1].right, Side::Number(0.0));
    }

    #[test]
    fn numbers_and_factors() {
        assert_eq!(parse_side("0.5").unwrap(), Side::Number(0.5));
        assert_eq!(parse_side("-3").unwrap(), Side::Number(-3.0));
        assert_eq!(parse_side("1e3").unwrap(), Side::Number(1000.0));
        assert_eq!(parse_side("2 * 3").unwrap(), Side::Number(6.0));
        assert_eq!(
            parse_side("a.v.p99 * 1.5").unwrap(),
            Side::Path { factor: 1.5, run: "a".into(), keys: vec!["v".into(), "p99".into()] }
        );
        assert!(parse_side("inf").is_err());
        assert!(parse_side("a.v").is_err(), "a path names a run, a variant and a field");
        assert!(parse_side("a * b.v.x").is_err());
        assert!(parse_side("Run.v.x").is_err());
    }

    #[test]
    fn operators() {
        for (text, op) in [
            ("1 < 2", Op::Lt),
            ("1<=2", Op::Le),
            ("1 > 2", Op::Gt),
            ("1 >= 2", Op::Ge),
            ("1 == 2", Op::Eq),
            ("1 != 2", Op::Ne),
        ] {
            assert_eq!(parse_expect(text).unwrap().1, op, "{text}");
        }
        for bad in ["1 = 2", "1 => 2", "1 <> 2", "1 2", "1 < 2 < 3", "1 !== 2"] {
            assert!(parse_expect(bad).is_err(), "`{bad}` must not parse");
        }
        assert!(Op::Le.holds(2.0, 2.0) && !Op::Lt.holds(2.0, 2.0) && Op::Ne.holds(1.0, 2.0));
    }

    #[test]
    fn malformed_blocks_name_their_line() {
        fails_at("a: asyncsim run x.toml\nexpect: a.v.lost = 0", 7, "not a comparison");
        fails_at("a: asyncsim run x.toml\nexpect: b.v.lost == 0", 7, "no line above");
        fails_at("a: cargo run x.toml\nexpect: a.exit == 0", 6, "asyncsim run");
        fails_at("a: asyncsim check x.toml\nexpect: a.exit == 0", 6, "only `asyncsim run`");
        fails_at("a: asyncsim run 'x.toml\nexpect: a.exit == 0", 6, "unclosed");
        fails_at("Big: asyncsim run x.toml\nexpect: Big.exit == 0", 6, "not a run name");
        fails_at("a: asyncsim run x.toml\na: asyncsim run y.toml\nexpect: a.exit == 0", 7, "twice");
        fails_at("a: asyncsim run x.toml", 5, "at least one run and one");
        let e = parse_markdown(
            "docs/guide/06-x.md",
            "## Exercise 6.1: x\n```exercise\na: asyncsim run x\nexpect: a.exit == 0\n```\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_markdown(
            "docs/guide/06-x.md",
            "### Exercise 5.1: x\n```exercise\na: asyncsim run x\nexpect: a.exit == 0\n```\n",
        )
        .unwrap_err();
        assert!(e.message.contains("number it 6.1"), "{e}");
        let e =
            parse_markdown("docs/guide/06-x.md", "### Exercise 6.1: x\n```exercise\na: asyncsim run x\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn other_blocks_are_left_alone() {
        let text = "### Exercise 6.1: x\n````markdown\n```exercise\nnonsense\n```\n````\n```sh\nexpect: what\n```\n";
        assert!(parse_markdown("docs/guide/06-x.md", text).unwrap().is_empty());
    }

    #[test]
    fn words_split_like_a_shell() {
        let w = split_words(r#"asyncsim run "a b.toml" --set 'x.y=1 2' --set z="q\"r" plain\ word"#).unwrap();
        assert_eq!(w, ["asyncsim", "run", "a b.toml", "--set", "x.y=1 2", "--set", "z=q\"r", "plain word"]);
        assert!(split_words("asyncsim run x | tee y").is_err());
    }

    #[test]
    fn anchors_are_ids_and_heading_slugs() {
        let a = anchors("<a id=\"fan-out\"></a>\n### Fan-out: publish/subscribe\n## 1. The ledger\n");
        assert_eq!(a, ["fan-out", "fan-out-publishsubscribe", "1-the-ledger"]);
    }

    #[test]
    fn the_out_folder_is_replaced() {
        let args: Vec<String> =
            ["run", "s.toml", "--out", "out/s", "--seed", "3"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            test_args(&args, Path::new("/t")),
            ["run", "s.toml", "--seed", "3", "--out", "/t", "--no-progress", "--no-plots"]
        );
        let args: Vec<String> = ["run", "s.toml", "--out=out/s"].iter().map(|s| s.to_string()).collect();
        assert_eq!(test_args(&args, Path::new("/t")), ["run", "s.toml", "--out", "/t", "--no-progress", "--no-plots"]);
    }

    #[test]
    fn missing_by_cause_keys_read_zero() {
        let summary = serde_json::json!({"variants": {"v": {"lost": 3, "domains": {"db": {"lost": 1}}, "lost_by_cause": {"network_loss": 3}}}});
        let outcomes = BTreeMap::from([("a".to_string(), Outcome { exit: 1, summary })]);
        let side = |s: &str| parse_side(s).unwrap();
        assert_eq!(value_of(&side("a.v.lost_by_cause.network_loss"), &outcomes), Ok(3.0));
        assert_eq!(value_of(&side("a.v.lost_by_cause.consumer_crash"), &outcomes), Ok(0.0));
        assert_eq!(value_of(&side("a.v.duplicated_by_cause.producer_retry"), &outcomes), Ok(0.0));
        assert_eq!(value_of(&side("a.v.domains.db.lost_by_cause.x"), &outcomes), Ok(0.0));
        assert_eq!(value_of(&side("2 * a.v.domains.db.lost"), &outcomes), Ok(2.0));
        assert_eq!(value_of(&side("a.exit"), &outcomes), Ok(1.0));
        assert!(value_of(&side("a.v.lostt"), &outcomes).unwrap_err().contains("no key `lostt`"));
        assert!(value_of(&side("a.w.lost"), &outcomes).unwrap_err().contains("no variant `w`"));
        assert!(
            value_of(&side("a.v.domains.x.lost_by_cause.y"), &outcomes).is_err(),
            "only a by-cause map's keys default to 0"
        );
        assert!(value_of(&side("a.v.domains"), &outcomes).unwrap_err().contains("not a number"));
    }
}

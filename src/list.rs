//! `asyncsim list`: the bundled scenarios grouped by concept. It prints the
//! guide's chapters in reading order ([`crate::chapters`]), each with its
//! number, title and file, then its scenarios in the chapter's order (their
//! file, concept and variants), then any bundled scenario no chapter names
//! (none while chapters.toml is up to date). `--json` prints the same.

use crate::chapters::chapters;
use anyhow::Result;
use serde::Serialize;
use std::process::ExitCode;

/// Arguments of `asyncsim list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Print JSON (the same chapters and scenarios) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A bundled scenario, as `list` shows it.
#[derive(Serialize)]
struct Listed {
    name: String,
    file: String,
    concept: String,
    variants: Vec<String>,
}

/// A chapter, as `list --json` shows it.
#[derive(Serialize)]
struct ListedChapter {
    number: usize,
    title: String,
    file: String,
    scenarios: Vec<Listed>,
}

/// Every bundled scenario, read and checked, in file order.
fn bundled() -> Result<Vec<Listed>> {
    let mut all = Vec::new();
    for file in crate::run::bundled_files()? {
        let (scenario, _) = crate::run::load(&file, &[])?;
        all.push(Listed {
            name: scenario.config.name.clone(),
            file: file.display().to_string(),
            concept: scenario.config.concept.clone(),
            variants: scenario.variants().iter().map(|v| v.name.clone()).collect(),
        });
    }
    Ok(all)
}

/// `asyncsim list`: the chapters in reading order, each with its
/// scenarios in the chapter's order, then the bundled scenarios no chapter
/// names (none, when chapters.toml is up to date).
pub fn list(args: &ListArgs) -> Result<ExitCode> {
    let mut left = bundled()?;
    let mut grouped = Vec::new();
    for (i, c) in chapters().iter().enumerate() {
        let mut scenarios = Vec::new();
        for name in &c.scenarios {
            if let Some(at) = left.iter().position(|l| l.name == *name) {
                scenarios.push(left.remove(at));
            }
        }
        grouped.push(ListedChapter { number: i + 1, title: c.title.clone(), file: c.file(i + 1), scenarios });
    }
    if args.json {
        let json = serde_json::json!({ "chapters": grouped, "other": left });
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    for c in &grouped {
        outln!("Chapter {:02}: {}  ({})", c.number, c.title, c.file);
        print_scenarios(&c.scenarios);
        outln!();
    }
    if !left.is_empty() {
        outln!("In no chapter of the guide:");
        print_scenarios(&left);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_scenarios(scenarios: &[Listed]) {
    for s in scenarios {
        outln!("  {:<36} {}", s.file, s.concept);
        outln!("  {:<36}   variants: {}", "", s.variants.join(", "));
    }
}

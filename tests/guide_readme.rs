//! The guide's front page (`docs/guide/README.md`) against the chapter
//! list (`docs/guide/chapters.toml`) and the chapters themselves, so the
//! front page cannot drift from either.
//!
//! Its coverage table (the section `## Coverage`) has one row per chapter,
//! in the order of chapters.toml, each `| concept | chapter | scenario(s) |
//! plot | exercises |`: the chapter cell links the chapter's file
//! `NN-slug.md`; the scenario cell names exactly the chapter's scenarios,
//! in order, each in backticks; every plot the plot cell names (`*.png`) is
//! one the chapter tells the reader to look at; the exercise cell lists
//! the chapter's exercises as `**N.1**`, `**N.2**`, ... in order, one for
//! each `exercise` block of the chapter and each with its `### Exercise
//! N.M:` heading there. The chapters list (the section `## The chapters`)
//! links every chapter once, in order. And the project README points to
//! the guide.
//!
//! A row whose chapter file does not exist yet (the two halves of the
//! guide are written apart) is checked against chapters.toml only, and
//! must list at least two exercises; `tests/guide.rs` is the one that
//! insists every chapter exists.
//!
//! Reads files only: no run, no build, a few milliseconds.

use crate::common;

/// A chapter of chapters.toml: its file name, title and scenarios.
struct Chapter {
    file: String,
    title: String,
    scenarios: Vec<String>,
}

fn chapters() -> Vec<Chapter> {
    let text = include_str!("../docs/guide/chapters.toml");
    let value: toml::Value = toml::from_str(text).expect("docs/guide/chapters.toml parses");
    let list = value.get("chapter").and_then(|c| c.as_array()).expect("chapters.toml has [[chapter]] tables");
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let field = |k: &str| {
                c.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("chapter {} has a `{k}`", i + 1)).to_string()
            };
            let scenarios = c.get("scenarios").and_then(|v| v.as_array()).expect("a chapter has `scenarios`");
            Chapter {
                file: format!("{:02}-{}.md", i + 1, field("slug")),
                title: field("title"),
                scenarios: scenarios
                    .iter()
                    .map(|s| s.as_str().expect("a scenario name is a string").to_string())
                    .collect(),
            }
        })
        .collect()
}

fn readme() -> String {
    std::fs::read_to_string(common::repo().join("docs/guide/README.md")).expect("docs/guide/README.md exists")
}

/// The lines of the section that starts with the heading `title`, up to the
/// next heading of the same or a higher level.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| l.trim() != title);
    let Some(heading) = lines.next() else { return Vec::new() };
    let level = heading.chars().take_while(|c| *c == '#').count();
    lines.take_while(|l| !(l.starts_with('#') && l.chars().take_while(|c| *c == '#').count() <= level)).collect()
}

/// The body rows of the first table of `lines` (its header and separator
/// dropped), each split into its trimmed cells.
fn table_rows(lines: &[&str]) -> Vec<Vec<String>> {
    let table: Vec<&str> =
        lines.iter().map(|l| l.trim()).skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
    table
        .iter()
        .skip(2)
        .map(|row| {
            let inner = row.trim_start_matches('|').trim_end_matches('|');
            inner.split('|').map(|c| c.trim().to_string()).collect()
        })
        .collect()
}

/// The words written in backticks in `text`, in order.
fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The exercise numbers `**N.M**` of a cell that belong to chapter `n`,
/// as M, in order; and whether the cell holds numbers of other chapters.
fn exercise_numbers(cell: &str, n: usize) -> (Vec<u32>, bool) {
    let mut mine = Vec::new();
    let mut foreign = false;
    for piece in cell.split("**").skip(1).step_by(2) {
        match piece.split_once('.') {
            Some((a, b)) if a == n.to_string() => mine.push(b.parse().unwrap_or(0)),
            Some((a, b)) if a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok() => foreign = true,
            _ => {}
        }
    }
    (mine, foreign)
}

/// How many exercise blocks a chapter holds.
fn exercise_blocks(text: &str) -> usize {
    text.lines().filter(|l| l.trim_end() == "```exercise").count()
}

/// What is wrong with the coverage row of chapter `n`, if anything.
fn row_problems(n: usize, chapter: &Chapter, row: &[String]) -> Vec<String> {
    let at = format!("coverage row {n} ({})", chapter.title);
    if row.len() != 5 {
        return vec![format!(
            "{at}: {} cells, expected 5 (concept | chapter | scenario(s) | plot | exercises)",
            row.len()
        )];
    }
    let mut problems = Vec::new();
    if row[0].is_empty() {
        problems.push(format!("{at}: the concept cell is empty"));
    }
    if !row[1].contains(&format!("({})", chapter.file)) {
        problems.push(format!("{at}: the chapter cell `{}` does not link {}", row[1], chapter.file));
    }
    if backticked(&row[2]) != chapter.scenarios {
        problems.push(format!(
            "{at}: the scenario cell names {:?}, chapters.toml {:?}",
            backticked(&row[2]),
            chapter.scenarios
        ));
    }
    let plots: Vec<String> = backticked(&row[3]).into_iter().filter(|p| p.ends_with(".png")).collect();
    if plots.is_empty() {
        problems.push(format!("{at}: the plot cell names no plot (`NAME.png`)"));
    }
    let (numbers, foreign) = exercise_numbers(&row[4], n);
    if foreign {
        problems.push(format!("{at}: the exercise cell lists another chapter's exercise"));
    }
    if numbers != (1..=numbers.len() as u32).collect::<Vec<_>>() || numbers.len() < 2 {
        problems.push(format!(
            "{at}: the exercise cell lists {numbers:?} as **{n}.M**; expected {n}.1, {n}.2, ... (at least two)"
        ));
    }
    let Ok(text) = std::fs::read_to_string(common::repo().join("docs/guide").join(&chapter.file)) else {
        return problems;
    };
    let blocks = exercise_blocks(&text);
    if numbers.len() != blocks {
        problems.push(format!(
            "{at}: lists {} exercise(s), {} holds {blocks} exercise block(s)",
            numbers.len(),
            chapter.file
        ));
    }
    for m in &numbers {
        if !text.lines().any(|l| l.starts_with(&format!("### Exercise {n}.{m}:"))) {
            problems.push(format!("{at}: exercise {n}.{m} has no `### Exercise {n}.{m}:` heading in {}", chapter.file));
        }
    }
    for p in plots {
        if !text.contains(&p) {
            problems.push(format!("{at}: plot `{p}` is not one {} shows", chapter.file));
        }
    }
    problems
}

#[test]
fn the_coverage_table_has_one_true_row_per_chapter_in_order() {
    let chapters = chapters();
    let text = readme();
    let rows = table_rows(&section(&text, "## Coverage"));
    assert_eq!(
        rows.len(),
        chapters.len(),
        "docs/guide/README.md's coverage table: one row per chapter of chapters.toml"
    );
    let problems: Vec<String> =
        chapters.iter().zip(&rows).enumerate().flat_map(|(i, (c, row))| row_problems(i + 1, c, row)).collect();
    assert!(problems.is_empty(), "docs/guide/README.md's coverage table:\n{}", problems.join("\n"));
}

#[test]
fn the_chapters_list_links_every_chapter_once_in_order() {
    let text = readme();
    let list = section(&text, "## The chapters").join("\n");
    let mut from = 0;
    for (i, c) in chapters().iter().enumerate() {
        let link = format!("]({})", c.file);
        assert_eq!(list.matches(&link).count(), 1, "`## The chapters` links chapter {} ({}) once", i + 1, c.file);
        let at = list.find(&link).expect("counted above");
        assert!(at >= from, "`## The chapters` lists {} after the chapter that follows it", c.file);
        from = at;
    }
}

#[test]
fn the_project_readme_points_to_the_guide() {
    let text = std::fs::read_to_string(common::repo().join("README.md")).expect("README.md exists");
    let head: String = text.lines().take(40).collect::<Vec<_>>().join("\n");
    assert!(
        head.contains("](docs/guide/README.md)"),
        "README.md links docs/guide/README.md near the top (first 40 lines)"
    );
}

#[cfg(test)]
mod parts {
    use super::*;

    #[test]
    fn a_section_ends_at_the_next_heading_of_its_level() {
        let text = "# Top\n## A\na1\n### A.1\na2\n## B\nb1\n";
        assert_eq!(section(text, "## A"), ["a1", "### A.1", "a2"]);
        assert_eq!(section(text, "## B"), ["b1"]);
        assert!(section(text, "## C").is_empty());
    }

    #[test]
    fn table_rows_drop_the_header_and_split_cells() {
        let lines = ["text", "| a | b |", "|---|---|", "| 1 | `x` and `y` |", "| 2 | |", "after"];
        assert_eq!(table_rows(&lines), [vec!["1", "`x` and `y`"], vec!["2", ""]]);
        assert_eq!(backticked("`x` and `y`"), ["x", "y"]);
    }

    #[test]
    fn exercise_numbers_are_read_per_chapter() {
        assert_eq!(exercise_numbers("**13.1** a; **13.2** b", 13), (vec![1, 2], false));
        assert_eq!(exercise_numbers("**13.1** a; **3.2** b", 13), (vec![1], true));
        assert_eq!(exercise_numbers("**bold** text, **13.1** a", 13), (vec![1], false));
    }

    #[test]
    fn a_row_that_disagrees_with_its_chapter_is_refused() {
        let c = Chapter { file: "99-none.md".into(), title: "T".into(), scenarios: vec!["a".into(), "b".into()] };
        let good: Vec<String> =
            ["C", "[99](99-none.md)", "`a`, `b`", "`x.png`", "**99.1** p; **99.2** q"].map(String::from).into();
        assert!(row_problems(99, &c, &good).is_empty(), "{:?}", row_problems(99, &c, &good));
        let mut wrong = good.clone();
        wrong[2] = "`b`, `a`".into();
        wrong[4] = "**99.1** p; **99.3** q".into();
        assert_eq!(row_problems(99, &c, &wrong).len(), 2);
        assert_eq!(row_problems(99, &c, &good[..4]).len(), 1, "a short row is one problem");
    }
}

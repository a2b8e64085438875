//! `asyncsim list`, grouped by the guide's chapters (issue 18), through
//! the real binary: every bundled scenario listed exactly once, under its
//! chapter, the chapters and their scenarios in `docs/guide/chapters.toml`'s
//! order; and chapters.toml itself consistent with the bundled scenarios.

use crate::common;

use common::{asyncsim, describe, repo, stdout};
use serde_json::Value;
use std::collections::BTreeMap;

/// A chapter of chapters.toml: (slug, title, scenarios).
type Chapter = (String, String, Vec<String>);

/// The guide's chapters, as the test reads chapters.toml.
fn chapters() -> Vec<Chapter> {
    let text = std::fs::read_to_string(repo().join("docs/guide/chapters.toml")).unwrap();
    let parsed: toml::Value = toml::from_str(&text).expect("chapters.toml is TOML");
    let list = parsed["chapter"].as_array().expect("[[chapter]] tables");
    list.iter()
        .map(|c| {
            let scenarios = c["scenarios"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string());
            (c["slug"].as_str().unwrap().to_string(), c["title"].as_str().unwrap().to_string(), scenarios.collect())
        })
        .collect()
}

/// The bundled scenarios: file stem and the `name` the file gives.
fn bundled() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: toml::Value = toml::from_str(&text).unwrap();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v["name"].as_str().unwrap().to_string())
        })
        .collect();
    all.sort();
    all
}

#[test]
fn chapters_toml_puts_every_bundled_scenario_in_exactly_one_chapter() {
    let chapters = chapters();
    let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (slug, title, scenarios) in &chapters {
        assert!(!title.trim().is_empty() && !scenarios.is_empty(), "chapter {slug}: a title and a scenario");
        assert!(
            slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "chapter {slug}: a slug makes a plain file name"
        );
        for s in scenarios {
            seen.entry(s).or_default().push(slug);
        }
    }
    let mut slugs: Vec<&String> = chapters.iter().map(|c| &c.0).collect();
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), chapters.len(), "two chapters share a slug");
    let bundled = bundled();
    for (stem, name) in &bundled {
        assert_eq!(stem, name, "scenarios/{stem}.toml is named `{name}`: chapters.toml names scenarios by file");
        let homes = seen.get(name.as_str()).cloned().unwrap_or_default();
        assert_eq!(homes.len(), 1, "bundled scenario {name} must be in exactly one chapter, is in {homes:?}");
    }
    for name in seen.keys() {
        assert!(bundled.iter().any(|(_, n)| n == name), "chapters.toml names {name}, which is not a bundled scenario");
    }
}

/// Checks that `listed` (chapter number, title, file, scenario names, in
/// the order printed) is chapters.toml's order, with every bundled
/// scenario once.
fn check_grouping(listed: &[(usize, String, String, Vec<String>)]) {
    let chapters = chapters();
    assert_eq!(listed.len(), chapters.len(), "one group per chapter");
    for (i, ((n, title, file, names), (slug, want_title, want))) in listed.iter().zip(&chapters).enumerate() {
        assert_eq!(*n, i + 1, "chapters in reading order");
        assert_eq!(title, want_title);
        assert_eq!(*file, format!("docs/guide/{:02}-{slug}.md", i + 1));
        assert_eq!(names, want, "chapter {n}'s scenarios, in chapters.toml's order");
    }
    let mut all: Vec<&String> = listed.iter().flat_map(|c| &c.3).collect();
    all.sort();
    let names: Vec<String> = bundled().into_iter().map(|(_, n)| n).collect();
    assert_eq!(all, names.iter().collect::<Vec<_>>(), "every bundled scenario exactly once");
}

#[test]
fn list_prints_the_chapters_in_order_each_with_its_scenarios() {
    let o = asyncsim(&["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let text = stdout(&o);
    let mut listed: Vec<(usize, String, String, Vec<String>)> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        assert!(!line.starts_with("In no chapter"), "a bundled scenario is in no chapter:\n{text}");
        if let Some(rest) = line.strip_prefix("Chapter ") {
            let (n, rest) = rest.split_once(": ").expect("Chapter NN: title  (file)");
            let (title, file) = rest.rsplit_once("  (").expect("the chapter's file in brackets");
            listed.push((n.parse().unwrap(), title.to_string(), file.trim_end_matches(')').to_string(), Vec::new()));
        } else if let Some(file) = line.trim_start().strip_prefix("scenarios/") {
            // A scenario: its file and concept, then its variants.
            let name = file.split(".toml").next().unwrap().to_string();
            let concept = file.split_once(".toml").unwrap().1.trim();
            assert!(!concept.is_empty(), "{name}: its concept on its line");
            let variants = lines.next().unwrap_or_default();
            assert!(variants.trim_start().starts_with("variants: "), "{name}: its variants next: {variants}");
            listed.last_mut().expect("scenarios come under a chapter").3.push(name);
        }
    }
    check_grouping(&listed);
}

#[test]
fn list_json_gives_the_same_grouping() {
    let o = asyncsim(&["list", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let json: Value = serde_json::from_str(&stdout(&o)).expect("list --json prints JSON");
    assert_eq!(json["other"].as_array().map(Vec::len), Some(0), "no scenario outside the chapters");
    let listed: Vec<(usize, String, String, Vec<String>)> = json["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let scenarios = c["scenarios"].as_array().unwrap();
            for s in scenarios {
                let file = s["file"].as_str().unwrap();
                assert!(repo().join(file).is_file() || std::path::Path::new(file).is_file(), "{file}");
                assert!(!s["concept"].as_str().unwrap().is_empty() && !s["variants"].as_array().unwrap().is_empty());
            }
            (
                c["number"].as_u64().unwrap() as usize,
                c["title"].as_str().unwrap().to_string(),
                c["file"].as_str().unwrap().to_string(),
                scenarios.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    check_grouping(&listed);
}

//! Behaviour is pinned, and every loss and duplicate is explained: the real
//! CLI runs every bundled scenario at seeds 1 to 5, and each run's
//! `summary.json` must be byte for byte the one stored in
//! `tests/reference/`, and must give a cause for every loss and every
//! duplicate (the causes add up to `lost` and `duplicated`, per variant and
//! per effect domain, and none is `unexplained`).
//!
//! A change that alters behaviour on purpose regenerates the references
//! with `scripts/compare-summaries.sh --update` in the same commit, and
//! says why. The runs share the machine's cores, as independent processes.

use crate::common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The seeds every bundled scenario is pinned at.
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// One run to check: a scenario file at a seed.
struct Job {
    file: PathBuf,
    name: String,
    seed: u64,
}

fn jobs() -> Vec<Job> {
    let dir = common::repo().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut jobs = Vec::new();
    for file in files {
        let name = file.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        jobs.extend(SEEDS.iter().map(|&seed| Job { file: file.clone(), name: name.clone(), seed }));
    }
    jobs
}

/// Runs one job and returns what is wrong with it, if anything.
fn check(job: &Job) -> Option<String> {
    let at = format!("{} --seed {}", job.name, job.seed);
    let out = common::TempDir::new(&format!("ref-{}-{}", job.name, job.seed));
    let run = Command::new(common::bin())
        .arg("run")
        .arg(&job.file)
        .args(["--seed", &job.seed.to_string(), "--no-plots", "--out"])
        .arg(out.path())
        .current_dir(common::repo())
        .output()
        .expect("run the asyncsim binary");
    // Exit 1 (an expectation failed at this seed) is a result like any other.
    if run.status.code().is_none_or(|c| c > 1) {
        return Some(format!("{at}: did not run: {}", common::describe(&run)));
    }
    let got = std::fs::read(out.path().join("summary.json")).expect("summary.json is written");
    let stored = common::repo().join("tests/reference").join(format!("{}-seed{}.json", job.name, job.seed));
    match std::fs::read(&stored) {
        Err(_) => {
            return Some(format!("{at}: no reference {} (scripts/compare-summaries.sh --update)", stored.display()))
        }
        Ok(want) if want != got => return Some(format!("{at}: summary.json differs from {}", stored.display())),
        Ok(_) => {}
    }
    let summary: Value = serde_json::from_slice(&got).expect("summary.json is JSON");
    causes_explained(&summary).err().map(|e| format!("{at}: {e}"))
}

/// Every variant's causes add up to its losses and duplicates, overall and
/// in each effect domain, with no cause counted zero and none unexplained.
fn causes_explained(summary: &Value) -> Result<(), String> {
    let variants = summary["variants"].as_object().ok_or("no variants")?;
    for (variant, v) in variants {
        let mut places = vec![("all".to_string(), v)];
        if let Some(domains) = v["domains"].as_object() {
            places.extend(domains.iter().map(|(d, dv)| (format!("domain {d}"), dv)));
        }
        for (place, p) in places {
            for (total, by) in [("lost", "lost_by_cause"), ("duplicated", "duplicated_by_cause")] {
                let causes = p[by].as_object().ok_or(format!("{variant} {place}: no {by}"))?;
                let counts: Vec<u64> = causes.values().filter_map(Value::as_u64).collect();
                let sum: u64 = counts.iter().sum();
                if Some(sum) != p[total].as_u64() || counts.contains(&0) || causes.contains_key("unexplained") {
                    return Err(format!("{variant} {place}: {total} {} by {:?}", p[total], causes));
                }
            }
        }
    }
    Ok(())
}

/// Runs `jobs` on as many threads as the machine has cores.
fn run_all(jobs: Vec<Job>) -> Vec<String> {
    let queue = Mutex::new(jobs);
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some(job) = queue.lock().expect("queue").pop() else { break };
                if let Some(f) = check(&job) {
                    failures.lock().expect("failures").push(f);
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failures");
    failures.sort();
    failures
}

#[test]
fn every_bundled_scenario_gives_its_stored_summary_and_explains_its_losses() {
    let jobs = jobs();
    let scenarios = jobs.len() / SEEDS.len();
    assert!(scenarios >= 13, "the bundled scenarios are found ({scenarios})");
    let failures = run_all(jobs);
    assert!(failures.is_empty(), "{} runs failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_causes_check_catches_a_loss_without_a_cause() {
    let good = serde_json::json!({"variants": {"v": {
        "lost": 3, "lost_by_cause": {"crash": 3}, "duplicated": 0, "duplicated_by_cause": {},
        "domains": {"db": {"lost": 3, "lost_by_cause": {"crash": 3}, "duplicated": 0, "duplicated_by_cause": {}}}
    }}});
    assert_eq!(causes_explained(&good), Ok(()));
    let mut short = good.clone();
    short["variants"]["v"]["domains"]["db"]["lost_by_cause"]["crash"] = 2.into();
    assert!(causes_explained(&short).is_err());
    let mut unexplained = good.clone();
    unexplained["variants"]["v"]["lost_by_cause"] = serde_json::json!({"unexplained": 3});
    assert!(causes_explained(&unexplained).is_err());
}

/// Stored references are all of bundled scenarios: none is left over from
/// a renamed or removed one.
#[test]
fn every_stored_reference_belongs_to_a_bundled_scenario() {
    let names: Vec<String> = jobs().iter().map(|j| format!("{}-seed{}.json", j.name, j.seed)).collect();
    let dir: &Path = &common::repo().join("tests/reference");
    for e in std::fs::read_dir(dir).expect("tests/reference").flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        assert!(names.contains(&f), "tests/reference/{f} matches no bundled scenario and seed");
    }
}

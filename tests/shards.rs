//! Past one machine: `sweep` and `check` run in shards (`--shard I/N`) and
//! joined by `asyncsim merge` give the single run's output, byte for byte
//! (stdout, exit status, every file); `--jobs` changes nothing either; the
//! job files in `deploy/` run through the local driver (the Slurm array
//! with Slurm's variables, the Kubernetes Indexed Job with
//! JOB_COMPLETION_INDEX) and merge to the same; the Kubernetes YAML is
//! linted against a typed subset of the batch/v1 schema and the sbatch
//! directives are parsed; merge refuses partials that do not belong
//! together, naming the file; the progress bar of many runs is drawn on a
//! terminal only.

use crate::common;

use common::{asyncsim, bin, describe, repo, stderr, TempDir};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A small M/M/1 with two variants (mean service 1 ms, 0.8 ms): a run is a
/// few hundred messages, so a sweep of a dozen runs takes well under a
/// second, and the producer's name matches the deploy files' default sweep.
const TINY: &str = r#"
name = "tiny"
concept = "a small M/M/1, for the shard tests"
seed = 1

[run]
drain_ms = 5_000

[network]
latency = { dist = "constant", ms = 0 }

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 500 }
messages = 300

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
prefetch = 1
processing = { dist = "exponential", mean_ms = 1.0 }

[variants.one]
set = { "consumers.consumer.processing" = { dist = "exponential", mean_ms = 1.0 } }

[variants.two]
set = { "consumers.consumer.processing" = { dist = "exponential", mean_ms = 0.8 } }
"#;

/// The swept parameter of the tests, and the metrics reported.
const SWEEP: &str = "producers.producer.arrival.rate_per_s=300..900:4";

/// Every file under `dir`, by path relative to it, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read an output folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                walk(root, &path, into);
            } else {
                let bytes = std::fs::read(&path).expect("read an output file");
                into.insert(path.strip_prefix(root).expect("under root").to_path_buf(), bytes);
            }
        }
    }
    let mut all = BTreeMap::new();
    walk(dir, dir, &mut all);
    all
}

/// What a command gave: exit status, stdout, and every file it wrote.
#[derive(Debug, PartialEq)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

/// Runs `args` (which write into `out`), then moves `out` aside so that
/// the next command can write into the same path: outputs that name their
/// folder then compare equal.
fn take(o: &Output, out: &Path) -> Outcome {
    assert!(!common::stderr(o).contains("panicked"), "{}", describe(o));
    // A check that finds nothing writes no file.
    let files = if out.is_dir() { files(out) } else { BTreeMap::new() };
    let got = Outcome { code: o.status.code(), stdout: common::stdout(o), files };
    let _ = std::fs::remove_dir_all(out);
    got
}

/// Asserts two results equal, naming the first file that differs.
fn assert_same(single: &Outcome, merged: &Outcome, what: &str) {
    assert_eq!(single.code, merged.code, "{what}: exit status");
    assert_eq!(single.stdout, merged.stdout, "{what}: stdout");
    let names = |r: &Outcome| r.files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(single), names(merged), "{what}: the same files");
    for (name, bytes) in &single.files {
        assert!(merged.files[name] == *bytes, "{what}: {} differs", name.display());
    }
}

/// Runs `cmd` (sweep or check arguments, without --out/--shard) whole into
/// `dir/out`, then in `n` shards joined by merge into the same path;
/// returns both results.
fn single_and_merged(dir: &TempDir, cmd: &[String], n: usize) -> (Outcome, Outcome) {
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let single = take(&asyncsim(&[cmd, &["--out".into(), out_s.clone()]].concat()), &out);
    let mut shards = Vec::new();
    // In reverse: the order shards run and are given in does not matter.
    for i in (1..=n).rev() {
        let shard_dir = dir.path().join(format!("shard-{i}"));
        let extra = ["--shard".into(), format!("{i}/{n}"), "--out".into(), shard_dir.display().to_string()];
        let o = asyncsim(&[cmd, &extra].concat());
        assert_eq!(o.status.code(), Some(0), "a shard writes its partial and exits 0:\n{}", describe(&o));
        assert!(shard_dir.join("partial.json").is_file(), "shard {i}/{n} wrote partial.json");
        shards.push(shard_dir.display().to_string());
    }
    let merge: Vec<String> = ["merge".into()].into_iter().chain(shards).chain(["--out".into(), out_s]).collect();
    let merged = take(&asyncsim(&merge), &out);
    (single, merged)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn sweep_cmd(scenario: &Path, extra: &[&str]) -> Vec<String> {
    let file = scenario.display().to_string();
    let base = ["sweep", &file, "--set", SWEEP, "--seeds", "3", "--metric", "latency_ms.p99", "--no-progress"];
    strings(&[&base[..], extra].concat())
}

#[test]
fn a_sweep_in_three_shards_merges_to_the_single_run_byte_for_byte() {
    let dir = TempDir::new("shards-sweep");
    let tiny = dir.write("tiny.toml", TINY);
    let (single, merged) = single_and_merged(&dir, &sweep_cmd(&tiny, &[]), 3);
    assert_eq!(single.code, Some(0), "the sweep ran: {}", single.stdout);
    assert!(single.files.contains_key(Path::new("sweep.csv")), "the sweep wrote its CSV");
    assert_same(&single, &merged, "sweep, 3 shards");
}

#[test]
fn a_sweep_with_one_job_equals_one_with_two() {
    let dir = TempDir::new("shards-jobs");
    let tiny = dir.write("tiny.toml", TINY);
    let out = dir.path().join("out");
    let run = |jobs: &str| {
        let mut cmd = sweep_cmd(&tiny, &["--jobs", jobs]);
        cmd.extend(["--out".into(), out.display().to_string()]);
        take(&asyncsim(&cmd), &out)
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(one.code, Some(0), "{}", one.stdout);
    assert_same(&one, &two, "sweep, --jobs 1 and 2");
}

/// `check` on delivery-guarantees with `args`, `runs` runs.
fn check_cmd(variant: &str, runs: &str, extra: &[&str]) -> Vec<String> {
    let base = ["check", "scenarios/delivery-guarantees.toml", "--variant", variant, "--invariant", "no-loss"];
    strings(&[&base[..], &["--runs", runs, "--no-progress"], extra].concat())
}

#[test]
fn a_check_that_finds_a_violation_merges_to_the_single_run_byte_for_byte() {
    // At most once, with the scenario's own loss kept: runs lose messages.
    let dir = TempDir::new("shards-check-bad");
    let (single, merged) = single_and_merged(&dir, &check_cmd("at-most-once", "16", &[]), 3);
    assert_eq!(single.code, Some(1), "a violation exits 1: {}", single.stdout);
    assert_same(&single, &merged, "check finding a violation, 3 shards");
}

#[test]
fn a_check_that_finds_none_merges_to_the_single_run_byte_for_byte() {
    let dir = TempDir::new("shards-check-good");
    let cmd = check_cmd("exactly-once", "16", &["--set", "network.loss_probability=0", "--set", "faults=[]"]);
    let (single, merged) = single_and_merged(&dir, &cmd, 3);
    assert_eq!(single.code, Some(0), "no violation exits 0: {}", single.stdout);
    assert_same(&single, &merged, "check finding nothing, 3 shards");
}

// ---- the job files in deploy/ ----

/// The `#SBATCH` directives of a batch script, as sbatch reads them: from
/// the top, up to the first line that is neither a comment nor blank;
/// `--name=value` or `--name`. Panics on any other form.
fn sbatch_directives(script: &Path) -> Vec<(String, Option<String>)> {
    let text = std::fs::read_to_string(script).expect("read the sbatch file");
    assert!(text.starts_with("#!/bin/bash\n"), "{}: a bash script", script.display());
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("#SBATCH") {
            let arg = rest.trim();
            assert!(arg.starts_with("--") && !arg.contains(' '), "{}: `{line}` is one --option", script.display());
            let (name, value) = match arg[2..].split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg[2..].to_string(), None),
            };
            out.push((name, value));
        } else if !t.is_empty() && !t.starts_with('#') {
            break;
        }
    }
    // A directive after the first command would be silently ignored.
    let after =
        text.lines().skip_while(|l| l.trim().is_empty() || l.trim().starts_with('#')).any(|l| l.contains("#SBATCH"));
    assert!(!after, "{}: every #SBATCH line comes before the first command", script.display());
    out
}

/// Checks one directive's value by the rules of sbatch's man page for the
/// options the deploy files use.
fn check_directive(name: &str, value: Option<&str>) {
    let v = value.unwrap_or_else(|| panic!("--{name} takes a value"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match name {
        "job-name" | "output" => assert!(!v.is_empty()),
        "cpus-per-task" => assert!(digits(v) && v != "0", "--cpus-per-task={v}"),
        // [days-]hours:minutes:seconds, or minutes.
        "time" => {
            let hms = v.rsplit('-').next().unwrap_or(v);
            assert!(hms.split(':').all(digits) && hms.split(':').count() <= 3, "--time={v}");
        }
        "array" => {
            let (lo, hi) = v.split_once('-').unwrap_or_else(|| panic!("--array={v}: a range"));
            assert!(digits(lo) && digits(hi), "--array={v}");
        }
        other => panic!("--{other}: not an option the deploy files are known to use"),
    }
}

#[test]
fn the_sbatch_directives_parse_and_the_array_starts_at_zero() {
    for script in ["deploy/slurm/sweep.sbatch", "deploy/slurm/merge.sbatch"] {
        let dirs = sbatch_directives(&repo().join(script));
        assert!(!dirs.is_empty(), "{script} has directives");
        for (name, value) in &dirs {
            check_directive(name, value.as_deref());
        }
    }
    let dirs = sbatch_directives(&repo().join("deploy/slurm/sweep.sbatch"));
    let array = dirs.iter().find(|(n, _)| n == "array").and_then(|(_, v)| v.clone()).expect("--array");
    assert_eq!(array, "0-3", "four tasks from 0: shard ID+1 of SLURM_ARRAY_TASK_COUNT");
}

/// The environment of the deploy files' sweep, made small for a test.
fn small_sweep_env(tiny: &Path, results: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("SCENARIO", tiny.display().to_string()),
        ("SWEEP", SWEEP.to_string()),
        ("SEEDS", "3".to_string()),
        ("METRIC", "latency_ms.p99".to_string()),
        ("RESULTS", results.display().to_string()),
    ]
}

/// The PATH with the asyncsim under test first, as the job files call it
/// by name.
fn path_with_asyncsim() -> String {
    let dir = Path::new(bin()).parent().expect("the binary's folder").display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// The deploy files' sweep run whole, on one machine, into `out`.
fn deploy_sweep_single(tiny: &Path, out: &Path) -> Outcome {
    let o = asyncsim(&[sweep_cmd(tiny, &[]), strings(&["--out", &out.display().to_string()])].concat());
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    take(&o, out)
}

#[test]
fn the_slurm_array_run_by_the_local_driver_merges_to_the_single_run() {
    let dir = TempDir::new("shards-slurm");
    let tiny = dir.write("tiny.toml", TINY);
    let results = dir.path().join("results");
    let merged_dir = results.join("merged");
    let single = deploy_sweep_single(&tiny, &merged_dir);
    let o = Command::new("bash")
        .arg("deploy/run-array-locally.sh")
        .envs(small_sweep_env(&tiny, &results))
        .env("PATH", path_with_asyncsim())
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run the local driver");
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let err = stderr(&o);
    for i in 0..4 {
        assert!(results.join(format!("shard-{i}/partial.json")).is_file(), "task {i} wrote its shard: {err}");
    }
    // The merge job's stdout follows the four shards' one line each.
    let mut merged = take(&o, &merged_dir);
    let last_shard = merged.stdout.rfind("shard-3").expect("the shards said where they wrote");
    let from = merged.stdout[last_shard..].find('\n').map_or(0, |n| last_shard + n + 1);
    merged.stdout = merged.stdout[from..].to_string();
    assert_same(&single, &merged, "the Slurm array, merged");
}

// A subset of the Kubernetes batch/v1 Job and core/v1 PersistentVolumeClaim
// schemas: exactly the fields deploy/k8s/*.yaml use, with their types;
// `deny_unknown_fields` refuses any other (a typo such as `completionsMode`
// included). It is a subset, not the whole schema: a field Kubernetes has
// but these files do not use is refused here too.

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Job {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: JobSpec,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Meta {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JobSpec {
    completion_mode: Option<String>,
    completions: Option<u32>,
    parallelism: Option<u32>,
    backoff_limit: Option<u32>,
    template: PodTemplate,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodTemplate {
    spec: PodSpec,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodSpec {
    restart_policy: String,
    containers: Vec<Container>,
    #[serde(default)]
    volumes: Vec<Volume>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Container {
    name: String,
    image: String,
    working_dir: Option<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    resources: Option<Resources>,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct EnvVar {
    name: String,
    value: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Resources {
    #[serde(default)]
    requests: BTreeMap<String, String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Volume {
    name: String,
    persistent_volume_claim: ClaimRef,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClaimRef {
    claim_name: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Claim {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: ClaimSpec,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClaimSpec {
    access_modes: Vec<String>,
    storage_class_name: Option<String>,
    resources: Resources,
}

fn job(name: &str) -> Job {
    let path = repo().join("deploy/k8s").join(name);
    let text = std::fs::read_to_string(&path).expect("read the job file");
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks what the API server would refuse of a Job, and that its volumes
/// are the claim's.
fn lint_job(j: &Job, claim: &Claim) {
    let what = &j.metadata.name;
    assert_eq!((j.api_version.as_str(), j.kind.as_str()), ("batch/v1", "Job"), "{what}");
    assert!(!what.is_empty() && what.len() <= 63, "{what}: a DNS label");
    let pod = &j.spec.template.spec;
    assert!(["Never", "OnFailure"].contains(&pod.restart_policy.as_str()), "{what}: a Job's pods never Always restart");
    assert!(!pod.containers.is_empty(), "{what}: a container");
    for c in &pod.containers {
        assert!(!c.name.is_empty() && !c.image.is_empty(), "{what}: a named container with an image");
        for m in &c.volume_mounts {
            let v = pod.volumes.iter().find(|v| v.name == m.name).expect("a mount names a volume");
            assert_eq!(v.persistent_volume_claim.claim_name, claim.metadata.name, "{what}: the shared claim");
            assert!(m.mount_path.starts_with('/'), "{what}: an absolute mountPath");
        }
    }
}

fn claim() -> Claim {
    let path = repo().join("deploy/k8s/results-pvc.yaml");
    let text = std::fs::read_to_string(&path).expect("read the claim");
    let c: Claim = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!((c.api_version.as_str(), c.kind.as_str()), ("v1", "PersistentVolumeClaim"));
    assert!(c.spec.access_modes.iter().any(|m| m == "ReadWriteMany"), "shards on many nodes write at once");
    assert!(c.spec.resources.requests.contains_key("storage") && c.spec.storage_class_name.is_some());
    c
}

fn env_of<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env.iter().find(|e| e.name == name).map(|e| e.value.as_str())
}

#[test]
fn the_kubernetes_yaml_passes_the_schema_subset_and_uses_the_completion_index() {
    let claim = claim();
    let sweep = job("sweep-job.yaml");
    lint_job(&sweep, &claim);
    assert_eq!(sweep.spec.completion_mode.as_deref(), Some("Indexed"));
    let completions = sweep.spec.completions.expect("Indexed needs completions");
    assert_eq!(completions, 4);
    assert!(sweep.spec.parallelism.is_some_and(|p| p >= 1 && p <= completions));
    let c = &sweep.spec.template.spec.containers[0];
    assert_eq!(env_of(c, "SHARDS"), Some("4"), "SHARDS is the completions");
    let line = [c.command.clone(), c.args.clone()].concat().join(" ");
    assert!(line.contains("--shard \"$((JOB_COMPLETION_INDEX + 1))/$SHARDS\""), "{line}");
    assert!(line.contains("shard-$JOB_COMPLETION_INDEX"), "{line}");
    let merge = job("merge-job.yaml");
    lint_job(&merge, &claim);
    assert_eq!(merge.spec.completion_mode, None, "the merge is one plain pod");
    // The subset refuses what it does not know, a misspelt field first.
    let typo = std::fs::read_to_string(repo().join("deploy/k8s/sweep-job.yaml")).unwrap();
    let typo = typo.replace("completionMode:", "completionsMode:");
    let err = serde_norway::from_str::<Job>(&typo).expect_err("an unknown field is refused").to_string();
    assert!(err.contains("completionsMode"), "{err}");
    let cpu = c.resources.as_ref().and_then(|r| r.requests.get("cpu")).expect("a cpu request");
    assert!(line.contains(&format!("--jobs {}", cpu.trim_matches('"'))), "--jobs uses the cpus requested: {line}");
    assert!(c.working_dir.is_some() && sweep.spec.backoff_limit.is_some() && sweep.metadata.labels.is_empty());
}

/// Runs a Job's container as the Job controller would run pod `index`
/// (JOB_COMPLETION_INDEX set when Indexed), here: its env, with `env`
/// over it (the volume's mountPath stands for a local folder), in the
/// repository (the image's workingDir holds the scenarios).
fn run_pod(j: &Job, index: Option<u32>, env: &[(&str, String)]) -> Output {
    let c = &j.spec.template.spec.containers[0];
    let argv = [c.command.clone(), c.args.clone()].concat();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir(repo()).stdin(Stdio::null()).env("PATH", path_with_asyncsim());
    for e in &c.env {
        cmd.env(&e.name, &e.value);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v)));
    if let Some(i) = index {
        cmd.env("JOB_COMPLETION_INDEX", i.to_string());
    }
    cmd.output().expect("run the pod's command")
}

#[test]
fn the_kubernetes_indexed_job_run_pod_by_pod_merges_to_the_single_run() {
    let dir = TempDir::new("shards-k8s");
    let tiny = dir.write("tiny.toml", TINY);
    let results = dir.path().join("results");
    let single = deploy_sweep_single(&tiny, &results.join("merged"));
    let env = small_sweep_env(&tiny, &results);
    let sweep = job("sweep-job.yaml");
    for i in 0..sweep.spec.completions.expect("completions") {
        let o = run_pod(&sweep, Some(i), &env);
        assert_eq!(o.status.code(), Some(0), "pod {i}: {}", describe(&o));
        assert!(results.join(format!("shard-{i}/partial.json")).is_file(), "pod {i} wrote its shard");
    }
    let o = run_pod(&job("merge-job.yaml"), None, &env);
    let merged = take(&o, &results.join("merged"));
    assert_same(&single, &merged, "the Kubernetes Indexed Job, merged");
}

// ---- merge refuses what does not belong together ----

/// Writes shard `i/n` of the tiny sweep with `seeds` seeds into `dir/name`.
fn sweep_shard(dir: &TempDir, tiny: &Path, name: &str, i: usize, n: usize, seeds: &str) -> String {
    let out = dir.path().join(name).display().to_string();
    let shard = format!("{i}/{n}");
    let file = tiny.display().to_string();
    let o = asyncsim(&["sweep", &file, "--set", SWEEP, "--seeds", seeds, "--shard", &shard, "--out", &out]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    out
}

/// Runs merge on `dirs`; asserts exit 2 with `words` and `file`'s name.
fn refused(dirs: &[&str], file: &str, words: &str) {
    let out = format!("{file}-merged");
    let args: Vec<&str> = ["merge"].into_iter().chain(dirs.iter().copied()).chain(["--out", &out]).collect();
    let err = common::assert_bad_input(&asyncsim(&args));
    assert!(err.contains(&format!("{file}/partial.json")), "names {file}/partial.json:\n{err}");
    assert!(err.contains(words), "says `{words}`:\n{err}");
    assert!(!Path::new(&out).exists(), "a refused merge writes nothing");
}

#[test]
fn merge_refuses_mismatched_partials_naming_the_file() {
    let dir = TempDir::new("shards-refuse");
    let tiny = dir.write("tiny.toml", TINY);
    let a = sweep_shard(&dir, &tiny, "a", 1, 2, "3");
    let b = sweep_shard(&dir, &tiny, "b", 2, 2, "3");
    let other_plan = sweep_shard(&dir, &tiny, "c", 2, 2, "4");
    refused(&[&a, &other_plan], &other_plan, "plan.");
    let other_count = sweep_shard(&dir, &tiny, "d", 2, 3, "3");
    refused(&[&a, &other_count], &other_count, "shard count N = 3 there, 2 in the first");
    refused(&[&a], &a, "shard 2/2 missing");
    refused(&[&a, &b, &a], &a, "shard 1/2 is given twice");
    let empty = dir.path().join("empty").display().to_string();
    std::fs::create_dir_all(&empty).unwrap();
    refused(&[&a, &empty], &empty, "cannot merge");
    let broken = dir.path().join("broken").display().to_string();
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(format!("{broken}/partial.json"), "{\"asyncsim\": \"0.1.0\", \"command\"").unwrap();
    refused(&[&a, &broken], &broken, "cannot merge");
    // A check's shard with a sweep's.
    let check = dir.path().join("check").display().to_string();
    let o = asyncsim(&check_cmd("exactly-once", "4", &["--shard", "2/2", "--out", &check]));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    refused(&[&a, &check], &check, "command check there, sweep in the first");
}

// ---- the progress bar of many runs ----

/// Runs `asyncsim ARGS` on a pseudo-terminal (with `script`), returning
/// what the terminal received, or `None` where `script` cannot run.
fn on_a_terminal(args: &[String]) -> Option<String> {
    let mut cmd = bin().to_string();
    for a in args {
        cmd.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("ASYNCSIM_PROGRESS_AFTER_MS", "0")
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.contains("at-most-once").then_some(text)
}

#[test]
fn the_meter_draws_runs_and_rate_on_a_terminal_only() {
    let dir = TempDir::new("shards-meter");
    let out = dir.path().join("out").display().to_string();
    // A search of 24 runs that each violate no-loss: the bar counts them.
    let mut args = check_cmd("at-most-once", "24", &["--out", &out]);
    args.retain(|a| a != "--no-progress");
    // Not a terminal: not a byte of the bar.
    let o =
        Command::new(bin()).args(&args).env("ASYNCSIM_PROGRESS_AFTER_MS", "0").current_dir(repo()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = stderr(&o);
    assert!(!err.contains("/24 runs") && !err.contains('\x1b'), "no bar on a pipe: {err:?}");
    let Some(shown) = on_a_terminal(&args) else {
        eprintln!("skipped: `script` cannot give asyncsim a terminal here");
        return;
    };
    // The pseudo-terminal is 80 columns: the line is cut after the
    // violations. Frames are drawn on a clock, so which counts show is not
    // fixed: a frame with the total and the violation count is.
    assert!(shown.contains("/24 runs · ") && shown.contains(" violat"), "{shown:?}");
    assert!(shown.contains("\r\x1b[2K"), "the bar is cleared: {shown:?}");
    args.push("--no-progress".into());
    let hidden = on_a_terminal(&args).expect("script ran before");
    assert!(!hidden.contains("/24 runs") && !hidden.contains('\x1b'), "no bar with --no-progress: {hidden:?}");
}

//! Issue 8, defect 7: output folder hygiene. A run into a folder removes
//! the files an earlier run wrote there that it will not write again (from
//! the manifest, and never anything outside the folder or anything the user
//! put there), removes temporary files a killed run left, refuses a folder
//! it cannot write before simulating, and streams traces to disk, byte for
//! byte as the in-memory trace would have been written, holding only a
//! buffer.

use crate::common;

use common::{assert_bad_input, asyncsim, describe, repo, TempDir};
use sim_core::scenario::{build_engine, run_config, Config, Scenario};
use sim_core::trace::{TraceEvent, TraceSink};
use std::path::{Path, PathBuf};
use std::process::Output;

fn p(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_string()
}

/// A small queueing scenario named `name`, with one variant per name in
/// `variants`.
fn scenario(name: &str, variants: &[&str]) -> String {
    let mut text = format!(
        r#"name = "{name}"
concept = "test scenario for output folder hygiene"
seed = 3

[run]
drain_ms = 10_000
sample_interval_ms = 1_000

[network]
latency = {{ dist = "constant", ms = 1 }}

[producers.producer]
target = "broker"
arrival = {{ process = "poisson", rate_per_s = 200 }}
messages = 300

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
processing = {{ dist = "exponential", mean_ms = 1.0 }}
concurrency = 1
"#
    );
    for (i, v) in variants.iter().enumerate() {
        text.push_str(&format!(
            "\n[variants.{v}]\ndescription = \"variant {v}\"\nset = {{ \"consumers.consumer.concurrency\" = {} }}\n",
            i + 1
        ));
    }
    text
}

fn run(file: &Path, out: &Path, extra: &[&str]) -> Output {
    // Plots are beside the point here (tests/report.rs covers them).
    let mut args = vec!["run".to_string(), p(file), "--out".into(), p(out), "--no-plots".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = asyncsim(&args);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    o
}

/// The names of the files directly in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn manifest(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(reports::MANIFEST)).expect("a manifest");
    let v: serde_json::Value = serde_json::from_str(&text).expect("the manifest is JSON");
    let mut files: Vec<String> =
        v["files"].as_array().expect("a list of files").iter().map(|f| f.as_str().unwrap().to_string()).collect();
    files.sort();
    files
}

#[test]
fn defect_7_traces_of_an_earlier_scenario_are_removed_and_user_files_kept() {
    let dir = TempDir::new("stale");
    let a = dir.write("a.toml", &scenario("first", &["old-one", "old-two"]));
    let b = dir.write("b.toml", &scenario("second", &["new-one"]));
    let out = dir.path().join("out");
    run(&a, &out, &["--trace"]);
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    assert!(out.join("trace-old-one.csv").is_file() && out.join("trace-old-two.csv").is_file());
    assert_eq!(
        manifest(&out),
        ["index.html", "summary.json", "timeseries.csv", "trace-old-one.csv", "trace-old-two.csv"]
    );

    run(&b, &out, &["--trace"]);
    assert_eq!(
        names_in(&out),
        [
            ".asyncsim-manifest.json",
            ".asyncsim-output",
            "index.html",
            "notes.txt",
            "summary.json",
            "timeseries.csv",
            "trace-new-one.csv"
        ],
        "no trace of the first scenario is left beside the second's summary"
    );
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine", "the user's file is untouched");
    assert_eq!(manifest(&out), ["index.html", "summary.json", "timeseries.csv", "trace-new-one.csv"]);

    // Without --trace, the traces of the last run are stale too.
    run(&b, &out, &[]);
    assert!(!out.join("trace-new-one.csv").exists());
    assert!(out.join("notes.txt").is_file());
}

#[test]
fn defect_7_the_manifest_is_never_followed_outside_the_folder() {
    let dir = TempDir::new("manifest-escape");
    let a = dir.write("a.toml", &scenario("first", &["one"]));
    let out = dir.path().join("out");
    run(&a, &out, &[]);
    let victim = dir.write("victim.txt", "outside");
    std::fs::create_dir_all(out.join("sub")).unwrap();
    std::fs::write(out.join("sub").join("inner.txt"), "inner").unwrap();
    std::os::unix::fs::symlink(&victim, out.join("link")).unwrap();
    let hostile = serde_json::json!({
        "files": ["../victim.txt", p(&victim), "sub", "sub/inner.txt", "link", "./link", ".", ".."]
    });
    std::fs::write(out.join(reports::MANIFEST), hostile.to_string()).unwrap();

    let o = run(&a, &out, &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "outside");
    assert_eq!(std::fs::read_to_string(out.join("sub").join("inner.txt")).unwrap(), "inner");
    assert!(std::fs::symlink_metadata(out.join("link")).is_ok(), "a link is not removed");
    let err = common::stderr(&o);
    assert!(err.contains("not a plain file name"), "the refused entries are named:\n{err}");
    assert!(err.contains("not a regular file"), "the link and the folder are left with a warning:\n{err}");
    assert_eq!(manifest(&out), ["index.html", "summary.json", "timeseries.csv"]);
}

#[test]
fn defect_7_leftover_temporary_files_are_removed() {
    let dir = TempDir::new("leftover");
    let a = dir.write("a.toml", &scenario("first", &["one"]));
    let out = dir.path().join("out");
    run(&a, &out, &[]);
    // A pid above the kernel's largest (2^22) belongs to no running process.
    let leftovers = [".asyncsim-tmp-4194999-trace-one.csv", ".trace-one.csv.tmp-4194999", ".summary.json.tmp-4194998"];
    for name in leftovers {
        std::fs::write(out.join(name), vec![b'x'; 4096]).unwrap();
    }
    // Look-alikes that are not asyncsim's temporary files stay.
    let kept = [".thesis.tex.tmp-4194999", "asyncsim-tmp-4194999-x"];
    for name in kept {
        std::fs::write(out.join(name), "mine").unwrap();
    }
    // A temporary file of a run that is still going stays too.
    let live = format!(".asyncsim-tmp-{}-trace-one.csv", std::process::id());
    std::fs::write(out.join(&live), "busy").unwrap();

    run(&a, &out, &["--trace"]);
    for name in leftovers {
        assert!(!out.join(name).exists(), "{name} is left over from a killed run and must go");
    }
    for name in kept.iter().copied().chain([live.as_str()]) {
        assert!(out.join(name).exists(), "{name} is not a leftover and must stay");
    }
    assert!(out.join("trace-one.csv").is_file());
}

/// Makes `dir` unwritable for as long as it lives: mode 0o555, or, where
/// modes do not bind (root), the immutable attribute. None if neither works.
struct Unwritable(PathBuf, bool);

impl Unwritable {
    fn new(dir: &Path) -> Option<Unwritable> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let mut lock = Unwritable(dir.to_path_buf(), false);
        if !writable(dir) {
            return Some(lock);
        }
        let chattr = std::process::Command::new("chattr").arg("+i").arg(dir).output();
        lock.1 = chattr.is_ok_and(|o| o.status.success());
        (lock.1 && !writable(dir)).then_some(lock)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).output();
        }
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let ok = std::fs::write(&probe, "x").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

#[test]
fn defect_7_a_read_only_folder_holding_the_marker_fails_before_simulating() {
    let dir = TempDir::new("read-only-marker");
    let a = dir.write("a.toml", &scenario("first", &["one"]));
    let out = dir.path().join("out");
    run(&a, &out, &["--trace"]);
    let before = std::fs::read(out.join("summary.json")).unwrap();
    let Some(_lock) = Unwritable::new(&out) else {
        eprintln!("skipped: neither mode 0o555 nor `chattr +i` makes a folder unwritable here");
        return;
    };
    let start = std::time::Instant::now();
    // Ten million messages take many seconds to simulate; refusing takes none.
    let o = asyncsim(&["run", &p(&a), "--out", &p(&out), "--trace", "--set", "producers.producer.messages=10000000"]);
    let took = start.elapsed();
    let err = assert_bad_input(&o);
    assert!(err.contains("not writable") && err.contains(&p(&out)), "the error names the folder:\n{err}");
    assert!(took < std::time::Duration::from_secs(3), "refused after {took:?}: it simulated first");
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), before, "the earlier output is intact");
    assert!(out.join("trace-one.csv").is_file(), "and nothing was removed");
}

// ---------------------------------------------------------------------------
// Streamed traces
// ---------------------------------------------------------------------------

fn network_faults() -> Config {
    let path = repo().join("scenarios/network-faults.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    Scenario::parse(&p(&path), &text).unwrap().configs().unwrap().remove(0).1
}

/// Streams the trace of `config` (at most `limit` events) to `path`.
fn streamed(config: &Config, limit: usize, path: &Path) -> sim_core::engine::RunOutput {
    let mut engine = build_engine(config, 1, limit);
    engine.stream_trace(Box::new(reports::TraceFile::create(path, engine.names().to_vec()).unwrap()));
    let mut out = engine.run();
    out.trace_sink.take().expect("the sink comes back").finish().unwrap();
    out
}

#[test]
fn defect_7_a_streamed_trace_is_byte_identical_to_the_in_memory_one() {
    let dir = TempDir::new("stream");
    let config = network_faults();
    let kept = run_config(&config, 1, 10_000_000);
    assert!(!kept.trace_truncated);
    let expected = reports::trace_csv(&kept.names, &kept.trace);
    // Every kind of row is in it, so the comparison covers them all.
    for kind in [",send,", ",arrive,", ",drop,", ",timer,", ",fault-begins,", ",fault-ends,", ",crash,", ",phase,"] {
        assert!(expected.contains(kind), "the trace has no {kind} row");
    }
    let path = dir.path().join("trace.csv");
    let out = streamed(&config, 10_000_000, &path);
    assert!(out.trace.is_empty(), "a streamed trace is not also kept");
    assert_eq!(out.digest, kept.digest, "streaming does not change the run");
    assert!(std::fs::read(&path).unwrap() == expected.as_bytes(), "the streamed file differs from trace_csv");
    assert_eq!(names_in(dir.path()), ["trace.csv"], "no temporary file is left");

    // Truncated at the limit the same way.
    let kept = run_config(&config, 1, 1000);
    let out = streamed(&config, 1000, &path);
    assert!(kept.trace_truncated && out.trace_truncated);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, reports::trace_csv(&kept.names, &kept.trace));
    assert_eq!(text.lines().count(), 1001, "a header and the limit's worth of rows");
}

/// A sink that counts what it is given and holds nothing.
struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl TraceSink for Counting {
    fn event(&mut self, _: &TraceEvent) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn memory_bytes(&self) -> usize {
        0
    }
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn defect_7_the_memory_budget_counts_a_kept_trace_but_only_a_streamed_ones_buffer() {
    let config = network_faults();
    let finished = |limit: usize, sink: Option<Box<dyn TraceSink>>| {
        let mut engine = build_engine(&config, 1, limit);
        if let Some(sink) = sink {
            engine.stream_trace(sink);
        }
        while engine.step() {}
        engine.memory_bytes()
    };
    let untraced = finished(0, None);
    let kept = run_config(&config, 1, 10_000_000).trace.len();
    let with_kept = finished(10_000_000, None);
    let floor = (kept * std::mem::size_of::<TraceEvent>()) as u64;
    assert!(with_kept >= untraced + floor, "a kept trace of {kept} events counts at least {floor} bytes");
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let with_streamed = finished(10_000_000, Some(Box::new(Counting(count.clone()))));
    assert_eq!(with_streamed, untraced, "a sink that holds nothing adds nothing");
    assert_eq!(count.load(std::sync::atomic::Ordering::Relaxed), kept, "every event reached the sink");

    let dir = TempDir::new("stream-memory");
    let file = reports::TraceFile::create(&dir.path().join("t.csv"), Vec::new()).unwrap();
    let buffer = file.memory_bytes();
    assert!((64 * 1024..128 * 1024).contains(&buffer), "a trace file holds its buffer: {buffer} bytes");
    let with_file = finished(10_000_000, Some(Box::new(file)));
    assert!(
        (untraced + buffer as u64..untraced + 128 * 1024).contains(&with_file),
        "a streamed trace counts only its buffer: {with_file} bytes against {untraced} untraced"
    );
}

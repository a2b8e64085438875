//! Helpers shared by the integration tests that drive the real `asyncsim`
//! binary. A folder module, so cargo does not build it as a test of its own.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use proptest::test_runner::Config as ProptestConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root, where the bundled scenarios are.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty folder; `name` (and a counter, as tests run in parallel)
    /// keeps it apart from every other test's.
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("asyncsim-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary folder");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the folder and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write a temporary file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of the `asyncsim` binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_asyncsim")
}

/// Runs the binary with `args` from the repository root.
pub fn asyncsim<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(bin()).args(args).current_dir(repo()).output().expect("run the asyncsim binary")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit status and both streams of a run, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!("status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", o.status.code(), stdout(o), stderr(o))
}

/// Asserts a bad-input exit: status 2, no panic. Returns stderr.
pub fn assert_bad_input(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2:\n{}", describe(o));
    assert!(!err.contains("panicked"), "bad input must not panic:\n{}", describe(o));
    assert!(!err.trim().is_empty(), "bad input must explain itself");
    err
}

/// Asserts that the error `err` names `FILE:LINE:` of `file` and the field
/// path `field`.
pub fn assert_names(err: &str, file: &Path, line: usize, field: &str) {
    let at = format!("{}:{line}:", file.display());
    assert!(err.contains(&at), "stderr must name `{at}`:\n{err}");
    assert!(err.contains(field), "stderr must name the field `{field}`:\n{err}");
}

/// Runs the scenario `file` (relative to the repository root) with `seed`
/// into `out`; every expectation must hold (exit 0). Returns summary.json,
/// parsed, and its text (which keeps the scenario's variant order).
pub fn run_summary(file: &str, seed: &str, out: &Path) -> (Value, String) {
    let o = asyncsim(&["run", file, "--seed", seed, "--out", out.to_str().expect("a UTF-8 path")]);
    assert_eq!(o.status.code(), Some(0), "every expectation of {file} holds:\n{}", describe(&o));
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let summary: Value = serde_json::from_str(&text).expect("summary.json is JSON");
    (summary, text)
}

/// The number at a dotted `path` in `v`; panics if there is none.
pub fn num(v: &Value, path: &str) -> f64 {
    let mut x = v;
    for seg in path.split('.') {
        x = x.get(seg).unwrap_or_else(|| panic!("no key `{path}` in {v}"));
    }
    x.as_f64().unwrap_or_else(|| panic!("`{path}` is not a number"))
}

/// The settings of a property test: `default_cases` cases, or
/// `PROPTEST_CASES` when set (for a longer hunt), and no regression files
/// written into the source tree.
pub fn proptest_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default_cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// A 10x overload for 30 simulated days: Poisson arrivals at 1,000/s into
/// an unbounded queue drained by one consumer at 100/s (10 ms each). The
/// queue grows by 900 messages a second, without end.
pub const OVERLOAD_30_DAYS: &str = r#"
name = "overload"
concept = "10x overload for 30 days: an unbounded queue grows"
seed = 1

[run]
duration_ms = 2_592_000_000

[network]
latency = { dist = "constant", ms = 1 }

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 1000 }

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
processing = { dist = "constant", ms = 10 }
concurrency = 1
"#;

/// What [`asyncsim_measured`] saw of a run.
pub struct Measured {
    pub output: Output,
    pub wall: std::time::Duration,
    /// The child's peak resident memory in KiB, as last seen in
    /// `/proc/PID/status` (VmHWM) while it ran; `None` without `/proc`.
    pub peak_rss_kib: Option<u64>,
}

/// Runs the binary with `args` from the repository root, timing it and
/// watching its peak memory.
pub fn asyncsim_measured<S: AsRef<std::ffi::OsStr>>(args: &[S], scratch: &Path) -> Measured {
    let (out_path, err_path) = (scratch.join("child.stdout"), scratch.join("child.stderr"));
    let start = std::time::Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(repo())
        .stdout(std::fs::File::create(&out_path).expect("create a file for stdout"))
        .stderr(std::fs::File::create(&err_path).expect("create a file for stderr"))
        .spawn()
        .expect("run the asyncsim binary");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak: Option<u64> = None;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| vm_hwm_kib(&s)) {
            peak = Some(peak.map_or(kib, |p| p.max(kib)));
        }
        if let Some(status) = child.try_wait().expect("wait for asyncsim") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let wall = start.elapsed();
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).expect("read stdout"),
        stderr: std::fs::read(&err_path).expect("read stderr"),
    };
    Measured { output, wall, peak_rss_kib: peak }
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Checks that a run's causes explain its losses and duplicates exactly:
/// `lost_by_cause` sums to `lost` and `duplicated_by_cause` to
/// `duplicated`, in total and in every effect domain, and no cause is
/// listed with a count of 0. Returns what is wrong, if anything.
pub fn causes_add_up(out: &sim_core::engine::RunOutput) -> Result<(), String> {
    let c = &out.counts;
    let sum = |m: &std::collections::BTreeMap<&'static str, u64>| m.values().sum::<u64>();
    let zero = |m: &std::collections::BTreeMap<&'static str, u64>| m.values().any(|&n| n == 0);
    if sum(&c.lost_by_cause) != c.lost || sum(&c.duplicated_by_cause) != c.duplicated {
        return Err(format!(
            "totals: lost {} by {:?}, duplicated {} by {:?}",
            c.lost, c.lost_by_cause, c.duplicated, c.duplicated_by_cause
        ));
    }
    if zero(&c.lost_by_cause) || zero(&c.duplicated_by_cause) {
        return Err(format!("a cause with no count: {:?} {:?}", c.lost_by_cause, c.duplicated_by_cause));
    }
    for (name, d) in &out.domains {
        if sum(&d.lost_by_cause) != d.lost || sum(&d.duplicated_by_cause) != d.duplicated {
            return Err(format!(
                "domain {name}: lost {} by {:?}, duplicated {} by {:?}",
                d.lost, d.lost_by_cause, d.duplicated, d.duplicated_by_cause
            ));
        }
    }
    Ok(())
}

/// Checks that every loss and duplicate of a run has a cause other than
/// `unexplained`: each way the components lose or repeat a message reports
/// why.
pub fn nothing_unexplained(out: &sim_core::engine::RunOutput) -> Result<(), String> {
    let c = &out.counts;
    if c.lost_by_cause.contains_key("unexplained") || c.duplicated_by_cause.contains_key("unexplained") {
        return Err(format!("unexplained: lost by {:?}, duplicated by {:?}", c.lost_by_cause, c.duplicated_by_cause));
    }
    Ok(())
}

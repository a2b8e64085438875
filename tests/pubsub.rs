//! The bundled publish/subscribe scenario through the real command line:
//! `asyncsim run scenarios/pubsub-fanout.toml` writes the documented
//! variants and per-subscription domains, and a subscription error in a
//! scenario file is bad input that names the file, the line and the field.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary folder for this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("asyncsim-pubsub-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary folder");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn asyncsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asyncsim")).args(args).current_dir(repo()).output().expect("run asyncsim")
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn num(v: &Value, path: &str) -> f64 {
    let mut x = v;
    for seg in path.split('.') {
        x = x.get(seg).unwrap_or_else(|| panic!("no key `{path}` in {v}"));
    }
    x.as_f64().unwrap_or_else(|| panic!("`{path}` is not a number"))
}

#[test]
fn pubsub_fanout_durable_keeps_the_backlog_and_non_durable_loses_it() {
    let dir = TempDir::new("run");
    let out_dir = dir.0.join("out");
    let out = out_dir.to_str().unwrap();
    let o = asyncsim(&["run", "scenarios/pubsub-fanout.toml", "--seed", "1", "--out", out]);
    assert_eq!(o.status.code(), Some(0), "every expectation holds:\n{}", describe(&o));
    let text = std::fs::read_to_string(out_dir.join("summary.json")).expect("summary.json");
    let summary: Value = serde_json::from_str(&text).expect("summary.json is JSON");
    let variants = summary["variants"].as_object().expect("variants");
    assert_eq!(variants.keys().collect::<Vec<_>>(), ["durable", "non-durable"]);

    let durable = &variants["durable"];
    let produced = num(durable, "produced");
    assert!(produced > 500.0);
    assert_eq!(num(durable, "lost"), 0.0);
    assert_eq!(num(durable, "inconsistent"), 0.0);
    for d in ["email", "analytics", "recommendations"] {
        assert_eq!(num(durable, &format!("domains.{d}.lost")), 0.0, "{d}");
        assert_eq!(num(durable, &format!("domains.{d}.processed")), produced, "{d}");
    }
    // The backlog waited about three seconds for its subscriber.
    assert!(num(durable, "domains.recommendations.latency_ms.max") > 2500.0);
    assert_eq!(num(durable, "processed"), 3.0 * produced, "the totals sum over the three domains");

    let non = &variants["non-durable"];
    assert!(num(non, "domains.recommendations.lost") > 0.0);
    assert_eq!(num(non, "domains.email.lost"), 0.0);
    assert_eq!(num(non, "domains.analytics.lost"), 0.0);
    assert!(num(non, "inconsistent") > 0.0);
    assert_eq!(num(non, "inconsistent"), num(non, "domains.recommendations.lost"));
    assert!(num(non, "metrics.dropped_no_subscriber") > 0.0);
    for v in [durable, non] {
        let held = v["expectations"].as_array().unwrap().iter().all(|e| e["held"] == Value::Bool(true));
        assert!(held, "{}", v["expectations"]);
    }
}

#[test]
fn a_consumer_naming_an_unknown_subscription_is_bad_input() {
    let dir = TempDir::new("bad");
    let text = std::fs::read_to_string(repo().join("scenarios/pubsub-fanout.toml")).unwrap();
    let bad = text.replacen("subscription = \"analytics\"", "subscription = \"analytic\"", 1);
    let line = bad.lines().position(|l| l.contains("\"analytic\"")).unwrap() + 1;
    let file = dir.0.join("bad.toml");
    std::fs::write(&file, &bad).unwrap();
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&format!("bad.toml:{line}:")), "names the line {line}: {err}");
    assert!(err.contains("consumers.analytics.subscription"), "names the field: {err}");
    assert!(err.contains("no subscription `analytic`"), "{err}");

    // A consumer of a fan-out broker must say which subscription it reads.
    let missing = text.replacen("subscription = \"email\"\n", "", 1);
    std::fs::write(&file, &missing).unwrap();
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("consumers.email.subscription"), "{err}");
}

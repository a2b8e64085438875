//! Runs that tell the truth about what they measured (issue 8): a drain
//! that runs out of time says so, latencies say how many messages they
//! cover, and no percentile reads above the maximum.

use crate::common;

use common::{asyncsim, describe, repo, TempDir};
use serde_json::Value;

/// An overload: 1000 messages/s for 2 s into one consumer that handles 200/s.
fn overload(drain_ms: u64) -> String {
    format!(
        r#"
name = "overload"
concept = "a backlog the drain may not clear"
run = {{ duration_ms = 2000, drain_ms = {drain_ms} }}
[network]
latency = {{ dist = "constant", ms = 1 }}
[producers.p]
target = "b"
arrival = {{ process = "constant", rate_per_s = 1000 }}
[brokers.b]
kind = "queue"
[consumers.c]
source = "b"
processing = {{ dist = "constant", ms = 5 }}
"#
    )
}

fn run(text: &str) -> (std::process::Output, Value) {
    let dir = TempDir::new("honest");
    let file = dir.write("s.toml", text);
    let out = dir.path().join("out");
    let o = asyncsim(&["run".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (o, summary)
}

#[test]
fn defect_4_a_drain_that_runs_out_of_time_says_so_and_latency_counts_what_it_measured() {
    let (o, s) = run(&overload(1000));
    let v = &s["variants"]["default"];
    assert_eq!(v["run"]["drain_complete"], false, "{v}");
    let (produced, processed, in_flight) =
        (v["produced"].as_u64().unwrap(), v["processed"].as_u64().unwrap(), v["in_flight"].as_u64().unwrap());
    // About 2000 produced (one per ms for 2 s, the last at the edge); 200/s
    // for 3 s is about 600 processed; the rest waits.
    assert!((1999..=2000).contains(&produced), "{v}");
    assert!(in_flight > 1000 && processed + in_flight == produced, "{v}");
    assert_eq!(v["latency_ms"]["count"].as_u64(), Some(processed), "latency covers the finished messages only");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("the drain ran out of time") && stderr.contains(&format!("{in_flight} messages")),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("latency mean ms") && l.trim_end().ends_with('*')), "{stdout}");
    assert!(stdout.contains(&format!("over the {processed} messages that finished")), "{stdout}");
}

#[test]
fn a_drain_that_finishes_says_so_and_marks_nothing() {
    let (o, s) = run(&overload(60_000));
    let v = &s["variants"]["default"];
    assert_eq!(v["run"]["drain_complete"], true, "{v}");
    assert_eq!(v["in_flight"], 0);
    assert_eq!(v["latency_ms"]["count"], v["processed"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("ran out of time"));
    assert!(!String::from_utf8_lossy(&o.stdout).contains('*'));
}

/// Every latency summary in `v` (the variant's and each domain's).
fn latencies(v: &Value) -> Vec<&Value> {
    let mut out = vec![&v["latency_ms"], &v["wait_ms"]];
    out.extend(v["domains"].as_object().unwrap().values().map(|d| &d["latency_ms"]));
    out
}

#[test]
fn defect_5_no_percentile_reads_above_the_maximum() {
    // These two bundled scenarios showed p99 above max before the clamp.
    for name in ["replication-acks", "pubsub-fanout"] {
        let dir = TempDir::new("percentiles");
        let file = format!("scenarios/{name}.toml");
        let o = asyncsim(&["run", &file, "--out", dir.path().join("o").to_str().unwrap()]);
        assert!(matches!(o.status.code(), Some(0) | Some(1)), "{}", String::from_utf8_lossy(&o.stderr));
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/summary.json")).unwrap()).unwrap();
        for (variant, v) in s["variants"].as_object().unwrap() {
            for l in latencies(v) {
                let max = l["max"].as_f64().unwrap();
                for p in ["p50", "p90", "p99", "p999"] {
                    assert!(l[p].as_f64().unwrap() <= max, "{name}/{variant}: {p} above max in {l}");
                }
            }
        }
    }
}

/// Provenance (issue 8): summary.json names the version that wrote it and,
/// per variant, a hash of the resolved scenario, which layout and comments
/// do not change and any override does.
#[test]
fn a_summary_records_the_version_and_a_hash_of_each_resolved_variant() {
    let dir = TempDir::new("provenance");
    let text = std::fs::read_to_string(repo().join("scenarios/delivery-guarantees.toml")).unwrap();
    let plain = dir.write("a.toml", &text);
    let reformatted: String =
        text.lines().filter(|l| !l.trim_start().starts_with('#')).map(|l| format!("{l}\n\n")).collect();
    let other = dir.write("b.toml", &reformatted);
    let hashes = |file: &std::path::Path, extra: &[&str]| {
        let out = dir.path().join(format!("out-{}", extra.len()));
        let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(extra);
        let o = asyncsim(&args);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", describe(&o));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["asyncsim_version"], env!("CARGO_PKG_VERSION"));
        let variants = s["variants"].as_object().unwrap();
        variants.values().map(|v| v["scenario_hash"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let a = hashes(&plain, &[]);
    assert!(a.iter().all(|h| h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit())), "{a:?}");
    let mut distinct = a.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), a.len(), "each variant resolves to its own scenario: {a:?}");
    assert_eq!(hashes(&other, &[]), a, "comments and blank lines are not part of the scenario");
    let changed = hashes(&plain, &["--set", "network.loss_probability=0.02"]);
    assert!(changed.iter().zip(&a).all(|(x, y)| x != y), "an override changes every variant's hash");
}

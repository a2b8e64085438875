//! Claimed invariants, through the real CLI: `asyncsim run` judges them
//! after each run, reports them in summary.json and exits 1 when one is
//! violated; a misspelt name is bad input naming its file, line and field.

use crate::common::*;

/// A producer without acks over a network that loses 5%: it loses
/// messages, never duplicates them.
const LOSSY: &str = r#"
name = "lossy"
concept = "a test"
invariants = ["no-duplicates"]

[network]
loss_probability = 0.05

[run]
duration_ms = 2_000

[producers.p]
target = "b"
arrival = { process = "constant", rate_per_s = 60 }

[brokers.b]
kind = "queue"

[consumers.c]
source = "b"
processing = { dist = "constant", ms = 15 }
ack = "before"

[variants.claims-no-loss]
invariants = ["no-loss"]

[variants.claims-less]
"#;

#[test]
fn a_violated_invariant_fails_the_run_and_says_why() {
    let dir = TempDir::new("invariants");
    let file = dir.write("lossy.toml", LOSSY);
    let out = dir.path().join("out");
    let o = asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let strict = &s["variants"]["claims-no-loss"];
    assert!(num(strict, "lost") > 0.0, "fire-and-forget over a lossy network loses: {strict}");
    let inv = strict["invariants"].as_array().unwrap();
    let names: Vec<&str> = inv.iter().map(|j| j["invariant"].as_str().unwrap()).collect();
    assert_eq!(names, ["no-duplicates", "no-loss"], "the scenario's claims, then the variant's");
    assert_eq!(inv[0]["held"], true);
    assert_eq!(inv[1]["held"], false);
    assert!(inv[1]["detail"].as_str().unwrap().contains("lost ="), "{}", inv[1]);
    // The other variant claims only what holds.
    let lenient = &s["variants"]["claims-less"]["invariants"];
    assert_eq!(lenient.as_array().unwrap().len(), 1);
    assert_eq!(lenient[0]["held"], true);
    let text = stdout(&o);
    assert!(text.contains("FAIL claims-no-loss: no-loss"), "{text}");
    assert!(text.contains("ok   claims-less: no-duplicates"), "{text}");
    // Without the failing variant the run passes.
    let o = asyncsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--variant", "claims-less"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
}

#[test]
fn a_misspelt_invariant_is_bad_input_with_a_did_you_mean() {
    let dir = TempDir::new("invariants-typo");
    let file = dir.write("typo.toml", &LOSSY.replace(r#"invariants = ["no-loss"]"#, r#"invariants = ["no-los"]"#));
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert_names(&err, &file, 25, "variants.claims-no-loss.invariants");
    assert!(err.contains("did you mean `no-loss`"), "{err}");
    let file = dir.write("top.toml", &LOSSY.replace(r#"["no-duplicates"]"#, r#"["no-duplicate"]"#));
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert_names(&err, &file, 4, "invariants");
    assert!(err.contains("did you mean `no-duplicates`"), "{err}");
}

//! The bundled publish/subscribe scenario through the real command line:
//! `asyncsim run scenarios/pubsub-fanout.toml` writes the documented
//! variants and per-subscription domains, and a subscription error in a
//! scenario file is bad input that names the file, the line and the field.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, describe, num, repo, run_summary, stderr, TempDir};
use serde_json::Value;

#[test]
fn pubsub_fanout_durable_keeps_the_backlog_and_non_durable_loses_it() {
    let dir = TempDir::new("pubsub-run");
    let (summary, _) = run_summary("scenarios/pubsub-fanout.toml", "1", &dir.path().join("out"));
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
    // Every effect due was applied: a share of the three domains' effects, not of the messages.
    assert_eq!(num(durable, "success_rate"), 1.0);

    let non = &variants["non-durable"];
    assert!(num(non, "domains.recommendations.lost") > 0.0);
    assert_eq!(num(non, "domains.email.lost"), 0.0);
    assert_eq!(num(non, "domains.analytics.lost"), 0.0);
    assert!(num(non, "inconsistent") > 0.0);
    assert_eq!(num(non, "inconsistent"), num(non, "domains.recommendations.lost"));
    assert!(num(non, "metrics.dropped_no_subscriber") > 0.0);
    let due = 3.0 * num(non, "produced");
    assert_eq!(num(non, "success_rate"), num(non, "processed") / due);
    assert!(num(non, "success_rate") < 1.0);
    for v in [durable, non] {
        let held = v["expectations"].as_array().unwrap().iter().all(|e| e["held"] == Value::Bool(true));
        assert!(held, "{}", v["expectations"]);
    }
}

#[test]
fn a_consumer_naming_an_unknown_subscription_is_bad_input() {
    let dir = TempDir::new("pubsub-bad");
    let text = std::fs::read_to_string(repo().join("scenarios/pubsub-fanout.toml")).unwrap();
    let bad = text.replacen("subscription = \"analytics\"", "subscription = \"analytic\"", 1);
    let line = bad.lines().position(|l| l.contains("\"analytic\"")).unwrap() + 1;
    let file = dir.write("bad.toml", &bad);
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert_names(&err, &file, line, "consumers.analytics.subscription");
    assert!(err.contains("no subscription `analytic`"), "{err}");

    // A consumer of a fan-out broker must say which subscription it reads.
    let missing = text.replacen("subscription = \"email\"\n", "", 1);
    std::fs::write(&file, &missing).unwrap();
    let o = asyncsim(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = stderr(&o);
    assert!(err.contains("consumers.email.subscription"), "{err}");
}

//! The interval form of expectations: `PATH within N% of X at L%`.

use super::*;
use serde_json::json;

fn runs(values: &[f64]) -> Vec<Value> {
    values.iter().map(|v| json!({ "latency_ms": { "mean": v } })).collect()
}

#[test]
fn an_interval_expectation_parses_and_says_it_is_one() {
    let keys = Keys::of(&json!({"lost": 0, "latency_ms": {"mean": 0.0}}), &json!({}));
    let check = |e: &str| check_all_in(&[e.to_string()], &keys, &Scope::default());
    assert!(check("latency_ms.mean within 3% of 5.0 at 95%").is_ok());
    assert!(is_interval("latency_ms.mean within 3% of 5.0 at 95%"));
    assert!(!is_interval("latency_ms.mean within 3% of 5.0"));
    assert!(check("latency_ms.mean within 3% of 5.0 at 100%").unwrap_err().1.contains("confidence level"));
    assert!(check("latency_ms.mean within 3% of 5.0 at 95").is_err(), "the level needs its %");
    let (_, err) = check("lost == 0 at 95%").unwrap_err();
    assert!(err.contains("only `PATH within N% of NUMBER` takes"), "{err}");
    assert!(check("latency_ms.mean within 3% of 5.0 at").is_err());
}

#[test]
fn it_holds_when_the_whole_interval_lies_inside_the_tolerance() {
    let e = "latency_ms.mean within 3% of 5.0 at 95%";
    // Mean 5.0, s = 0.0791, t(0.975, 4) = 2.776: the interval is 5.0 ± 0.098.
    let o = evaluate_over(e, &runs(&[5.0, 5.1, 4.9, 5.05, 4.95]));
    assert!(o.held, "{o:?}");
    assert_eq!(o.n, Some(5));
    assert!((o.actual - 5.0).abs() < 1e-12);
    let [low, high] = o.ci.unwrap();
    assert!((high - low - 2.0 * 2.776_445 * 0.079_057 / 5f64.sqrt()).abs() < 1e-4, "{low} {high}");
    // The same runs, 1%: the interval [4.90, 5.10] spills out of [4.95, 5.05].
    assert!(!evaluate_over("latency_ms.mean within 1% of 5.0 at 95%", &runs(&[5.0, 5.1, 4.9, 5.05, 4.95])).held);
    // A mean right on the value, but a wide interval: not held.
    assert!(!evaluate_over(e, &runs(&[4.0, 6.0, 4.0, 6.0])).held);
    // A tight interval away from the value: not held.
    assert!(!evaluate_over(e, &runs(&[5.4, 5.41, 5.39])).held);
}

#[test]
fn one_run_cannot_make_an_interval_claim() {
    let o = evaluate("latency_ms.mean within 50% of 5.0 at 95%", &runs(&[5.0])[0]);
    assert!(!o.held);
    assert_eq!(o.n, Some(1));
}

#[test]
fn plain_expectations_are_judged_on_the_first_run_and_carry_no_interval() {
    let o = evaluate_over("latency_ms.mean within 3% of 5.0", &runs(&[5.0, 100.0]));
    assert!(o.held);
    assert_eq!((o.ci, o.n), (None, None));
    let json = serde_json::to_value(&o).unwrap();
    assert!(json.get("ci").is_none() && json.get("n").is_none(), "no new keys for plain expectations: {json}");
}

#[test]
fn steady_state_keys_need_the_scenario_to_ask_for_them() {
    let keys = crate::summary::expectation_keys();
    let e = ["steady_state.latency_ms.mean within 3% of 5.0".to_string()];
    let (_, err) = check_all_in(&e, &keys, &Scope::default()).unwrap_err();
    assert!(err.contains("add `steady_state"), "{err}");
    assert!(check_all_in(&e, &keys, &Scope { steady_state: true, ..Scope::default() }).is_ok());
    let high = ["steady_state.latency_ms.high < 6".to_string()];
    assert!(check_all_in(&high, &keys, &Scope { steady_state: true, ..Scope::default() }).is_ok());
}

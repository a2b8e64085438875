//! Expectations: one-line claims about a variant's summary that make a
//! scenario self-checking, such as `lost == 0`, `duplicated > 0`, or
//! `latency_ms.mean within 2% of 5.0`.
//!
//! Grammar: `PATH OP NUMBER`, where PATH is a dotted key of the variant's
//! summary and OP is one of `==`, `!=`, `<`, `<=`, `>`, `>=`; or
//! `PATH within N% of NUMBER`.

use serde::Serialize;
use serde_json::Value;

/// The result of checking one expectation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    /// The expectation as written.
    pub expect: String,
    /// Whether it held.
    pub held: bool,
    /// The value the summary had.
    pub actual: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Within(f64),
}

struct Expr {
    path: Vec<String>,
    op: Op,
    value: f64,
}

fn parse(text: &str) -> Result<Expr, String> {
    let t: Vec<&str> = text.split_whitespace().collect();
    let form = "expected `PATH OP NUMBER` (OP one of == != < <= > >=) or `PATH within N% of NUMBER`";
    let number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
    let (path, op, value) = match t.as_slice() {
        [p, op, v] => {
            let op = match *op {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return Err(format!("`{text}`: unknown comparison `{op}`; {form}")),
            };
            (p, op, number(v).ok_or_else(|| format!("`{text}`: `{v}` is not a number; {form}"))?)
        }
        [p, "within", pct, "of", v] => {
            let pct = pct
                .strip_suffix('%')
                .and_then(number)
                .filter(|x| *x >= 0.0)
                .ok_or_else(|| format!("`{text}`: `{pct}` is not a percentage like 2%; {form}"))?;
            (p, Op::Within(pct), number(v).ok_or_else(|| format!("`{text}`: `{v}` is not a number; {form}"))?)
        }
        _ => return Err(format!("`{text}`: {form}")),
    };
    Ok(Expr { path: path.split('.').map(str::to_string).collect(), op, value })
}

fn lookup(json: &Value, path: &[String]) -> Option<f64> {
    let mut v = json;
    for seg in path {
        v = v.get(seg)?;
    }
    v.as_f64()
}

fn numeric_paths(example: &Value) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&p, x, out);
                }
            }
            Value::Number(_) => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", example, &mut out);
    out
}

/// The keys an expectation may name: the summary's numeric keys (besides
/// `errors_by_kind.KIND`, `metrics.NAME` and `domains.DOMAIN.KEY`, whose
/// names depend on the run) and the keys of one domain's counts. The
/// summary module says what they are ([`crate::summary::expectation_keys`]).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Numeric keys of a variant's summary (`lost`, `latency_ms.p99`, ...).
    pub known: Vec<String>,
    /// Numeric keys of one effect domain (`domains.DOMAIN.KEY`).
    pub per_domain: Vec<String>,
}

impl Keys {
    /// The numeric keys of two example JSON values: a variant's summary and
    /// one domain's counts.
    pub fn of(summary: &Value, domain: &Value) -> Self {
        Keys { known: numeric_paths(summary), per_domain: numeric_paths(domain) }
    }
}

/// Checks that every expectation parses and names a key in `keys`; on
/// failure, says which one (its index) and why. A `domains.DOMAIN.KEY` must
/// name one of `domains` when given (the effect domains of the scenario).
pub fn check_all_in(exprs: &[String], keys: &Keys, domains: Option<&[String]>) -> Result<(), (usize, String)> {
    for (i, e) in exprs.iter().enumerate() {
        check_one(e, &keys.known, &keys.per_domain, domains).map_err(|m| (i, m))?;
    }
    Ok(())
}

fn check_one(e: &str, known: &[String], per_domain: &[String], domains: Option<&[String]>) -> Result<(), String> {
    let x = parse(e)?;
    let p = x.path.join(".");
    // Error kinds and metrics are open-ended: any `errors_by_kind.NAME` or
    // `metrics.NAME` is allowed (absent = 0).
    let open = x.path.len() == 2 && (x.path[0] == "errors_by_kind" || x.path[0] == "metrics");
    if known.contains(&p) || open {
        return Ok(());
    }
    if x.path.len() >= 3 && x.path[0] == "domains" {
        let name = &x.path[1];
        if let Some(names) = domains.filter(|d| !d.contains(name)) {
            let list = names.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ");
            return Err(format!("`{e}`: no effect domain named `{name}` (domains: {list})"));
        }
        let key = x.path[2..].join(".");
        if per_domain.contains(&key) {
            return Ok(());
        }
        return Err(format!("`{e}`: unknown key `{key}` of a domain; known keys: {}", per_domain.join(", ")));
    }
    Err(format!(
        "`{e}`: unknown key `{p}`; known keys: {}, errors_by_kind.KIND, metrics.NAME, domains.DOMAIN.KEY",
        known.join(", ")
    ))
}

/// Checks one expectation against a variant's summary (as JSON). An
/// expectation that does not parse, or names a missing key, does not hold.
pub fn evaluate(text: &str, summary: &Value) -> Outcome {
    let Ok(x) = parse(text) else {
        return Outcome { expect: text.to_string(), held: false, actual: f64::NAN };
    };
    let actual = match lookup(summary, &x.path) {
        Some(v) => v,
        None if x.path.first().is_some_and(|p| p == "errors_by_kind" || p == "metrics") => 0.0,
        None => return Outcome { expect: text.to_string(), held: false, actual: f64::NAN },
    };
    let held = match x.op {
        Op::Eq => actual == x.value,
        Op::Ne => actual != x.value,
        Op::Lt => actual < x.value,
        Op::Le => actual <= x.value,
        Op::Gt => actual > x.value,
        Op::Ge => actual >= x.value,
        Op::Within(pct) => (actual - x.value).abs() <= pct / 100.0 * x.value.abs(),
    };
    Outcome { expect: text.to_string(), held, actual }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_compare_summary_values() {
        let s = serde_json::json!({"lost": 0, "latency_ms": {"mean": 5.05}});
        assert!(evaluate("lost == 0", &s).held);
        assert!(!evaluate("lost > 0", &s).held);
        assert!(evaluate("latency_ms.mean within 2% of 5.0", &s).held);
        assert!(!evaluate("latency_ms.mean within 0.5% of 5.0", &s).held);
        assert!(!evaluate("nonsense == 1", &s).held);
    }

    /// Keys like a summary's, enough for these tests.
    fn keys() -> Keys {
        let summary = serde_json::json!({"lost": 0, "latency_ms": {"p99": 0.0}});
        Keys::of(&summary, &serde_json::json!({"lost": 0, "latency_ms": {"p99": 0.0}}))
    }

    fn check_all(exprs: &[String]) -> Result<(), (usize, String)> {
        check_all_in(exprs, &keys(), None)
    }

    #[test]
    fn malformed_or_unknown_expectations_are_refused() {
        assert!(check_all(&["lost == 0".into(), "latency_ms.p99 < 10".into()]).is_ok());
        assert!(check_all(&["lost = 0".into()]).is_err());
        assert!(check_all(&["lots == 0".into()]).is_err());
        assert!(check_all(&["lost within 2 of 3".into()]).is_err());
    }

    #[test]
    fn domain_and_metric_paths_are_checked_and_absent_metrics_are_zero() {
        let domains = ["x".to_string(), "y".to_string()];
        let ok = |e: &str| check_all_in(&[e.to_string()], &keys(), Some(&domains)).is_ok();
        assert!(ok("domains.x.lost == 0"));
        assert!(ok("domains.y.latency_ms.p99 < 10"));
        assert!(ok("metrics.late_responses > 0"));
        assert!(!ok("domains.z.lost == 0"), "no domain z");
        assert!(!ok("domains.x.lots == 0"), "no key lots");
        assert!(!ok("metrics.a.b == 0"));
        let s = serde_json::json!({"domains": {"x": {"lost": 2}}, "metrics": {}});
        assert!(evaluate("domains.x.lost == 2", &s).held);
        assert!(evaluate("metrics.late_responses == 0", &s).held, "a metric never reported is 0");
    }
}

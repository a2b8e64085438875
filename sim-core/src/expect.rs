//! Expectations: one-line claims about a variant's summary that make a
//! scenario self-checking, such as `lost == 0`, `duplicated > 0`, or
//! `latency_ms.mean within 2% of 5.0`.
//!
//! Grammar: `PATH OP NUMBER`, where PATH is a dotted key of the variant's
//! summary and OP is one of `==`, `!=`, `<`, `<=`, `>`, `>=`; or
//! `PATH within N% of NUMBER`; or the interval form
//! `PATH within N% of NUMBER at L%`, judged over replications (the same
//! variant at several seeds, see [`evaluate_over`]): it holds when the L%
//! confidence interval of the mean of PATH lies inside NUMBER ± N%.

use serde::Serialize;
use serde_json::Value;

/// The result of checking one expectation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    /// The expectation as written.
    pub expect: String,
    /// Whether it held.
    pub held: bool,
    /// The value the summary had (for an interval expectation, the mean
    /// over the replications).
    pub actual: f64,
    /// An interval expectation's confidence interval of the mean, [low,
    /// high] (absent for the other forms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
    /// How many replications an interval expectation's interval is of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
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
    /// The confidence level (0.95) of an interval expectation.
    level: Option<f64>,
}

fn parse(text: &str) -> Result<Expr, String> {
    let t: Vec<&str> = text.split_whitespace().collect();
    let form = "expected `PATH OP NUMBER` (OP one of == != < <= > >=), `PATH within N% of NUMBER` or `PATH within N% of NUMBER at L%`";
    let number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
    let (t, level) = match t.as_slice() {
        [head @ .., "at", level] => {
            let l = level.strip_suffix('%').and_then(number).filter(|l| *l > 0.0 && *l < 100.0).ok_or_else(|| {
                format!("`{text}`: `{level}` is not a confidence level like 95% (above 0%, below 100%); {form}")
            })?;
            if !matches!(head, [_, "within", _, "of", _]) {
                return Err(format!("`{text}`: only `PATH within N% of NUMBER` takes a confidence level `at L%`"));
            }
            (head.to_vec(), Some(l / 100.0))
        }
        _ => (t, None),
    };
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
    Ok(Expr { path: path.split('.').map(str::to_string).collect(), op, value, level })
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

/// The names a variant can report under the groups whose keys depend on
/// the run: its effect domains (`domains.DOMAIN.KEY`), the metric names
/// (`metrics.NAME`) and the error kinds (`errors_by_kind.KIND`) that the
/// kinds of its nodes declare. `None` lets any name through.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The effect domains.
    pub domains: Option<Vec<String>>,
    /// The metric names.
    pub metrics: Option<Vec<String>>,
    /// The error kinds.
    pub errors: Option<Vec<String>>,
    /// The alarms' names (`alarms.NAME.KEY`); `None` lets any name through.
    pub alarms: Option<Vec<String>>,
    /// Whether the variant reports `steady_state` (`[run] steady_state`):
    /// its keys may be named only then.
    pub steady_state: bool,
}

/// Checks that every expectation parses and names a key in `keys`, or a
/// domain, metric or error kind of `scope`; on failure, says which one (its
/// index) and why, with a did-you-mean when a possible name is close.
pub fn check_all_in(exprs: &[String], keys: &Keys, scope: &Scope) -> Result<(), (usize, String)> {
    for (i, e) in exprs.iter().enumerate() {
        check_one(e, keys, scope).map_err(|m| (i, m))?;
    }
    Ok(())
}

fn check_one(e: &str, keys: &Keys, scope: &Scope) -> Result<(), String> {
    let x = parse(e)?;
    let p = x.path.join(".");
    if x.path.first().is_some_and(|f| f == "steady_state") && !scope.steady_state && keys.known.contains(&p) {
        let ask = "add `steady_state = { warmup = \"mser-5\", batches = 20 }` to `[run]`";
        return Err(format!("`{e}`: `steady_state` is reported only when the scenario asks for it: {ask}"));
    }
    if keys.known.contains(&p) {
        return Ok(());
    }
    match x.path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [by @ ("lost_by_cause" | "duplicated_by_cause"), cause] => check_cause(e, by, cause),
        ["domains", name, by @ ("lost_by_cause" | "duplicated_by_cause"), cause] => {
            check_name(e, name, "effect domain", scope.domains.as_deref())?;
            check_cause(e, by, cause)
        }
        ["metrics", name] => check_name(e, name, "metric", scope.metrics.as_deref()),
        ["errors_by_kind", kind] => check_name(e, kind, "error kind", scope.errors.as_deref()),
        ["alarms", name, key] => {
            check_name(e, name, "alarm", scope.alarms.as_deref())?;
            if crate::alarms::OUTCOME_KEYS.contains(key) {
                return Ok(());
            }
            let keys: Vec<String> = crate::alarms::OUTCOME_KEYS.iter().map(|k| k.to_string()).collect();
            Err(format!(
                "`{e}`: unknown key `{key}` of an alarm{}; known keys: {}",
                did_you_mean(key, &keys),
                keys.join(", ")
            ))
        }
        ["domains", name, rest @ ..] if !rest.is_empty() => {
            check_name(e, name, "effect domain", scope.domains.as_deref())?;
            let key = rest.join(".");
            if keys.per_domain.contains(&key) {
                return Ok(());
            }
            let hint = did_you_mean(&key, &keys.per_domain);
            Err(format!("`{e}`: unknown key `{key}` of a domain{hint}; known keys: {}", keys.per_domain.join(", ")))
        }
        _ => Err(format!(
            "`{e}`: unknown key `{p}`{}; known keys: {}, errors_by_kind.KIND, metrics.NAME, domains.DOMAIN.KEY",
            did_you_mean(&p, &keys.known),
            keys.known.join(", ")
        )),
    }
}

/// Accepts `cause` if it names a cause of `by` (`lost_by_cause` or
/// `duplicated_by_cause`).
fn check_cause(e: &str, by: &str, cause: &str) -> Result<(), String> {
    use crate::ledger::{DupCause, LossCause};
    let names: Vec<String> = if by == "lost_by_cause" {
        LossCause::ALL.iter().map(|c| c.name().to_string()).collect()
    } else {
        DupCause::ALL.iter().map(|c| c.name().to_string()).collect()
    };
    if names.iter().any(|n| n == cause) {
        return Ok(());
    }
    let hint = did_you_mean(cause, &names);
    Err(format!("`{e}`: `{by}` has no cause `{cause}`{hint} (causes: {})", names.join(", ")))
}

/// True for a path whose value is 0 when the summary does not list it: a
/// metric, an error kind or a cause never reported.
fn zero_when_absent(path: &[String]) -> bool {
    let by = |p: Option<&String>| p.is_some_and(|p| p == "lost_by_cause" || p == "duplicated_by_cause");
    match path.first().map(String::as_str) {
        Some("errors_by_kind" | "metrics") => true,
        Some("domains") => path.len() == 4 && by(path.get(2)),
        _ => path.len() == 2 && by(path.first()),
    }
}

/// Accepts `name` if `possible` is `None` or holds it; else says which
/// names are possible, suggesting a close one.
fn check_name(e: &str, name: &str, what: &str, possible: Option<&[String]>) -> Result<(), String> {
    let Some(possible) = possible.filter(|p| !p.iter().any(|n| n == name)) else {
        return Ok(());
    };
    let hint = did_you_mean(name, possible);
    let list = if possible.is_empty() {
        "none".to_string()
    } else {
        possible.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    };
    if what == "effect domain" {
        return Err(format!("`{e}`: no effect domain named `{name}`{hint} (domains: {list})"));
    }
    Err(format!(
        "`{e}`: no node of this variant can report the {what} `{name}`{hint} \
         ({what}s its nodes can report: {list})"
    ))
}

/// "; did you mean `NAME`?" for the closest of `candidates` to `name`, or
/// "" when none is close.
fn did_you_mean(name: &str, candidates: &[String]) -> String {
    closest(name, candidates).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

/// The candidate closest to `name`: within edit distance 2, or one of them
/// a prefix of the other (at least 3 characters long); the nearest by edit
/// distance, the first on a tie.
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let prefix = |a: &str, b: &str| a.len() >= 3 && b.starts_with(a);
    candidates
        .iter()
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2 || prefix(name, c) || prefix(c, name))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// The edit distance between `a` and `b`: the fewest insertions, deletions
/// and substitutions of characters that turn one into the other.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// True when `text` is an interval expectation (`... at 95%`), judged
/// over replications by [`evaluate_over`].
pub fn is_interval(text: &str) -> bool {
    parse(text).is_ok_and(|x| x.level.is_some())
}

/// Checks one expectation against a variant's summary (as JSON). An
/// expectation that does not parse, or names a missing key, does not hold;
/// nor does an interval expectation, which one run cannot judge (see
/// [`evaluate_over`]).
pub fn evaluate(text: &str, summary: &Value) -> Outcome {
    evaluate_over(text, std::slice::from_ref(summary))
}

/// Checks one expectation against the summaries of replications of one
/// variant (the same variant at several seeds, the first the run being
/// reported). A plain expectation is judged on the first; an interval
/// expectation `PATH within N% of X at L%` holds when the Student t L%
/// confidence interval of the mean of PATH over all of them
/// ([`crate::stats::estimate`]) lies entirely inside [X - N% |X|, X + N% |X|].
/// A wide interval fails: the claim is "we are L% sure the mean is within
/// N%", and too few or too noisy runs cannot make it.
pub fn evaluate_over(text: &str, summaries: &[Value]) -> Outcome {
    let not = |actual| Outcome { expect: text.to_string(), held: false, actual, ci: None, n: None };
    let Ok(x) = parse(text) else { return not(f64::NAN) };
    let value_of = |summary: &Value| match lookup(summary, &x.path) {
        Some(v) => Some(v),
        None if zero_when_absent(&x.path) => Some(0.0),
        None => None,
    };
    if let (Some(level), Op::Within(pct)) = (x.level, x.op) {
        let Some(values) = summaries.iter().map(value_of).collect::<Option<Vec<f64>>>() else {
            return not(f64::NAN);
        };
        let e = crate::stats::estimate(&values, level);
        let slack = pct / 100.0 * x.value.abs();
        let held = e.low >= x.value - slack && e.high <= x.value + slack;
        return Outcome { expect: text.to_string(), held, actual: e.mean, ci: Some([e.low, e.high]), n: Some(e.n) };
    }
    let Some(actual) = summaries.first().and_then(value_of) else { return not(f64::NAN) };
    let held = match x.op {
        Op::Eq => actual == x.value,
        Op::Ne => actual != x.value,
        Op::Lt => actual < x.value,
        Op::Le => actual <= x.value,
        Op::Gt => actual > x.value,
        Op::Ge => actual >= x.value,
        Op::Within(pct) => (actual - x.value).abs() <= pct / 100.0 * x.value.abs(),
    };
    Outcome { expect: text.to_string(), held, actual, ci: None, n: None }
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
        check_all_in(exprs, &keys(), &Scope::default())
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
        let scope = Scope { domains: Some(vec!["x".into(), "y".into()]), ..Scope::default() };
        let ok = |e: &str| check_all_in(&[e.to_string()], &keys(), &scope).is_ok();
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

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn levenshtein_counts_insertions_deletions_and_substitutions() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("rejected", "rejected"), 0);
        assert_eq!(levenshtein("rejeted", "rejected"), 1, "one insertion");
        assert_eq!(levenshtein("rejected", "rejeted"), 1, "one deletion");
        assert_eq!(levenshtein("lost", "lest"), 1, "one substitution");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("expired", "ack-timeout"), levenshtein("ack-timeout", "expired"), "symmetric");
    }

    #[test]
    fn did_you_mean_suggests_a_name_within_two_edits_or_sharing_a_prefix() {
        let errors = names(&["ack-timeout", "expired", "rejected"]);
        assert_eq!(closest("rejeted", &errors), Some("rejected"));
        assert_eq!(closest("ack_timeout", &errors), Some("ack-timeout"));
        assert_eq!(closest("nonsense", &errors), None, "nothing close");
        let metrics = names(&["truncated_records", "acked_records_truncated", "late_responses"]);
        assert_eq!(closest("truncated", &metrics), Some("truncated_records"), "a prefix of a name");
        assert_eq!(closest("late_responses_total", &metrics), Some("late_responses"), "a name is its prefix");
        assert_eq!(closest("la", &metrics), None, "too short a prefix to suggest");
        assert_eq!(closest("rejected", &[]), None);
        let near = names(&["abcd", "abce", "abxy"]);
        assert_eq!(closest("abcx", &near), Some("abcd"), "the nearest, the first on a tie");
    }

    #[test]
    fn metrics_and_error_kinds_must_be_reportable_by_the_scope() {
        let scope = Scope {
            domains: None,
            metrics: Some(names(&["late_responses", "request_timeouts"])),
            errors: Some(names(&["rejected"])),
            alarms: Some(names(&["urp"])),
            steady_state: false,
        };
        let check = |e: &str| check_all_in(&[e.to_string()], &keys(), &scope);
        assert!(check("alarms.urp.fired > 0").is_ok());
        assert!(check("alarms.urp.active_s < 3").is_ok());
        assert!(check("alarms.urpp.fired > 0").unwrap_err().1.contains("did you mean `urp`"));
        assert!(check("alarms.urp.fire > 0").unwrap_err().1.contains("did you mean `fired`"));
        assert!(check("metrics.late_responses == 0").is_ok());
        assert!(check("errors_by_kind.rejected > 0").is_ok());
        let (_, err) = check("errors_by_kind.rejeted == 0").unwrap_err();
        assert!(err.contains("did you mean `rejected`?"), "{err}");
        let (_, err) = check("metrics.late_response == 0").unwrap_err();
        assert!(err.contains("did you mean `late_responses`?"), "{err}");
        assert!(err.contains("`late_responses`, `request_timeouts`"), "lists the possible names: {err}");
        let (_, err) = check("metrics.offset_resets == 0").unwrap_err();
        assert!(!err.contains("did you mean"), "nothing close: {err}");
        let none = Scope { errors: Some(Vec::new()), ..Scope::default() };
        let (_, err) = check_all_in(&["errors_by_kind.rejected == 0".to_string()], &keys(), &none).unwrap_err();
        assert!(err.contains("can report: none"), "{err}");
    }

    #[test]
    fn a_misspelt_domain_or_key_gets_a_did_you_mean() {
        let scope = Scope { domains: Some(names(&["email", "ledger"])), ..Scope::default() };
        let check = |e: &str| check_all_in(&[e.to_string()], &keys(), &scope).unwrap_err().1;
        let err = check("domains.emial.lost == 0");
        assert!(err.contains("no effect domain named `emial`; did you mean `email`?"), "{err}");
        assert!(err.contains("(domains: `email`, `ledger`)"), "{err}");
        assert!(check("domains.email.lots == 0").contains("did you mean `lost`?"));
        assert!(check("lots == 0").contains("did you mean `lost`?"));
    }

    #[test]
    fn a_cause_may_be_expected_by_name_and_reads_0_when_it_did_not_occur() {
        let keys = Keys::default();
        let scope = Scope { domains: Some(vec!["g".to_string()]), ..Scope::default() };
        let check = |e: &str| check_all_in(&[e.to_string()], &keys, &scope);
        assert!(check("lost_by_cause.commit_before_process > 0").is_ok());
        assert!(check("domains.g.duplicated_by_cause.redelivered == 0").is_ok());
        let (_, err) = check("lost_by_cause.comit_before_process > 0").unwrap_err();
        assert!(err.contains("did you mean `commit_before_process`"), "{err}");
        assert!(check("duplicated_by_cause.crash > 0").is_err(), "crash is a loss cause");
        assert!(check("domains.h.lost_by_cause.crash > 0").is_err(), "no domain h");
        let s = serde_json::json!({ "lost_by_cause": { "crash": 3 }, "domains": { "g": { "lost_by_cause": {} } } });
        assert_eq!(evaluate("lost_by_cause.crash == 3", &s).actual, 3.0);
        assert!(evaluate("lost_by_cause.ttl == 0", &s).held, "a cause that did not occur is 0");
        assert!(evaluate("domains.g.lost_by_cause.ttl == 0", &s).held);
    }
}

#[cfg(test)]
#[path = "expect_interval_tests.rs"]
mod interval_tests;

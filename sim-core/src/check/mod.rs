//! The invariant library: named claims about a whole run, such as "nothing
//! acknowledged was lost", that a scenario makes for a variant, that
//! `asyncsim check` searches for violations of, and that tests assert.
//!
//! Each invariant is judged from the variant's summary alone, that is from
//! the ledger's and the state observer's figures, never from a component's
//! own account: a broker that loses a record cannot hide it. The names are
//! the same in files, on the command line, in output and in
//! docs/invariants.md.
//!
//! An invariant speaks of something a scenario may not have (money, replicas
//! read by clients, sagas): on such a scenario it does not apply, and holds.
//! What this leaves out: invariants over the order of events in time (say,
//! "a read after a write sees it"), which need the trace; they are judged
//! through the observer's summary figures instead (`bounded-staleness`).

use serde::Serialize;
use serde_json::Value;

/// A named invariant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Invariant {
    /// No message considered sent is missing from any effect domain.
    NoLoss,
    /// No effect is applied twice.
    NoDuplicates,
    /// Within a key, effects are applied in production order.
    PerKeyOrder,
    /// No consumer group's committed offset passes a record it never processed.
    NoSkippedOffsets,
    /// A group's committed offset never goes backwards, except a rewind to
    /// a divergence detected after an unclean election.
    MonotonicCommits,
    /// No message whose producer got a broker's ack is lost.
    NoAckedWriteLost,
    /// No read is staler than `bound_ms`.
    BoundedStaleness {
        /// The bound, in milliseconds.
        bound_ms: f64,
    },
    /// No account is overdrawn beyond its limit after reconciliation.
    NoOverdraft,
    /// After the drain every domain and replica agrees.
    Convergence,
    /// Every saga ends completed or compensated.
    SagasSettled,
}

/// `bounded-staleness` without a bound: one second.
pub const DEFAULT_STALENESS_BOUND_MS: f64 = 1000.0;

/// One invariant's verdict on one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Judgement {
    /// The invariant, as written back (`bounded-staleness(250)`).
    pub invariant: String,
    /// Whether it held.
    pub held: bool,
    /// False when the scenario has nothing the invariant speaks of (then
    /// it holds).
    pub applies: bool,
    /// The figures that decided it: `lost = 12 (commit_before_process 12)`.
    pub detail: String,
}

/// How one figure of the summary is judged.
enum Term {
    /// Must be 0 (absent counts as 0).
    Zero(&'static str),
    /// Must be at most the bound (absent: no reads, holds).
    AtMost(&'static str, f64),
}

impl Invariant {
    /// Every name, in the order of docs/invariants.md.
    pub const NAMES: [&'static str; 10] = [
        "no-loss",
        "no-duplicates",
        "per-key-order",
        "no-skipped-offsets",
        "monotonic-commits",
        "no-acked-write-lost",
        "bounded-staleness",
        "no-overdraft",
        "convergence",
        "sagas-settled",
    ];

    /// Reads a name: one of [`Invariant::NAMES`], `bounded-staleness` taking
    /// an optional bound in milliseconds: `bounded-staleness(250)`.
    pub fn parse(text: &str) -> Result<Invariant, String> {
        let t = text.trim();
        let (name, arg) = match t.split_once('(') {
            Some((n, rest)) => {
                let arg = rest.strip_suffix(')').ok_or_else(|| format!("`{t}`: expected `NAME(NUMBER)`"))?;
                (n.trim(), Some(arg.trim()))
            }
            None => (t, None),
        };
        let inv = match name {
            "no-loss" => Invariant::NoLoss,
            "no-duplicates" => Invariant::NoDuplicates,
            "per-key-order" => Invariant::PerKeyOrder,
            "no-skipped-offsets" => Invariant::NoSkippedOffsets,
            "monotonic-commits" => Invariant::MonotonicCommits,
            "no-acked-write-lost" => Invariant::NoAckedWriteLost,
            "bounded-staleness" => {
                let bound_ms = match arg {
                    None => DEFAULT_STALENESS_BOUND_MS,
                    Some(a) => a
                        .parse::<f64>()
                        .ok()
                        .filter(|b| b.is_finite() && *b >= 0.0)
                        .ok_or_else(|| format!("`{t}`: `{a}` is not a bound in milliseconds"))?,
                };
                return Ok(Invariant::BoundedStaleness { bound_ms });
            }
            "no-overdraft" => Invariant::NoOverdraft,
            "convergence" => Invariant::Convergence,
            "sagas-settled" => Invariant::SagasSettled,
            _ => return Err(unknown(name)),
        };
        match arg {
            Some(_) => Err(format!("`{t}`: `{name}` takes no argument")),
            None => Ok(inv),
        }
    }

    /// The name, as [`Invariant::parse`] reads it back.
    pub fn name(&self) -> String {
        match self {
            Invariant::BoundedStaleness { bound_ms } if *bound_ms != DEFAULT_STALENESS_BOUND_MS => {
                format!("bounded-staleness({bound_ms})")
            }
            other => Invariant::NAMES[other.index()].to_string(),
        }
    }

    fn index(&self) -> usize {
        match self {
            Invariant::NoLoss => 0,
            Invariant::NoDuplicates => 1,
            Invariant::PerKeyOrder => 2,
            Invariant::NoSkippedOffsets => 3,
            Invariant::MonotonicCommits => 4,
            Invariant::NoAckedWriteLost => 5,
            Invariant::BoundedStaleness { .. } => 6,
            Invariant::NoOverdraft => 7,
            Invariant::Convergence => 8,
            Invariant::SagasSettled => 9,
        }
    }

    /// What it claims, in one line.
    pub fn meaning(&self) -> &'static str {
        match self {
            Invariant::NoLoss => "every message its producer considered sent takes effect in every domain",
            Invariant::NoDuplicates => "no effect is applied twice",
            Invariant::PerKeyOrder => "within a key, effects are applied in the order the messages were produced",
            Invariant::NoSkippedOffsets => {
                "no consumer group commits past a record it never processed (commit before processing, \
                 an election that cut below a committed offset, a record skipped after failures)"
            }
            Invariant::MonotonicCommits => {
                "a group's committed offset never goes backwards, except a rewind to a divergence \
                 detected after an unclean election"
            }
            Invariant::NoAckedWriteLost => "no message whose producer received a broker's ack is lost",
            Invariant::BoundedStaleness { .. } => "no read returns a value staler than the bound",
            Invariant::NoOverdraft => "no account ends overdrawn beyond its limit after reconciliation",
            Invariant::Convergence => "after the drain, every effect domain and every replica agrees",
            Invariant::SagasSettled => "every saga ends completed or compensated, none stuck",
        }
    }

    /// The summary key whose presence means the invariant applies (`None`:
    /// it always does).
    fn subject(&self) -> Option<&'static str> {
        match self {
            Invariant::BoundedStaleness { .. } => Some("consistency"),
            Invariant::NoOverdraft => Some("overdraft"),
            Invariant::SagasSettled => Some("metrics.sagas_completed"),
            _ => None,
        }
    }

    fn terms(&self) -> Vec<Term> {
        use Term::*;
        match *self {
            Invariant::NoLoss => vec![Zero("lost")],
            Invariant::NoDuplicates => vec![Zero("duplicated")],
            Invariant::PerKeyOrder => vec![Zero("reordered")],
            Invariant::NoSkippedOffsets => vec![
                Zero("lost_by_cause.commit_before_process"),
                Zero("lost_by_cause.skipped_offset"),
                Zero("lost_by_cause.skipped_after_failure"),
            ],
            Invariant::MonotonicCommits => vec![Zero("metrics.offset_regressions")],
            Invariant::NoAckedWriteLost => vec![Zero("acked_lost")],
            Invariant::BoundedStaleness { bound_ms } => vec![AtMost("consistency.staleness_ms.max", bound_ms)],
            Invariant::NoOverdraft => vec![Zero("overdraft.count")],
            Invariant::Convergence => vec![Zero("inconsistent"), Zero("consistency.diverged")],
            Invariant::SagasSettled => vec![Zero("metrics.sagas_stuck")],
        }
    }

    /// Judges the invariant on a variant's summary (as JSON).
    pub fn judge(&self, summary: &Value) -> Judgement {
        let invariant = self.name();
        if let Some(key) = self.subject() {
            if get(summary, key).is_none() {
                let detail = format!("does not apply: the run has no `{key}`");
                return Judgement { invariant, held: true, applies: false, detail };
            }
        }
        let mut broken = Vec::new();
        let mut seen = Vec::new();
        for term in self.terms() {
            let (path, bound) = match term {
                Term::Zero(p) => (p, 0.0),
                Term::AtMost(p, b) => (p, b),
            };
            let v = get(summary, path).and_then(Value::as_f64).unwrap_or(0.0);
            let short = path.rsplit('.').next().unwrap_or(path);
            if v > bound {
                broken.push(format!("{path} = {}", number(v)));
            } else if matches!(term, Term::AtMost(..)) {
                seen.push(format!("{short} = {} <= {}", number(v), number(bound)));
            }
        }
        let held = broken.is_empty();
        let mut detail = if held {
            if seen.is_empty() {
                "held".to_string()
            } else {
                seen.join(", ")
            }
        } else {
            broken.join(", ")
        };
        if !held && matches!(self, Invariant::NoLoss | Invariant::NoAckedWriteLost) {
            if let Some(causes) = by_cause(summary) {
                detail.push_str(&format!(" (lost by cause: {causes})"));
            }
        }
        Judgement { invariant, held, applies: true, detail }
    }
}

/// Judges each of `invariants` (names, already validated) on a summary;
/// a name that does not parse is judged violated, saying why.
pub fn judge_all(invariants: &[String], summary: &Value) -> Vec<Judgement> {
    invariants
        .iter()
        .map(|name| match Invariant::parse(name) {
            Ok(inv) => inv.judge(summary),
            Err(e) => Judgement { invariant: name.clone(), held: false, applies: false, detail: e },
        })
        .collect()
}

/// Checks a list of names as written in a file; `Err((index, message))`.
pub fn check_names(names: &[String]) -> Result<(), (usize, String)> {
    for (i, n) in names.iter().enumerate() {
        Invariant::parse(n).map_err(|m| (i, m))?;
    }
    Ok(())
}

fn unknown(name: &str) -> String {
    let names: Vec<String> = Invariant::NAMES.iter().map(|s| s.to_string()).collect();
    let hint = match crate::expect::closest(name, &names) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    };
    format!("unknown invariant `{name}`{hint}; the invariants are {}", Invariant::NAMES.join(", "))
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, seg| v.get(seg))
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

fn by_cause(summary: &Value) -> Option<String> {
    let m = summary.get("lost_by_cause")?.as_object()?;
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests;

//! Stand-in for the lead's invariant library (`sim_core::check`) until it
//! lands on main: the same `Judgement` and `judge_all`, for the few
//! invariants the acceptance needs. Replaced by a re-export on merge.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One invariant judged on one run's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// Its name.
    pub invariant: String,
    /// Whether it held.
    pub held: bool,
    /// False when the scenario has nothing it speaks of (then it held).
    pub applies: bool,
    /// The figures that decided.
    pub detail: String,
}

/// The names known.
pub const NAMES: [&str; 3] = ["no-loss", "no-duplicates", "no-acked-write-lost"];

/// Judges each of `invariants` on `summary`.
pub fn judge_all(invariants: &[String], summary: &Value) -> Vec<Judgement> {
    invariants
        .iter()
        .map(|name| {
            let key = match name.as_str() {
                "no-loss" => "/lost",
                "no-duplicates" => "/duplicated",
                _ => "/metrics/acked_records_truncated",
            };
            let n = summary.pointer(key).and_then(Value::as_f64).unwrap_or(0.0);
            Judgement { invariant: name.clone(), held: n == 0.0, applies: true, detail: format!("{} = {n}", &key[1..]) }
        })
        .collect()
}

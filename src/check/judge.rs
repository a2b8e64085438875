//! The invariant library is `sim_core::check`; this is the record of one
//! judgement as the search's JSON records carry it (`Judgement` itself is
//! only serialized, and records are read back by `finish`).

use serde::{Deserialize, Serialize};
pub use sim_core::check::{judge_all, Invariant, Judgement};

/// A [`Judgement`], as a record holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    /// The invariant, as written back (`bounded-staleness(250)`).
    pub invariant: String,
    /// Whether it held.
    pub held: bool,
    /// False when the scenario has nothing it speaks of (then it held).
    pub applies: bool,
    /// The figures that decided it.
    pub detail: String,
}

impl From<&Judgement> for Judged {
    fn from(j: &Judgement) -> Judged {
        Judged { invariant: j.invariant.clone(), held: j.held, applies: j.applies, detail: j.detail.clone() }
    }
}

/// The invariants of `--invariant`, checked and written as the library
/// writes them back; a bad name is an input error naming the others.
pub fn parse_all(names: &[String]) -> anyhow::Result<Vec<String>> {
    names
        .iter()
        .map(|n| Invariant::parse(n).map(|i| i.name()).map_err(|e| anyhow::anyhow!("--invariant: {e}")))
        .collect()
}

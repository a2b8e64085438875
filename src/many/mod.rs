//! The runner of many runs (STAND-IN until the lead's `Shared:` commit lands:
//! only the parts of the contract in /work/briefs/s30/interfaces.md that
//! `merge` and `Meter` need; the lead's version replaces this file).
// Sweep and check, on their own branches, use what merge does not.
#![allow(dead_code, unused_imports)]

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub mod merge;
pub mod meter;

pub use meter::Meter;

/// One shard of the units: `--shard I/N`, I from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether this shard runs unit `unit`.
    pub fn owns(&self, unit: usize) -> bool {
        unit % self.count == self.index - 1
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: a shard is I/N, e.g. 2/4"))?;
        let (index, count): (usize, usize) = match (i.trim().parse(), n.trim().parse()) {
            (Ok(i), Ok(n)) => (i, n),
            _ => return Err(format!("`{s}`: a shard is I/N with whole numbers, e.g. 2/4")),
        };
        if count == 0 || index == 0 || index > count {
            return Err(format!("`{s}`: I must be from 1 to N"));
        }
        Ok(Shard { index, count })
    }
}

/// One shard's results: written by `sweep`/`check` run with `--shard`, read by `merge`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Partial {
    pub asyncsim: String,
    pub command: String,
    pub plan: serde_json::Value,
    pub shard: [usize; 2],
    pub runs: Vec<serde_json::Value>,
}

impl Partial {
    /// Writes DIR/partial.json, whole or not at all.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("partial.json");
        let tmp = dir.join(".partial.json.tmp");
        let text = serde_json::to_string(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Reads DIR/partial.json.
    pub fn read(dir: &Path) -> Result<Partial> {
        let path = dir.join("partial.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        match serde_json::from_str(&text) {
            Ok(p) => Ok(p),
            Err(e) => bail!("{}: not a shard's partial.json: {e}", path.display()),
        }
    }
}

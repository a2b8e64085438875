//! One shard's results, `partial.json`: what `sweep` and `check` write
//! with `--shard I/N` and `asyncsim merge` reads back.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file a shard writes into its output folder.
pub const FILE: &str = "partial.json";

/// One shard's records and the plan they belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// The asyncsim version that ran it (merging across versions is refused).
    pub asyncsim: String,
    /// The command: "sweep" or "check".
    pub command: String,
    /// The command's normalized arguments: the same in every shard.
    pub plan: serde_json::Value,
    /// [I, N]: slice I of N.
    pub shard: [usize; 2],
    /// This shard's records, each with its `index`, in index order.
    pub runs: Vec<serde_json::Value>,
}

impl Partial {
    /// Writes `DIR/partial.json`, whole or not at all.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        let path = reports::out_path(dir, FILE)?;
        reports::write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads `DIR/partial.json`.
    pub fn read(dir: &Path) -> Result<Partial> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a shard's partial.json", path.display()))
    }
}

//! `asyncsim merge DIR... [--out OUT]`: joins the shards of a `sweep` or a
//! `check` run with `--shard I/N` into what the single-machine run gives.
//!
//! Each DIR holds one shard's `partial.json` ([`Partial`]). Merge refuses,
//! naming the offending file, partials that cannot belong together: an
//! unreadable one, another asyncsim version, another command, another plan
//! (the command's normalized arguments), another shard count, a shard
//! missing or given twice, a run index found twice. Otherwise it
//! concatenates the records sorted by `index` and calls the command's own
//! `finish`, the function the unsharded command calls on all its records:
//! the table, files and exit status are therefore those of one machine, byte
//! for byte. It checks nothing the command's `finish` knows better (which
//! indexes a plan has).

use super::Partial;
use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `asyncsim merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' output folders (each holds the partial.json that
    /// `sweep` or `check` wrote with --shard I/N), one per shard, any order.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output folder: what the command run whole would have written into
    /// its --out.
    #[arg(long, default_value = "out/merged")]
    pub out: PathBuf,
}

/// A command's last step: its plan and every record (sorted by `index`)
/// to the table, files and exit status (`sweep::finish`, `check::finish`).
pub type Finish = fn(&Value, &[Value], &Path) -> Result<ExitCode>;

/// Runs `asyncsim merge`; `finishers` are the commands whose shards it
/// joins, by the name in `Partial::command` (main.rs gives them, so that
/// this module does not depend on the commands built on it).
pub fn merge(args: &MergeArgs, finishers: &[(&str, Finish)]) -> Result<ExitCode> {
    merge_with(&args.dirs, &args.out, finishers)
}

/// [`merge`] with the table of commands given (tests use a fake one).
pub fn merge_with(dirs: &[PathBuf], out: &Path, finishers: &[(&str, Finish)]) -> Result<ExitCode> {
    let shards = read_all(dirs)?;
    let (first_file, first) = &shards[0];
    let finish = finishers.iter().find(|(name, _)| *name == first.command).map(|(_, f)| *f).ok_or_else(|| {
        let known: Vec<&str> = finishers.iter().map(|(n, _)| *n).collect();
        anyhow!(
            "{}: command `{}` has no merge (merge joins: {})",
            first_file.display(),
            first.command,
            if known.is_empty() { "none yet".to_string() } else { known.join(", ") }
        )
    })?;
    let runs = join(&shards)?;
    finish(&first.plan, &runs, out)
}

/// Every DIR's partial.json, with its path, in the order given.
fn read_all(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, Partial)>> {
    if dirs.is_empty() {
        bail!("merge needs at least one shard folder");
    }
    dirs.iter()
        .map(|dir| {
            let file = dir.join(super::partial::FILE);
            match Partial::read(dir) {
                Ok(p) => Ok((file, p)),
                // The error names the file.
                Err(e) => Err(anyhow!("cannot merge: {e:#}")),
            }
        })
        .collect()
}

/// Checks that the partials belong together (see the module doc) and
/// returns their records, sorted by `index`.
fn join(shards: &[(PathBuf, Partial)]) -> Result<Vec<Value>> {
    let (first_file, first) = &shards[0];
    let count = first.shard[1];
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for (file, p) in shards {
        agree(first_file, first, file, p)?;
        let [i, n] = p.shard;
        if i == 0 || i > n {
            bail!("{}: shard {i}/{n} does not exist (I runs from 1 to N)", file.display());
        }
        if let Some(other) = seen.insert(i, file) {
            bail!("shard {i}/{n} is given twice: {} and {}", other.display(), file.display());
        }
    }
    let missing: Vec<String> = (1..=count).filter(|i| !seen.contains_key(i)).map(|i| format!("{i}/{count}")).collect();
    if !missing.is_empty() {
        let got: Vec<String> = seen.iter().map(|(i, f)| format!("{i}/{count} ({})", f.display())).collect();
        bail!("shard {} missing: merge was given {}", missing.join(", "), got.join(", "));
    }
    records(shards)
}

/// Checks that `p` (read from `file`) was written by the same asyncsim,
/// command, plan and shard count as the first partial.
fn agree(first_file: &Path, first: &Partial, file: &Path, p: &Partial) -> Result<()> {
    let differ = |what: &str, a: &str, b: &str| {
        anyhow!(
            "{} does not belong with {}: {what} {b} there, {a} in the first\n  (merge the shards of one run only)",
            file.display(),
            first_file.display()
        )
    };
    if p.asyncsim != first.asyncsim {
        return Err(differ("asyncsim version", &first.asyncsim, &p.asyncsim));
    }
    if p.command != first.command {
        return Err(differ("command", &first.command, &p.command));
    }
    if p.shard[1] != first.shard[1] {
        let (a, b) = (first.shard[1].to_string(), p.shard[1].to_string());
        return Err(differ("shard count N =", &a, &b));
    }
    if let Some((at, a, b)) = difference("plan", &first.plan, &p.plan) {
        return Err(differ(&format!("{at} ="), &a, &b));
    }
    Ok(())
}

/// The first place where two JSON values differ: its path and both sides.
fn difference(at: &str, a: &Value, b: &Value) -> Option<(String, String, String)> {
    match (a, b) {
        _ if a == b => None,
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                match (x.get(k), y.get(k)) {
                    (Some(_), Some(_)) => difference(&format!("{at}.{k}"), va, vb),
                    (Some(_), None) => Some((format!("{at}.{k}"), va.to_string(), "(absent)".into())),
                    _ => Some((format!("{at}.{k}"), "(absent)".into(), vb.to_string())),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (va, vb))| difference(&format!("{at}[{i}]"), va, vb))
        }
        _ => Some((at.to_string(), a.to_string(), b.to_string())),
    }
}

/// Every shard's records, sorted by their `index`; each index once.
fn records(shards: &[(PathBuf, Partial)]) -> Result<Vec<Value>> {
    let mut by_index: BTreeMap<u64, (&Path, &Value)> = BTreeMap::new();
    for (file, p) in shards {
        for (k, run) in p.runs.iter().enumerate() {
            let Some(index) = run.get("index").and_then(Value::as_u64) else {
                bail!("{}: runs[{k}] has no whole-number `index`", file.display());
            };
            match by_index.insert(index, (file, run)) {
                Some((other, _)) if other == file => bail!("{}: run {index} is there twice", file.display()),
                Some((other, _)) => {
                    bail!("run {index} is in two partials: {} and {}", other.display(), file.display())
                }
                None => {}
            }
        }
    }
    Ok(by_index.into_values().map(|(_, run)| run.clone()).collect())
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;

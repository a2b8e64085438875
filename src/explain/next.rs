//! "Try next": two to four runnable commands chosen from what happened.
//! A cause that dominates suggests the setting that removes it (network
//! drops: no network loss; a commit before processing: commit after; sender
//! retries: an idempotent producer or effect; redeliveries: an idempotent
//! effect; faults: the same run without them); a variant that loses or
//! duplicates more than another suggests the other's settings; the
//! scenario's own "Try:" hints (backquoted `--set` in its opening comment)
//! fill the rest, and a different seed comes last. Every command's
//! overrides are applied through the scenario loader before it is
//! printed: one that does not apply is never suggested.

use super::happened::settings_of;
use super::{Ctx, Explained};
use crate::run::shell_quote;
use sim_core::scenario::parse_value;

/// One suggestion: a variant, the overrides to add, and why.
struct Try {
    variant: String,
    sets: Vec<String>,
    why: String,
    /// Suggestions of one group are alternatives: the first that applies is shown.
    group: usize,
}

/// `path=value` for the command line, with the value written so that the
/// loader reads it back as the same TOML value.
fn assign(path: &str, value: &toml::Value) -> String {
    let raw = match value {
        toml::Value::String(s) if parse_value(s) == *value => s.clone(),
        v => v.to_string(),
    };
    format!("{path}={raw}")
}

/// Whether the overrides `sets` apply to the scenario (on top of the
/// command line's own) and change something in `variant`.
fn applies(ctx: &Ctx, variant: &str, sets: &[String]) -> bool {
    let mut s = ctx.scenario.clone();
    if !s.variants().iter().any(|v| v.name == variant) {
        return false;
    }
    // As the suggested command runs it: `--variant` keeps that one variant.
    s.keep_variants(&[variant.to_string()]);
    if s.set_overrides(sets).is_err() {
        return false;
    }
    s.resolved_table(variant) != ctx.scenario.resolved_table(variant)
}

/// The settings (`path = value`) of the variant whose field is `key` and
/// whose value is one of `from`, each set to `to`.
fn switch(ctx: &Ctx, e: &Explained, key: &str, from: &[&str], to: &str) -> Vec<String> {
    settings_of(ctx, e, &[key])
        .into_iter()
        .filter_map(|line| {
            let (path, value) = line.split_once(" = ")?;
            let value = value.trim_matches('"');
            (from.is_empty() || from.contains(&value)).then(|| format!("{path}={to}"))
        })
        .collect()
}

/// The settings that remove the dominant cause `code`, if some do: one
/// change, or alternatives in order of preference.
fn fix(ctx: &Ctx, e: &Explained, code: &str) -> Vec<(Vec<String>, String)> {
    if code == "producer_retry" {
        let why = "an idempotent producer: the broker recognises a retry's copy and drops it";
        let effect = "an idempotent effect: the consumer recognises a retry's copy and skips it";
        let alternatives =
            [(switch(ctx, e, "idempotent", &["false"], "true"), why), (consumers_idempotent(ctx), effect)];
        return alternatives.into_iter().filter(|(s, _)| !s.is_empty()).map(|(s, w)| (s, w.to_string())).collect();
    }
    let (sets, why) = match code {
        "network_loss" => (vec!["network.loss_probability=0".to_string()], "a network that loses nothing"),
        "network_copy" => (vec!["network.duplicate_probability=0".to_string()], "a network that copies nothing"),
        "commit_before_process" | "processing_failed" => {
            (switch(ctx, e, "ack", &["before", "auto"], "after"), "acknowledge after processing (at-least-once)")
        }
        "leader_failover" | "no_leader" | "truncated_after_partition" | "skipped_offset" => {
            (switch(ctx, e, "acks", &["0", "1", "none", "leader"], "all"), "wait for every in-sync replica's ack")
        }
        "unclean_election" => {
            (switch(ctx, e, "unclean_leader_election", &["true"], "false"), "no unclean leader election")
        }
        "transient" => (switch(ctx, e, "persistent", &["false"], "true"), "persistent messages"),
        "crash" => (switch(ctx, e, "durable", &["false"], "true"), "durable queues"),
        "redelivered" => {
            (consumers_idempotent(ctx), "an idempotent effect: a redelivered copy is recognised and skipped")
        }
        _ => (Vec::new(), ""),
    };
    if sets.is_empty() {
        return Vec::new();
    }
    vec![(sets, why.to_string())]
}

/// `consumers.NAME.effect=idempotent` for every consumer.
fn consumers_idempotent(ctx: &Ctx) -> Vec<String> {
    let topology = ctx.scenario.config.topology();
    topology.section("consumers").map(|n| format!("consumers.{}.effect=idempotent", n.name())).collect()
}

/// The suggestions that follow from the largest causes of `e`.
fn from_causes(ctx: &Ctx, e: &Explained, out: &mut Vec<Try>) {
    let c = &e.summary.counts;
    for (by, noun) in [(&c.lost_by_cause, "losses"), (&c.duplicated_by_cause, "duplicates")] {
        let Some((code, n)) = by.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else { continue };
        let total: u64 = by.values().sum();
        let mut found = fix(ctx, e, code);
        if !e.summary.faults.is_empty() {
            found.push((vec!["faults=[]".to_string()], "the same run without its faults".to_string()));
        }
        let group = out.len();
        for (sets, how) in found {
            let why = format!("{n} of `{}`'s {total} {noun} come from `{code}`: {how}", e.variant.name);
            out.push(Try { variant: e.variant.name.clone(), sets, why, group });
        }
    }
}

/// The value at `path` in a resolved scenario table.
fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(table.get(first)?, |v, k| v.as_table()?.get(k))
}

/// `e` with the settings of the variant that lost and duplicated least:
/// every field either overrides, set to that variant's value.
fn from_contrast(ctx: &Ctx, e: &Explained, all: &[&Explained], out: &mut Vec<Try>) {
    let harm = |x: &Explained| (x.summary.counts.lost, x.summary.counts.duplicated);
    // The safest variant: the fewest losses, then duplicates, then changes.
    let Some(best) = all.iter().min_by_key(|x| (harm(x), x.variant.set.len())) else { return };
    let (b, w) = (harm(best), harm(e));
    if b.0 + b.1 >= w.0 + w.1 || best.variant.name == e.variant.name {
        return;
    }
    let (Some(mine), Some(theirs)) =
        (ctx.scenario.resolved_table(&e.variant.name), ctx.scenario.resolved_table(&best.variant.name))
    else {
        return;
    };
    let mut sets: Vec<String> = Vec::new();
    for o in e.variant.set.iter().chain(&best.variant.set) {
        let Some(value) = lookup(&theirs, &o.path) else { continue };
        let set = assign(&o.path.join("."), value);
        if lookup(&mine, &o.path) != Some(value) && !sets.contains(&set) {
            sets.push(set);
        }
    }
    if sets.is_empty() {
        return;
    }
    let why = format!(
        "`{}` with the settings of `{}`, which lost {} and duplicated {}",
        e.variant.name, best.variant.name, best.summary.counts.lost, best.summary.counts.duplicated
    );
    let group = out.len();
    out.push(Try { variant: e.variant.name.clone(), sets, why, group });
}

/// The backquoted `--set` hints of the scenario's opening comment.
fn from_header(ctx: &Ctx, first: &str, out: &mut Vec<Try>) {
    for hint in ctx.header.split('`').skip(1).step_by(2).filter(|h| h.contains("--set ")) {
        let words = shell_words(hint);
        let mut variant = first.to_string();
        let mut sets = Vec::new();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            match (w.as_str(), it.clone().next()) {
                ("--variant", Some(v)) => variant = v.clone(),
                ("--set", Some(s)) if s.contains('=') && !s.ends_with('=') => sets.push(s.clone()),
                _ => continue,
            }
            it.next();
        }
        if !sets.is_empty() {
            let group = out.len();
            out.push(Try { variant, sets, why: "suggested by the scenario's own notes".to_string(), group });
        }
    }
}

/// Splits `s` into words as a shell would, for the simple quoting the
/// scenarios' notes use ('...' and "...").
fn shell_words(s: &str) -> Vec<String> {
    let (mut words, mut cur, mut quote) = (Vec::new(), String::new(), None);
    for ch in s.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The command line of a suggestion.
fn command(ctx: &Ctx, t: &Try) -> String {
    let mut cmd = format!("asyncsim run {}", shell_quote(&ctx.file));
    if let Some(seed) = ctx.args.seed {
        cmd.push_str(&format!(" --seed {seed}"));
    }
    cmd.push_str(&format!(" --variant {}", shell_quote(&t.variant)));
    for s in ctx.args.set.iter().chain(&t.sets) {
        cmd.push_str(&format!(" --set {}", shell_quote(s)));
    }
    cmd
}

/// The "Try next" section.
pub fn section(ctx: &Ctx, all: &[&Explained]) -> String {
    let mut tries = Vec::new();
    let mut ranked: Vec<&&Explained> = all.iter().collect();
    ranked.sort_by_key(|e| std::cmp::Reverse(e.summary.counts.lost + e.summary.counts.duplicated));
    for e in &ranked {
        from_causes(ctx, e, &mut tries);
        from_contrast(ctx, e, all, &mut tries);
    }
    if let Some(first) = all.first() {
        from_header(ctx, &first.variant.name, &mut tries);
        for set in ["network.loss_probability=0.01", "network.duplicate_probability=0.01"] {
            let why = "a less reliable network: see which guarantee holds and what it costs".to_string();
            let group = tries.len();
            tries.push(Try { variant: first.variant.name.clone(), sets: vec![set.to_string()], why, group });
        }
    }
    let mut s = String::from("\nTry next\n");
    let mut shown: Vec<String> = Vec::new();
    let mut groups: Vec<usize> = Vec::new();
    for (i, t) in tries.iter().enumerate() {
        // The generic pair closes the list: only when fewer than two came before.
        let generic = i + 2 >= tries.len();
        if generic && shown.len() >= 2 {
            break;
        }
        let cmd = command(ctx, t);
        if shown.len() < 3 && !groups.contains(&t.group) && !shown.contains(&cmd) && applies(ctx, &t.variant, &t.sets) {
            s.push_str(&format!("  {cmd}\n      {}\n", t.why));
            shown.push(cmd);
            groups.push(t.group);
        }
    }
    let mut file = format!("asyncsim explain {}", shell_quote(&ctx.file));
    for v in &ctx.args.variants {
        file.push_str(&format!(" --variant {}", shell_quote(v)));
    }
    for set in &ctx.args.set {
        file.push_str(&format!(" --set {}", shell_quote(set)));
    }
    s.push_str(&format!(
        "  {file} --seed {}\n      the same scenario with other random draws: the figures and causes change, the lesson should not\n",
        ctx.seed.wrapping_add(1)
    ));
    s
}

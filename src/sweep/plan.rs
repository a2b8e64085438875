//! A sweep's plan: everything that decides which runs it makes and what it
//! reports, as normalized JSON (identical in every shard of one sweep), and
//! the numbering of its units. Unit `u` is one run of one variant at one
//! point with one seed: `u = s * (points * variants) + p * variants + v`,
//! so the units of seed `S + s` follow those of the seeds before it (adding
//! seeds, as `--precision` does, appends units and renumbers none).

use super::grammar::{self, Axis};
use serde::{Deserialize, Serialize};

/// What `--precision` asks: replications until every interval is within
/// `relative` of its mean, in batches of `batch` seeds, at most `max_seeds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Precision {
    /// The target half-width, relative to the mean (0.02 for `2%`).
    pub relative: f64,
    /// Seeds added per round.
    pub batch: usize,
    /// Most seeds per point and variant.
    pub max_seeds: usize,
}

/// Everything a sweep's output depends on besides the runs' records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The scenario file, as given.
    pub file: String,
    /// The scenario's name.
    pub scenario: String,
    /// A hash of the file's text (shards must read the same file).
    pub source_hash: String,
    /// The fixed `--set` overrides, `PATH=VALUE`, applied before the point's.
    pub fixed: Vec<String>,
    /// The swept parameters.
    pub axes: Vec<Axis>,
    /// The variants run, in the scenario's order.
    pub variants: Vec<String>,
    /// The variant the others are compared with.
    pub baseline: String,
    /// The metrics: numeric dotted paths of a variant's summary.
    pub metrics: Vec<String>,
    /// The first seed.
    pub first_seed: u64,
    /// Seeds per point and variant: `first_seed`, `first_seed + 1`, ...
    pub seeds: usize,
    /// The confidence level of every interval (0.95).
    pub level: f64,
    /// `--precision`, when asked.
    pub precision: Option<Precision>,
}

/// Which run a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// The point, numbered as [`grammar::point_values`] numbers them.
    pub point: usize,
    /// The variant's index in [`Plan::variants`].
    pub variant: usize,
    /// The seed's index: the seed is `first_seed + seed`.
    pub seed: usize,
}

impl Plan {
    /// Refuses a plan no sweep makes (one read from a damaged partial
    /// result): no variant, seed or metric, an empty range, a baseline not
    /// run, a level outside (0, 1).
    pub fn check(&self) -> Result<(), String> {
        if self.variants.is_empty() || self.metrics.is_empty() || self.seeds == 0 {
            return Err("it has no variant, no metric or no seed".into());
        }
        if let Some(a) = self.axes.iter().find(|a| a.values.is_empty()) {
            return Err(format!("the range of `{}` has no value", a.path));
        }
        if !self.variants.contains(&self.baseline) {
            return Err(format!("its baseline `{}` is not among its variants", self.baseline));
        }
        if !(self.level > 0.0 && self.level < 1.0) || self.points() > grammar::MAX_POINTS {
            return Err("its level or its number of points is out of range".into());
        }
        Ok(())
    }

    /// The number of points.
    pub fn points(&self) -> usize {
        grammar::point_count(&self.axes)
    }

    /// Runs per seed: every point and variant.
    pub fn per_seed(&self) -> usize {
        self.points() * self.variants.len()
    }

    /// The number of units.
    pub fn units(&self) -> usize {
        self.per_seed() * self.seeds
    }

    /// Which run unit `u` is.
    pub fn unit(&self, u: usize) -> Unit {
        let per_seed = self.per_seed();
        let rest = u % per_seed;
        Unit { point: rest / self.variants.len(), variant: rest % self.variants.len(), seed: u / per_seed }
    }

    /// The number of unit `unit`.
    #[cfg(test)]
    pub fn index(&self, unit: Unit) -> usize {
        unit.seed * self.per_seed() + unit.point * self.variants.len() + unit.variant
    }

    /// The seed of a unit.
    pub fn seed_of(&self, unit: Unit) -> u64 {
        self.first_seed.wrapping_add(unit.seed as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn plan(points: usize, variants: usize, seeds: usize) -> Plan {
        Plan {
            file: "f.toml".into(),
            scenario: "f".into(),
            source_hash: "0".into(),
            fixed: vec!["a=1".into()],
            axes: vec![Axis { path: "x".into(), values: (0..points).map(Value::from).collect() }],
            variants: (0..variants).map(|v| format!("v{v}")).collect(),
            baseline: "v0".into(),
            metrics: vec!["lost".into()],
            first_seed: 7,
            seeds,
            level: 0.95,
            precision: None,
        }
    }

    #[test]
    fn units_number_every_run_once_seed_by_seed() {
        let p = plan(3, 2, 4);
        assert_eq!(p.units(), 24);
        let mut seen = std::collections::BTreeSet::new();
        for u in 0..p.units() {
            let unit = p.unit(u);
            assert_eq!(p.index(unit), u);
            seen.insert((unit.point, unit.variant, unit.seed));
        }
        assert_eq!(seen.len(), 24);
        assert_eq!(p.unit(6), Unit { point: 0, variant: 0, seed: 1 }, "seed 1 follows every run of seed 0");
        assert_eq!(p.seed_of(p.unit(23)), 10);
        let more = Plan { seeds: 5, ..p.clone() };
        assert!((0..p.units()).all(|u| more.unit(u) == p.unit(u)), "adding seeds renumbers nothing");
    }

    #[test]
    fn a_plan_survives_json() {
        let p = plan(2, 2, 2);
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), p);
        assert!(p.check().is_ok());
    }

    #[test]
    fn a_damaged_plan_is_refused() {
        assert!(Plan { seeds: 0, ..plan(2, 2, 2) }.check().is_err());
        assert!(Plan { baseline: "v9".into(), ..plan(2, 2, 2) }.check().is_err());
        assert!(Plan { level: 95.0, ..plan(2, 2, 2) }.check().is_err());
        assert!(plan(0, 2, 2).check().unwrap_err().contains("no value"));
        assert!(plan(2, 0, 2).check().is_err());
    }
}

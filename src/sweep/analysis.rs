//! What a sweep's runs say: each run's record, the samples they make per
//! point, variant and metric, the mean and confidence interval of each, and
//! each variant's paired and unpaired differences from the baseline at the
//! same point. Pure computation: the same plan and records give the same
//! figures, whatever machine or thread ran them.

use super::plan::Plan;
use super::stats::{self, Estimate};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One run's record: which run it was and the requested metrics' values
/// (`null` when the summary had none, such as a percentile of nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The unit's number.
    pub index: usize,
    /// The point's number.
    pub point: usize,
    /// The variant's name.
    pub variant: String,
    /// The seed.
    pub seed: u64,
    /// One value per metric of the plan, in its order.
    pub values: Vec<Option<f64>>,
    /// The run stopped at a limit (its figures are partial).
    pub stopped: bool,
}

/// Reads `runs` as records of `plan`: every unit exactly once, in order,
/// each saying the point, variant and seed its number means.
pub fn read_records(plan: &Plan, runs: &[Value]) -> Result<Vec<Record>> {
    let mut records: Vec<Record> = runs
        .iter()
        .map(|r| serde_json::from_value(r.clone()).context("a run's record is not a sweep record"))
        .collect::<Result<_>>()?;
    records.sort_by_key(|r| r.index);
    for (u, r) in records.iter().enumerate() {
        if r.index != u {
            let what = if r.index < u { "twice" } else { "missing" };
            bail!("the runs do not make the sweep: run {} is {what} (expected {} runs)", r.index.min(u), plan.units());
        }
        let unit = plan.unit(u);
        let fits = r.point == unit.point
            && plan.variants.get(unit.variant) == Some(&r.variant)
            && r.seed == plan.seed_of(unit)
            && r.values.len() == plan.metrics.len();
        if !fits {
            bail!("run {u}'s record does not match the plan (point, variant, seed or metrics)");
        }
    }
    if records.len() != plan.units() {
        bail!("the runs do not make the sweep: runs {} to {} are missing", records.len(), plan.units() - 1);
    }
    Ok(records)
}

/// The values of one point, variant and metric, by seed (`None`: no value).
pub type Samples = Vec<Option<f64>>;

/// Every sample of a sweep: `[point][variant][metric]`, each by seed.
pub struct Table {
    samples: Vec<Vec<Vec<Samples>>>,
}

impl Table {
    /// Sorts `records` (read by [`read_records`]) into samples.
    pub fn new(plan: &Plan, records: &[Record]) -> Table {
        let (points, variants, metrics) = (plan.points(), plan.variants.len(), plan.metrics.len());
        let mut samples = vec![vec![vec![vec![None; plan.seeds]; metrics]; variants]; points];
        for r in records {
            let unit = plan.unit(r.index);
            for (m, v) in r.values.iter().enumerate() {
                samples[unit.point][unit.variant][m][unit.seed] = *v;
            }
        }
        Table { samples }
    }

    /// The samples of point `p`, variant `v`, metric `m`.
    pub fn samples(&self, p: usize, v: usize, m: usize) -> &Samples {
        &self.samples[p][v][m]
    }
}

/// The values present, in seed order.
fn present(s: &Samples) -> Vec<f64> {
    s.iter().flatten().copied().collect()
}

/// The mean and interval of one sample set; `None` with no value at all.
pub fn estimate(s: &Samples, level: f64) -> Option<Estimate> {
    let x = present(s);
    (!x.is_empty()).then(|| stats::estimate(&x, level))
}

/// A variant's difference from the baseline at one point, for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Of (variant - baseline) over the seeds where both have a value.
    pub paired: Estimate,
    /// Welch's interval of mean(variant) - mean(baseline), as if the runs
    /// were independent.
    pub unpaired: Estimate,
    /// How many times narrower the paired interval is: unpaired width over
    /// paired width (`None` when the paired width is 0 or unknown).
    pub narrowing: Option<f64>,
}

/// `variant` against `baseline`, seed by seed (common random numbers);
/// `None` with fewer than two seeds where both have a value.
pub fn compare(variant: &Samples, baseline: &Samples, level: f64) -> Option<Comparison> {
    let (a, b): (Vec<f64>, Vec<f64>) = variant.iter().zip(baseline).filter_map(|(x, y)| Some(((*x)?, (*y)?))).unzip();
    if a.len() < 2 {
        return None;
    }
    let paired = stats::paired(&a, &b, level);
    let unpaired = stats::unpaired(&a, &b, level);
    let narrowing = (paired.half_width > 0.0 && unpaired.half_width.is_finite())
        .then(|| unpaired.half_width / paired.half_width)
        .filter(|r| r.is_finite());
    Some(Comparison { paired, unpaired, narrowing })
}

/// Whether every interval of the sweep is within `relative` of its mean
/// (an interval that could not be computed is not): how many are, of how many.
pub fn precision_reached(plan: &Plan, table: &Table, relative: f64) -> (usize, usize) {
    let mut within = 0;
    let mut total = 0;
    for p in 0..plan.points() {
        for v in 0..plan.variants.len() {
            for m in 0..plan.metrics.len() {
                total += 1;
                let e = estimate(table.samples(p, v, m), plan.level);
                if e.is_some_and(|e| sim_core::stats::within(&e, relative)) {
                    within += 1;
                }
            }
        }
    }
    (within, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_random_numbers_make_the_paired_interval_narrower() {
        // Two variants sharing each seed's noise (large) and differing by a
        // small, seed-dependent effect: the pairing removes the noise.
        let noise = [3.0, -2.0, 5.0, 0.5, -4.0, 1.0, 2.5, -1.5];
        let base: Samples = noise.iter().map(|n| Some(10.0 + n)).collect();
        let effect = [0.9, 1.1, 1.0, 0.95, 1.05, 1.0, 0.9, 1.1];
        let var: Samples = noise.iter().zip(effect).map(|(n, e)| Some(10.0 + n + e)).collect();
        let c = compare(&var, &base, 0.95).unwrap();
        assert!((c.paired.mean - 1.0).abs() < 1e-12, "{c:?}");
        assert!((c.unpaired.mean - 1.0).abs() < 1e-12, "the same difference of means");
        assert!(c.narrowing.unwrap() > 10.0, "{c:?}");
        assert!(c.paired.low > 0.0 && c.unpaired.low < 0.0, "only pairing sees the effect");
    }

    proptest::proptest! {
        /// A record read back from its JSON text is the record: what a
        /// shard writes, `merge` reads exactly (serde_json's
        /// `float_roundtrip`), so sharded output is the same bytes.
        #[test]
        fn records_survive_json_text_exactly(values in proptest::collection::vec(proptest::option::of(proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO), 0..8)) {
            let r = Record { index: 3, point: 1, variant: "v".into(), seed: u64::MAX, values, stopped: false };
            let text = serde_json::to_string(&serde_json::to_value(&r).unwrap()).unwrap();
            let back: Record = serde_json::from_value(serde_json::from_str::<Value>(&text).unwrap()).unwrap();
            let bits = |r: &Record| r.values.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>();
            proptest::prop_assert_eq!(bits(&back), bits(&r));
        }
    }

    #[test]
    fn missing_values_are_left_out_and_pairs_need_both() {
        let a: Samples = vec![Some(1.0), None, Some(3.0), Some(4.0)];
        let b: Samples = vec![Some(1.5), Some(2.0), None, Some(4.5)];
        assert_eq!(estimate(&a, 0.95).unwrap().n, 3);
        assert_eq!(compare(&a, &b, 0.95).unwrap().paired.n, 2);
        assert!(compare(&a[..2].to_vec(), &b[..2].to_vec(), 0.95).is_none(), "one pair only");
        assert!(estimate(&vec![None, None], 0.95).is_none());
    }
}

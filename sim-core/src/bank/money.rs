//! Amounts of money in a scenario file: a fixed number of dollars, or a
//! distribution of them (`{ dist = "uniform", min = 20, max = 200 }`).
//!
//! The shapes are those of [`crate::dist::Dist`], with the unit left out
//! of the field names: `constant` (`value`), `uniform` (`min`, `max`),
//! `exponential` (`mean`), `normal` and `lognormal` (`mean`, `stddev`).
//! A draw is never negative (the normal is clamped at zero, as durations
//! are).

use crate::dist::{Dist, Sampler};
use crate::rng::SimRng;
use crate::units::Millis;
use serde::Deserialize;

/// The largest amount a field may name, in dollars: far above any
/// balance a scenario needs, far below where `i64` arithmetic could wrap.
pub(super) const MAX_DOLLARS: f64 = 1e9;

/// A distribution of dollar amounts, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct Dollars {
    /// The shape, with dollars where a duration has milliseconds.
    dist: Dist,
}

impl Dollars {
    /// Always `dollars`.
    pub fn fixed(dollars: f64) -> Self {
        Dollars { dist: Dist::constant_ms(dollars) }
    }

    /// Uniform between `min` and `max` dollars.
    pub fn uniform(min: f64, max: f64) -> Self {
        Dollars { dist: Dist::Uniform { min_ms: Millis(min), max_ms: Millis(max) } }
    }

    /// The mean amount, in dollars.
    pub fn mean(&self) -> f64 {
        self.dist.mean_ms()
    }

    /// Checks relations between fields (a uniform's `min` above its `max`).
    pub fn check(&self) -> Result<(), String> {
        self.dist.check().map_err(|m| m.replace("_ms", ""))
    }

    /// Ready to draw.
    pub fn sampler(&self) -> DollarSampler {
        DollarSampler(self.dist.sampler())
    }
}

/// Draws dollar amounts.
#[derive(Debug, Clone)]
pub struct DollarSampler(Sampler);

impl DollarSampler {
    /// One amount in dollars (not rounded).
    pub fn draw(&self, rng: &mut SimRng) -> f64 {
        self.0.sample_ns(rng) as f64 / crate::time::NS_PER_MS as f64
    }
}

fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

fn amount(v: &toml::Value, what: &str) -> Result<f64, String> {
    match number(v) {
        Some(x) if x.is_finite() && (0.0..=MAX_DOLLARS).contains(&x) => Ok(x),
        Some(x) => Err(format!("expected {what} from 0 to {MAX_DOLLARS} dollars, got {x}")),
        None => Err(format!("expected {what} as a number of dollars, got {v}")),
    }
}

impl TryFrom<toml::Value> for Dollars {
    type Error = String;

    fn try_from(v: toml::Value) -> Result<Self, String> {
        const HOW: &str =
            "a number of dollars, or a table such as { dist = \"uniform\", min = 20, max = 200 } (constant: value; \
             uniform: min, max; exponential: mean; normal, lognormal: mean, stddev)";
        let toml::Value::Table(t) = v else {
            return amount(&v, "an amount").map(Dollars::fixed).map_err(|_| format!("expected {HOW}, got {v}"));
        };
        let Some(kind) = t.get("dist").and_then(toml::Value::as_str) else {
            return Err(format!("expected {HOW}: the table names no `dist`"));
        };
        let fields: &[&str] = match kind {
            "constant" => &["value"],
            "uniform" => &["min", "max"],
            "exponential" => &["mean"],
            "normal" | "lognormal" => &["mean", "stddev"],
            _ => return Err(format!("unknown dist `{kind}`: expected {HOW}")),
        };
        if let Some(k) = t.keys().find(|k| *k != "dist" && !fields.contains(&k.as_str())) {
            return Err(format!("a {kind} `dist` of dollars has no `{k}`: expected {}", fields.join(", ")));
        }
        let get = |k: &str| -> Result<Millis, String> {
            let v = t.get(k).ok_or_else(|| format!("a {kind} `dist` of dollars needs `{k}`"))?;
            amount(v, &format!("`{k}`")).map(Millis)
        };
        let dist = match kind {
            "constant" => Dist::Constant { ms: get("value")? },
            "uniform" => Dist::Uniform { min_ms: get("min")?, max_ms: get("max")? },
            "exponential" => Dist::Exponential { mean_ms: get("mean")? },
            "normal" => Dist::Normal { mean_ms: get("mean")?, stddev_ms: get("stddev")? },
            _ => Dist::Lognormal { mean_ms: get("mean")?, stddev_ms: get("stddev")? },
        };
        let d = Dollars { dist };
        d.check()?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Dollars, String> {
        #[derive(Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            x: Dollars,
        }
        toml::from_str::<T>(text).map(|t| t.x).map_err(|e| e.to_string())
    }

    #[test]
    fn a_number_or_a_dist_table_of_dollars() {
        assert_eq!(read("x = 300").unwrap(), Dollars::fixed(300.0));
        assert_eq!(read("x = 12.5").unwrap(), Dollars::fixed(12.5));
        assert_eq!(read("x = { dist = \"uniform\", min = 20, max = 200 }").unwrap(), Dollars::uniform(20.0, 200.0));
        assert_eq!(read("x = { dist = \"exponential\", mean = 300 }").unwrap().mean(), 300.0);
        assert_eq!(read("x = { dist = \"constant\", value = 7 }").unwrap(), Dollars::fixed(7.0));
    }

    #[test]
    fn bad_amounts_are_refused_with_what_was_expected() {
        let e = read("x = -5").unwrap_err();
        assert!(e.contains("a number of dollars"), "{e}");
        let e = read("x = { dist = \"uniform\", min = 20, max_ms = 200 }").unwrap_err();
        assert!(e.contains("has no `max_ms`"), "{e}");
        let e = read("x = { dist = \"uniform\", min = 20 }").unwrap_err();
        assert!(e.contains("needs `max`"), "{e}");
        let e = read("x = { dist = \"uniform\", min = 300, max = 200 }").unwrap_err();
        assert!(e.contains("min (300) must not exceed max (200)"), "{e}");
        let e = read("x = { dist = \"zipf\" }").unwrap_err();
        assert!(e.contains("unknown dist `zipf`"), "{e}");
        let e = read("x = { mean = 3 }").unwrap_err();
        assert!(e.contains("names no `dist`"), "{e}");
    }

    #[test]
    fn draws_are_dollars() {
        let mut rng = crate::rng::stream(1, "t");
        let s = Dollars::uniform(20.0, 200.0).sampler();
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| s.draw(&mut rng)).collect();
        assert!(draws.iter().all(|&d| (20.0..=200.0).contains(&d)));
        // The mean of n uniform draws: 110, standard error 52 / sqrt(n) = 0.37.
        let mean = draws.iter().sum::<f64>() / n as f64;
        assert!((mean - 110.0).abs() < 5.0 * 52.0 / (n as f64).sqrt(), "{mean}");
        assert_eq!(Dollars::fixed(300.0).sampler().draw(&mut rng), 300.0);
    }
}

//! The `--set` grammar of a sweep: `PATH=A..B:N` sweeps PATH over N values
//! evenly spaced from A to B, both ends included; any other `PATH=VALUE` is
//! a fixed override, as in `run`. Several ranges make the cartesian
//! product of their values, the first range varying slowest.
//!
//! Values stay integers when A, B and the step are all whole (a `messages`
//! count must be an integer; `100..1000:10` gives 100, 200, ... 1000), and
//! are floats otherwise (`0..1:3` gives 0.0, 0.5, 1.0).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most points a sweep may have (the product of its ranges' counts).
pub const MAX_POINTS: usize = 100_000;

/// One swept parameter: its path and its values, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The dotted path, as in `--set`.
    pub path: String,
    /// Its values: integers, or floats.
    pub values: Vec<Value>,
}

/// The `--set` arguments of a sweep, sorted into ranges and fixed overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sets {
    /// The fixed overrides, `PATH=VALUE`, in the order given.
    pub fixed: Vec<String>,
    /// The ranges, in the order given.
    pub axes: Vec<Axis>,
}

/// Sorts the `--set` arguments into fixed overrides and ranges; refuses a
/// malformed range or a path set twice.
pub fn parse_sets(sets: &[String]) -> Result<Sets, String> {
    let mut out = Sets::default();
    let mut paths: Vec<String> = Vec::new();
    for s in sets {
        let Some((path, value)) = s.split_once('=') else {
            return Err(format!("--set `{s}`: expected PATH=VALUE or PATH=A..B:N"));
        };
        let (path, value) = (path.trim(), value.trim());
        if paths.iter().any(|p| p == path) {
            return Err(format!("--set `{s}`: `{path}` is set twice"));
        }
        paths.push(path.to_string());
        match parse_range(value).map_err(|e| format!("--set `{s}`: {e}"))? {
            Some(values) => out.axes.push(Axis { path: path.to_string(), values }),
            None => out.fixed.push(format!("{path}={value}")),
        }
    }
    let points = out.axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
    match points {
        Some(n) if n <= MAX_POINTS => Ok(out),
        _ => Err(format!("the ranges make more than {MAX_POINTS} points; sweep fewer values")),
    }
}

/// A finite number as written in a range.
fn number(text: &str, what: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{what} `{}` is not a number; a range is A..B:N (`100..1000:10`)", text.trim()))
}

/// The values of `A..B:N`, or `None` when `value` is not a range (it does
/// not start with a number followed by `..`).
pub fn parse_range(value: &str) -> Result<Option<Vec<Value>>, String> {
    let Some((a, rest)) = value.split_once("..") else {
        return Ok(None);
    };
    if a.trim().parse::<f64>().is_err() {
        return Ok(None);
    }
    let Some((b, n)) = rest.split_once(':') else {
        return Err(format!("`{value}`: a range needs its number of points, A..B:N (`{value}:10`)"));
    };
    let (a, b) = (number(a, "start")?, number(b, "end")?);
    let n: usize = n
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("`{value}`: the number of points `{}` is not a whole number >= 1", n.trim()))?;
    if n == 1 && a != b {
        return Err(format!("`{value}`: one point cannot span {a} to {b}; use N >= 2, or a fixed value"));
    }
    if n > MAX_POINTS {
        return Err(format!("`{value}`: more than {MAX_POINTS} points"));
    }
    Ok(Some(spaced(a, b, n)))
}

/// `n` values evenly spaced from `a` to `b`, both included: integers when
/// `a`, `b` and the step are whole, else floats (the last exactly `b`).
fn spaced(a: f64, b: f64, n: usize) -> Vec<Value> {
    let step = if n > 1 { (b - a) / (n - 1) as f64 } else { 0.0 };
    let whole = |v: f64| v.fract() == 0.0 && v.abs() < 9.0e15;
    if whole(a) && whole(b) && whole(step) {
        return (0..n).map(|i| Value::from(a as i64 + i as i64 * step as i64)).collect();
    }
    (0..n)
        .map(|i| {
            let v = if i + 1 == n { b } else { a + (b - a) * i as f64 / (n - 1) as f64 };
            Value::from(v)
        })
        .collect()
}

/// A value as a `--set` override writes it: an integer as one, a float
/// always with a point or an exponent (so TOML reads it as a float).
pub fn override_text(v: &Value) -> String {
    match (v.as_i64(), v.as_f64()) {
        (Some(i), _) if v.is_i64() => i.to_string(),
        (_, Some(f)) => format!("{f:?}"),
        _ => v.to_string(),
    }
}

/// The number of points of `axes` (1 with none: the scenario as it is).
pub fn point_count(axes: &[Axis]) -> usize {
    axes.iter().map(|a| a.values.len()).product()
}

/// The values of point `p`: one per axis, the first axis varying slowest.
pub fn point_values(axes: &[Axis], mut p: usize) -> Vec<&Value> {
    let mut out = vec![&Value::Null; axes.len()];
    for (k, axis) in axes.iter().enumerate().rev() {
        let n = axis.values.len();
        out[k] = &axis.values[p % n];
        p /= n;
    }
    out
}

/// The overrides of point `p`: `PATH=VALUE` per axis.
pub fn point_sets(axes: &[Axis], p: usize) -> Vec<String> {
    axes.iter().zip(point_values(axes, p)).map(|(a, v)| format!("{}={}", a.path, override_text(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(list: &[&str]) -> Result<Sets, String> {
        parse_sets(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_range_gives_n_points_from_a_to_b_integers_when_whole() {
        let s = sets(&["producers.p.arrival.rate_per_s=100..1000:10"]).unwrap();
        let values: Vec<String> = s.axes[0].values.iter().map(override_text).collect();
        assert_eq!(values, ["100", "200", "300", "400", "500", "600", "700", "800", "900", "1000"]);
        let s = sets(&["x=0..1:3"]).unwrap();
        assert_eq!(s.axes[0].values.iter().map(override_text).collect::<Vec<_>>(), ["0.0", "0.5", "1.0"]);
        let s = sets(&["x=1..2:4"]).unwrap();
        let v: Vec<f64> = s.axes[0].values.iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(v.len(), 4);
        assert_eq!((v[0], v[3]), (1.0, 2.0), "both ends exactly");
        assert!(v.windows(2).all(|w| ((w[1] - w[0]) - 1.0 / 3.0).abs() < 1e-12), "{v:?}");
        let s = sets(&["x=10..0:3"]).unwrap();
        assert_eq!(s.axes[0].values, [Value::from(10), Value::from(5), Value::from(0)], "descending");
        let s = sets(&["x=0..1:2"]).unwrap();
        assert_eq!(s.axes[0].values, [Value::from(0), Value::from(1)]);
        assert_eq!(sets(&["x=5..5:1"]).unwrap().axes[0].values, [Value::from(5)]);
    }

    #[test]
    fn other_values_are_fixed_overrides() {
        let s = sets(&["network.loss_probability=0", "faults=[]", "name=\"a..b\"", "x = 3"]).unwrap();
        assert!(s.axes.is_empty());
        assert_eq!(s.fixed, ["network.loss_probability=0", "faults=[]", "name=\"a..b\"", "x=3"]);
    }

    #[test]
    fn malformed_ranges_and_repeated_paths_are_refused() {
        let err = |s: &str| sets(&[s]).unwrap_err();
        assert!(err("x=1..10").contains("needs its number of points"), "{}", err("x=1..10"));
        assert!(err("x=1..b:3").contains("end `b` is not a number"));
        assert!(err("x=1..2:0").contains("not a whole number >= 1"));
        assert!(err("x=1..2:2.5").contains("not a whole number"));
        assert!(err("x=1..2:1").contains("one point cannot span"));
        assert!(err("x").contains("expected PATH=VALUE"));
        assert!(sets(&["x=1", "x=1..2:2"]).unwrap_err().contains("set twice"));
        assert!(sets(&["a=1..1000:1000", "b=1..1000:1000"]).unwrap_err().contains("more than"));
    }

    proptest::proptest! {
        /// Any range: N values, both ends exact, evenly spaced, integers
        /// exactly when A, B and the step are whole.
        #[test]
        fn ranges_keep_their_ends_count_and_spacing(a in -1_000i64..1_000, b in -1_000i64..1_000, n in 2usize..40, frac in proptest::bool::ANY) {
            let (a, b) = if frac { (a as f64 / 8.0, b as f64 / 8.0) } else { (a as f64, b as f64) };
            let values = parse_range(&format!("{a}..{b}:{n}")).unwrap().unwrap();
            proptest::prop_assert_eq!(values.len(), n);
            let x: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
            proptest::prop_assert_eq!((x[0], x[n - 1]), (a, b));
            let step = (b - a) / (n - 1) as f64;
            for w in x.windows(2) {
                proptest::prop_assert!(((w[1] - w[0]) - step).abs() <= 1e-9 * (1.0 + step.abs()));
            }
            let whole = a.fract() == 0.0 && b.fract() == 0.0 && step.fract() == 0.0;
            proptest::prop_assert_eq!(values.iter().all(Value::is_i64), whole);
            for v in &values {
                let text = override_text(v);
                proptest::prop_assert_eq!(sim_core::scenario::parse_value(&text).as_float().is_some(), !whole, "{}", text);
            }
        }
    }

    #[test]
    fn points_are_the_cartesian_product_first_axis_slowest() {
        let s = sets(&["a=1..2:2", "b=10..30:3"]).unwrap();
        assert_eq!(point_count(&s.axes), 6);
        let all: Vec<Vec<String>> = (0..6).map(|p| point_sets(&s.axes, p)).collect();
        assert_eq!(all[0], ["a=1", "b=10"]);
        assert_eq!(all[1], ["a=1", "b=20"]);
        assert_eq!(all[3], ["a=2", "b=10"]);
        assert_eq!(all[5], ["a=2", "b=30"]);
        assert_eq!(point_count(&[]), 1);
        assert!(point_sets(&[], 0).is_empty());
    }
}

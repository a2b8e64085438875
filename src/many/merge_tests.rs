//! Merge on a fake command: what it accepts, in which order it hands the
//! records to the command's `finish`, and each partial it refuses.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh folder under the system's temporary one, removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new() -> Temp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("asyncsim-merge-unit-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fake command's `finish`: writes the plan and the records it was
/// given, in order, to OUT/fake.json; exits 1 when a record says
/// `"bad": true`, as a check that found a violation.
fn fake_finish(plan: &Value, runs: &[Value], out: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(out)?;
    let text = serde_json::to_string(&serde_json::json!({ "plan": plan, "runs": runs }))?;
    std::fs::write(out.join("fake.json"), text)?;
    let bad = runs.iter().any(|r| r["bad"] == Value::Bool(true));
    Ok(if bad { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

const FAKE: &[(&str, Finish)] = &[("fake", fake_finish)];

/// Unit `u` of the fake plan: its record.
fn record(u: usize) -> Value {
    serde_json::json!({ "index": u, "value": u as f64 * 0.1, "bad": u == 7 })
}

/// Shard `i` of `n` over `units` units, as the fake command writes it.
fn partial(i: usize, n: usize, units: usize) -> Partial {
    let runs = (0..units).filter(|u| u % n == i - 1).map(record).collect();
    Partial {
        asyncsim: env!("CARGO_PKG_VERSION").into(),
        command: "fake".into(),
        plan: serde_json::json!({ "file": "x.toml", "seeds": [1, 2], "points": { "rate": [1.5, 2.5] } }),
        shard: [i, n],
        runs,
    }
}

/// Writes each partial into its own folder `shard-K` under `tmp`.
fn write(tmp: &Temp, partials: &[Partial]) -> Vec<PathBuf> {
    partials
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let dir = tmp.0.join(format!("shard-{k}"));
            std::fs::create_dir_all(&dir).unwrap();
            p.write(&dir).unwrap();
            dir
        })
        .collect()
}

fn merged(tmp: &Temp, dirs: &[PathBuf]) -> Result<(ExitCode, Value)> {
    let out = tmp.0.join("out");
    let code = merge_with(dirs, &out, FAKE)?;
    Ok((code, serde_json::from_str(&std::fs::read_to_string(out.join("fake.json"))?)?))
}

#[test]
fn shards_in_any_order_give_finish_every_record_sorted_by_index() {
    let tmp = Temp::new();
    let dirs = write(&tmp, &[partial(3, 3, 11), partial(1, 3, 11), partial(2, 3, 11)]);
    let (code, got) = merged(&tmp, &dirs).unwrap();
    let expected: Vec<Value> = (0..11).map(record).collect();
    assert_eq!(got["runs"], Value::Array(expected), "every record once, by index");
    assert_eq!(got["plan"], partial(1, 3, 11).plan);
    assert_eq!(code, ExitCode::from(1), "finish's exit status is merge's: record 7 is bad");
    // One shard of one is the whole run.
    let tmp = Temp::new();
    let dirs = write(&tmp, &[partial(1, 1, 5)]);
    let (code, got) = merged(&tmp, &dirs).unwrap();
    assert_eq!(got["runs"].as_array().unwrap().len(), 5);
    assert_eq!(code, ExitCode::SUCCESS);
}

/// Merges `partials`, which must be refused; returns the error and the
/// folders, for the message's file names.
fn refused(partials: &[Partial]) -> (String, Vec<PathBuf>, Temp) {
    let tmp = Temp::new();
    let dirs = write(&tmp, partials);
    let err = merged(&tmp, &dirs).expect_err("merge must refuse");
    assert!(!tmp.0.join("out").exists(), "nothing is written when merge refuses");
    (format!("{err:#}"), dirs, tmp)
}

fn file(dir: &Path) -> String {
    dir.join("partial.json").display().to_string()
}

#[test]
fn partials_of_another_command_plan_count_or_version_are_refused_by_name() {
    let mut other = partial(2, 3, 9);
    other.command = "sweep".into();
    let (err, dirs, _t) = refused(&[partial(1, 3, 9), other, partial(3, 3, 9)]);
    assert!(err.contains(&file(&dirs[1])) && err.contains("command sweep there, fake in the first"), "{err}");

    let mut other = partial(3, 3, 9);
    other.plan["points"]["rate"][1] = serde_json::json!(3.5);
    let (err, dirs, _t) = refused(&[partial(1, 3, 9), partial(2, 3, 9), other]);
    assert!(err.contains(&file(&dirs[2])) && err.contains("plan.points.rate[1] = 3.5 there, 2.5"), "{err}");

    let (err, dirs, _t) = refused(&[partial(1, 3, 9), partial(2, 4, 9)]);
    assert!(err.contains(&file(&dirs[1])) && err.contains("shard count N = 4 there, 3 in the first"), "{err}");

    let mut other = partial(2, 2, 9);
    other.asyncsim = "0.0.1".into();
    let (err, dirs, _t) = refused(&[partial(1, 2, 9), other]);
    assert!(err.contains(&file(&dirs[1])) && err.contains("asyncsim version 0.0.1"), "{err}");
}

#[test]
fn a_missing_or_repeated_shard_is_refused_by_name() {
    let (err, dirs, _t) = refused(&[partial(1, 3, 9), partial(3, 3, 9)]);
    assert!(err.contains("shard 2/3 missing") && err.contains(&file(&dirs[1])), "{err}");
    let (err, dirs, _t) = refused(&[partial(1, 2, 9), partial(1, 2, 9), partial(2, 2, 9)]);
    assert!(err.contains("shard 1/2 is given twice") && err.contains(&file(&dirs[1])), "{err}");
    let (err, _, _t) = refused(&[partial(1, 2, 9), {
        let mut p = partial(2, 2, 9);
        p.shard = [3, 2];
        p
    }]);
    assert!(err.contains("shard 3/2 does not exist"), "{err}");
}

#[test]
fn unreadable_partials_and_bad_records_are_refused_by_name() {
    let tmp = Temp::new();
    let dirs = write(&tmp, &[partial(1, 2, 4), partial(2, 2, 4)]);
    std::fs::write(dirs[1].join("partial.json"), "{\"asyncsim\": ").unwrap();
    let err = format!("{:#}", merged(&tmp, &dirs).unwrap_err());
    assert!(err.contains(&file(&dirs[1])), "{err}");
    let gone = tmp.0.join("nowhere");
    let err = format!("{:#}", merged(&tmp, &[dirs[0].clone(), gone.clone()]).unwrap_err());
    assert!(err.contains(&file(&gone)), "{err}");

    let mut twice = partial(2, 2, 4);
    twice.runs.push(record(0));
    let (err, dirs, _t) = refused(&[partial(1, 2, 4), twice]);
    assert!(err.contains("run 0 is in two partials") && err.contains(&file(&dirs[1])), "{err}");
    let mut blank = partial(2, 2, 4);
    blank.runs[0] = serde_json::json!({ "value": 1 });
    let (err, dirs, _t) = refused(&[partial(1, 2, 4), blank]);
    assert!(err.contains(&file(&dirs[1])) && err.contains("runs[0] has no whole-number `index`"), "{err}");
}

#[test]
fn a_command_without_a_merge_is_named() {
    let tmp = Temp::new();
    let mut p = partial(1, 1, 2);
    p.command = "bench".into();
    let dirs = write(&tmp, &[p]);
    let err = format!("{:#}", merged(&tmp, &dirs).unwrap_err());
    assert!(err.contains("command `bench` has no merge (merge joins: fake)"), "{err}");
}

#[test]
fn the_first_difference_of_two_plans_is_found_by_path() {
    let a = serde_json::json!({ "a": [1, { "b": 2 }], "c": "x" });
    let b = serde_json::json!({ "a": [1, { "b": 3 }], "c": "x" });
    assert_eq!(difference("plan", &a, &b), Some(("plan.a[1].b".into(), "2".into(), "3".into())));
    let c = serde_json::json!({ "a": [1, { "b": 2 }] });
    assert_eq!(difference("plan", &a, &c), Some(("plan.c".into(), "\"x\"".into(), "(absent)".into())));
    assert_eq!(difference("plan", &a, &a.clone()), None);
}

#[test]
fn every_f64_comes_back_from_partial_json_bit_for_bit() {
    // serde_json's default float parser may be one ulp off; with the
    // float_roundtrip feature it is exact, which merge's byte-for-byte
    // promise needs. Values of every magnitude, from a fixed sequence.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut values = Vec::new();
    while values.len() < 20_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let v = f64::from_bits(x >> 2 | 0x3000_0000_0000_0000) * [1e-9, 1.0, 1e6, 3.7e12][values.len() % 4];
        if v.is_finite() {
            values.push(v);
        }
    }
    let runs: Vec<Value> = values.iter().enumerate().map(|(i, v)| serde_json::json!({ "index": i, "v": v })).collect();
    let tmp = Temp::new();
    let p = Partial { runs, ..partial(1, 1, 0) };
    let dir = write(&tmp, &[p]).remove(0);
    let back = Partial::read(&dir).unwrap();
    for (v, r) in values.iter().zip(&back.runs) {
        assert_eq!(r["v"].as_f64().unwrap().to_bits(), v.to_bits(), "{v:e} read back as {}", r["v"]);
    }
}

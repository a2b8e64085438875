//! Consumer lag of the log broker through the real command line: the
//! bundled log scenarios report their backlog (records not yet committed by
//! each group) as queue depth, and `timeseries.csv` gains per-group lag
//! columns (`lag_records.GROUP`, `lag_seconds.GROUP`) and per-kind error
//! rates after its fixed columns, which stay as they were.

use crate::common;

use common::{num, repo, run_summary, TempDir};
use std::collections::{BTreeMap, BTreeSet};

const LOG_SCENARIOS: [&str; 4] = ["delivery-guarantees", "exactly-once-myth", "ordering", "replication-acks"];

/// The columns `timeseries.csv` had before gauges, in their place.
const FIXED: [&str; 7] =
    ["variant", "time_s", "produced_per_s", "processed_per_s", "errors_per_s", "queue_depth", "lag"];

/// The consumer groups a scenario file names (`consumers.*.group`).
fn groups_of(name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(format!("scenarios/{name}.toml"))).expect("the scenario");
    let doc: toml::Table = toml::from_str(&text).expect("TOML");
    let consumers = doc["consumers"].as_table().expect("consumers");
    consumers.values().filter_map(|c| c.get("group")?.as_str().map(str::to_string)).collect()
}

/// One row of `timeseries.csv`: the variant, and each other cell by column
/// name (`None` when empty).
type Row = (String, BTreeMap<String, Option<f64>>);

fn read_csv(text: &str) -> (Vec<String>, Vec<Row>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("a header").split(',').map(str::to_string).collect();
    let rows = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "row {l:?} does not match the header");
            let values = header[1..]
                .iter()
                .zip(&cells[1..])
                .map(|(h, c)| (h.clone(), (!c.is_empty()).then(|| c.parse::<f64>().expect("a number"))))
                .collect();
            (cells[0].to_string(), values)
        })
        .collect();
    (header, rows)
}

fn check_scenario(name: &str) {
    let dir = TempDir::new(&format!("lag-{name}"));
    let out = dir.path().join("out");
    let (summary, _) = run_summary(&format!("scenarios/{name}.toml"), "1", &out);
    let variants = summary["variants"].as_object().expect("variants");
    for (v, s) in variants {
        // Every record a group processed was appended, passed by the HW and
        // not yet committed for a while: the depth was not always 0.
        if num(s, "processed") > 0.0 {
            assert!(num(s, "max_queue_depth") > 0.0, "{name}/{v}: records waited, yet max_queue_depth is 0");
        }
    }
    let (header, rows) = read_csv(&std::fs::read_to_string(out.join("timeseries.csv")).expect("timeseries.csv"));
    assert_eq!(header[..FIXED.len()], FIXED, "{name}: the fixed columns stay first, in order");
    let groups = groups_of(name);
    let extra: Vec<&str> = header[FIXED.len()..].iter().map(String::as_str).collect();
    let (errors, gauges): (Vec<&str>, Vec<&str>) = extra.iter().partition(|h| h.starts_with("errors_per_s."));
    let expected: Vec<String> = ["lag_records", "lag_seconds"]
        .iter()
        .flat_map(|prefix| groups.iter().map(move |g| format!("{prefix}.{g}")))
        .collect();
    let (partitions, lags): (Vec<&str>, Vec<&str>) = gauges.iter().partition(|h| h.starts_with("partition_lag_"));
    assert_eq!(lags, expected, "{name}: one lag column per group and measure, sorted");
    for p in &partitions {
        let group = p.split('.').nth(1).expect("partition_lag_MEASURE.GROUP.P");
        assert!(groups.contains(group), "{name}: a partition's lag column {p} of a group of the scenario");
    }
    assert!(errors.windows(2).all(|w| w[0] < w[1]), "{name}: error columns sorted: {errors:?}");
    assert!(extra.iter().position(|h| h.starts_with("errors_per_s.")).is_none_or(|i| i == gauges.len()));
    // An error column is a kind the run counted.
    for e in &errors {
        let kind = e.trim_start_matches("errors_per_s.");
        let counted = variants.values().map(|s| s["errors_by_kind"][kind].as_f64().unwrap_or(0.0)).sum::<f64>();
        assert!(counted > 0.0, "{name}: column {e} for a kind never counted");
    }
    let mut waited = false;
    for (v, cells) in &rows {
        let cell = |c: &str| cells[c].unwrap_or_else(|| panic!("{name}/{v}: empty {c}"));
        let depth = cell("queue_depth");
        // One log broker: its depth is the sum of its groups' lags.
        let lags: f64 = groups.iter().map(|g| cell(&format!("lag_records.{g}"))).sum();
        assert_eq!(depth, lags, "{name}/{v} at {} s", cell("time_s"));
        for g in &groups {
            let age = cell(&format!("lag_seconds.{g}"));
            assert!((0.0..=cell("time_s")).contains(&age), "{name}/{v}: age {age} of {g}'s oldest record");
            if cell(&format!("lag_records.{g}")) == 0.0 {
                assert_eq!(age, 0.0, "{name}/{v}: nothing waits for {g}, yet the oldest is {age} s old");
            }
        }
        for e in &errors {
            assert!(cell(e) >= 0.0, "{name}/{v}: {e} is a rate, never empty or negative");
        }
        waited |= depth > 0.0;
    }
    assert!(waited, "{name}: no sample saw a record waiting");
}

#[test]
fn log_scenarios_report_their_backlog_as_depth_and_lag_per_group() {
    std::thread::scope(|s| {
        for name in LOG_SCENARIOS {
            s.spawn(move || check_scenario(name));
        }
    });
}

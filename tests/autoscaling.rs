//! Consumer lag and autoscaling through the real command line, on the
//! bundled `consumer-lag-autoscaling.toml`: the summary's lag and cost
//! keys agree with the time series they come from, the autoscaler stays
//! between its minimum and the partition count, alarm periods add up to
//! the time each alarm was on, and bad autoscaling settings are refused.

use crate::common;

use common::{asyncsim, num, run_summary, stderr, TempDir};

const FILE: &str = "scenarios/consumer-lag-autoscaling.toml";

/// (variant, time_s, consumers.workers) of every row of `timeseries.csv`.
fn consumers(csv: &str) -> Vec<(String, f64, f64)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = header.iter().position(|h| *h == "consumers.workers").expect("a consumers.workers column");
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[1].parse().expect("time"), cells[col].parse().expect("a count"))
        })
        .collect()
}

#[test]
fn the_autoscaling_scenario_reports_lag_cost_and_alarm_periods_that_agree_with_its_series() {
    let dir = TempDir::new("autoscaling");
    let out = dir.path().join("out");
    let (summary, _) = run_summary(FILE, "1", &out);
    let v = &summary["variants"];
    let rows = consumers(&std::fs::read_to_string(out.join("timeseries.csv")).expect("timeseries.csv"));
    for (name, min, cap) in [("fixed-3", 3.0, 3.0), ("autoscaled", 2.0, 10.0), ("capped-3-partitions", 2.0, 3.0)] {
        let s = &v[name];
        let series: Vec<&(String, f64, f64)> = rows.iter().filter(|r| r.0 == name).collect();
        assert!(series.iter().all(|r| r.2 >= min && r.2 <= cap), "{name}: consumers between {min} and {cap}");
        let most = series.iter().map(|r| r.2).fold(0.0, f64::max);
        assert_eq!(num(s, "max_consumers"), most, "{name}: max_consumers is the series' highest");
        // Consumer-hours: the count, each interval at its closing sample.
        let mut hours = 0.0;
        let mut prev = 0.0;
        for r in &series {
            hours += r.2 * (r.1 - prev) / 3600.0;
            prev = r.1;
        }
        assert!((num(s, "consumer_hours") - hours).abs() < 1e-9, "{name}: consumer_hours integrates the series");
        let cost = num(s, "consumer_cost_usd");
        assert!((cost - 0.10 * hours).abs() < 1e-9, "{name}: $0.10 a consumer-hour, got {cost} for {hours} h");
        for alarm in ["lag_warning", "lag_critical"] {
            let a = &s["alarms"][alarm];
            let events = a["events"].as_array().expect("events");
            assert_eq!(events.len() as f64, num(a, "fired"), "{name}/{alarm}: one period per firing");
            let end = series.last().expect("samples").1;
            let on: f64 =
                events.iter().map(|e| e["off_s"].as_f64().unwrap_or(end) - e["on_s"].as_f64().expect("on_s")).sum();
            assert!((on - num(a, "active_s")).abs() < 1e-6, "{name}/{alarm}: periods add up to active_s");
        }
    }
    assert!(num(&v["autoscaled"], "max_lag_s") < num(&v["fixed-3"], "max_lag_s") / 2.0, "scaling out cuts the lag");
    assert!(num(&v["autoscaled"], "metrics.rebalances") > num(&v["fixed-3"], "metrics.rebalances"));
    assert!(out.join("lag-consumers.svg").exists(), "the report's plot of lag against consumers");
}

#[test]
fn autoscaling_settings_are_checked_with_the_field_named() {
    for (set, field) in [
        ("consumers.workers.autoscale={ max_replicas = 4, min_replicas = 5 }", "expected from min_replicas (5)"),
        ("consumers.workers.replicas=11", "replicas"),
        ("consumers.workers.autoscale={ max_replicas = 10, scale_down_lag_s = 9 }", "below scale_up_lag_s"),
        ("brokers.kafka.topics.orders.partition_rate_per_s=0", "partition_rate_per_s"),
        // The table's own node runs nothing: a fault on it would do nothing.
        (
            "faults=[{ kind = \"crash\", node = \"workers\", at_ms = 1000, until_ms = 2000 }]",
            "`workers-1` to `workers-",
        ),
    ] {
        let o = asyncsim(&["run", FILE, "--variant", "autoscaled", "--set", set, "--out", "/dev/null/x"]);
        assert_eq!(o.status.code(), Some(2), "{set}: refused: {}", stderr(&o));
        assert!(stderr(&o).contains(field), "{set}: the error names `{field}`: {}", stderr(&o));
    }
}

//! Read models and caches: `scenarios/url-shortener.toml` and
//! `scenarios/cqrs.toml` through the real `asyncsim` binary (the relations
//! between their variants), named regression tests for each anomaly they
//! show (a user's own new link answered 404 without a cache, a stale
//! redirect after a delete without deletion markers), and the property
//! that after the drain every table and cache agrees with the truth
//! whatever the network loses and whoever crashes.

use crate::common;

use common::{num, run_summary, TempDir};
use proptest::prelude::*;
use sim_core::observer::replicas::ConsistencySummary;
use sim_core::scenario::{run_config, Scenario};

/// Every replica agrees with the truth at the end, and nothing was lost.
fn converged(name: &str, v: &serde_json::Value) {
    for key in ["consistency.open_windows", "consistency.diverged", "lost", "in_flight"] {
        assert_eq!(num(v, key), 0.0, "{name}: {key}");
    }
}

#[test]
fn the_url_shortener_variants_show_each_anomaly_and_its_fix() {
    let dir = TempDir::new("url-shortener");
    let (summary, _) = run_summary("scenarios/url-shortener.toml", "3", &dir.path().join("out"));
    let v = &summary["variants"];
    let names = ["no-cache", "write-through", "deletion-markers", "consumer-crash"];
    for name in names {
        converged(name, &v[name]);
        // Common random numbers: the API makes the same writes in every variant.
        assert_eq!(num(&v[name], "consistency.writes"), num(&v["no-cache"], "consistency.writes"), "{name}");
    }
    let c = |n: &str, k: &str| num(&v[n], &format!("consistency.{k}"));
    assert!(c("no-cache", "own_not_found") > 0.0, "a user's own new link is 404 without a cache");
    assert_eq!((c("write-through", "own_stale"), c("deletion-markers", "own_stale")), (0.0, 0.0));
    assert!(c("write-through", "own_reads") > 1000.0, "read-your-writes was tried, not vacuous");
    let sad = |n: &str| c(n, "stale_after_delete");
    assert!(sad("deletion-markers") < sad("no-cache"), "markers answer 410 where the table is behind");
    assert!(sad("no-cache") < sad("write-through"), "a fill after an evict keeps the deleted link until its TTL");
    let widest = |n: &str| c(n, "window_ms.max");
    assert!(widest("consumer-crash") > 4000.0, "the 4 s crash");
    assert!(widest("consumer-crash") > 10.0 * widest("no-cache"));
}

#[test]
fn the_cqrs_window_is_about_100_ms_and_grows_with_work_and_load() {
    let dir = TempDir::new("cqrs");
    let (summary, _) = run_summary("scenarios/cqrs.toml", "4", &dir.path().join("out"));
    let v = &summary["variants"];
    for name in ["default", "fast-consumer", "slow-consumer", "high-load", "consumer-outage"] {
        converged(name, &v[name]);
    }
    let p50 = |n: &str| num(&v[n], "consistency.window_ms.p50");
    assert!((70.0..140.0).contains(&p50("default")), "{}", p50("default"));
    assert!(p50("fast-consumer") < p50("default") && p50("default") < p50("slow-consumer"));
    assert!(p50("default") < p50("high-load"));
    let stale = |n: &str| num(&v[n], "consistency.stale_fraction");
    assert!(stale("fast-consumer") < stale("default") && stale("default") < stale("slow-consumer"));
    // The outage: 5 s without any projector, then the backlog is caught up.
    assert!(num(&v["consumer-outage"], "consistency.window_ms.max") > 5000.0);
    assert!(num(&v["consumer-outage"], "consistency.staleness_ms.max") > 4000.0);
    // The report draws every variant's staleness CDF.
    let plots: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/plots.json")).unwrap()).unwrap();
    let cdf = plots.as_array().unwrap().iter().find(|p| p["name"] == "staleness-cdf").expect("a staleness CDF");
    assert_eq!(cdf["series"].as_array().map(Vec::len), Some(5), "{cdf}");
    assert!(dir.path().join("out/staleness-cdf.svg").exists());
}

/// A small URL shortener: one API, one partitioned topic, one
/// database-writer, a table, optionally a cache, and users.
fn shortener(extra_api: &str, target: &str, own_ms: f64, faults: &str, loss: f64) -> String {
    format!(
        r#"
name = "small-shortener"
concept = "c"
[run]
duration_ms = 2_000
drain_ms = 60_000
[network]
latency = {{ dist = "uniform", min_ms = 0.5, max_ms = 2 }}
loss_probability = {loss}
[[network.links]]
from = "api"
to = "cache"
latency = {{ dist = "constant", ms = 0 }}
[[network.links]]
from = "api"
to = "users"
latency = {{ dist = "constant", ms = 0 }}
[producers.api]
target = "kafka"
topic = "links"
arrival = {{ process = "poisson", rate_per_s = 100 }}
keys = {{ distribution = "zipf", count = 50, exponent = 1.0 }}
ack_timeout_ms = 200
writes = {{ deletes = 0.3, users = "users"{extra_api} }}
[brokers.kafka]
kind = "log"
topics = {{ links = {{ partitions = 4 }} }}
session_timeout_ms = 500
initial_rebalance_delay_ms = 0
[consumers.database-writer]
source = "kafka"
topic = "links"
group = "database-writer"
sink = "db"
processing = {{ dist = "exponential", mean_ms = 5 }}
heartbeat_interval_ms = 100
sink_timeout_ms = 200
[tables.db]
[caches.cache]
table = "db"
ttl_ms = 5_000
[readers.users]
target = "{target}"
arrival = {{ process = "poisson", rate_per_s = 400 }}
keys = {{ distribution = "zipf", count = 50, exponent = 1.0 }}
own_delay = {{ dist = "constant", ms = {own_ms} }}
timeout_ms = 300
{faults}
"#
    )
}

/// The consistency figures of the one variant of `text` at `seed`.
fn consistency(text: &str, seed: u64) -> ConsistencySummary {
    let scenario = Scenario::parse("views-test.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let configs = scenario.configs().unwrap_or_else(|e| panic!("{e}\n{text}"));
    let out = run_config(&configs[0].1, seed, 0).completed().unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(out.stopped.is_none() && out.drain_complete, "the drain ended\n{text}");
    out.state.consistency.expect("tables, caches and readers report")
}

/// Regression: with no cache, a user who opens their new link before the
/// database-writer has written it gets 404 for their own link.
#[test]
fn regression_own_link_404_without_a_cache() {
    let c = consistency(&shortener("", "db", 1.0, "", 0.0), 1);
    assert!(c.own_reads > 50, "{c:?}");
    // Opened 1 ms after the 201, before the record can have reached the
    // table (the producer alone lingers 5 ms): a popular code shows its
    // previous version, a new one is 404.
    assert!(c.own_stale > c.own_reads / 2 && c.own_not_found > 0, "{c:?}");
    let cached = consistency(&shortener(", cache = \"cache\", write_through = true", "cache", 1.0, "", 0.0), 1);
    assert_eq!((cached.own_stale, cached.own_not_found), (0, 0), "write-through serves the creator\n{cached:?}");
}

/// Regression: a write-through cache without deletion markers, whose
/// API only evicts a deleted link, refills from the table before the
/// database-writer deletes it and redirects to the deleted link; markers
/// answer 410 Gone instead.
#[test]
fn regression_stale_redirect_after_a_delete_without_markers() {
    let evicts = consistency(&shortener(", cache = \"cache\", write_through = true", "cache", 50.0, "", 0.0), 2);
    let marks = ", cache = \"cache\", write_through = true, deletion_markers = true";
    let markers = consistency(&shortener(marks, "cache", 50.0, "", 0.0), 2);
    assert!(evicts.stale_after_delete > 10, "{evicts:?}");
    assert!(markers.stale_after_delete * 4 < evicts.stale_after_delete, "{markers:?}\n{evicts:?}");
}

proptest! {
    #![proptest_config(common::proptest_config(24))]

    /// Whatever the network loses and whoever crashes (the database-writer,
    /// the table, the cache), once the drain is over every table and cache
    /// agrees with the newest write of every key: no replica is behind, no
    /// write's window is still open.
    #[test]
    fn every_read_model_and_cache_converges_after_the_drain(
        loss in 0.0..0.05f64,
        who in prop::sample::select(vec!["database-writer", "db", "cache"]),
        at in 100u64..1_800,
        down in 1u64..1_500,
        cache in prop::sample::select(vec!["", ", cache = \"cache\"", ", cache = \"cache\", write_through = true",
            ", cache = \"cache\", write_through = true, deletion_markers = true"]),
        seed in any::<u64>(),
    ) {
        let faults = format!("[[faults]]\nkind = \"crash\"\nnode = \"{who}\"\nat_ms = {at}\nuntil_ms = {}", at + down);
        let target = if cache.is_empty() { "db" } else { "cache" };
        let text = shortener(cache, target, 20.0, &faults, loss);
        let c = consistency(&text, seed);
        prop_assert!(c.writes > 0 && c.reads > 0, "{:?}", c);
        prop_assert_eq!((c.diverged, c.open_windows), (0, 0), "{:?}\n{}", c, text);
    }
}

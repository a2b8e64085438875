//! Synchronous versus asynchronous, through the CLI on the bundled
//! scenarios: the acceptance figures of `sync-vs-async.toml`, and the
//! closed forms the other scenarios claim (Little's law for request/response
//! throughput, the order statistics of the slowest of N parallel calls, the
//! availability of a chain as the product of its parts). Every tolerance
//! comes from the statistics of the run (a binomial or an order-statistic
//! band at 4 standard errors) or from its discreteness, never from a run.

use crate::common::{num, run_summary, TempDir};
use serde_json::Value;

/// The standard normal quantile used for every band: 4 standard errors,
/// so a correct model fails about once in 16,000 checks.
const Z: f64 = 4.0;

fn variants(file: &str, name: &str) -> Value {
    let dir = TempDir::new(name);
    let (summary, _) = run_summary(file, "1", &dir.path().join("out"));
    summary["variants"].clone()
}

#[test]
fn every_sync_vs_async_variant_reports_what_the_user_sees_and_async_trades_errors_for_latency() {
    let v = variants("scenarios/sync-vs-async.toml", "sync-vs-async");
    let names = ["sync", "sync-retries", "sync-breaker", "async-poll", "async-callback"];
    for name in names {
        let x = &v[name];
        for key in ["response_ms", "completion_ms"] {
            for field in ["mean", "p50", "p90", "p99", "p999", "max"] {
                num(x, &format!("{key}.{field}"));
            }
            assert!(num(x, &format!("{key}.p99")) <= num(x, &format!("{key}.max")), "{name} {key}");
        }
        let saturation = num(x, "pool_saturation_max");
        assert!((0.0..=1.0).contains(&saturation), "{name}: pool_saturation_max {saturation}");
        num(x, "errors");
    }
    let (sync, poll) = (&v["sync"], &v["async-poll"]);
    assert!(num(sync, "errors") > 0.0, "the synchronous chain fails with errors during the outage");
    assert_eq!(num(poll, "errors"), 0.0, "the asynchronous chain shows the user no error");
    let (waited, answered) = (num(poll, "completion_ms.p99"), num(sync, "response_ms.p99"));
    assert!(
        waited > answered,
        "async fails with latency: completion p99 {waited} ms > sync response p99 {answered} ms"
    );
    for name in ["async-poll", "async-callback"] {
        assert_eq!(num(&v[name], "lost"), 0.0, "{name}: an accepted request is never lost once the faults heal");
        assert_eq!(num(&v[name], "in_flight"), 0.0, "{name}: the backlog drains");
    }
    // Retries multiply the errors' cost: more attempts than requests.
    let retries = &v["sync-retries"];
    assert!(num(retries, "metrics.attempts") > num(retries, "metrics.requests"));
}

/// Request/response with C requests in flight, a round trip RTT and a
/// service time S: throughput = C / (RTT + S) (Little's law). The run is
/// deterministic (constant latencies and service times); what it may lose
/// against the formula is its discreteness: each client's last request
/// cut off at the run's end (C requests over T seconds), and the first
/// round's wait at the service while the clients' first requests arrive
/// together.
#[test]
fn request_response_throughput_is_concurrency_over_round_trip_and_a_stream_is_twenty_times_faster() {
    let v = variants("scenarios/throughput-rpc-vs-stream.toml", "rpc-vs-stream");
    let run_s = 4.0;
    let service_ms = 0.2;
    for (name, clients, one_way_ms) in
        [("rpc", 10.0, 5.0), ("rpc-rtt-1ms", 10.0, 0.5), ("rpc-concurrency-100", 100.0, 5.0)]
    {
        let little = clients / ((2.0 * one_way_ms + service_ms) / 1000.0);
        let measured = num(&v[name], "throughput_per_s");
        let slack = 2.0 * clients / run_s;
        assert!(
            (measured - little).abs() <= slack,
            "{name}: {measured:.0}/s against Little's law {little:.0}/s (within {slack:.0}/s)"
        );
    }
    let (rpc, stream) = (num(&v["rpc"], "throughput_per_s"), num(&v["stream"], "throughput_per_s"));
    assert!(stream >= 20.0 * rpc, "the stream carries {stream:.0}/s, rpc {rpc:.0}/s: at least 20x apart");
}

/// The p99 of the slowest of N parallel calls: P(max <= t) = F(t)^N for
/// independent calls, so its quantile at q is F's at q^(1/N). The band is
/// the order statistic's: the empirical p99 of n responses lies between
/// the true quantiles at 0.99 -/+ Z sqrt(0.99 x 0.01 / n), widened by the
/// histogram's 0.1% rounding.
#[test]
fn the_tail_of_parallel_calls_follows_the_order_statistics() {
    let v = variants("scenarios/call-depth.toml", "call-depth-fanout");
    let (mean_ms, fixed_ms) = (10.0, 4.0 * 0.5); // exponential leaves; four network hops
    let quantile = |q: f64, n: f64| fixed_ms - mean_ms * (1.0 - q.powf(1.0 / n)).ln();
    for (name, n) in [("fanout-1", 1.0), ("fanout-5", 5.0), ("fanout-10", 10.0)] {
        let x = &v[name];
        let count = num(x, "response_ms.count");
        let half = Z * (0.99 * 0.01 / count).sqrt();
        let (low, high) = (quantile(0.99 - half, n) * 0.999, quantile(0.99 + half, n) * 1.001);
        let p99 = num(x, "response_ms.p99");
        assert!(
            (low..=high).contains(&p99),
            "{name}: p99 {p99:.1} ms outside the order-statistic band [{low:.1}, {high:.1}] (formula {:.1})",
            quantile(0.99, n)
        );
    }
    let (one, ten) = (num(&v["fanout-1"], "response_ms.p99"), num(&v["fanout-10"], "response_ms.p99"));
    assert!(ten > one, "ten parallel calls have a longer tail than one");
}

/// A chain of d services that each fail with probability p succeeds with
/// probability (1 - p)^d; the share of requests the users saw fail is a
/// binomial proportion, checked within Z standard errors.
#[test]
fn a_chain_is_as_available_as_the_product_of_its_parts() {
    let v = variants("scenarios/call-depth.toml", "call-depth-chain");
    for (name, depth) in [("chain-1", 1), ("chain-3", 3), ("chain-5", 5)] {
        let x = &v[name];
        let requests = num(x, "produced");
        let failed = num(x, "errors") / requests;
        let expected = 1.0 - 0.99f64.powi(depth);
        let se = (expected * (1.0 - expected) / requests).sqrt();
        assert!(
            (failed - expected).abs() <= Z * se,
            "{name}: {failed:.4} of requests failed, the product of the parts says {expected:.4} (+/- {:.4})",
            Z * se
        );
    }
}

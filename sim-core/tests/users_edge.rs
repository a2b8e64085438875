//! Users and the asynchronous edge, run whole: users call an edge that
//! queues each request to a queue broker, where a plain queue consumer
//! stands in for a worker (it takes the job and acks it; it sends no
//! `Done`, so no job's outcome ever comes back).
//!
//! - Every request is accepted (202) once the broker confirms it, the job
//!   is done once, and users see no error; without a worker's `Done` the
//!   accepted requests stay awaited (in flight), with no completion time.
//! - A full queue refuses publishes: the edge answers 503, which users see
//!   as `unavailable` errors, and the ledger counts those requests
//!   `send_failed` (never confirmed), one per error.
//! - Validation names the field: open and closed loop together, a poll or
//!   callback outcome whose target is no edge, a callback user of an edge
//!   that makes none, a response outcome at an edge.

use crate::common;

use common::{metric, run, show};
use sim_core::scenario::Scenario;

/// Users (`users` settings) -> edge `front` (`edge` settings) -> queue
/// `jobs` (`queue` settings) -> consumer `worker`.
fn chain(users: &str, edge: &str, queue: &str) -> String {
    format!(
        r#"
name = "edge"
concept = "test"
run = {{ duration_ms = 2000 }}
[users.web]
target = "front"
{users}
[edges.front]
queue = "jobs"
{edge}
[brokers.jobs]
kind = "queue"
{queue}
[consumers.worker]
source = "jobs"
domain = "work"
processing = {{ dist = "constant", ms = 1 }}
"#
    )
}

const OPEN: &str = "arrival = { process = \"poisson\", rate_per_s = 200 }\nmessages = 300";

#[test]
fn every_request_is_accepted_and_done_once_and_users_see_no_error() {
    let out = run(&chain(&format!("{OPEN}\noutcome = \"callback\""), "callbacks = true", ""), 1);
    let s = show(&out);
    assert_eq!(out.counts.produced, 300, "{s}");
    assert_eq!((metric(&out, "requests"), metric(&out, "accepted")), (300.0, 300.0), "{s}");
    assert_eq!(out.errors_total, 0, "{s}");
    assert_eq!((out.domains["work"].processed, out.domains["work"].duplicated), (300, 0), "{s}");
    assert_eq!(out.domains["responses"].in_flight, 300, "awaited: no worker says Done\n{s}");
    let response = out.timings[0].as_ref().expect("response times");
    assert_eq!(response.count, 300, "{s}");
    assert!(out.timings[1].is_none(), "no outcome came back, so no completion time");
}

#[test]
fn a_full_queue_is_a_503_the_users_see_and_the_ledger_counts_send_failed() {
    // A slow worker, a queue of 5: most publishes are refused.
    let queue = "capacity = 5\noverflow = \"reject-publish\"";
    let text = chain(&format!("{OPEN}\noutcome = \"poll\""), "", queue).replace("ms = 1 }", "ms = 50 }\nprefetch = 1");
    let out = run(&text, 1);
    let s = show(&out);
    let unavailable = out.errors.get("unavailable").copied().unwrap_or(0);
    assert!(unavailable > 100, "{s}");
    assert_eq!(out.domains["responses"].send_failed, unavailable, "each refused request, once\n{s}");
    assert_eq!(metric(&out, "accepted") as u64 + unavailable, 300, "{s}");
    assert_eq!(out.domains["responses"].processed, 0, "no worker says Done\n{s}");
}

/// The refusal of `text` (at parsing, or at building the variants).
fn refusal(text: &str) -> String {
    match Scenario::parse("t.toml", text) {
        Err(e) => e.to_string(),
        Ok(s) => s.configs().err().map(|e| e.to_string()).unwrap_or_else(|| panic!("accepted:\n{text}")),
    }
}

#[test]
fn validation_names_the_field_that_is_wrong() {
    let both = refusal(&chain(&format!("{OPEN}\nusers = 3\noutcome = \"poll\""), "", ""));
    assert!(both.contains("users.web.users") && both.contains("exclude each other"), "{both}");
    let neither = refusal(&chain("outcome = \"poll\"", "", ""));
    assert!(neither.contains("users.web.arrival"), "{neither}");
    let no_callbacks = refusal(&chain(&format!("{OPEN}\noutcome = \"callback\""), "", ""));
    assert!(no_callbacks.contains("users.web.outcome") && no_callbacks.contains("callbacks = true"), "{no_callbacks}");
    let sync_at_edge = refusal(&chain(OPEN, "", ""));
    assert!(sync_at_edge.contains("users.web.outcome") && sync_at_edge.contains("202"), "{sync_at_edge}");
    let not_an_edge = refusal(
        &chain(&format!("{OPEN}\noutcome = \"poll\""), "", "").replace("target = \"front\"", "target = \"jobs\""),
    );
    assert!(not_an_edge.contains("users.web.target"), "{not_an_edge}");
    let bad_queue =
        refusal(&chain(&format!("{OPEN}\noutcome = \"poll\""), "", "").replace("queue = \"jobs\"", "queue = \"nope\""));
    assert!(bad_queue.contains("edges.front.queue"), "{bad_queue}");
}

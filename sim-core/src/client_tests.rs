//! Unit tests of the request/response client, driven through its handlers
//! with the test harness: requests, responses and timeouts by hand.

use super::{Client, ClientSpec, ClientTimer};
use crate::engine::{Component, Effect, Emitted, Fact, Harness, Metric};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::protocol::{publish, QueueMsg};
use crate::time::NS_PER_MS;
use ClientTimer::{Arrival, Resubscribe, Retry, Timeout};

const MS: u64 = NS_PER_MS;
const ME: NodeId = 7;
/// The request queue.
const T: NodeId = 5;
/// The response queue.
const R: NodeId = 6;

fn spec(extra: &str) -> ClientSpec {
    let table = format!(
        "target = \"req\"\nresponses = \"resp\"\narrival = {{ process = \"constant\", rate_per_s = 1000 }}\n\
         timeout_ms = 100\n{extra}"
    );
    toml::from_str(&table).expect("a valid client table")
}

/// A client making a request every ms, each attempt waiting 100 ms;
/// started, its subscription to the response queue confirmed.
fn client(extra: &str) -> (Harness, Client) {
    let mut h = Harness::new(ME);
    let mut c = Client::new(&spec(extra), T, R);
    h.start(&mut c);
    h.message(&mut c, R, QueueMsg::Subscribed { session: 1 });
    (h, c)
}

/// (id, attempt) of every request published.
fn requests(e: &Emitted) -> Vec<(MsgId, u32)> {
    e.sent()
        .into_iter()
        .filter_map(|(to, m)| match m {
            Msg::Queue(QueueMsg::Publish { rec, want_ack: false, attempt, .. }) if to == T => Some((rec.id, attempt)),
            _ => None,
        })
        .collect()
}

/// A response to request `id` arrives, with delivery tag `tag`.
fn respond(h: &mut Harness, c: &mut Client, id: MsgId, tag: u64) -> Emitted {
    h.message(c, R, QueueMsg::Deliver { rec: Record::new(id, 0), tag, redelivered: false })
}

/// The sum of what was added to the named metric.
fn metric(e: &Emitted, name: &str) -> f64 {
    e.metric(name)
}

fn held(c: &Client) -> Vec<MsgId> {
    let mut out = Vec::new();
    c.held(&mut out);
    out
}

/// Sets the clock to `at` and fires the response deadline.
fn time_out(h: &mut Harness, c: &mut Client, at: u64) -> Emitted {
    h.now = at;
    h.timer(c, Timeout)
}

#[test]
fn a_client_subscribes_to_its_response_queue_and_arms_its_first_request() {
    let mut h = Harness::new(ME);
    let mut c = Client::new(&spec(""), T, R);
    let e = h.start(&mut c);
    assert_eq!(e.sent(), vec![(R, Msg::Queue(QueueMsg::Subscribe { prefetch: 100, session: 1, auto_ack: false }))]);
    assert_eq!(e.timers::<ClientTimer>(), vec![(1000 * MS, Resubscribe), (MS, Arrival)]);
    for name in ["request_timeouts", "requests_given_up", "late_responses", "duplicate_responses"] {
        assert!(e.0.contains(&Effect::Metric(Metric::Add(name, 0.0))), "{name} is listed even when 0");
    }
    h.now = 1000 * MS;
    assert_eq!(h.timer(&mut c, Resubscribe).sent().len(), 1, "unconfirmed: asked again");
    assert_eq!(h.message(&mut c, R, QueueMsg::Subscribed { session: 1 }).cancelled::<ClientTimer>(), vec![Resubscribe]);
}

#[test]
fn a_request_is_produced_fire_and_forget_and_published_to_the_target() {
    let (mut h, mut c) = client("");
    let e = h.timer(&mut c, Arrival);
    assert_eq!(e.facts(), vec![Fact::Produced { id: 0, key: 0, fire_and_forget: true }]);
    assert_eq!(e.sent(), vec![(T, Msg::Queue(publish(Record::new(0, 0), false, 1)))]);
    assert!(e.timers::<ClientTimer>().contains(&(100 * MS, Timeout)));
    assert_eq!(held(&c), vec![0]);
}

#[test]
fn a_response_is_acked_and_applies_the_clients_effect() {
    let (mut h, mut c) = client("");
    h.timer(&mut c, Arrival);
    let e = respond(&mut h, &mut c, 0, 9);
    assert_eq!((e.sent(), e.applied()), (vec![(R, Msg::Queue(QueueMsg::Ack { tag: 9 }))], vec![0]));
    assert_eq!(metric(&e, "late_responses") + metric(&e, "responses_out_of_order"), 0.0);
    assert!(held(&c).is_empty());
    h.now = 100 * MS;
    assert!(h.timer(&mut c, Timeout).is_empty(), "answered: its deadline is void");
}

#[test]
fn a_timed_out_request_is_sent_again_with_the_same_id_until_the_retries_run_out() {
    let (mut h, mut c) = client("retries = 1");
    h.timer(&mut c, Arrival);
    let e = time_out(&mut h, &mut c, 100 * MS);
    assert_eq!((metric(&e, "request_timeouts"), requests(&e)), (1.0, vec![(0, 2)]), "no backoff: at once");
    let e = time_out(&mut h, &mut c, 200 * MS);
    assert_eq!((metric(&e, "request_timeouts"), metric(&e, "requests_given_up")), (1.0, 1.0));
    assert!(requests(&e).is_empty());
    assert!(held(&c).is_empty(), "given up");
}

#[test]
fn a_retry_waits_for_its_backoff() {
    let (mut h, mut c) = client("retries = 1\nretry_backoff_ms = 50");
    h.timer(&mut c, Arrival);
    let e = time_out(&mut h, &mut c, 100 * MS);
    assert_eq!((requests(&e), e.timers::<ClientTimer>()), (vec![], vec![(50 * MS, Retry)]));
    h.now = 150 * MS;
    assert_eq!(requests(&h.timer(&mut c, Retry)), vec![(0, 2)]);
}

#[test]
fn a_first_response_after_a_timeout_or_a_give_up_is_late() {
    let (mut h, mut c) = client("retries = 1");
    h.timer(&mut c, Arrival);
    time_out(&mut h, &mut c, 100 * MS);
    let e = respond(&mut h, &mut c, 0, 0);
    assert_eq!((e.applied(), metric(&e, "late_responses")), (vec![0], 1.0), "applied, but late");
    let (mut h, mut c) = client("");
    h.timer(&mut c, Arrival);
    time_out(&mut h, &mut c, 100 * MS);
    let e = respond(&mut h, &mut c, 0, 0);
    assert_eq!((e.applied(), metric(&e, "late_responses")), (vec![], 1.0), "nobody waits for it any more");
    assert_eq!(e.sent(), vec![(R, Msg::Queue(QueueMsg::Ack { tag: 0 }))], "acked all the same");
}

#[test]
fn a_second_response_to_a_request_is_a_duplicate() {
    let (mut h, mut c) = client("");
    h.timer(&mut c, Arrival);
    respond(&mut h, &mut c, 0, 0);
    let e = respond(&mut h, &mut c, 0, 1);
    assert_eq!((e.applied(), metric(&e, "duplicate_responses")), (vec![], 1.0));
    assert_eq!(metric(&e, "late_responses"), 0.0);
}

#[test]
fn a_response_that_overtakes_an_earlier_request_is_out_of_order() {
    let (mut h, mut c) = client("");
    h.timer(&mut c, Arrival);
    h.timer(&mut c, Arrival);
    assert_eq!(metric(&respond(&mut h, &mut c, 1, 0), "responses_out_of_order"), 1.0);
    assert_eq!(metric(&respond(&mut h, &mut c, 0, 1), "responses_out_of_order"), 0.0);
}

#[test]
fn a_crash_abandons_the_requests_awaited_and_their_responses_come_late() {
    let (mut h, mut c) = client("");
    h.timer(&mut c, Arrival);
    c.crash();
    assert!(held(&c).is_empty());
    let e = h.restart(&mut c);
    assert!(e.sent().contains(&(R, Msg::Queue(QueueMsg::Subscribe { prefetch: 100, session: 2, auto_ack: false }))));
    let e = respond(&mut h, &mut c, 0, 0);
    assert_eq!((e.applied(), metric(&e, "late_responses")), (vec![], 1.0));
}

#[test]
fn a_cancelled_subscription_is_renewed_with_a_new_session() {
    let (mut h, mut c) = client("");
    let e = h.message(&mut c, R, QueueMsg::Cancelled { session: 1 });
    assert_eq!(e.sent(), vec![(R, Msg::Queue(QueueMsg::Subscribe { prefetch: 100, session: 2, auto_ack: false }))]);
    assert!(h.message(&mut c, R, QueueMsg::Cancelled { session: 1 }).is_empty(), "stale");
    assert!(h.message(&mut c, R, QueueMsg::Subscribed { session: 1 }).is_empty(), "stale");
    assert_eq!(h.message(&mut c, R, QueueMsg::Subscribed { session: 2 }).cancelled::<ClientTimer>(), vec![Resubscribe]);
}

#[test]
fn the_drain_stops_requests_and_cancels_timers_once_nothing_is_awaited() {
    let (mut h, mut c) = client("messages = 5");
    h.timer(&mut c, Arrival);
    assert_eq!(h.drain(&mut c).cancelled::<ClientTimer>(), vec![Arrival], "request 0 is still awaited");
    assert!(h.timer(&mut c, Arrival).facts().is_empty(), "no request in the drain");
    assert_eq!(respond(&mut h, &mut c, 0, 0).cancelled::<ClientTimer>(), vec![Timeout]);
}

#[test]
fn the_client_is_done_after_its_messages() {
    let (mut h, mut c) = client("messages = 2");
    assert!(!h.timer(&mut c, Arrival).facts().contains(&Fact::ProducerDone));
    let e = h.timer(&mut c, Arrival);
    assert!(e.facts().contains(&Fact::ProducerDone));
    assert!(!e.timers::<ClientTimer>().contains(&(MS, Arrival)), "no next request");
    assert!(c.is_producer());
}

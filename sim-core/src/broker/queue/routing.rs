//! A queue broker's declared topology as the scenario writes it, checked
//! and resolved: its named `queues` with their own arguments, its
//! `exchanges` and their bindings, each queue's dead-letter exchange, and
//! the routes its producers publish with (see [`super::exchange`] for how
//! an exchange routes).

use super::exchange::{Router, DEFAULT_EXCHANGE};
use super::kind::QueueSpec;
use crate::kind::{quoted, Invalid, Node};
use std::collections::BTreeMap;

/// Producer name to the exchange and routing keys it publishes with.
pub(crate) type Publishers = BTreeMap<String, (String, Vec<String>)>;

/// A queue's dead-letter exchange and fixed routing key, as the broker
/// numbers them.
pub(crate) type DeadLetterRoute = Option<(u32, Option<u32>)>;

/// Checks the named queues, the exchanges and their bindings, and the
/// dead-letter settings of broker `q`.
pub(crate) fn check(node: &Node, q: &QueueSpec) -> Result<(), Invalid> {
    if !q.queues.is_empty() && !q.subscriptions.is_empty() {
        let why = "declare `queues` (bound to exchanges) or `subscriptions` (a shorthand for a fanout exchange with one queue each), not both";
        return node.fail("subscriptions", why);
    }
    if !q.exchanges.is_empty() && q.queues.is_empty() {
        return node.fail("exchanges", "exchanges route to queues: declare them in `queues`");
    }
    for name in q.queues.keys() {
        // The name becomes an effect domain (its consumers' default).
        crate::names::check("a queue name", name).map_err(|m| node.invalid_at(&["queues", name], m))?;
    }
    let queues = quoted(q.queues.keys().map(String::as_str));
    for (name, x) in &q.exchanges {
        if name.is_empty() {
            return node.fail("exchanges", "the default exchange `\"\"` exists already: give this one a name");
        }
        for (i, b) in x.bindings.iter().enumerate() {
            if !q.queues.contains_key(&b.queue) {
                let at = ["exchanges", name, "bindings", &i.to_string(), "queue"];
                return Err(node.invalid_at(&at, format!("no queue `{}` (queues: {queues})", b.queue)));
            }
        }
    }
    check_dead_letters(node, q, &[], q.dead_letter_exchange.as_deref(), q.dead_letter_routing_key.is_some())?;
    for (name, args) in &q.queues {
        let dlx = args.dead_letter_exchange.as_deref().or(q.dead_letter_exchange.as_deref());
        let keyed = args.dead_letter_routing_key.is_some();
        check_dead_letters(node, q, &["queues", name], dlx, keyed)?;
    }
    Ok(())
}

/// Checks one dead-letter exchange setting (at `at`: the broker's own when
/// empty, else a queue's).
fn check_dead_letters(node: &Node, q: &QueueSpec, at: &[&str], dlx: Option<&str>, keyed: bool) -> Result<(), Invalid> {
    let field = |f: &'static str| at.iter().copied().chain([f]).collect::<Vec<_>>();
    if let Some(x) = dlx {
        if q.dead_letter.is_some() {
            let why =
                "set `dead_letter` (another broker) or `dead_letter_exchange` (an exchange of this one), not both";
            return Err(node.invalid_at(&field("dead_letter_exchange"), why));
        }
        if q.queues.is_empty() {
            let why = "dead-letter exchanges route to queues: declare them in `queues` (or use `dead_letter`, another broker)";
            return Err(node.invalid_at(&field("dead_letter_exchange"), why));
        }
        if x != DEFAULT_EXCHANGE && !q.exchanges.contains_key(x) {
            let list = quoted(std::iter::once("").chain(q.exchanges.keys().map(String::as_str)));
            return Err(
                node.invalid_at(&field("dead_letter_exchange"), format!("no exchange `{x}` (exchanges: {list})"))
            );
        }
    } else if keyed {
        let why = "a dead-letter routing key needs a `dead_letter_exchange` to route through";
        return Err(node.invalid_at(&field("dead_letter_routing_key"), why));
    }
    Ok(())
}

/// The router of broker `q`, the (exchange, key) of each route its
/// `publishers` use (route 0 first: the default exchange with the empty
/// key; then each producer's, in name order, one per routing key), and
/// each queue's dead-letter route.
pub(crate) fn resolve(q: &QueueSpec, publishers: &Publishers) -> (Router, Vec<(u32, u32)>, Vec<DeadLetterRoute>) {
    let names = q.queue_names();
    let dead_key = |i: usize| q.args(i).dead_letter_routing_key.or_else(|| q.dead_letter_routing_key.clone());
    let dead_keys: Vec<Option<String>> = (0..names.len()).map(dead_key).collect();
    let keys = publishers.values().flat_map(|(_, ks)| ks.iter().map(String::as_str));
    let router = Router::new(&names, &q.exchanges, keys.chain(dead_keys.iter().flatten().map(String::as_str)));
    let mut routes = vec![(0, 0)];
    for (exchange, ks) in publishers.values() {
        let x = router.exchange(exchange).unwrap_or(0);
        routes.extend(ks.iter().map(|k| (x, router.key_of(k).expect("every publisher's key is interned"))));
    }
    let dlx = (0..names.len())
        .map(|i| {
            let x = q.args(i).dead_letter_exchange.or_else(|| q.dead_letter_exchange.clone())?;
            let key = dead_keys[i].as_deref().map(|k| router.key_of(k).expect("every dead-letter key is interned"));
            Some((router.exchange(&x)?, key))
        })
        .collect();
    (router, routes, dlx)
}

/// The route numbers of each publisher, as [`resolve`] numbers them.
pub(crate) fn route_ids(publishers: &Publishers) -> Vec<(String, Vec<u16>)> {
    let mut next: u16 = 1;
    let mut out = Vec::new();
    for (name, (_, keys)) in publishers {
        // Validation keeps the routes of a broker below 2^16.
        let n = u16::try_from(keys.len()).unwrap_or(u16::MAX);
        out.push((name.clone(), (next..next.saturating_add(n)).collect()));
        next = next.saturating_add(n);
    }
    out
}

//! Exchanges and routing, as AMQP 0-9-1 defines them and RabbitMQ
//! implements them: a publish names an exchange and a routing key, and the
//! exchange copies it into every queue one of its bindings matches.
//!
//! - **direct**: a binding matches when its key equals the routing key;
//! - **fanout**: every binding matches, whatever the key;
//! - **topic**: keys are words separated by dots; in a binding's key `*`
//!   stands for exactly one word and `#` for zero or more words
//!   (`order.*` matches `order.paid`, not `order` or `order.paid.late`;
//!   `order.#` matches all three).
//!
//! Every broker has the **default exchange** (its name is the empty
//! string): a direct exchange to which every queue is bound with its own
//! name, so that a routing key naming a queue reaches that queue. A queue
//! bound several times by matching bindings of one exchange gets one copy.
//! A publish that matches no binding is **unroutable**: RabbitMQ drops it
//! (and still confirms it), unless the publisher set `mandatory`, which is
//! left out here.
//!
//! Routes are resolved once, when the broker is built: every routing key a
//! producer can use, and every dead-letter routing key, is known then, so a
//! publish costs a table lookup. Left out: exchange-to-exchange bindings,
//! headers exchanges, alternate exchanges, and declaring or deleting
//! exchanges and bindings while the run goes on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An exchange as written in a broker's `exchanges` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSpec {
    /// How its bindings match routing keys.
    #[serde(rename = "type")]
    pub kind: ExchangeType,
    /// The queues bound to it, each with a binding key.
    #[serde(default)]
    pub bindings: Vec<BindingSpec>,
}

/// The type of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    /// The binding key equals the routing key.
    Direct,
    /// Every bound queue, whatever the key.
    Fanout,
    /// Dotted words, with `*` for one word and `#` for any number.
    Topic,
}

/// One binding of a queue to an exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingSpec {
    /// The queue bound.
    pub queue: String,
    /// The binding key (a pattern for a topic exchange; ignored by a
    /// fanout exchange).
    #[serde(default)]
    pub key: String,
}

/// Whether a binding of type `kind` with key `binding` matches `routing_key`.
pub fn matches(kind: ExchangeType, binding: &str, routing_key: &str) -> bool {
    match kind {
        ExchangeType::Direct => binding == routing_key,
        ExchangeType::Fanout => true,
        ExchangeType::Topic => {
            // Both split alike: an empty key (or binding) has no words.
            topic_match(&words(binding), &words(routing_key))
        }
    }
}

/// The dot-separated words of a key; an empty key has none.
fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// Matches the words of a routing key against a topic pattern's words.
fn topic_match(pattern: &[&str], words: &[&str]) -> bool {
    // reach[j]: the first i pattern words can match the first j key words.
    let mut reach = vec![false; words.len() + 1];
    reach[0] = true;
    for p in pattern {
        let mut next = vec![false; words.len() + 1];
        for j in 0..=words.len() {
            if !reach[j] {
                continue;
            }
            match *p {
                "#" => next[j..].iter_mut().for_each(|r| *r = true),
                "*" if j < words.len() => next[j + 1] = true,
                w if j < words.len() && words[j] == w => next[j + 1] = true,
                _ => {}
            }
        }
        reach = next;
    }
    reach[words.len()]
}

/// The name of the default exchange.
pub const DEFAULT_EXCHANGE: &str = "";

/// Every exchange of a broker with its bindings resolved to queue numbers,
/// and the routing keys it can be asked about, interned.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// Exchange names; 0 is the default exchange (or, for a broker without
    /// named queues, the implicit one that reaches all its queues).
    exchanges: Vec<String>,
    /// Interned routing keys; 0 is the empty key.
    keys: Vec<String>,
    /// `table[exchange][key]`: the queues a publish reaches, ascending.
    table: Vec<Vec<Vec<u32>>>,
}

impl Router {
    /// The router of a broker whose queues are `queues` (in queue-number
    /// order) and whose exchanges are `exchanges`, for the routing keys
    /// `keys` (any order; duplicates are fine).
    pub fn new<'a>(
        queues: &[&str],
        exchanges: &BTreeMap<String, ExchangeSpec>,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Router {
        let mut r = Router { exchanges: vec![DEFAULT_EXCHANGE.to_string()], keys: vec![String::new()], table: vec![] };
        r.exchanges.extend(exchanges.keys().filter(|e| !e.is_empty()).cloned());
        for k in keys {
            r.key(k);
        }
        let queue_no = |name: &str| queues.iter().position(|q| *q == name).map(|i| i as u32);
        for exchange in &r.exchanges {
            let row = r.keys.iter().map(|key| {
                let mut to: Vec<u32> = match exchanges.get(exchange) {
                    Some(x) => x
                        .bindings
                        .iter()
                        .filter(|b| matches(x.kind, &b.key, key))
                        .filter_map(|b| queue_no(&b.queue))
                        .collect(),
                    None => queue_no(key).into_iter().collect(),
                };
                to.sort_unstable();
                to.dedup();
                to
            });
            r.table.push(row.collect());
        }
        r
    }

    /// A broker's implicit routing: one exchange whose every key reaches
    /// every one of `queues` queues (point-to-point: the one queue; fan-out
    /// subscriptions: each subscription's queue).
    pub fn implicit(queues: usize) -> Router {
        let all = (0..queues as u32).collect();
        Router { exchanges: vec![DEFAULT_EXCHANGE.to_string()], keys: vec![String::new()], table: vec![vec![all]] }
    }

    /// The number of interned key `key`, interning it (before the table is
    /// built only).
    fn key(&mut self, key: &str) -> u32 {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i as u32,
            None => {
                self.keys.push(key.to_string());
                (self.keys.len() - 1) as u32
            }
        }
    }

    /// The number of exchange `name`, if the broker has it.
    pub fn exchange(&self, name: &str) -> Option<u32> {
        self.exchanges.iter().position(|e| e == name).map(|i| i as u32)
    }

    /// The number of routing key `key`, if it was interned.
    pub fn key_of(&self, key: &str) -> Option<u32> {
        self.keys.iter().position(|k| k == key).map(|i| i as u32)
    }

    /// The queues a publish to `exchange` with key `key` reaches.
    #[inline]
    pub fn route(&self, exchange: u32, key: u32) -> &[u32] {
        self.table.get(exchange as usize).and_then(|row| row.get(key as usize)).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_wildcards_match_words_as_amqp_defines() {
        let t = |p: &str, k: &str| matches(ExchangeType::Topic, p, k);
        assert!(t("order.*", "order.paid"));
        assert!(!t("order.*", "order"));
        assert!(!t("order.*", "order.paid.late"));
        assert!(t("order.#", "order"));
        assert!(t("order.#", "order.paid.late"));
        assert!(t("#", ""));
        assert!(t("#", "a.b.c"));
        assert!(t("*.paid.#", "eu.paid"));
        assert!(!t("*.paid.#", "paid"));
        assert!(t("a.#.z", "a.z"));
        assert!(t("a.#.z", "a.b.c.z"));
        assert!(!t("a.#.z", "a.b.c"));
        assert!(!t("*", ""));
        assert!(t("*", "a"));
        assert!(t("", ""), "an empty binding matches an empty key");
        assert!(!t("", "a"));
    }

    #[test]
    fn direct_needs_equal_keys_and_fanout_ignores_them() {
        assert!(matches(ExchangeType::Direct, "a", "a"));
        assert!(!matches(ExchangeType::Direct, "a", "b"));
        assert!(matches(ExchangeType::Fanout, "x", "anything"));
    }

    #[test]
    fn the_default_exchange_routes_by_queue_name_and_one_queue_gets_one_copy() {
        let mut exchanges = BTreeMap::new();
        let bind = |queue: &str, key: &str| BindingSpec { queue: queue.into(), key: key.into() };
        let spec = ExchangeSpec {
            kind: ExchangeType::Topic,
            bindings: vec![bind("b", "x.*"), bind("b", "#"), bind("a", "y")],
        };
        exchanges.insert("t".to_string(), spec);
        let r = Router::new(&["a", "b"], &exchanges, ["a", "b", "x.1", "y", "z"]);
        let (default, t) = (r.exchange("").unwrap(), r.exchange("t").unwrap());
        let key = |k: &str| r.key_of(k).unwrap();
        assert_eq!(r.route(default, key("a")), [0]);
        assert_eq!(r.route(default, key("b")), [1]);
        assert_eq!(r.route(default, key("z")), [] as [u32; 0], "no queue is named z: unroutable");
        assert_eq!(r.route(t, key("x.1")), [1], "two matching bindings of one queue: one copy");
        assert_eq!(r.route(t, key("y")), [0, 1]);
        assert_eq!(r.route(t, key("z")), [1]);
    }
}

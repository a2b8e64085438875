//! The produce requests a producer has in flight on its connection.
//!
//! Kafka's `max.in.flight.requests.per.connection` counts requests, and one
//! request carries a batch for every partition of the broker that has one
//! waiting (the sender drains them all at once). A request is in flight
//! until every batch it carried is done: acknowledged, given up, or failed
//! with its idempotent session.
//!
//! Left out: a batch that is retried stays counted in the request it first
//! went in (Kafka sends a retry in a new request, with whatever else is
//! ready then); the per-request header is paid per batch on the wire.

use crate::message::NodeId;
use std::collections::BTreeMap;

/// Open requests, each with how many of its batches are not done and the
/// node it went to (Kafka's limit is per connection: per broker).
#[derive(Debug, Default)]
pub(crate) struct Requests {
    open: BTreeMap<u64, (u32, NodeId)>,
    next: u64,
    /// How many of `open` go to each node (a node with none may stay listed).
    per_node: Vec<(NodeId, usize)>,
}

impl Requests {
    /// Opens a request to `node` carrying `batches` batches (at least
    /// one) and returns its number.
    pub fn open(&mut self, batches: u32, node: NodeId) -> u64 {
        let id = self.next;
        self.next += 1;
        self.open.insert(id, (batches.max(1), node));
        match self.per_node.iter_mut().find(|(n, _)| *n == node) {
            Some((_, count)) => *count += 1,
            None => self.per_node.push((node, 1)),
        }
        id
    }

    /// One batch of request `id` is done; the request closes with its last.
    pub fn batch_done(&mut self, id: u64) {
        if let Some((left, node)) = self.open.get_mut(&id) {
            *left -= 1;
            if *left == 0 {
                let node = *node;
                self.open.remove(&id);
                if let Some((_, count)) = self.per_node.iter_mut().find(|(n, _)| *n == node) {
                    *count -= 1;
                }
            }
        }
    }

    /// How many requests are in flight.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// How many requests to `node` are in flight.
    #[inline]
    pub fn len_to(&self, node: NodeId) -> usize {
        self.per_node.iter().find(|(n, _)| *n == node).map_or(0, |&(_, count)| count)
    }

    /// Forgets every request (a crash closes the connection).
    pub fn clear(&mut self) {
        self.open.clear();
        self.per_node.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_stays_in_flight_until_its_last_batch_is_done() {
        let mut r = Requests::default();
        let a = r.open(3, 9);
        let b = r.open(1, 8);
        assert_eq!((r.len_to(9), r.len_to(8), r.len_to(7)), (1, 1, 0));
        assert_eq!(r.len(), 2);
        r.batch_done(a);
        r.batch_done(a);
        assert_eq!(r.len(), 2, "one batch of the first request is still out");
        r.batch_done(b);
        assert_eq!(r.len(), 1);
        assert_eq!((r.len_to(9), r.len_to(8)), (1, 0), "the request to 8 is done");
        r.batch_done(a);
        assert_eq!((r.len(), r.len_to(9)), (0, 0));
        r.batch_done(a);
        assert_eq!(r.len(), 0, "a late report of a closed request changes nothing");
    }
}

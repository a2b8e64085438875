//! What each error kind means, in a line the terminal table prints under
//! the counts: an error is an event a real system would log, and most kinds
//! are the retry machinery at work (a producer sends again, a broker
//! redelivers), not a lost message. The ledger counts losses; these lines
//! say which kinds are routine. Leaves out the details: docs/concepts.md and
//! docs/scenario-format.md hold them.

/// What the error `kind` means, starting with what happened next (retried,
/// redelivered, given up, ...); `None` for a kind this list does not know.
pub fn meaning(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m)
}

/// Every error kind the built-in component kinds report, sorted.
const KINDS: &[(&str, &str)] = &[
    ("ack-timeout", "retried: a producer's send got no ack in time, so it sent the message again"),
    (
        "buffer-full",
        "given up: a caller blocked on a producer's full buffer for max_block_ms, and its send failed",
    ),
    (
        "consumer-timeout",
        "redelivered: a consumer held deliveries too long without acking, so the broker took them back to deliver again",
    ),
    ("delivery-limit", "dead-lettered: a message came back more often than delivery_limit allows"),
    ("delivery-timeout", "given up: a producer dropped a message after delivery_timeout_ms"),
    ("dropped-head", "dropped (or dead-lettered): a full queue dropped its oldest message to take a new publish"),
    ("expired", "given up: a message waited longer than its ttl_ms (or its own message_ttl_ms)"),
    ("fenced", "refused: a send from an idempotent producer's older session"),
    ("forward-failed", "given up: a consumer stopped forwarding a message after forward_retries"),
    ("forward-timeout", "retried: a consumer's forward got no ack in time, so it sent it again"),
    ("gateway-timeout", "seen by a user: a request's last attempt was answered 504 (a dependency timed out)"),
    ("job-failed", "seen by a user: an accepted (202) job finished with a failure"),
    ("leader-crash-skipped", "no effect: a leader-crash fault found no live leader to crash"),
    ("leader-not-available", "refused, then retried: a write found its partition without a leader"),
    (
        "no-leader",
        "dropped, then retried by its producer: a publish reached a cluster node that could not serve it (no quorum queue leader known there)",
    ),
    ("not-enough-replicas", "refused, then retried: fewer than min_insync_replicas replicas were in sync"),
    (
        "not-enough-replicas-after-append",
        "refused, then retried: the write was appended but the in-sync set shrank, so the resend appends it twice",
    ),
    ("not-leader-or-follower", "refused, then retried at the leader: the broker asked does not lead the partition (it sends its view of the leaders)"),
    ("out-of-order", "refused, then retried: an idempotent send arrived too far ahead of a gap"),
    ("out-of-order-sequence", "given up: an idempotent producer's batch sent after one it gave up (a new session starts)"),
    ("permanent-failure", "failed: processing a poison message failed"),
    ("read-timeout", "given up: a reader's read of a table or cache got no answer within timeout_ms"),
    ("rejected", "refused: a full queue with reject-publish turned a publish away (a producer waiting for acks sends again)"),
    ("rejected-by-consumer", "dead-lettered: a consumer nacked a message without requeue"),
    ("retries-exhausted", "rejected: a consumer's retries in place of a message ran out (retry_attempts)"),
    ("schema-mismatch", "failed: a consumer could not read a message's schema version (poison for it)"),
    ("server-error", "seen by a user: a request's last attempt was answered 500"),
    ("timeout", "seen by a user: a request's last attempt got no reply within timeout_ms"),
    ("transaction-aborted", "retried: a transaction found an output partition without a leader"),
    ("transient-failure", "failed once: a processing attempt failed by chance (failure_probability) or by an errors fault"),
    ("unavailable", "seen by a user: a request's last attempt was answered 503 (refused at once: a full accept queue, an open breaker, an unconfirmed job)"),
    ("unknown-partition", "refused: a write named a topic or partition the broker does not have"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_a_component_can_report_has_a_meaning() {
        let kinds = sim_core::registry::Registry::builtin().error_kinds();
        assert!(kinds.contains(&"ack-timeout"), "the registry lists error kinds: {kinds:?}");
        let missing: Vec<&str> = kinds.iter().copied().filter(|k| meaning(k).is_none()).collect();
        assert!(missing.is_empty(), "error kinds without a meaning in src/table/error_kinds.rs: {missing:?}");
    }

    #[test]
    fn no_meaning_for_a_kind_nothing_reports() {
        let kinds = sim_core::registry::Registry::builtin().error_kinds();
        let stale: Vec<&str> = KINDS.iter().map(|(k, _)| *k).filter(|k| !kinds.contains(k)).collect();
        assert!(stale.is_empty(), "meanings of error kinds no component reports: {stale:?}");
        assert_eq!(meaning("no-such-kind"), None);
    }
}

//! Plain words for every cause code the ledger records: each
//! [`LossCause`] and [`DupCause`], what it means, which of a scenario's
//! faults can bring it about (by the first word of the fault's label in
//! `summary.json`: `crash`, `partition`, `loss`, `power`, `lose`, `slow`,
//! `errors`), and which settings decide it (by field name, looked up in
//! the variant's resolved scenario). The matches are exhaustive, so a new
//! cause cannot be added without its words.

use sim_core::ledger::{DupCause, LossCause};

/// What a cause means, and where to look for it in a scenario.
pub struct Words {
    /// A short name ("network drops").
    pub short: &'static str,
    /// What happened to the messages, in a sentence.
    pub what: &'static str,
    /// The kinds of fault that lead to it (first word of a fault's label).
    pub faults: &'static [&'static str],
    /// Field names whose values decide it.
    pub settings: &'static [&'static str],
    /// The sections (`brokers`, `consumers`) one of whose nodes a fault
    /// must name to bear on it; empty: any fault of its kinds does.
    pub on: &'static [&'static str],
}

const fn w(
    short: &'static str,
    what: &'static str,
    faults: &'static [&'static str],
    settings: &'static [&'static str],
) -> Words {
    Words { short, what, faults, settings, on: &[] }
}

/// [`w`], for a cause only faults of nodes of `on` bring about.
const fn w_on(
    short: &'static str,
    what: &'static str,
    faults: &'static [&'static str],
    settings: &'static [&'static str],
    on: &'static [&'static str],
) -> Words {
    Words { short, what, faults, settings, on }
}

/// The words for a loss cause.
pub fn loss(cause: LossCause) -> Words {
    use LossCause::*;
    match cause {
        Unexplained => w("unexplained", "no recorded fact explains them: a component lost them without saying why (worth reporting as a bug)", &[], &[]),
        NetworkLoss => w("network drops", "the network lost the message carrying them on the wire", &["loss"], &["loss_probability"]),
        Partition => w("partition drops", "a network partition separated sender and receiver, so the message carrying them was dropped", &["partition"], &[]),
        CrashedReceiver => w("sent to a dead node", "they arrived at a node that was down at the time", &["crash", "power", "lose"], &[]),
        Crash => w("lost in a crash", "they were held only in a node's memory (a non-durable queue, a consumer's buffer or work in progress) when the node crashed", &["crash", "power"], &["durable", "persistent"]),
        CommitBeforeProcess => w_on("committed before processing", "a consumer acknowledged (committed) them before processing them, then crashed or lost its partition before it processed them: at-most-once", &["crash"], &["ack"], &["consumers"]),
        UncleanElection => w_on("unclean election", "a replica that did not have them became leader (unclean leader election) and the log was cut back to its copy", &["crash", "partition", "power"], &["unclean_leader_election"], &["brokers"]),
        LeaderFailover => w_on("leader failover", "they were written to a leader that died before an in-sync replica had them; the new leader's log did not have them", &["crash", "partition"], &["acks", "min_insync_replicas"], &["brokers"]),
        NoLeader => w_on("no leader", "they were sent to a partition that had no live leader, and nobody answered", &["crash", "partition"], &["acks", "election_delay_ms"], &["brokers"]),
        Shed => w("refused by a full queue", "a full queue refused them (capacity reached, overflow rejects new publishes)", &[], &["capacity", "overflow"]),
        Ttl => w("expired", "they waited in a queue longer than its time-to-live and expired", &[], &["ttl_ms"]),
        DeadLetter => w("dead-lettered", "a consumer rejected them, or they were returned more than the delivery limit, and the dead-letter path did not deliver them", &["errors"], &["delivery_limit", "dead_letter"]),
        Retention => w("deleted by retention", "the log's retention deleted them before the group read them", &[], &["retention_ms"]),
        NoSubscriber => w_on("no subscriber", "they were published while a non-durable subscription had no consumer connected", &["crash"], &["durable"], &["consumers"]),
        SubscriptionDeleted => w_on("subscription deleted", "they were deleted with a non-durable subscription's queue when its last consumer left", &["crash"], &["durable"], &["consumers"]),
        ProcessingFailed => w("failed after auto-ack", "their processing failed after the consumer had already acknowledged them, so there was nothing to redeliver", &["errors"], &["ack"]),
        GaveUp => w("given up", "their sender gave them up after its retries ran out", &["partition", "crash"], &["retries"]),
        SkippedOffset => w_on("skipped offset", "an election cut the log back and they were appended below an offset their group had already committed, so the group skipped them", &["crash", "partition"], &["acks"], &["brokers"]),
        Unflushed => w_on("unflushed at power loss", "they were only in the replicas' page caches, never on a disk, when a power loss took those replicas down", &["power"], &["flush_interval_ms"], &["brokers"]),
        TruncatedAfterPartition => w_on("truncated after a partition", "they were written to a leader a network partition had cut off while the cluster went on under a new leader, and were truncated away when the old leader rejoined", &["partition"], &["acks", "min_insync_replicas"], &["brokers"]),
        Unroutable => w("unroutable", "they were published to an exchange with no binding matching their routing key and dropped at once", &[], &["routing_key"]),
        DeadLetterCycle => w("dead-letter cycle", "they were dead-lettered back into a queue they had come from with no rejection on the way, and the broker dropped them to end the cycle", &[], &["dead_letter"]),
        Transient => w_on("transient messages", "they were transient (not persistent) messages in a durable queue when its broker crashed: only persistent messages survive a restart", &["crash", "power"], &["persistent"], &["brokers"]),
        DroppedHead => w("dropped from the head", "a full queue dropped them from its head to make room for newer messages (overflow = drop-head)", &[], &["capacity", "overflow"]),
        NodeLost => w_on("node lost with its disk", "they were held by a node lost with its disk, and by no other node", &["lose"], &["replicas", "queue_type"], &["brokers"]),
        TooLate => w("too late for the window", "they reached a stream processor after their window's allowed lateness had passed", &[], &["allowed_lateness_ms"]),
        DroppedOnFailure => w("dropped on failure", "their processing failed and the consumer, whose policy is to drop failures, acknowledged them without applying them", &["errors"], &["on_failure"]),
        SkippedAfterFailure => w("skipped after failure", "their processing failed and a log consumer committed past them with nothing done (drop policy, or retries in place ran out with no dead-letter topic)", &["errors"], &["on_failure", "retries"]),
    }
}

/// The words for a duplicate cause.
pub fn dup(cause: DupCause) -> Words {
    use DupCause::*;
    match cause {
        Unexplained => w("unexplained", "no recorded fact explains the extra copy (worth reporting as a bug)", &[], &[]),
        NetworkCopy => w("network copies", "the network delivered the message carrying them twice", &[], &["duplicate_probability"]),
        ProducerRetry => w("sender retries", "their sender (a producer, a forwarding consumer, a relay or a client) sent them again because an ack or a response did not come in time, though the first copy had got through", &["partition", "crash", "loss", "slow"], &["retries", "idempotent", "ack_timeout_ms", "timeout_ms"]),
        Redelivered => w("redeliveries", "a broker delivered them again after a consumer crashed, timed out, nacked or was rebalanced before its ack or commit counted", &["crash", "partition"], &["ack", "effect"]),
        AbortedTransaction => w("aborted transactions", "a transaction wrote them, aborted, and was redone: a read_uncommitted reader applied both copies", &["crash"], &["isolation"]),
    }
}

/// Finds the cause named `name` (as `summary.json` writes it).
pub fn loss_named(name: &str) -> Option<LossCause> {
    LossCause::ALL.into_iter().find(|c| c.name() == name)
}

/// Finds the duplicate cause named `name`.
pub fn dup_named(name: &str) -> Option<DupCause> {
    DupCause::ALL.into_iter().find(|c| c.name() == name)
}

/// Words for a cause code of either kind, by name (`lost` chooses which).
pub fn named(name: &str, lost: bool) -> Option<Words> {
    if lost {
        loss_named(name).map(loss)
    } else {
        dup_named(name).map(dup)
    }
}

/// The glossary `asyncsim explain --causes` prints: every code with its words.
pub fn glossary() -> String {
    let mut out = String::from("Why messages are lost (lost_by_cause):\n");
    for c in LossCause::ALL {
        let words = loss(c);
        out.push_str(&format!("  {:<26} {}: {}\n", c.name(), words.short, words.what));
    }
    out.push_str("Why effects are applied twice (duplicated_by_cause):\n");
    for c in DupCause::ALL {
        let words = dup(c);
        out.push_str(&format!("  {:<26} {}: {}\n", c.name(), words.short, words.what));
    }
    out
}

//! The `causes` plot: why messages were lost or duplicated, per variant, as
//! the ledger recorded it (`lost_by_cause`, `duplicated_by_cause` in
//! `summary.json`). Each variant gets a column for its losses and one for
//! its duplicates (an outcome no variant had gets no column), stacked by
//! cause, one colour per cause, the legend naming each cause in plain
//! words and by its `summary.json` name. A scenario where no variant lost
//! or duplicated anything gets no such plot (the report page says so).
//! Counts sum over effect domains, as `counts` in `summary.json` does.

use super::figure::{Cause, Stacks};
use super::scenario::PlotRun;
use sim_core::ledger::{ByCause, DupCause, LossCause};

/// An outcome: its name, each run's counts by cause, every cause's name
/// in the ledger's order, and the plain words of a cause.
type Outcome<'a> = (&'static str, Vec<&'a ByCause>, Vec<&'static str>, fn(&str) -> &'static str);

/// The stacked bars of `runs`' causes; `None` when no run lost or
/// duplicated a message.
pub(crate) fn stacks(runs: &[PlotRun]) -> Option<Stacks> {
    let mut s = Stacks {
        outcomes: Vec::new(),
        variants: runs.iter().enumerate().map(|(i, r)| (r.name.to_string(), i)).collect(),
        causes: Vec::new(),
        counts: vec![Vec::new(); runs.len()],
        y_label: "messages".into(),
    };
    let lost: Vec<&ByCause> = runs.iter().map(|r| &r.out.counts.lost_by_cause).collect();
    let dup: Vec<&ByCause> = runs.iter().map(|r| &r.out.counts.duplicated_by_cause).collect();
    let loss_names: Vec<&str> = LossCause::ALL.iter().map(|c| c.name()).collect();
    let dup_names: Vec<&str> = DupCause::ALL.iter().map(|c| c.name()).collect();
    let outcomes: [Outcome; 2] = [("lost", lost, loss_names, loss_words), ("duplicated", dup, dup_names, dup_words)];
    for (outcome, by, order, words) in outcomes {
        // Causes in the ledger's order, the same in every scenario.
        let count = |b: &ByCause, n: &str| b.get(n).copied().unwrap_or(0);
        let names: Vec<&str> = order.into_iter().filter(|n| by.iter().any(|b| count(b, n) > 0)).collect();
        if names.is_empty() {
            continue;
        }
        let o = s.outcomes.len();
        s.outcomes.push(outcome.to_string());
        for name in names {
            s.causes.push(Cause { outcome: o, name: name.to_string(), words: words(name).to_string() });
            for (v, b) in by.iter().enumerate() {
                s.counts[v].push(count(b, name) as f64);
            }
        }
    }
    (!s.causes.is_empty()).then_some(s)
}

/// A loss cause in plain words (the name itself when it is unknown).
pub fn loss_words(name: &str) -> &'static str {
    let Some(c) = LossCause::ALL.iter().copied().find(|c| c.name() == name) else { return "a cause not described" };
    match c {
        LossCause::Unexplained => "nothing recorded explains it",
        LossCause::NetworkLoss => "dropped by the network",
        LossCause::Partition => "cut off by a network partition",
        LossCause::CrashedReceiver => "arrived at a node that was down",
        LossCause::Crash => "in memory when a node crashed",
        LossCause::CommitBeforeProcess => "committed, then the consumer died before processing it",
        LossCause::UncleanElection => "cut from the log by an unclean election",
        LossCause::LeaderFailover => "cut from the log when a new leader lacked it",
        LossCause::NoLeader => "sent to a partition with no leader",
        LossCause::Shed => "refused by a full queue",
        LossCause::Ttl => "expired in its queue (time to live)",
        LossCause::DeadLetter => "dead-lettered: rejected or redelivered too often",
        LossCause::Retention => "deleted by retention before it was read",
        LossCause::NoSubscriber => "published while no subscriber was connected",
        LossCause::SubscriptionDeleted => "deleted with a non-durable subscription",
        LossCause::ProcessingFailed => "processing failed after an automatic ack",
        LossCause::GaveUp => "its sender gave up after its retries",
        LossCause::SkippedOffset => "written below an offset already committed: skipped",
        LossCause::Unflushed => "only in page caches when the power went",
        LossCause::TruncatedAfterPartition => "written to a cut-off leader, then truncated",
        LossCause::Unroutable => "no binding matched its routing key",
        LossCause::DeadLetterCycle => "dead-lettered round a cycle, then dropped",
        LossCause::Transient => "a transient message when its broker crashed",
        LossCause::DroppedHead => "dropped from the head of a full queue",
        LossCause::NodeLost => "on a node lost with its disk",
        LossCause::TooLate => "arrived after its window had closed",
        LossCause::DroppedOnFailure => "processing failed: dropped on purpose",
        LossCause::SkippedAfterFailure => "processing failed: its offset skipped",
    }
}

/// A duplication cause in plain words.
pub fn dup_words(name: &str) -> &'static str {
    let Some(c) = DupCause::ALL.iter().copied().find(|c| c.name() == name) else { return "a cause not described" };
    match c {
        DupCause::Unexplained => "nothing recorded explains it",
        DupCause::NetworkCopy => "the network delivered it twice",
        DupCause::ProducerRetry => "sent again when an ack did not come",
        DupCause::Redelivered => "delivered again by the broker (crash, timeout, rebalance)",
        DupCause::AbortedTransaction => "written again after an aborted transaction",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_plain_words_of_its_own() {
        let loss: Vec<&str> = LossCause::ALL.iter().map(|c| loss_words(c.name())).collect();
        let dup: Vec<&str> = DupCause::ALL.iter().map(|c| dup_words(c.name())).collect();
        for words in [&loss, &dup] {
            let mut sorted = words.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), words.len(), "two causes read the same: {words:?}");
            assert!(words.iter().all(|w| w.len() <= 60 && !w.contains("not described")));
        }
        assert_eq!(loss_words("no_such_cause"), "a cause not described");
    }
}

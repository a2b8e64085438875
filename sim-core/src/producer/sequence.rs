//! An idempotent log producer's answer to `OUT_OF_ORDER_SEQUENCE_NUMBER`
//! (KIP-360, Kafka 2.5 and later, for a producer that is not
//! transactional).
//!
//! A broker refuses a batch numbered past a gap in its producer's session:
//! after an unclean election, or when a stale leader's log was truncated,
//! the new leader never got the batches the producer was told were written
//! (or that were never acknowledged), so the next number it waits for will
//! never come. Kafka's producer retries every such refusal, and tells
//! them apart by the batch refused:
//!
//! - the batch is the partition's next one (every earlier batch of its
//!   session was acknowledged): the gap is real, so the producer bumps the
//!   partition's epoch and numbers every batch of the partition it still
//!   waits for again, in order, from sequence 0; the refused batch and the
//!   others are retried with their new numbers (Kafka's
//!   `requestEpochBumpForPartition` and `startSequencesAtBeginning`);
//! - an earlier batch is still unanswered (it may fill the gap), or the
//!   refused attempt carried numbers given before such a reset: retried as
//!   is.
//!
//! So the batches are written after the gap instead of being retried until
//! their delivery timeout. In a cluster, a partition's new batches also
//! wait while one of its batches backs off before a retry (as behind
//! Kafka's retried batch at the head of the partition's queue), so they do
//! not arrive past it.
//!
//! Left out: Kafka waits for the partition's
//! requests in flight to come back before it uses the new epoch; here the
//! new numbers go with the next attempts, and an old-numbered attempt
//! still in flight is refused (`fenced` or `out-of-order`) and retried.
//! `UNKNOWN_PRODUCER_ID` is not modelled: a broker without state for a
//! producer accepts any number (as Kafka's brokers do since the producer
//! state is kept across truncation and retention).

use super::{Producer, ProducerTimer};
use crate::engine::Ctx;
use crate::message::MsgId;

impl Producer {
    /// The broker refused attempt `attempt` of batch `key` as out of
    /// order: if that attempt is the one in progress, carried the batch's
    /// current numbers, and the batch is its partition's next, the
    /// partition's numbers start again after a new epoch.
    pub(super) fn out_of_order(&mut self, ctx: &mut Ctx<ProducerTimer>, key: MsgId, attempt: u32) {
        if !self.settings.idempotent || self.log.is_none() || self.outstanding.attempts(key) != Some(attempt) {
            return;
        }
        let Some(o) = self.outstanding.get(key) else { return };
        if attempt <= o.renumbered_at {
            return; // numbered before a reset: retried with its new numbers
        }
        let (partition, seq) = (o.partition, o.seq);
        let next = self.outstanding.iter().filter(|(_, b)| b.partition == partition).all(|(_, b)| b.seq >= seq);
        if next {
            self.renumber(ctx, partition);
        }
    }

    /// By partition, in a cluster, for an idempotent producer: true when a
    /// batch of the partition waits for its retry. Its later batches wait
    /// behind it, as in Kafka's accumulator, where a retried batch goes
    /// back to the head of its partition's queue and nothing behind it is
    /// drained while it backs off: sent past it, they would be refused as
    /// out of order (a cluster leader holds no batch ahead of a gap), and
    /// their retries would hold up the next ones in turn.
    pub(super) fn held_behind_retries(&self) -> Vec<bool> {
        if !self.settings.idempotent || self.cluster.is_none() {
            return Vec::new();
        }
        let mut waiting = self.outstanding.waiting_retry().peekable();
        if waiting.peek().is_none() {
            return Vec::new();
        }
        let mut held = vec![false; self.epochs.len()];
        for o in waiting {
            held[o.partition as usize] = true;
        }
        held
    }

    /// A new epoch for `partition`: the batches it waits for are numbered
    /// again from 0, in their order, and later batches follow them.
    fn renumber(&mut self, ctx: &mut Ctx<ProducerTimer>, partition: u32) {
        let p = partition as usize;
        self.epochs[p] += 1;
        ctx.metric_add("epoch_bumps", 1.0);
        let mut batches: Vec<(u64, MsgId)> =
            self.outstanding.iter().filter(|(_, o)| o.partition == partition).map(|(k, o)| (o.seq, k)).collect();
        batches.sort_unstable();
        let mut next = 0;
        for (_, key) in batches {
            let sent = self.outstanding.attempts(key).unwrap_or(0);
            let o = self.outstanding.get_mut(key).expect("just listed");
            (o.epoch, o.seq, o.renumbered_at) = (self.epochs[p], next, sent);
            next += o.recs.all().len() as u64;
        }
        self.next_seq[p] = next;
    }
}

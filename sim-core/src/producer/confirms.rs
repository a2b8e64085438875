//! A queue producer's confirm channel, as RabbitMQ's clients keep it.
//!
//! Every publish that waits for a confirm gets the next delivery tag of the
//! producer's channel (from 1; a resend is a new publish with a new tag),
//! and the producer remembers which message and attempt each tag carried.
//! A confirm settles its tag, or with `multiple` every tag it still waits
//! for up to and including it; each message is settled once (a later or
//! repeated confirm of a settled one does nothing). A nack is a refusal of
//! that attempt (retried if retries remain).
//!
//! The channel is reopened (tags from 1 again) at each start of the
//! producer and when its broker's connection closes (a crash of the
//! broker): the confirms of the old channel never come, and its messages
//! are resent after their ack timeout. A confirm whose message is not the
//! one this channel gave its tag is stale (from a closed channel) and is
//! ignored: a simulator's check, as a closed channel's frames never reach
//! a real client.

use crate::message::MsgId;
use std::collections::BTreeMap;

/// A queue producer's publisher-confirm channel.
#[derive(Default)]
pub(super) struct ConfirmChannel {
    /// The channel's number (0 before the producer starts).
    number: u32,
    /// The next tag to give.
    next_tag: u64,
    /// The tags awaiting a confirm: the message (its batch key) and attempt.
    tags: BTreeMap<u64, (MsgId, u32)>,
}

impl ConfirmChannel {
    /// Opens a new channel: tags from 1, nothing awaited.
    pub(super) fn open(&mut self) {
        self.number += 1;
        self.next_tag = 1;
        self.tags.clear();
    }

    /// The channel number and tag of the next publish, attempt `attempt`
    /// of message `key`.
    pub(super) fn publish(&mut self, key: MsgId, attempt: u32) -> (u32, u64) {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.tags.insert(tag, (key, attempt));
        (self.number, tag)
    }

    /// An unnumbered answer (tag 0) about message `id`, as a queue
    /// cluster's node sends: forgets the tags its publishes took, so that
    /// they do not pile up.
    pub(super) fn forget(&mut self, id: MsgId) {
        if !self.tags.is_empty() {
            self.tags.retain(|_, &mut (key, _)| key != id);
        }
    }

    /// A confirm (or nack) of `tag`, whose message is `id`: the messages
    /// and attempts it settles (none when it is stale).
    pub(super) fn settle(&mut self, id: MsgId, tag: u64, multiple: bool) -> Vec<(MsgId, u32)> {
        if self.tags.get(&tag).is_none_or(|&(key, _)| key != id) {
            return Vec::new(); // settled already, or from a closed channel
        }
        if !multiple {
            return self.tags.remove(&tag).into_iter().collect();
        }
        let later = self.tags.split_off(&(tag + 1));
        std::mem::replace(&mut self.tags, later).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::ConfirmChannel;

    #[test]
    fn unnumbered_answers_forget_the_tags_of_their_message_so_none_pile_up() {
        let mut c = ConfirmChannel::default();
        c.open();
        for id in 0..100 {
            c.publish(id, 1);
            if id >= 2 {
                c.forget(id - 2); // a cluster's node answers with tag 0
            }
        }
        assert_eq!(c.tags.len(), 2, "only the two unanswered publishes are awaited");
        c.publish(99, 2); // a resend of 99: both its tags go with one answer
        c.forget(99);
        assert_eq!(c.tags.values().map(|&(id, _)| id).collect::<Vec<_>>(), vec![98]);
    }
}

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

//! Back-pressure at the producer: where a message waits before it may
//! leave, when the producer will not (a rate limit) or cannot (a full
//! buffer) send it at once.
//!
//! - **Rate limit** (`rate_limit = { rate_per_s, burst }`): a token
//!   bucket, as client-side limiters (Guava's `RateLimiter`, Resilience4j,
//!   a gateway's) keep it. It fills at `rate_per_s` tokens a second up to
//!   `burst`, starts full, and each message takes one token as it leaves
//!   the limiter; a message that finds none waits, in production order,
//!   in the producer until one comes. The wait is unbounded: the excess
//!   piles up in the producer's memory instead of the broker's queue, and
//!   the producer-side latency (`send_ms`) grows instead of the queue.
//! - **Bounded buffer** (`buffer_messages`, with `max_block_ms`): a queue
//!   producer waiting for confirms holds at most this many messages
//!   (waiting for an in-flight slot, awaiting a confirm, or waiting to be
//!   retried). A send that finds the buffer full blocks its caller, as
//!   Kafka's `send()` blocks while `buffer.memory` is full, for up to
//!   `max_block_ms` (Kafka's `max.block.ms`, default 60 s); a caller
//!   still blocked then gets an error (Kafka's `BufferExhaustedException`,
//!   here error `buffer-full`) and its message is a failed send. Blocked
//!   callers get room in the order they blocked.
//!
//! Simplifications: every arrival is its own caller (as request handlers
//! on many threads are), so one blocked caller does not delay the next
//! arrival; the buffer counts messages, not bytes; a rate limit applies
//! before the buffer (a caller first waits for a token, then for room),
//! and `max_block_ms` counts from the moment the caller reaches the buffer.

use crate::message::Record;
use crate::time::{Duration, Time, NS_PER_S};
use std::collections::VecDeque;

/// A token bucket, in integer time: the credit is nanoseconds of filling,
/// and a token costs `interval_ns` of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenBucket {
    /// Nanoseconds per token (1 s / `rate_per_s`).
    interval_ns: Duration,
    /// The most credit the bucket holds (`burst` tokens).
    cap_ns: Duration,
    /// The credit at `last`.
    credit_ns: Duration,
    last: Time,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least 1), refilled at `rate_per_s`.
    pub(crate) fn new(rate_per_s: f64, burst: u32) -> Self {
        let interval_ns = ((NS_PER_S as f64 / rate_per_s).round() as u64).max(1);
        let cap_ns = interval_ns.saturating_mul(u64::from(burst.max(1)));
        TokenBucket { interval_ns, cap_ns, credit_ns: cap_ns, last: 0 }
    }

    fn refill(&mut self, now: Time) {
        let gained = now.saturating_sub(self.last);
        self.credit_ns = self.credit_ns.saturating_add(gained).min(self.cap_ns);
        self.last = self.last.max(now);
    }

    /// Takes a token at `now`, if there is one.
    pub(crate) fn take(&mut self, now: Time) -> bool {
        self.refill(now);
        if self.credit_ns >= self.interval_ns {
            self.credit_ns -= self.interval_ns;
            true
        } else {
            false
        }
    }

    /// How long from `now` until the next token.
    pub(crate) fn wait(&mut self, now: Time) -> Duration {
        self.refill(now);
        self.interval_ns.saturating_sub(self.credit_ns).max(1)
    }
}

/// The messages a producer holds back, and the rules that hold them.
#[derive(Default)]
pub(crate) struct Pressure {
    /// The rate limit, if any.
    bucket: Option<TokenBucket>,
    /// Made, waiting for a token, with when each was made.
    pub(crate) throttled: VecDeque<(Record, Time)>,
    /// The token timer is pending.
    pub(crate) token_armed: bool,
    /// Most messages the buffer holds, if bounded.
    bound: Option<usize>,
    /// How long a caller may block on a full buffer.
    max_block_ns: Duration,
    /// Callers blocked on a full buffer: their message, when it was made,
    /// and when they blocked.
    pub(crate) blocked: VecDeque<(Record, Time, Time)>,
    /// The timer of the oldest blocked caller's deadline is pending.
    pub(crate) block_armed: bool,
}

impl Pressure {
    /// Rules from a producer's fields: `rate_limit` as (rate, burst),
    /// `buffer_messages` and `max_block_ms` in nanoseconds.
    pub(crate) fn new(rate_limit: Option<(f64, u32)>, bound: Option<u64>, max_block_ns: Duration) -> Self {
        Pressure {
            bucket: rate_limit.map(|(rate, burst)| TokenBucket::new(rate, burst)),
            bound: bound.map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
            max_block_ns,
            ..Pressure::default()
        }
    }

    /// A message made at `now` passes the rate limit at once (true), or
    /// waits for a token, behind those already waiting (false: it is kept).
    pub(crate) fn pass_limit(&mut self, now: Time, rec: Record) -> bool {
        let Some(bucket) = &mut self.bucket else { return true };
        if self.throttled.is_empty() && bucket.take(now) {
            return true;
        }
        self.throttled.push_back((rec, now));
        false
    }

    /// The messages whose token has come by `now`, in order.
    pub(crate) fn released(&mut self, now: Time) -> Vec<(Record, Time)> {
        let mut out = Vec::new();
        if let Some(bucket) = &mut self.bucket {
            while !self.throttled.is_empty() && bucket.take(now) {
                out.extend(self.throttled.pop_front());
            }
        }
        out
    }

    /// How long until the next token, when messages wait for one and no
    /// timer is pending for it (the caller arms one).
    pub(crate) fn token_due(&mut self, now: Time) -> Option<Duration> {
        if self.token_armed || self.throttled.is_empty() {
            return None;
        }
        let wait = self.bucket.as_mut().map(|b| b.wait(now))?;
        self.token_armed = true;
        Some(wait)
    }

    /// Whether a message reaching a buffer that holds `held` messages must
    /// block: the buffer is full, or callers blocked before it.
    pub(crate) fn must_block(&self, held: usize) -> bool {
        self.bound.is_some_and(|b| held >= b || !self.blocked.is_empty())
    }

    /// How many blocked callers may go on into a buffer holding `held`.
    pub(crate) fn room(&self, held: usize) -> usize {
        self.bound.map_or(usize::MAX, |b| b.saturating_sub(held)).min(self.blocked.len())
    }

    /// Blocks a caller with `rec` (made at `made`) at `now`; returns the
    /// delay of the block timer to arm, if none is pending.
    pub(crate) fn block(&mut self, now: Time, rec: Record, made: Time) -> Option<Duration> {
        self.blocked.push_back((rec, made, now));
        self.arm_block(now)
    }

    /// The delay until the oldest blocked caller gives up, when a timer
    /// for it must be armed.
    pub(crate) fn arm_block(&mut self, now: Time) -> Option<Duration> {
        if self.block_armed {
            return None;
        }
        let &(_, _, at) = self.blocked.front()?;
        self.block_armed = true;
        Some(at.saturating_add(self.max_block_ns).saturating_sub(now).max(1))
    }

    /// The blocked callers whose `max_block_ms` has passed at `now`: they
    /// give up, their messages failed sends.
    pub(crate) fn give_up(&mut self, now: Time) -> Vec<Record> {
        let mut out = Vec::new();
        while self.blocked.front().is_some_and(|&(_, _, at)| at.saturating_add(self.max_block_ns) <= now) {
            out.extend(self.blocked.pop_front().map(|(rec, _, _)| rec));
        }
        out
    }

    /// No rate limit: every message passes [`Pressure::pass_limit`] at once.
    pub(crate) fn unlimited(&self) -> bool {
        self.bucket.is_none()
    }

    /// Nothing is held back.
    pub(crate) fn is_empty(&self) -> bool {
        self.throttled.is_empty() && self.blocked.is_empty()
    }

    /// The ids of the messages held back.
    pub(crate) fn ids(&self) -> impl Iterator<Item = crate::message::MsgId> + '_ {
        self.throttled.iter().map(|(r, _)| r.id).chain(self.blocked.iter().map(|(r, _, _)| r.id))
    }

    /// A crash forgets what was held back (the producer's memory) and the
    /// pending timers.
    pub(crate) fn crash(&mut self) {
        self.throttled.clear();
        self.blocked.clear();
        self.token_armed = false;
        self.block_armed = false;
    }

    /// Bytes of allocated capacity.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.throttled.capacity() * std::mem::size_of::<(Record, Time)>()
            + self.blocked.capacity() * std::mem::size_of::<(Record, Time, Time)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MS: u64 = 1_000_000;

    #[test]
    fn a_bucket_starts_full_then_gives_a_token_per_interval() {
        let mut b = TokenBucket::new(100.0, 3); // a token every 10 ms
        assert!((0..3).all(|_| b.take(0)), "a full bucket of 3");
        assert!(!b.take(0));
        assert_eq!(b.wait(0), 10 * MS);
        assert!(!b.take(9 * MS));
        assert!(b.take(10 * MS));
        // Idle for a long time, it holds no more than its burst.
        assert_eq!((0..10).filter(|_| b.take(1_000 * MS)).count(), 3);
    }

    #[test]
    fn messages_wait_for_tokens_in_order_behind_those_already_waiting() {
        let mut p = Pressure::new(Some((100.0, 1)), None, 0);
        let r = |id| Record::new(id, 0);
        assert!(p.pass_limit(0, r(0)));
        assert!(!p.pass_limit(MS, r(1)) && !p.pass_limit(2 * MS, r(2)));
        assert_eq!(p.token_due(2 * MS), Some(8 * MS), "the next token at 10 ms");
        assert_eq!(p.token_due(2 * MS), None, "armed already");
        assert_eq!(p.released(10 * MS).iter().map(|(r, t)| (r.id, *t)).collect::<Vec<_>>(), [(1, MS)]);
        // A message made while others wait queues behind them, token or not.
        assert!(!p.pass_limit(30 * MS, r(3)));
        let ids: Vec<u64> = p.released(30 * MS).iter().map(|(r, _)| r.id).collect();
        assert_eq!(ids, [2], "one token (burst 1) at 30 ms");
    }

    #[test]
    fn a_full_buffer_blocks_callers_until_room_or_their_deadline() {
        let mut p = Pressure::new(None, Some(2), 100 * MS);
        assert!(!p.must_block(1) && p.must_block(2));
        assert_eq!(p.block(5 * MS, Record::new(7, 0), MS), Some(100 * MS));
        assert_eq!(p.block(20 * MS, Record::new(8, 0), 20 * MS), None, "one timer, for the oldest");
        assert!(p.must_block(0), "behind a blocked caller even with room");
        assert_eq!(p.room(1), 1);
        assert!(p.give_up(104 * MS).is_empty());
        assert_eq!(p.give_up(105 * MS).iter().map(|r| r.id).collect::<Vec<_>>(), [7]);
        p.block_armed = false;
        assert_eq!(p.arm_block(105 * MS), Some(15 * MS), "the next caller's deadline");
    }
}

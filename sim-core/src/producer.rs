//! Producers: the sources of messages. A producer draws arrival times from
//! an arrival process (constant rate, Poisson, or bursty on/off), keys from
//! a key distribution (uniform or zipf), and sends its messages to its
//! broker either fire-and-forget (considered sent at once) or waiting for
//! the broker's ack, with a timeout and retries.
//!
//! A producer to a log broker batches, as Kafka's does (see [`batch`]):
//! records wait per partition until their batch is full (`batch_size`
//! bytes of records of `message_bytes` each, a fixed size or one drawn
//! per record from a stream beside the producer's own, or
//! `batch_records`) or has
//! lingered `linger_ms`. Once one batch is ready, a produce request takes
//! the oldest batch of every partition (up to 1 MiB, Kafka's
//! `max.request.size`), as Kafka's sender drains every partition a broker
//! leads. `max_in_flight` counts requests (Kafka's
//! `max.in.flight.requests.per.connection`): while every slot is taken the
//! open batch keeps growing, so the load sets the batch size. A producer to
//! a queue broker sends each message alone. Defaults depend on the target
//! (see [`Settings`]).
//!
//! An idempotent producer numbers its sends: each session (a start or
//! restart) has an epoch per partition, each batch the sequence number of
//! its first record at its first send, and the broker appends the next
//! batch once, acks an earlier one without appending it again, and holds
//! one that arrives ahead of a gap until the gap fills. So neither its
//! retries nor the network can duplicate or reorder what it appends. A
//! batch given up (out of retries or past its delivery timeout) would leave
//! a gap, so the partition starts a new session from sequence 0 (Kafka's
//! epoch bump), and the batches sent after the one given up fail with it
//! (`out-of-order-sequence`): they were numbered past the gap.
//!
//! A retried batch keeps its records' ids, so if both copies get through
//! the ledger sees the effect applied twice: that is how at-least-once
//! duplicates are born. With several requests in flight, a retried batch
//! can also land after a later one: retries reorder. `max_in_flight = 1`
//! prevents that while no batch is given up, at the cost of one round trip
//! per batch. A batch given up may still have an attempt on the wire that
//! lands after the next one: only an idempotent producer keeps order
//! through give-ups and crashes.
//!
//! A refused attempt (a full queue) fails at its ack deadline, like a
//! timeout but counted only as the broker's `rejected`, so time passes
//! before the resend even with no backoff and no latency.
//! `delivery_timeout_ms` bounds the time, from a batch's first record,
//! that the producer keeps trying; then it gives the batch up (failed
//! sends).
//!
//! Left out: a retried batch is resent alone, still counted in its first
//! request (Kafka puts it in a new request with what else is ready), and
//! Kafka's check
//! that `delivery.timeout.ms` is at least `linger.ms` +
//! `request.timeout.ms`.
//!
//! Back-pressure (see [`pressure`]): a token-bucket `rate_limit` holds
//! messages in the producer until a token comes, and a queue producer's
//! `buffer_messages` blocks callers on a full buffer for up to
//! `max_block_ms`, then fails their sends (`buffer-full`). A queue
//! producer measures `send_ms` (`Timing::Send`), from production to the
//! confirm, or to leaving when fire-and-forget; a log producer does not
//! (a batch keeps its first record's time only).
//!
//! Crash: messages awaiting an ack are forgotten (volatile); the count of
//! messages produced so far is kept, so a restarted producer resumes its
//! workload rather than starting it again.

use crate::dist::round_to_u64;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId, Notice, Record};
use crate::protocol::{Acks, ClusterMsg, LogMsg, ProduceError, QueueMsg};
use crate::reliable::{Failed, RetryPolicy, UntilAcked};
use crate::rng::{unit, SimRng};
use crate::size::{side_stream, SizeSampler};
use crate::time::{ms_to_ns, Duration, Time, NS_PER_S};
use crate::timers::Deadlines;
use crate::units::{Millis, Positive, Rate, RateOrZero};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

mod batch;
mod cluster;
mod confirms;
mod kind;
mod pressure;
mod profile;
mod requests;
mod sequence;
mod settings;
mod writes;
use batch::Accumulator;
use confirms::ConfirmChannel;
pub(crate) use kind::check_keys;
pub use kind::{ProducerKind, ProducerSpec, RateLimitSpec};
use requests::Requests;
pub use settings::Settings;
pub use writes::{WriteHook, WritesSpec};

/// How a producer picks the partition of a record (log brokers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partitioner {
    /// By a hash of the key: one key, one partition, so per-key order holds.
    #[default]
    KeyHash,
    /// In turn, ignoring the key (as Kafka does for records without one).
    RoundRobin,
}

/// Where a log producer writes: the topic's index and partition count.
#[derive(Debug, Clone, Copy)]
pub struct LogTarget {
    /// Topic index in the broker's topic order.
    pub topic: u16,
    /// Partitions of the topic.
    pub partitions: u32,
}

/// A day in milliseconds: a daily cycle's default period.
const DAY_MS: f64 = 86_400_000.0;

/// An arrival process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "process", rename_all = "lowercase", try_from = "ArrivalTable")]
pub enum Arrival {
    /// Exactly `rate_per_s` evenly spaced messages per second.
    Constant {
        /// Messages per second.
        rate_per_s: Rate,
    },
    /// A Poisson process: exponential gaps with mean 1/`rate_per_s`.
    Poisson {
        /// Mean messages per second.
        rate_per_s: Rate,
    },
    /// On/off bursts: Poisson at `on_rate_per_s` for `on_ms`, then at
    /// `off_rate_per_s` (default 0) for `off_ms`, repeating from time 0.
    Bursty {
        /// Rate during a burst.
        on_rate_per_s: Rate,
        /// Rate between bursts.
        off_rate_per_s: RateOrZero,
        /// Length of a burst.
        on_ms: Millis,
        /// Length of a quiet period.
        off_ms: Millis,
    },
    /// Poisson at `rate_per_s`, then at `to_rate_per_s` from `at_ms` on.
    Step {
        /// Rate before the step.
        rate_per_s: Rate,
        /// Rate from the step on.
        to_rate_per_s: Rate,
        /// When the rate changes.
        at_ms: Millis,
    },
    /// Poisson at `rate_per_s` until `from_ms`, its rate rising (or
    /// falling) linearly to `to_rate_per_s` at `until_ms`, then steady.
    Ramp {
        /// Rate before the ramp.
        rate_per_s: Rate,
        /// Rate at its end and after.
        to_rate_per_s: Rate,
        /// When the ramp begins (default 0).
        from_ms: Millis,
        /// When it ends.
        until_ms: Millis,
    },
    /// Poisson at `rate_per_s`, at `spike_rate_per_s` from `at_ms` until
    /// `until_ms`.
    Spike {
        /// Rate outside the spike.
        rate_per_s: Rate,
        /// Rate during the spike.
        spike_rate_per_s: Rate,
        /// When the spike begins.
        at_ms: Millis,
        /// When it ends.
        until_ms: Millis,
    },
    /// A daily cycle: Poisson at a rate that swings as a cosine between
    /// `trough_rate_per_s` and `peak_rate_per_s` every `period_ms`
    /// (default a day), highest at `peak_at_ms` into each period (default
    /// half a period: noon when the run starts at midnight).
    Daily {
        /// The lowest rate.
        trough_rate_per_s: RateOrZero,
        /// The highest rate.
        peak_rate_per_s: Rate,
        /// When in each period the rate peaks.
        peak_at_ms: Millis,
        /// The length of a cycle.
        period_ms: Millis,
    },
}

impl Arrival {
    /// The mean number of messages per second: over the long run (what
    /// the count over a time tends to, divided by it), so a step or a ramp
    /// counts as its final rate, a spike as its rate outside the spike, and
    /// a daily cycle as its mean over a period.
    pub fn mean_rate_per_s(&self) -> f64 {
        match self {
            Arrival::Step { to_rate_per_s: r, .. } | Arrival::Ramp { to_rate_per_s: r, .. } => r.0,
            Arrival::Spike { rate_per_s, .. } => rate_per_s.0,
            Arrival::Daily { trough_rate_per_s, peak_rate_per_s, .. } => {
                (trough_rate_per_s.0 + peak_rate_per_s.0) / 2.0
            }
            Arrival::Constant { rate_per_s } | Arrival::Poisson { rate_per_s } => rate_per_s.0,
            Arrival::Bursty { on_rate_per_s, off_rate_per_s, on_ms, off_ms } => {
                let cycle = on_ms.0 + off_ms.0;
                if cycle > 0.0 {
                    (on_rate_per_s.0 * on_ms.0 + off_rate_per_s.0 * off_ms.0) / cycle
                } else {
                    on_rate_per_s.0
                }
            }
        }
    }
}

/// An `arrival` table as written (see the `tagged` module).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrivalTable {
    process: ArrivalKind,
    rate_per_s: Option<Rate>,
    on_rate_per_s: Option<Rate>,
    off_rate_per_s: Option<RateOrZero>,
    on_ms: Option<Millis>,
    off_ms: Option<Millis>,
    to_rate_per_s: Option<Rate>,
    spike_rate_per_s: Option<Rate>,
    at_ms: Option<Millis>,
    from_ms: Option<Millis>,
    until_ms: Option<Millis>,
    trough_rate_per_s: Option<RateOrZero>,
    peak_rate_per_s: Option<Rate>,
    peak_at_ms: Option<Millis>,
    period_ms: Option<Millis>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ArrivalKind {
    Constant,
    Poisson,
    Bursty,
    Step,
    Ramp,
    Spike,
    Daily,
}

impl TryFrom<ArrivalTable> for Arrival {
    type Error = String;

    fn try_from(t: ArrivalTable) -> Result<Self, String> {
        use crate::tagged::{need, only, present};
        let p = present!(
            t,
            rate_per_s,
            on_rate_per_s,
            off_rate_per_s,
            on_ms,
            off_ms,
            to_rate_per_s,
            spike_rate_per_s,
            at_ms,
            from_ms,
            until_ms,
            trough_rate_per_s,
            peak_rate_per_s,
            peak_at_ms,
            period_ms
        );
        Ok(match t.process {
            ArrivalKind::Constant | ArrivalKind::Poisson => {
                let constant = matches!(t.process, ArrivalKind::Constant);
                let w = if constant { "a constant `process`" } else { "a poisson `process`" };
                only(&p, &["rate_per_s"], w)?;
                let rate_per_s = need(t.rate_per_s, "rate_per_s", w)?;
                if constant {
                    Arrival::Constant { rate_per_s }
                } else {
                    Arrival::Poisson { rate_per_s }
                }
            }
            ArrivalKind::Bursty => {
                let w = "a bursty `process`";
                only(&p, &["on_rate_per_s", "off_rate_per_s", "on_ms", "off_ms"], w)?;
                Arrival::Bursty {
                    on_rate_per_s: need(t.on_rate_per_s, "on_rate_per_s", w)?,
                    off_rate_per_s: t.off_rate_per_s.unwrap_or(RateOrZero(0.0)),
                    on_ms: need(t.on_ms, "on_ms", w)?,
                    off_ms: need(t.off_ms, "off_ms", w)?,
                }
            }
            ArrivalKind::Step | ArrivalKind::Ramp | ArrivalKind::Spike | ArrivalKind::Daily => profile_arrival(t, p)?,
        })
    }
}

/// A `step`, `ramp`, `spike` or `daily` arrival table.
fn profile_arrival(t: ArrivalTable, p: Vec<&'static str>) -> Result<Arrival, String> {
    use crate::tagged::{need, only};
    let rate = |w: &str| need(t.rate_per_s, "rate_per_s", w);
    Ok(match t.process {
        ArrivalKind::Step => {
            let w = "a step `process`";
            only(&p, &["rate_per_s", "to_rate_per_s", "at_ms"], w)?;
            let to_rate_per_s = need(t.to_rate_per_s, "to_rate_per_s", w)?;
            Arrival::Step { rate_per_s: rate(w)?, to_rate_per_s, at_ms: need(t.at_ms, "at_ms", w)? }
        }
        ArrivalKind::Ramp => {
            let w = "a ramp `process`";
            only(&p, &["rate_per_s", "to_rate_per_s", "from_ms", "until_ms"], w)?;
            Arrival::Ramp {
                rate_per_s: rate(w)?,
                to_rate_per_s: need(t.to_rate_per_s, "to_rate_per_s", w)?,
                from_ms: t.from_ms.unwrap_or(Millis(0.0)),
                until_ms: need(t.until_ms, "until_ms", w)?,
            }
        }
        ArrivalKind::Daily => {
            let w = "a daily `process`";
            only(&p, &["trough_rate_per_s", "peak_rate_per_s", "peak_at_ms", "period_ms"], w)?;
            let period_ms = t.period_ms.unwrap_or(Millis(DAY_MS));
            Arrival::Daily {
                trough_rate_per_s: need(t.trough_rate_per_s, "trough_rate_per_s", w)?,
                peak_rate_per_s: need(t.peak_rate_per_s, "peak_rate_per_s", w)?,
                peak_at_ms: t.peak_at_ms.unwrap_or(Millis(period_ms.0 / 2.0)),
                period_ms,
            }
        }
        _ => {
            let w = "a spike `process`";
            only(&p, &["rate_per_s", "spike_rate_per_s", "at_ms", "until_ms"], w)?;
            Arrival::Spike {
                rate_per_s: rate(w)?,
                spike_rate_per_s: need(t.spike_rate_per_s, "spike_rate_per_s", w)?,
                at_ms: need(t.at_ms, "at_ms", w)?,
                until_ms: need(t.until_ms, "until_ms", w)?,
            }
        }
    })
}

impl Arrival {
    /// Checks relations between fields.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Arrival::Bursty { on_ms, .. } if on_ms.0 <= 0.0 => Err("on_ms must be above 0".into()),
            Arrival::Ramp { from_ms, until_ms, .. } if until_ms.0 <= from_ms.0 => {
                Err(format!("a ramp's `until_ms` ({} ms) must be after its `from_ms` ({} ms)", until_ms.0, from_ms.0))
            }
            Arrival::Spike { at_ms, until_ms, .. } if until_ms.0 <= at_ms.0 => {
                Err(format!("a spike's `until_ms` ({} ms) must be after its `at_ms` ({} ms)", until_ms.0, at_ms.0))
            }
            Arrival::Daily { .. } => self.check_daily(),
            _ => Ok(()),
        }
    }

    /// A daily cycle's relations: a peak at or above the trough, a period
    /// of at least a millisecond with the peak inside it.
    fn check_daily(&self) -> Result<(), String> {
        let Arrival::Daily { trough_rate_per_s: lo, peak_rate_per_s: hi, peak_at_ms, period_ms } = self else {
            return Ok(());
        };
        if hi.0 < lo.0 {
            return Err(format!(
                "a daily cycle's `peak_rate_per_s` ({}) must not be below its `trough_rate_per_s` ({})",
                hi.0, lo.0
            ));
        }
        if period_ms.0 < 1.0 {
            return Err(format!("a daily cycle's `period_ms` ({} ms) must be at least 1 ms", period_ms.0));
        }
        if peak_at_ms.0 >= period_ms.0 {
            return Err(format!(
                "a daily cycle's `peak_at_ms` ({} ms) must be within its period (`period_ms`, {} ms)",
                peak_at_ms.0, period_ms.0
            ));
        }
        Ok(())
    }

    /// A daily cycle's shape; `None` for the other processes.
    pub(crate) fn cycle(&self) -> Option<profile::Cycle> {
        match self {
            Arrival::Daily { trough_rate_per_s: lo, peak_rate_per_s: hi, peak_at_ms, period_ms } => {
                Some(profile::Cycle::new(lo.0, hi.0, peak_at_ms.0 / 1000.0, period_ms.0 / 1000.0))
            }
            _ => None,
        }
    }

    /// A rate profile's knots (time in seconds, rate); `None` for the
    /// other processes.
    pub(crate) fn knots(&self) -> Option<profile::Knots> {
        let s = |ms: &Millis| ms.0 / 1000.0;
        Some(match self {
            Arrival::Step { rate_per_s: r, to_rate_per_s: to, at_ms } => {
                profile::Knots::new(&[(0.0, r.0), (s(at_ms), r.0), (s(at_ms), to.0)])
            }
            Arrival::Ramp { rate_per_s: r, to_rate_per_s: to, from_ms, until_ms } => {
                profile::Knots::new(&[(0.0, r.0), (s(from_ms), r.0), (s(until_ms), to.0)])
            }
            Arrival::Spike { rate_per_s: r, spike_rate_per_s: x, at_ms, until_ms } => profile::Knots::new(&[
                (0.0, r.0),
                (s(at_ms), r.0),
                (s(at_ms), x.0),
                (s(until_ms), x.0),
                (s(until_ms), r.0),
            ]),
            _ => return None,
        })
    }

    /// Time from `now` to the next arrival. A Poisson process's gap is
    /// drawn inline; the other processes' in [`Arrival::next_gap_other`].
    #[inline(always)]
    pub fn next_gap(&self, now: Time, rng: &mut SimRng) -> Duration {
        match self {
            Arrival::Poisson { rate_per_s } => round_to_u64(exp_gap(rate_per_s.0, rng)).max(1),
            _ => self.next_gap_other(now, rng),
        }
    }

    /// [`Arrival::next_gap`] of every process (out of line).
    #[inline(never)]
    fn next_gap_other(&self, now: Time, rng: &mut SimRng) -> Duration {
        match self {
            Arrival::Step { .. } | Arrival::Ramp { .. } | Arrival::Spike { .. } | Arrival::Daily { .. } => {
                self.profile_gap(now, rng)
            }
            Arrival::Constant { rate_per_s } => round_to_u64(NS_PER_S as f64 / rate_per_s.0).max(1),
            Arrival::Poisson { rate_per_s } => round_to_u64(exp_gap(rate_per_s.0, rng)).max(1),
            Arrival::Bursty { on_rate_per_s, off_rate_per_s, on_ms, off_ms } => {
                let (on, off) = (ms_to_ns(on_ms.0), ms_to_ns(off_ms.0));
                let period = on + off;
                // The process is memoryless, so at each period boundary we
                // may draw afresh at the new rate.
                let mut t = now;
                for _ in 0..1_000_000 {
                    let pos = t % period;
                    let (rate, boundary) =
                        if pos < on { (on_rate_per_s.0, t - pos + on) } else { (off_rate_per_s.0, t - pos + period) };
                    if rate > 0.0 {
                        let next = t.saturating_add(round_to_u64(exp_gap(rate, rng)));
                        if next < boundary {
                            return (next - now).max(1);
                        }
                    }
                    t = boundary;
                }
                (t - now).max(1)
            }
        }
    }

    /// [`Arrival::next_gap`] of a rate profile (a step, ramp, spike or daily cycle).
    fn profile_gap(&self, now: Time, rng: &mut SimRng) -> Duration {
        if let Some(knots) = self.knots() {
            return knots.next_gap(now, rng);
        }
        let cycle = self.cycle().expect("a profile has knots or a cycle");
        cycle.next_gap(now, rng)
    }
}

/// An exponential gap in ns at `rate` per second, unrounded.
#[inline(always)]
fn exp_gap(rate: f64, rng: &mut SimRng) -> f64 {
    crate::dist::standard_exponential(rng) / rate * NS_PER_S as f64
}

/// Which keys messages carry. Order is judged within a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase", try_from = "KeysTable")]
pub enum Keys {
    /// Keys 0..count, equally likely.
    Uniform {
        /// How many distinct keys.
        count: u64,
    },
    /// Keys 0..count with zipf popularity: key 0 is the hottest.
    Zipf {
        /// How many distinct keys.
        count: u64,
        /// Skew: larger means a few keys get most messages.
        exponent: Positive,
    },
}

/// A `keys` table as written (see the `tagged` module).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysTable {
    distribution: KeysKind,
    count: Option<u64>,
    exponent: Option<Positive>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum KeysKind {
    Uniform,
    Zipf,
}

impl TryFrom<KeysTable> for Keys {
    type Error = String;

    fn try_from(t: KeysTable) -> Result<Self, String> {
        use crate::tagged::{need, only, present};
        let p = present!(t, count, exponent);
        Ok(match t.distribution {
            KeysKind::Uniform => {
                let w = "a uniform `distribution`";
                only(&p, &["count"], w)?;
                Keys::Uniform { count: need(t.count, "count", w)? }
            }
            KeysKind::Zipf => {
                let w = "a zipf `distribution`";
                only(&p, &["count", "exponent"], w)?;
                Keys::Zipf { count: need(t.count, "count", w)?, exponent: need(t.exponent, "exponent", w)? }
            }
        })
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::Uniform { count: 1 }
    }
}

impl Keys {
    /// The number of distinct keys.
    pub fn count(&self) -> u64 {
        match self {
            Keys::Uniform { count } | Keys::Zipf { count, .. } => *count,
        }
    }
}

/// Draws keys as a [`Keys`] distribution says.
pub enum KeyGen {
    /// Always key 0.
    One,
    /// Keys 0..n, equally likely.
    Uniform(u64),
    /// Cumulative zipf weights of keys 0..count (exact, by table).
    Zipf(Vec<f64>),
}

impl KeyGen {
    /// A generator for `keys`.
    pub fn new(keys: &Keys) -> Self {
        match keys {
            Keys::Uniform { count } if *count <= 1 => KeyGen::One,
            Keys::Uniform { count } => KeyGen::Uniform(*count),
            Keys::Zipf { count, exponent } => {
                let mut total = 0.0;
                let cdf = (1..=*count.max(&1))
                    .map(|k| {
                        total += libm::pow(k as f64, -exponent.0);
                        total
                    })
                    .collect();
                KeyGen::Zipf(cdf)
            }
        }
    }

    /// Draws one key.
    #[inline]
    pub fn draw(&self, rng: &mut SimRng) -> u64 {
        match self {
            KeyGen::One => 0,
            KeyGen::Uniform(n) => ((unit(rng) * *n as f64) as u64).min(n - 1),
            KeyGen::Zipf(cdf) => {
                let u = unit(rng) * cdf.last().copied().unwrap_or(0.0);
                (cdf.partition_point(|&c| c <= u) as u64).min(cdf.len() as u64 - 1)
            }
        }
    }
}

/// Whether a producer waits for the broker's ack. Written as a string
/// (`"none"`, `"broker"`, `"leader"`, `"all"`, `"0"`, `"1"`) or as Kafka's
/// numbers `0` and `1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "AckValue")]
pub enum AckMode {
    /// Fire-and-forget: the message counts as sent the moment it leaves
    /// (`acks=0` for a log).
    #[default]
    None,
    /// Wait for the broker's ack; only then does it count as sent (for a
    /// log broker: the same as `all`).
    Broker,
    /// Log brokers: wait until the partition's leader has appended it
    /// (`acks=1`).
    Leader,
    /// Log brokers: wait until every in-sync replica has it (`acks=all`).
    All,
}

/// `acks` as written: a string, or Kafka's 0 and 1.
#[derive(Deserialize)]
#[serde(untagged)]
enum AckValue {
    Number(i64),
    Text(String),
}

impl TryFrom<AckValue> for AckMode {
    type Error = String;

    fn try_from(v: AckValue) -> Result<Self, String> {
        Ok(match v {
            AckValue::Number(0) => AckMode::None,
            AckValue::Number(1) => AckMode::Leader,
            AckValue::Text(t) => match t.as_str() {
                "none" | "0" => AckMode::None,
                "broker" => AckMode::Broker,
                "leader" | "1" => AckMode::Leader,
                "all" | "-1" => AckMode::All,
                _ => {
                    return Err(format!(
                        "unknown acks `{t}`: expected \"none\", \"broker\", \"leader\", \"all\", 0 or 1"
                    ))
                }
            },
            AckValue::Number(n) => return Err(format!("acks = {n}: expected 0, 1, \"all\" (or \"none\", \"broker\")")),
        })
    }
}

/// The workload of a message source: when messages come (its arrival
/// process), which keys they carry, and how many it makes. Producers and
/// request/response clients share it. Its progress is durable (a restarted
/// source resumes its count, not its workload from scratch); the pending
/// arrival timer dies with a crash.
pub(crate) struct Workload<T> {
    arrival: Arrival,
    keys: KeyGen,
    limit: Option<u64>,
    produced: u64,
    done: bool,
    /// The arrival timer is pending.
    armed: bool,
    tag: T,
}

impl<T: Timer> Workload<T> {
    /// A workload whose arrival timer is `tag`.
    pub(crate) fn new(arrival: &Arrival, keys: &Keys, limit: Option<u64>, tag: T) -> Self {
        Workload {
            arrival: arrival.clone(),
            keys: KeyGen::new(keys),
            limit,
            produced: 0,
            done: false,
            armed: false,
            tag,
        }
    }

    /// At a start or restart: arms the next arrival, unless all is made or
    /// the run phase is over. A source asked for no messages at all (a
    /// variant switching it off) is done at once.
    pub(crate) fn start(&mut self, ctx: &mut Ctx<T>) {
        if !self.done && self.limit == Some(0) {
            self.done = true;
            ctx.producer_done();
        }
        if !self.done && !ctx.draining() {
            self.schedule(ctx);
        }
    }

    /// Inlined: the next arrival's draw and timer are on every message's path.
    #[inline(always)]
    fn schedule(&mut self, ctx: &mut Ctx<T>) {
        let gap = self.arrival.next_gap(ctx.now(), ctx.rng());
        ctx.set_timer(gap, self.tag);
        self.armed = true;
    }

    /// The arrival timer fired: the key of the message to make now, if one
    /// is due. Call [`Workload::made`] once it is made.
    pub(crate) fn arrive(&mut self, ctx: &mut Ctx<T>) -> Option<u64> {
        self.armed = false;
        if self.done || ctx.draining() {
            return None;
        }
        // One key is the common case: no call, no draw.
        Some(if let KeyGen::One = self.keys { 0 } else { self.keys.draw(ctx.rng()) })
    }

    /// Counts a message made; arms the next arrival, or reports the source
    /// done once it has made its count. Inlined, as [`Workload::schedule`]
    /// is: once per message.
    #[inline(always)]
    pub(crate) fn made(&mut self, ctx: &mut Ctx<T>) {
        self.produced += 1;
        if self.limit.is_some_and(|n| self.produced >= n) {
            self.done = true;
            ctx.producer_done();
        } else {
            self.schedule(ctx);
        }
    }

    /// The run phase is over: no more arrivals.
    pub(crate) fn drain(&mut self, ctx: &mut Ctx<T>) {
        if std::mem::take(&mut self.armed) {
            ctx.cancel_timer(self.tag);
        }
    }

    /// A crash cancelled the arrival timer.
    pub(crate) fn crash(&mut self) {
        self.armed = false;
    }
}

/// A producer's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerTimer {
    /// The next message is due.
    Arrival,
    /// The earliest ack deadline has come.
    AckTimeout,
    /// The earliest retry backoff has passed.
    Retry,
    /// The earliest batch's linger has passed (log producers).
    Linger,
    /// A lookup of where partitions lead is due or overdue (in a cluster).
    Routes,
    /// The rate limit's next token is due.
    Token,
    /// The oldest caller blocked on a full buffer reaches `max_block_ms`.
    Unblock,
}

impl Timer for ProducerTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        use ProducerTimer::{AckTimeout, Arrival, Linger, Retry, Routes, Token, Unblock};
        [Arrival, AckTimeout, Retry, Linger, Routes, Token, Unblock].get(word as usize).copied()
    }
}

/// The records of a request: one (a queue's publish: no allocation per
/// message on the queue path), or a log producer's batch.
enum Recs {
    One(Record),
    Batch(Box<[Record]>),
}

impl Recs {
    fn all(&self) -> &[Record] {
        match self {
            Recs::One(r) => std::slice::from_ref(r),
            Recs::Batch(b) => b,
        }
    }
}

/// A batch sent until acked (its attempts are kept by [`UntilAcked`],
/// under the id of its first record).
struct Outstanding {
    /// The records, in order (one for a queue).
    recs: Recs,
    /// The partition (0 for a queue).
    partition: u32,
    /// The idempotent session of the partition, given at the first send.
    epoch: u32,
    /// The idempotent sequence number of the first record, given at the
    /// first send.
    seq: u64,
    /// The request it went in (see [`Requests`]).
    request: u64,
    /// Its attempts up to this one carried numbers given before the
    /// partition's last reset (see [`sequence`]).
    renumbered_at: u32,
}

/// Kafka's `max.request.size` (1 MiB): the most bytes of batches one
/// produce request carries (a single larger batch still goes alone).
const MAX_REQUEST_BYTES: u64 = 1 << 20;

/// A running producer.
pub struct Producer {
    target: NodeId,
    workload: Workload<ProducerTimer>,
    settings: Settings,
    /// Set when the target is a log broker.
    log: Option<LogTarget>,
    acks: Acks,
    round_robin: bool,
    next_partition: u32,
    // Durable: the workload's progress, and the idempotent sessions per
    // partition (a restart is a new session everywhere, a batch given up a
    // new session of its partition: epoch + 1, sequence from 0).
    epochs: Vec<u32>,
    /// Next idempotent sequence number, per partition (one for a queue).
    next_seq: Vec<u64>,
    // Volatile.
    /// Sent, awaiting an ack or a retry, with their attempts (the delivery
    /// timeout counts from the batch's first record).
    outstanding: UntilAcked<Outstanding, ProducerTimer>,
    /// The requests in flight, which `max_in_flight` limits.
    requests: Requests,
    /// The batches of the request being sent (kept to reuse its memory).
    ready: Vec<(u32, Recs, Time)>,
    /// Produced, not yet sent (log): batches filling, lingering, or
    /// waiting for a free in-flight slot.
    acc: Accumulator,
    /// Produced, not yet sent (queue, with acks): waiting for a free
    /// in-flight slot, with when each was made.
    single: VecDeque<(Record, Time)>,
    /// When each partition's lingering batch may leave.
    lingers: Deadlines,
    /// Draws record sizes when `message_bytes` is a distribution, from a
    /// stream of its own (made at the first draw).
    sizes: Option<(SizeSampler, Option<SimRng>)>,
    /// Set when the target is a cluster: where partitions lead.
    cluster: Option<Box<cluster::ClusterSend>>,
    /// A queue producer's publisher-confirm channel (volatile).
    confirm: ConfirmChannel,
    /// Queue producers: each message's own TTL, in ms (`expiration`), or
    /// `NO_EXPIRATION`.
    expiration: u32,
    /// The queue broker's numbers of its routes (exchange and routing
    /// key), one per routing key; a record takes the one its key picks.
    /// Empty: the broker's implicit route.
    routes: Vec<u16>,
    /// A click source: when each event happened (see [`crate::stream`]).
    clicks: Option<crate::stream::Clicks>,
    /// With a `writes` table: each message is a write its user is told of
    /// as it is made (see [`writes`]).
    writes: Option<WriteHook>,
    /// Its message schema's versions (see [`crate::contract`]).
    schema: Option<crate::contract::WriterSchema>,
    /// Back-pressure: messages held back by a rate limit or a full buffer
    /// (see [`pressure`]).
    pressure: pressure::Pressure,
    /// Set at start when [`Producer::is_plain`]: each arrival takes
    /// [`Producer::produce_plain`], with none of the checks of options
    /// that never change during a run.
    plain: bool,
}

/// The route a queue publish of `rec` takes: its key picks one of `routes`.
fn route_of(routes: &[u16], rec: Record) -> u16 {
    if routes.is_empty() {
        0
    } else {
        routes[(rec.key() % routes.len() as u64) as usize]
    }
}

impl Producer {
    /// A producer sending to `target` as `spec` says; `log` when the
    /// target is a log broker.
    pub fn new(spec: &ProducerSpec, target: NodeId, log: Option<LogTarget>) -> Self {
        let s = Settings::of(spec, log.is_some());
        let policy = RetryPolicy {
            ack_timeout_ns: s.ack_timeout_ns,
            retries: s.retries,
            backoff_ns: s.backoff_ns,
            delivery_timeout_ns: s.delivery_timeout_ns,
            // A resend with no backoff still waits for the retry timer.
            zero_delay_at_once: false,
        };
        let partitions = log.map_or(1, |l| l.partitions.max(1) as usize);
        Producer {
            target,
            workload: Workload::new(&spec.arrival, &spec.keys, spec.messages, ProducerTimer::Arrival),
            acks: match s.acks {
                AckMode::None => Acks::None,
                AckMode::Leader => Acks::Leader,
                AckMode::Broker | AckMode::All => Acks::All,
            },
            acc: Accumulator::new(partitions, s.batch_bytes, s.batch_records, s.linger_ns),
            settings: s,
            log,
            round_robin: spec.partitioner == Partitioner::RoundRobin,
            next_partition: 0,
            epochs: vec![0; partitions],
            next_seq: vec![0; partitions],
            outstanding: UntilAcked::new(policy, ProducerTimer::AckTimeout, ProducerTimer::Retry),
            requests: Requests::default(),
            ready: Vec::new(),
            lingers: Deadlines::default(),
            single: VecDeque::new(),
            sizes: spec.message_bytes.as_ref().and_then(|m| m.sampler()).map(|s| (s, None)),
            cluster: None,
            confirm: ConfirmChannel::default(),
            // Whole milliseconds within u32: validation checked it.
            expiration: spec.message_ttl_ms.map_or(crate::protocol::NO_EXPIRATION, |t| t.0 as u32),
            routes: Vec::new(),
            clicks: None,
            writes: None,
            schema: crate::contract::WriterSchema::new(spec.schema_upgrade_at_ms, spec.schema_change),
            pressure: pressure::Pressure::new(
                spec.rate_limit.as_ref().map(|r| (r.rate_per_s.0, r.burst)),
                spec.buffer_messages,
                ms_to_ns(spec.max_block_ms.map_or(kind::DEFAULT_MAX_BLOCK_MS, |m| m.0)),
            ),
            plain: false,
        }
    }

    /// A fire-and-forget queue producer of fixed-size records with no rate
    /// limit, no clicks, no writes and no schema: what a message does on
    /// [`Producer::produce_one`]'s general path is then fixed for the run.
    fn is_plain(&self) -> bool {
        let hooks = self.clicks.is_none() && self.writes.is_none() && self.schema.is_none();
        self.log.is_none() && !self.settings.wait_ack() && self.sizes.is_none() && self.pressure.unlimited() && hooks
    }

    /// Makes it a click source (see [`crate::stream::Clicks`]).
    pub fn with_clicks(mut self, clicks: Option<crate::stream::Clicks>) -> Self {
        self.clicks = clicks;
        self
    }

    /// Makes each message a write, as `hook` says (see [`writes`]).
    pub fn with_writes(mut self, hook: Option<WriteHook>) -> Self {
        self.writes = hook;
        self
    }

    /// Publishes with the broker's numbers `routes` of its routing keys
    /// (see [`PublishRoutes`](crate::broker::PublishRoutes)).
    pub fn with_routes(mut self, routes: Vec<u16>) -> Self {
        self.routes = routes;
        self
    }

    /// Sends the next attempt of the batch `key`.
    fn send(&mut self, ctx: &mut Ctx<ProducerTimer>, key: MsgId) {
        let Some(target) = self.route_of(key) else { return };
        let (log, acks, persistent, expiration) = (self.log, self.acks, self.settings.persistent, self.expiration);
        let (confirm, routes) = (&mut self.confirm, &self.routes);
        self.outstanding.send(ctx, key, |ctx, o, attempt| {
            if attempt > 1 {
                o.recs.all().iter().for_each(|r| ctx.resent(r.id, crate::ledger::DupCause::ProducerRetry));
            }
            let (epoch, seq, partition) = (o.epoch, o.seq, o.partition);
            let msg = match log {
                Some(l) => {
                    let recs = o.recs.all().into();
                    Msg::Log(LogMsg::Produce { recs, acks, attempt, epoch, seq, topic: l.topic, partition })
                }
                None => {
                    let (channel, tag) = confirm.publish(key, attempt);
                    // A channel's tags stay far below 2^32 within a run's event budget.
                    let tag = u32::try_from(tag).unwrap_or(u32::MAX);
                    let rec = o.recs.all()[0];
                    let route = route_of(routes, rec);
                    Msg::Queue(QueueMsg::Publish {
                        rec,
                        want_ack: true,
                        attempt,
                        channel,
                        tag,
                        persistent,
                        route,
                        expiration,
                    })
                }
            };
            ctx.send(target, msg);
        });
    }

    /// The attempt in progress failed (timeout or refusal): retry or give up.
    fn attempt_failed(&mut self, ctx: &mut Ctx<ProducerTimer>, key: MsgId) {
        match self.outstanding.failed(ctx, key, false) {
            Some(Failed::GaveUp { payload, out_of_time }) => {
                self.requests.batch_done(payload.request);
                if out_of_time {
                    payload.recs.all().iter().for_each(|_| ctx.error("delivery-timeout"));
                }
                if self.settings.idempotent && self.log.is_some() {
                    self.bump_epoch(ctx, payload.partition);
                }
                self.fill_in_flight(ctx);
            }
            Some(Failed::SendNow) => self.send(ctx, key),
            Some(Failed::Backoff) | None => {}
        }
    }

    /// An idempotent producer gave a batch of `partition` up: its numbers
    /// would leave a gap the broker waits on forever, so the partition
    /// starts a new session (Kafka's epoch bump), from sequence 0. The
    /// batches of the partition sent after it fail with it (they are
    /// numbered past the gap); batches not yet sent are numbered in the new
    /// session.
    fn bump_epoch(&mut self, ctx: &mut Ctx<ProducerTimer>, partition: u32) {
        let p = partition as usize;
        self.epochs[p] += 1;
        self.next_seq[p] = 0;
        ctx.metric_add("epoch_bumps", 1.0);
        let later: Vec<MsgId> =
            self.outstanding.iter().filter(|(_, o)| o.partition == partition).map(|(k, _)| k).collect();
        for key in later {
            let o = self.outstanding.remove(key).expect("just listed");
            self.requests.batch_done(o.request);
            o.recs.all().iter().for_each(|_| ctx.error("out-of-order-sequence"));
        }
    }

    /// Sends ready batches while in-flight slots are free (fire-and-forget:
    /// every ready batch), a request at a time; a batch whose delivery
    /// timeout has passed is given up unsent.
    fn fill_in_flight(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        let now = ctx.now();
        self.unblock();
        // A buffer kept between calls: no allocation per request.
        let mut batches = std::mem::take(&mut self.ready);
        while !self.settings.wait_ack() || self.cluster.is_some() || self.requests.len() < self.settings.max_in_flight {
            batches.clear();
            let node = self.next_request(now, &mut batches);
            if batches.is_empty() {
                break;
            }
            if !self.settings.wait_ack() {
                batches.drain(..).for_each(|(partition, recs, _)| self.send_and_forget(ctx, node, partition, recs));
                continue;
            }
            let policy = self.outstanding.policy();
            batches.retain(|(_, recs, opened_at)| {
                let expired = policy.expired(now, *opened_at);
                if expired {
                    recs.all().iter().for_each(|_| ctx.error("delivery-timeout"));
                }
                !expired
            });
            if batches.is_empty() {
                continue;
            }
            let request = self.requests.open(batches.len() as u32, node);
            for (partition, recs, opened_at) in batches.drain(..) {
                self.send_first(ctx, partition, recs, opened_at, request);
            }
        }
        self.ready = batches;
        self.want_leaders();
    }

    /// Numbers a batch of `partition` in its idempotent session, keeps it
    /// until acked as part of `request`, and sends it.
    fn send_first(&mut self, ctx: &mut Ctx<ProducerTimer>, partition: u32, recs: Recs, opened_at: Time, request: u64) {
        let p = partition as usize;
        let (seq, n) = (self.next_seq[p], recs.all().len() as u64);
        self.next_seq[p] += n;
        let epoch = if self.settings.idempotent { self.epochs[p] } else { 0 };
        let key = recs.all()[0].id;
        self.outstanding.insert(key, Outstanding { recs, partition, epoch, seq, request, renumbered_at: 0 }, opened_at);
        self.send(ctx, key);
    }

    /// Appends to `out` the batches of the next request that may leave at
    /// `now`: each with its partition, records, and when its first record
    /// was made; returns the node it goes to. A queue publish is a request
    /// of one record.
    fn next_request(&mut self, now: Time, out: &mut Vec<(u32, Recs, Time)>) -> NodeId {
        if self.log.is_none() {
            out.extend(self.single.pop_front().map(|(rec, at)| (0, Recs::One(rec), at)));
            return self.target;
        }
        let (batches, node) = if let (Some(c), Some(log)) = (self.cluster.as_deref(), self.log) {
            let (requests, settings) = (&self.requests, &self.settings);
            if !cluster::any_request_slot(c, requests, settings) {
                return self.target; // no broker takes a request: none can go
            }
            let held = self.held_behind_retries();
            let router = cluster::request_router(c, log.topic, requests, settings);
            // A partition whose batch awaits a retry sends nothing new.
            let route = |p: u32| if held.get(p as usize).copied().unwrap_or(false) { None } else { router(p) };
            let batches = self.acc.drain_by(now, MAX_REQUEST_BYTES, route);
            let node = batches.first().and_then(|&(p, _)| route(p)).map_or(self.target, |n| n as NodeId);
            (batches, node)
        } else {
            (self.acc.drain(now, MAX_REQUEST_BYTES), self.target)
        };
        out.extend(batches.into_iter().map(|(p, b)| (p, Recs::Batch(b.recs.into_boxed_slice()), b.opened_at)));
        node
    }

    /// Sends a batch with no ack wanted (each record counted sent when made).
    fn send_and_forget(&mut self, ctx: &mut Ctx<ProducerTimer>, to: NodeId, partition: u32, recs: Recs) {
        let msg = match (self.log, recs) {
            (Some(l), recs) => Msg::Log(LogMsg::Produce {
                recs: match recs {
                    Recs::One(r) => Box::new([r]),
                    Recs::Batch(b) => b,
                },
                acks: Acks::None,
                attempt: 1,
                epoch: 0,
                seq: 0,
                topic: l.topic,
                partition,
            }),
            (None, recs) => return self.publish_and_forget(ctx, to, recs.all()[0]),
        };
        ctx.send(to, msg);
    }

    /// Publishes `rec` to queue broker `to` with no ack wanted. Always
    /// inlined: out of line, the record (written field by field by its
    /// maker) went through memory and was read back as one 16-byte load,
    /// which waits for the stores to retire (a failed store forward).
    #[inline(always)]
    fn publish_and_forget(&mut self, ctx: &mut Ctx<ProducerTimer>, to: NodeId, rec: Record) {
        let (persistent, expiration) = (self.settings.persistent, self.expiration);
        let route = route_of(&self.routes, rec);
        let (want_ack, attempt, channel, tag) = (false, 1, 0, 0);
        ctx.send(to, QueueMsg::Publish { rec, want_ack, attempt, channel, tag, persistent, route, expiration });
    }

    /// The size of the next record: fixed (no draw), or drawn from the
    /// size stream beside the producer's own.
    fn record_bytes(&mut self, ctx: &mut Ctx<ProducerTimer>) -> u32 {
        match &mut self.sizes {
            None => self.settings.message_bytes as u32,
            Some((sampler, rng)) => {
                let rng = rng.get_or_insert_with(|| side_stream(ctx.rng(), "message-size"));
                sampler.draw(rng)
            }
        }
    }

    /// The partition a record with `key` goes to (0 for a queue).
    fn partition_of(&mut self, key: u64) -> u32 {
        let Some(l) = self.log else { return 0 };
        if self.round_robin {
            let p = self.next_partition % l.partitions.max(1);
            self.next_partition = self.next_partition.wrapping_add(1);
            p
        } else {
            crate::broker::key_partition(key, l.partitions as usize) as u32
        }
    }

    /// [`Producer::produce_one`] of a plain producer (see
    /// [`Producer::is_plain`]), step for step what the general path does
    /// there: produced fire-and-forget, no hook, the fixed size, past a
    /// limit that holds nothing back, its send latency 0 (sent as it is
    /// made), published at once.
    #[inline(always)]
    fn produce_plain(&mut self, ctx: &mut Ctx<ProducerTimer>, key: u64) {
        let id = ctx.produce(key, true);
        let rec = Record::sized(id, key, self.settings.message_bytes as u32);
        ctx.timing(crate::engine::Timing::Send, 0);
        self.publish_and_forget(ctx, self.target, rec);
    }

    fn produce_one(&mut self, ctx: &mut Ctx<ProducerTimer>, key: u64) {
        let id = ctx.produce(key, !self.settings.wait_ack());
        if let Some(c) = &self.clicks {
            c.happened(ctx, id, key);
        }
        if let Some(w) = &mut self.writes {
            w.made(ctx, key, id);
        }
        if let Some(s) = &self.schema {
            s.stamp(ctx, id);
        }
        let rec = Record::sized(id, key, self.record_bytes(ctx));
        if !self.pressure.pass_limit(ctx.now(), rec) {
            self.arm_token(ctx);
            return;
        }
        self.release(ctx, rec, ctx.now());
    }

    /// Sends (or buffers) `rec`, made at `made`, past the rate limit. A
    /// fire-and-forget queue producer publishes it here, inline; the other
    /// producers go on in [`Producer::release_held`].
    #[inline(always)]
    fn release(&mut self, ctx: &mut Ctx<ProducerTimer>, rec: Record, made: Time) {
        if self.log.is_none() && !self.settings.wait_ack() {
            ctx.timing(crate::engine::Timing::Send, ctx.now() - made);
            self.publish_and_forget(ctx, self.target, rec);
        } else {
            self.release_held(ctx, rec, made);
        }
    }

    /// [`Producer::release`] of a producer that waits for acks, or batches.
    #[inline(never)]
    fn release_held(&mut self, ctx: &mut Ctx<ProducerTimer>, rec: Record, made: Time) {
        if self.log.is_none() {
            // A queue producer sends each message alone.
            if self.pressure.must_block(self.single.len() + self.outstanding.len()) {
                if let Some(delay) = self.pressure.block(ctx.now(), rec, made) {
                    ctx.set_timer(delay, ProducerTimer::Unblock);
                }
            } else {
                self.single.push_back((rec, made));
                self.fill_in_flight(ctx);
            }
            return;
        }
        let partition = self.partition_of(rec.key());
        if let Some(at) = self.acc.add(ctx.now(), partition, rec, u64::from(rec.bytes)) {
            self.lingers.add(ctx, at, u64::from(partition), ProducerTimer::Linger);
        }
        self.fill_in_flight(ctx);
    }

    /// Arms the rate limit's token timer, if messages wait for a token.
    fn arm_token(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        if let Some(delay) = self.pressure.token_due(ctx.now()) {
            ctx.set_timer(delay, ProducerTimer::Token);
        }
    }

    /// The rate limit's token timer fired: what got a token goes on.
    fn on_token(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        self.pressure.token_armed = false;
        for (rec, made) in self.pressure.released(ctx.now()) {
            self.release(ctx, rec, made);
        }
        self.arm_token(ctx);
    }

    /// Callers blocked on a full buffer go on while there is room.
    fn unblock(&mut self) {
        let room = self.pressure.room(self.single.len() + self.outstanding.len());
        for (rec, made, _) in self.pressure.blocked.drain(..room) {
            self.single.push_back((rec, made));
        }
    }

    /// The oldest blocked caller's deadline came: those past it fail.
    fn on_unblock(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        self.pressure.block_armed = false;
        for _ in self.pressure.give_up(ctx.now()) {
            ctx.error("buffer-full");
        }
        if let Some(delay) = self.pressure.arm_block(ctx.now()) {
            ctx.set_timer(delay, ProducerTimer::Unblock);
        }
    }

    /// In the drain, with nothing awaiting an ack or a retry, the timeout
    /// timers guard nothing and would only keep the run waiting.
    #[inline(always)]
    fn settle_timers(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        if ctx.draining() {
            self.settle_timers_in_drain(ctx);
        }
    }

    /// [`Producer::settle_timers`] once draining (off the hot path).
    #[cold]
    #[inline(never)]
    fn settle_timers_in_drain(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        let idle = self.acc.is_empty() && self.single.is_empty() && self.pressure.is_empty();
        if self.outstanding.is_empty() && idle {
            self.outstanding.cancel_timers(ctx);
            self.lingers.cancel_all(ctx, ProducerTimer::Linger);
            if self.routes_idle() {
                self.cancel_routes(ctx);
            }
        }
    }

    /// A produce ack (or refusal, with its `error`) for the batch whose
    /// first record is `key`.
    fn on_ack(&mut self, ctx: &mut Ctx<ProducerTimer>, key: MsgId, accepted: bool, attempt: u32, error: ProduceError) {
        if accepted {
            // Any attempt that got through is enough; only an ack for a
            // send still awaited makes its records count as sent.
            let made = self.outstanding.made_at(key).filter(|_| self.log.is_none());
            if let Some(o) = self.outstanding.remove(key) {
                if let Some(made) = made {
                    // A queue publish is one message, made when its entry was.
                    ctx.timing(crate::engine::Timing::Send, ctx.now() - made);
                }
                self.requests.batch_done(o.request);
                o.recs.all().iter().for_each(|r| ctx.confirm_sent(r.id));
                self.fill_in_flight(ctx);
            }
            return;
        }
        if error == ProduceError::OutOfOrderSequence {
            self.out_of_order(ctx, key, attempt);
        }
        if !self.refused_in_cluster(ctx, key, attempt, error) {
            // A refusal of the attempt in progress (not a late one for an
            // earlier attempt): it fails at its deadline, so that time
            // passes before the resend even on a zero-latency link.
            self.outstanding.refused(key, attempt);
        }
    }

    /// A publish confirm (or nack) of message `id`, attempt `attempt`: of
    /// its delivery `tag` alone, or of every tag up to it (`multiple`); an
    /// unnumbered publish's (tag 0) answers that attempt only.
    fn on_confirm(
        &mut self,
        ctx: &mut Ctx<ProducerTimer>,
        id: MsgId,
        ok: bool,
        attempt: u32,
        tag: u64,
        multiple: bool,
    ) {
        if tag == 0 {
            self.confirm.forget(id);
            return self.on_ack(ctx, id, ok, attempt, ProduceError::None);
        }
        for (key, attempt) in self.confirm.settle(id, tag, multiple) {
            self.on_ack(ctx, key, ok, attempt, ProduceError::None);
        }
    }

    /// The timers other than an arrival (out of line: rare on the hot path).
    #[inline(never)]
    fn on_other_timer(&mut self, ctx: &mut Ctx<ProducerTimer>, timer: ProducerTimer) {
        match timer {
            ProducerTimer::Arrival => {}
            ProducerTimer::AckTimeout => {
                for key in self.outstanding.timed_out(ctx) {
                    // A refused attempt counts only as the broker's refusal.
                    if !self.outstanding.is_refused(key) {
                        ctx.error("ack-timeout");
                        self.ack_timed_out();
                    }
                    self.attempt_failed(ctx, key);
                }
            }
            ProducerTimer::Retry => {
                for key in self.outstanding.due(ctx) {
                    self.send(ctx, key);
                }
            }
            ProducerTimer::Linger => {
                self.lingers.expire(ctx, ProducerTimer::Linger, |_, _| true);
                self.fill_in_flight(ctx);
            }
            ProducerTimer::Routes => self.routes_due(ctx),
            ProducerTimer::Token => self.on_token(ctx),
            ProducerTimer::Unblock => self.on_unblock(ctx),
        }
    }
}

impl Component for Producer {
    type Timer = ProducerTimer;

    fn start(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        self.plain = self.is_plain();
        // A (re)start is a new idempotent session.
        self.epochs.iter_mut().for_each(|e| *e += 1);
        self.next_seq.iter_mut().for_each(|s| *s = 0);
        self.confirm.open();
        self.workload.start(ctx);
        self.poll_routes(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<ProducerTimer>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Queue(QueueMsg::PublishAck { id, accepted, attempt, tag, multiple, .. }) => {
                self.on_confirm(ctx, id, accepted, attempt, tag, multiple);
            }
            // The broker's connection closed (it crashed): reopen the channel.
            Msg::Notice(Notice::PeerDown) if self.log.is_none() && from == self.target => self.confirm.open(),
            Msg::Log(LogMsg::ProduceAck { ids, accepted, attempt, error }) => {
                if let Some(&key) = ids.first() {
                    self.on_ack(ctx, key, accepted, attempt, error);
                }
            }
            Msg::Cluster(ClusterMsg::Leaders { topic, leaders }) => self.on_leaders(ctx, topic, &leaders),
            _ => {}
        }
        self.poll_routes(ctx);
        self.settle_timers(ctx);
    }

    // Inlined into the engine's handler shim, as the queue broker's.
    #[inline]
    fn on_timer(&mut self, ctx: &mut Ctx<ProducerTimer>, timer: ProducerTimer) {
        if timer == ProducerTimer::Arrival {
            // The common event, kept apart from the others' code.
            let Some(key) = self.workload.arrive(ctx) else { return };
            let plain = self.plain;
            if plain {
                self.produce_plain(ctx, key);
            } else {
                self.produce_one(ctx, key);
            }
            self.workload.made(ctx);
            if plain {
                // Nothing to poll or settle: a plain producer is in no
                // cluster, and an arrival that made a message is not in the
                // drain (the phase changes only between events).
                return;
            }
        } else {
            self.on_other_timer(ctx, timer);
        }
        self.poll_routes(ctx);
        self.settle_timers(ctx);
    }

    fn drain(&mut self, ctx: &mut Ctx<ProducerTimer>) {
        // No more production.
        self.workload.drain(ctx);
        self.settle_timers(ctx);
    }

    fn crash(&mut self) {
        self.workload.crash();
        self.outstanding.crash(|_, _| false);
        self.requests.clear();
        self.acc.clear();
        self.single.clear();
        self.lingers.clear();
        self.crash_routes();
        self.pressure.crash();
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        // Messages waiting to be sent, for an ack or for a retry are still the producer's.
        out.extend(self.outstanding.iter().flat_map(|(_, o)| o.recs.all().iter().map(|r| r.id)));
        out.extend(self.acc.records().map(|r| r.id));
        out.extend(self.single.iter().map(|(r, _)| r.id));
        out.extend(self.pressure.ids());
    }

    fn memory_bytes(&self) -> usize {
        // What grows with a backlog held in the producer.
        self.single.capacity() * std::mem::size_of::<(Record, Time)>() + self.pressure.memory_bytes()
    }

    fn is_producer(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[path = "producer_tests.rs"]
mod tests;

#[cfg(test)]
mod plain_tests;

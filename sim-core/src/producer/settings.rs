//! A producer's settings as it runs them: the fields of its table with the
//! defaults of its target filled in, and idempotence decided.
//!
//! A producer to a log broker takes Kafka's producer defaults (3.x/4.x):
//! `acks = "all"`, idempotence on (since 3.0), 5 requests in flight
//! (`max.in.flight.requests.per.connection`), retries until the 120 s
//! delivery timeout (`delivery.timeout.ms`), a 30 s request timeout
//! (`request.timeout.ms`, our `ack_timeout_ms`), a 100 ms retry backoff
//! (`retry.backoff.ms`), 16,384-byte batches (`batch.size`) and a 5 ms
//! linger (`linger.ms`, Kafka 4.0's default; 0 before). Idempotence that
//! is on only by default turns itself off when another setting conflicts
//! with it (acks not all, more than 5 in flight, no retries), as Kafka's
//! does since 3.2 (KAFKA-13598); set explicitly, the conflict is an error
//! (see `kind.rs`). A producer to a queue broker keeps asyncsim's earlier
//! defaults (fire-and-forget, a 1 s ack timeout, no retries, no in-flight
//! limit) and sends each message alone.

use super::{AckMode, ProducerSpec};
use crate::size::MessageBytes;
use crate::time::{ms_to_ns, Duration};

/// Kafka's limit of requests in flight for an idempotent producer.
pub const IDEMPOTENT_MAX_IN_FLIGHT: u32 = 5;
/// Kafka's `batch.size`, bytes.
pub const DEFAULT_BATCH_BYTES: u64 = 16_384;
/// The size of a record unless `message_bytes` says otherwise.
pub const DEFAULT_MESSAGE_BYTES: u32 = crate::protocol::DEFAULT_RECORD_BYTES;
/// Kafka 4.0's `linger.ms`.
pub const DEFAULT_LINGER_MS: f64 = 5.0;
/// Kafka's `request.timeout.ms`.
pub const LOG_ACK_TIMEOUT_MS: f64 = 30_000.0;
/// Kafka's `delivery.timeout.ms`.
pub const LOG_DELIVERY_TIMEOUT_MS: f64 = 120_000.0;
/// Kafka's `retry.backoff.ms`.
pub const LOG_RETRY_BACKOFF_MS: f64 = 100.0;
/// The ack timeout of a producer to a queue broker.
pub const QUEUE_ACK_TIMEOUT_MS: f64 = 1_000.0;

/// The settings a producer runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// What it waits for.
    pub acks: AckMode,
    /// Numbered sends, appended once and in order.
    pub idempotent: bool,
    /// Most requests awaiting an ack (or a retry) at once.
    pub max_in_flight: usize,
    /// Resends after a failed attempt (`u32::MAX`: until the delivery timeout).
    pub retries: u32,
    /// How long an attempt waits for its ack.
    pub ack_timeout_ns: Duration,
    /// Pause before a resend.
    pub backoff_ns: Duration,
    /// Longest time a batch is tried, from its first record.
    pub delivery_timeout_ns: Option<Duration>,
    /// A batch is full at this many bytes.
    pub batch_bytes: u64,
    /// A batch is full at this many records.
    pub batch_records: usize,
    /// How long a batch that is not full waits for more records.
    pub linger_ns: Duration,
    /// The size of a record (a drawn size's mean; the producer draws each).
    pub message_bytes: u64,
    /// Queue producers: messages are published persistent (AMQP delivery
    /// mode 2); transient (1) by default, as RabbitMQ's clients send them.
    pub persistent: bool,
}

impl Settings {
    /// The settings of `spec`, for a log broker target when `log`.
    pub fn of(spec: &ProducerSpec, log: bool) -> Self {
        if !log {
            return Settings::queue(spec);
        }
        let acks = spec.acks.unwrap_or(AckMode::All);
        let ms = |m: Option<crate::units::Millis>, default: f64| ms_to_ns(m.map_or(default, |m| m.0));
        Settings {
            acks,
            idempotent: spec.idempotent.unwrap_or_else(|| idempotence_fits(spec).is_none()),
            max_in_flight: spec.max_in_flight.unwrap_or(IDEMPOTENT_MAX_IN_FLIGHT).max(1) as usize,
            retries: spec.retries.unwrap_or(u32::MAX),
            ack_timeout_ns: ms(spec.ack_timeout_ms, LOG_ACK_TIMEOUT_MS).max(1),
            backoff_ns: ms(spec.retry_backoff_ms, LOG_RETRY_BACKOFF_MS),
            delivery_timeout_ns: Some(ms(spec.delivery_timeout_ms, LOG_DELIVERY_TIMEOUT_MS)),
            batch_bytes: spec.batch_size.unwrap_or(DEFAULT_BATCH_BYTES).max(1),
            batch_records: spec.batch_records.map_or(usize::MAX, |n| n.max(1) as usize),
            linger_ns: ms(spec.linger_ms, DEFAULT_LINGER_MS),
            message_bytes: u64::from(spec.message_bytes.as_ref().map_or(DEFAULT_MESSAGE_BYTES, MessageBytes::mean)),
            persistent: false,
        }
    }

    /// A queue producer's settings: asyncsim's earlier defaults, one
    /// message per request.
    fn queue(spec: &ProducerSpec) -> Self {
        Settings {
            acks: spec.acks.unwrap_or(AckMode::None),
            // Refused at validation: RabbitMQ deduplicates publishers on streams only.
            idempotent: false,
            max_in_flight: spec.max_in_flight.map_or(usize::MAX, |m| m.max(1) as usize),
            retries: spec.retries.unwrap_or(0),
            ack_timeout_ns: ms_to_ns(spec.ack_timeout_ms.map_or(QUEUE_ACK_TIMEOUT_MS, |m| m.0)).max(1),
            backoff_ns: ms_to_ns(spec.retry_backoff_ms.map_or(0.0, |m| m.0)),
            delivery_timeout_ns: spec.delivery_timeout_ms.map(|t| ms_to_ns(t.0)),
            batch_bytes: u64::MAX,
            batch_records: 1,
            linger_ns: 0,
            message_bytes: u64::from(spec.message_bytes.as_ref().map_or(DEFAULT_MESSAGE_BYTES, MessageBytes::mean)),
            persistent: spec.persistent.unwrap_or(false),
        }
    }

    /// True when the producer waits for acks.
    #[inline]
    pub fn wait_ack(&self) -> bool {
        self.acks != AckMode::None
    }
}

/// The first setting of `spec` (a log producer's) that rules idempotence
/// out, as (field, why), if any.
pub fn idempotence_fits(spec: &ProducerSpec) -> Option<(&'static str, String)> {
    if matches!(spec.acks, Some(AckMode::None | AckMode::Leader)) {
        return Some(("acks", "an idempotent producer needs acks = \"all\" (as Kafka requires)".into()));
    }
    if let Some(m) = spec.max_in_flight.filter(|&m| m > IDEMPOTENT_MAX_IN_FLIGHT) {
        return Some((
            "max_in_flight",
            format!(
                "an idempotent producer allows at most {IDEMPOTENT_MAX_IN_FLIGHT} requests in flight (as Kafka \
                 requires), got {m}"
            ),
        ));
    }
    if spec.retries == Some(0) {
        return Some((
            "retries",
            "an idempotent producer needs retries (as Kafka requires): remove `retries = 0`".into(),
        ));
    }
    None
}

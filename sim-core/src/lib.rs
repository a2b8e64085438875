//! # sim-core: the asyncsim engine
//!
//! A deterministic, seeded discrete-event simulator of asynchronous
//! messaging systems. One module per concept:
//!
//! - [`time`]: integer virtual time in nanoseconds;
//! - [`rng`]: one seed, a named random stream per component;
//! - [`dist`]: latency and processing-time distributions;
//! - [`engine`]: the event queue, the dispatch loop, the phases of a run;
//! - [`protocol`]: the messages of each protocol, and their envelope;
//! - [`net`]: links, latency, loss, duplication, partitions, crashes;
//! - [`store`]: state that outlives components (dedup stores);
//! - [`timers`], [`reliable`]: many deadlines behind few timers, and
//!   sending until acked (attempts, retries, backoff, give-up);
//! - [`subscription`]: a queue subscriber's subscribe handshake;
//! - [`sequencer`]: a broker's idempotent-producer rule (append each
//!   number once, in order);
//! - [`producer`], [`broker`], [`consumer`], [`log_consumer`]: the components;
//! - [`client`]: request/response clients (async RPC over two queues);
//! - [`ledger`]: the omniscient record that counts lost, duplicated and
//!   reordered messages;
//! - [`metrics`]: histograms, counters, time series;
//! - [`scenario`]: scenario files, variants, overrides and validation;
//! - [`expect`]: expectations that make a scenario self-checking;
//! - [`summary`]: the stable output of a run.
//!
//! No file, terminal, thread or wall-clock access happens in here: the same
//! scenario and seed give the same run, byte for byte.

#![warn(missing_docs)]

pub mod broker;
pub mod client;
pub mod consumer;
pub mod digest;
pub mod dist;
pub mod engine;
pub mod expect;
pub mod ledger;
pub mod log_consumer;
pub mod message;
pub mod metrics;
pub mod net;
pub mod producer;
pub mod protocol;
pub mod reliable;
pub mod rng;
pub mod scenario;
pub mod sequencer;
pub mod store;
pub mod subscription;
pub mod summary;
mod tagged;
pub mod time;
pub mod timers;
pub mod trace;
pub mod units;

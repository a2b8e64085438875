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
//! - [`store`]: state that outlives components (dedup stores), and the
//!   `store` kind (a database called over the network);
//! - [`timers`], [`reliable`]: many deadlines behind few timers, and
//!   sending until acked (attempts, retries, backoff, give-up);
//! - [`stream`]: windowed aggregation of click events (the `aggregator`
//!   kind), by event or processing time;
//! - [`subscription`]: a queue subscriber's subscribe handshake;
//! - [`sequencer`]: a broker's idempotent-producer rule (append each
//!   number once, in order);
//! - [`producer`], [`broker`], [`consumer`], [`log_consumer`]: the components;
//! - [`client`]: request/response clients (async RPC over two queues);
//! - [`kind`]: what a component kind owns (its table, checks, construction);
//! - [`registry`]: the kinds a scenario may use, built-in or registered;
//! - [`ledger`]: the omniscient record that counts lost, duplicated and
//!   reordered messages;
//! - [`metrics`]: histograms, counters, time series;
//! - [`scenario`]: scenario files, variants, overrides and validation;
//! - [`expect`]: expectations that make a scenario self-checking;
//! - [`stats`]: confidence intervals over runs, and steady-state analysis
//!   of one run (warm-up deletion, batch means);
//! - [`summary`]: the stable output of a run.
//!
//! No file, terminal, thread or wall-clock access happens in here: the same
//! scenario and seed give the same run, byte for byte.
//!
//! Build a scenario from a string, run each variant, and read its summary:
//!
//! ```
//! use sim_core::scenario::{run_config, Scenario};
//! use sim_core::summary::VariantSummary;
//!
//! let text = r#"
//! name = "two-ways"
//! concept = "fire-and-forget loses what a lossy network drops; acks and retries do not"
//! [network]
//! loss_probability = 0.05
//! [producers.web]
//! target = "queue"
//! arrival = { process = "poisson", rate_per_s = 100 }
//! messages = 400
//! [brokers.queue]
//! kind = "queue"
//! [consumers.worker]
//! source = "queue"
//! processing = { dist = "constant", ms = 1 }
//! [variants.fire-and-forget]
//! [variants.acked]
//! set = { "producers.web.acks" = "broker", "producers.web.retries" = 10 }
//! expect = ["lost == 0"]
//! "#;
//! let scenario = Scenario::parse("two-ways.toml", text).expect("a valid scenario");
//! for (variant, config) in scenario.configs().expect("valid variants") {
//!     let out = run_config(&config, 1, 0).completed().expect("the run ends");
//!     let summary = VariantSummary::new(&variant.description, &out, &config.expect, &config.alarms);
//!     match variant.name.as_str() {
//!         "fire-and-forget" => assert!(summary.counts.lost > 0),
//!         _ => assert!(summary.expectations.iter().all(|e| e.held)),
//!     }
//! }
//! ```
//!
//! A component kind of your own: see [`registry`] (and
//! `examples/auditor.rs`); driving one component's handlers in a unit test:
//! see [`engine::Harness`].

#![warn(missing_docs)]

pub mod alarms;
pub mod bank;
#[doc(hidden)]
pub mod bench_hooks;
pub mod broker;
pub mod check;
pub mod client;
pub mod consumer;
pub mod contract;
pub mod dedup;
pub mod digest;
pub mod dist;
pub mod engine;
pub mod events;
pub mod expect;
pub mod kind;
pub mod ledger;
pub mod log_consumer;
pub mod message;
pub mod metrics;
pub mod names;
pub mod net;
pub mod observer;
pub mod producer;
pub mod protocol;
pub mod registry;
pub mod reliable;
pub mod replicas;
mod ring;
pub mod rng;
pub mod saga;
pub mod scenario;
pub mod sequencer;
pub mod service;
pub mod size;
pub mod stats;
pub mod store;
pub mod stream;
pub mod subscription;
pub mod summary;
mod tagged;
pub mod time;
pub mod timers;
pub mod trace;
pub mod units;
pub mod users;
pub mod views;

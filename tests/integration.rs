//! The integration tests of the asyncsim command line and the workspace, built as ONE test binary: each file in this
//! folder is a module of it, so the suite links once instead of once per
//! file (cargo's default, which cost CI minutes). `autotests = false` in
//! Cargo.toml stops cargo building the files on their own as well.
//!
//! To add a test file `foo.rs`: put it in this folder and add one line
//! below, in alphabetical order: `#[path = "foo.rs"] mod foo;`. It reaches
//! the shared helpers with `use crate::common;` (not `mod common;`). Tests
//! share one process and run on parallel threads, so a test must not
//! change the environment, the current directory or other global state.
//!
//! Run one file's tests with a module filter:
//! `cargo test --release --test integration foo::` (or `foo::some_test`).

mod common;

#[path = "acks_all_durability.rs"]
mod acks_all_durability;
#[path = "atm.rs"]
mod atm;
#[path = "autoscaling.rs"]
mod autoscaling;
#[path = "backpressure.rs"]
mod backpressure;
#[path = "batching.rs"]
mod batching;
#[path = "bench.rs"]
mod bench;
#[path = "causes.rs"]
mod causes;
#[path = "check_search.rs"]
mod check_search;
#[path = "cli.rs"]
mod cli;
#[path = "cli_args.rs"]
mod cli_args;
#[path = "cluster_properties.rs"]
mod cluster_properties;
#[path = "compare.rs"]
mod compare;
#[path = "connections.rs"]
mod connections;
#[path = "dead_letters.rs"]
mod dead_letters;
#[path = "diagram.rs"]
mod diagram;
#[path = "events.rs"]
mod events;
#[path = "fire_and_forget.rs"]
mod fire_and_forget;
#[path = "fuzz.rs"]
mod fuzz;
#[path = "guide.rs"]
mod guide;
#[path = "honest_runs.rs"]
mod honest_runs;
#[path = "hostile.rs"]
mod hostile;
#[path = "invariants.rs"]
mod invariants;
#[path = "kafka_cluster.rs"]
mod kafka_cluster;
#[path = "limits.rs"]
mod limits;
#[path = "log_cli.rs"]
mod log_cli;
#[path = "log_lag.rs"]
mod log_lag;
#[path = "log_properties.rs"]
mod log_properties;
#[path = "log_replication.rs"]
mod log_replication;
#[path = "outbox_and_rpc.rs"]
mod outbox_and_rpc;
#[path = "output_folder.rs"]
mod output_folder;
#[path = "progress.rs"]
mod progress;
#[path = "properties.rs"]
mod properties;
#[path = "publisher_confirms.rs"]
mod publisher_confirms;
#[path = "pubsub.rs"]
mod pubsub;
#[path = "queue_cluster.rs"]
mod queue_cluster;
#[path = "queue_cluster_properties.rs"]
mod queue_cluster_properties;
#[path = "queue_semantics.rs"]
mod queue_semantics;
#[path = "queueing_theory.rs"]
mod queueing_theory;
#[path = "rabbitmq_routing.rs"]
mod rabbitmq_routing;
#[path = "references.rs"]
mod references;
#[path = "report.rs"]
mod report;
#[path = "retries_dlq.rs"]
mod retries_dlq;
#[path = "saga.rs"]
mod saga;
#[path = "scale.rs"]
mod scale;
#[path = "shards.rs"]
mod shards;
#[path = "stream_aggregation.rs"]
mod stream_aggregation;
#[path = "sweep.rs"]
mod sweep;
#[path = "sync_async.rs"]
mod sync_async;
#[path = "table.rs"]
mod table;
#[path = "trace_json.rs"]
mod trace_json;
#[path = "views.rs"]
mod views;

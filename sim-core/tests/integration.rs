//! The integration tests of sim-core, built as ONE test binary: each file in this
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
//! `cargo test --release -p sim-core --test integration foo::` (or `foo::some_test`).

mod common;

#[path = "autoscaler.rs"]
mod autoscaler;
#[path = "custom_kind.rs"]
mod custom_kind;
#[path = "delivery_guarantees.rs"]
mod delivery_guarantees;
#[path = "docs_fields.rs"]
mod docs_fields;
#[path = "fanout.rs"]
mod fanout;
#[path = "group_liveness.rs"]
mod group_liveness;
#[path = "kinds.rs"]
mod kinds;
#[path = "limits.rs"]
mod limits;
#[path = "log_broker.rs"]
mod log_broker;
#[path = "marks.rs"]
mod marks;
#[path = "network_faults.rs"]
mod network_faults;
#[path = "observer.rs"]
mod observer;
#[path = "outbox.rs"]
mod outbox;
#[path = "progress.rs"]
mod progress;
#[path = "request_response.rs"]
mod request_response;
#[path = "services.rs"]
mod services;
#[path = "sink.rs"]
mod sink;
#[path = "store.rs"]
mod store;
#[path = "sync_async.rs"]
mod sync_async;
#[path = "theory_ci.rs"]
mod theory_ci;
#[path = "transactions.rs"]
mod transactions;
#[path = "users_edge.rs"]
mod users_edge;
#[path = "users_service.rs"]
mod users_service;

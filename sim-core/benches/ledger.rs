//! The ledger's cost per message: one produce, delivery, start and
//! application, the cycle every message of a run goes through, with one
//! message in flight and with a window of 1,000 in flight (so the pending
//! set has the size of a busy run's), in one effect domain and in two.
//!
//! Run: `cargo bench -p sim-core --bench ledger`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use sim_core::ledger::{DomainId, Ledger};
use sim_core::message::MsgId;
use std::collections::VecDeque;

/// Produces a message at `now` and returns its id (one producer, 100 keys).
fn produce(ledger: &mut Ledger, now: u64) -> MsgId {
    ledger.produce(now, 0, now % 100, true)
}

/// Delivers, starts and applies `id` in every domain.
fn settle(ledger: &mut Ledger, now: u64, id: MsgId, domains: DomainId) {
    for d in 0..domains {
        ledger.delivered(d, id);
    }
    ledger.started(now, id);
    for d in 0..domains {
        ledger.applied(now, d, id);
    }
}

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger_cycle");
    for domains in [1 as DomainId, 2] {
        for in_flight in [1usize, 1000] {
            let id = BenchmarkId::new(format!("{domains}_domains"), format!("{in_flight}_in_flight"));
            group.bench_function(id, |b| {
                let names = (0..domains).map(|d| format!("d{d}")).collect();
                let mut ledger = Ledger::new(names);
                let mut window: VecDeque<MsgId> = VecDeque::with_capacity(in_flight);
                let mut now = 0u64;
                for _ in 0..in_flight - 1 {
                    now += 1_000;
                    window.push_back(produce(&mut ledger, now));
                }
                b.iter(|| {
                    now += 1_000;
                    window.push_back(produce(&mut ledger, now));
                    let oldest = window.pop_front().expect("the window holds the new one");
                    settle(&mut ledger, now, oldest, domains);
                });
                black_box(ledger.counts());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, cycle);
criterion_main!(benches);

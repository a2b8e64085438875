//! One network hop: `Network::send` then, for each copy that is on its
//! way, `Network::on_arrival`, for a queue publish between two nodes. Under
//! the default settings (a scenario with no `[network]`: no latency, no
//! loss) and under lossy ones (latency uniform 0.5 to 1.5 ms, 1% loss, 1%
//! duplication, 1% reordering). The send and arrival steps are
//! crate-private; `sim_core::bench_hooks` reaches them.
//!
//! Run: `cargo bench -p sim-core --bench network`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sim_core::bench_hooks::{network_on_arrival, network_send};
use sim_core::dist::Dist;
use sim_core::message::{Msg, Record};
use sim_core::net::{Delivery, LinkModel, Network};
use sim_core::protocol::publish;
use sim_core::trace::Trace;
use sim_core::units::Millis;

fn lossy() -> LinkModel {
    let latency = Dist::Uniform { min_ms: Millis(0.5), max_ms: Millis(1.5) }.sampler();
    LinkModel {
        loss_probability: 0.01,
        duplicate_probability: 0.01,
        reorder_probability: 0.01,
        ..LinkModel::reliable(latency)
    }
}

fn hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("network_hop");
    let models = [("default", LinkModel::reliable(Dist::default().sampler())), ("lossy", lossy())];
    for (name, model) in models {
        group.bench_function(name, |b| {
            let names = vec!["producer".to_string(), "broker".to_string()];
            let mut net = Network::new(1, &names, model.clone());
            let mut trace = Trace::new(false, 0);
            let (mut now, mut id) = (0u64, 0u64);
            b.iter(|| {
                now += 1_000;
                id += 1;
                let msg = Msg::Queue(publish(Record::new(id, id % 100), true, 1));
                let landed = match network_send(&mut net, now, 0, 1, &msg, &mut trace) {
                    Delivery::Dropped(_) => 0,
                    Delivery::Arrives { copy, .. } => {
                        let copies = if copy.is_some() { 2 } else { 1 };
                        (0..copies).filter(|_| network_on_arrival(&mut net, 0, 1, true).is_none()).count()
                    }
                };
                black_box(landed)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, hop);
criterion_main!(benches);

//! The event queue's orderings under the classic hold model: a queue of a
//! steady size where each operation pops the earliest event and pushes one
//! at its time plus a random increment. Increments (drawn ahead, so that
//! the generator is not timed):
//! - `exponential`: mean 1 ms;
//! - `uniform`: 0 to 2 ms;
//! - `bimodal`: 90% network hops (0.5 to 1.5 ms), 10% long timers (1 to 2 s);
//! - `cancel`: a cancel-heavy mix: each operation pops, sets the popped
//!   node's next event a network hop later, and every second operation also
//!   cancels that node's pending timeout (leaving a tombstone) and sets a new
//!   one 50 ms later, as a request with a timeout whose reply comes first.
//!
//! Sizes 8 (the M/M/1 workload holds about 5 events), 1,000 and 100,000.
//! One iteration is one hold operation, so criterion's time is ns per hold.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_core::engine::event_queue::{Binary16, Binary24, Keys, Quad16, Queue, Radix};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 3] = [8, 1_000, 100_000];
const MIXES: [&str; 4] = ["exponential", "uniform", "bimodal", "cancel"];
/// Increments drawn ahead, used in turn.
const DRAWS: usize = 1 << 16;

/// `DRAWS` increments of `mix`, in ns.
fn increments(mix: &str) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    (0..DRAWS)
        .map(|_| match mix {
            "exponential" => (-1e6 * (1.0 - rng.random::<f64>()).ln()) as u64,
            "uniform" => rng.random_range(0..2_000_000),
            "bimodal" if rng.random_bool(0.1) => rng.random_range(1_000_000_000..2_000_000_000),
            _ => rng.random_range(500_000..1_500_000),
        })
        .collect()
}

/// A queue in a hold run.
struct Hold<K: Keys> {
    q: Queue<K>,
    increments: Vec<u64>,
    i: usize,
    nodes: u32,
    cancel: bool,
}

impl<K: Keys> Hold<K> {
    /// A queue of `size` events, held until its spread of times is steady.
    fn new(size: usize, mix: &str) -> Self {
        let mut h = Hold {
            q: Queue::default(),
            increments: increments(mix),
            i: 0,
            nodes: (size as u32 / 4).max(1),
            cancel: mix == "cancel",
        };
        for n in 0..size {
            let d = h.next();
            h.q.push_timer(d, n as u32 % h.nodes, 1);
        }
        for _ in 0..2 * size.max(DRAWS) {
            h.hold();
        }
        h
    }

    #[inline]
    fn next(&mut self) -> u64 {
        self.i += 1;
        self.increments[self.i % DRAWS]
    }

    /// One hold operation: pop, push.
    #[inline]
    fn hold(&mut self) -> u64 {
        let t = self.q.pop().expect("a steady queue");
        let node = self.i as u32 % self.nodes;
        let d = self.next();
        self.q.push_timer(t + d, node, 1);
        if self.cancel && self.i % 2 == 0 {
            self.q.cancel_timer(node, 2);
            self.q.push_timer(t + 50_000_000, node, 2);
        }
        t
    }
}

fn candidate<K: Keys>(c: &mut Criterion, name: &str) {
    for mix in MIXES {
        let mut group = c.benchmark_group(format!("hold-{mix}"));
        group.throughput(Throughput::Elements(1));
        for size in SIZES {
            let mut h = Hold::<K>::new(size, mix);
            group.bench_function(BenchmarkId::new(name, size), |b| b.iter(|| black_box(h.hold())));
        }
        group.finish();
    }
}

fn orderings(c: &mut Criterion) {
    candidate::<Binary24>(c, "binary24");
    candidate::<Binary16>(c, "binary16");
    candidate::<Quad16>(c, "quad16");
    candidate::<Radix>(c, "radix");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    targets = orderings
}
criterion_main!(benches);

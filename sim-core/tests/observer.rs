//! Properties of the state observer's judgement of replicated state, over
//! any sequence of writes, replica updates, cache expiries, crashes and
//! reads: every write's window is either closed or still open, a replica
//! that ends holding the newest write of every key leaves nothing
//! diverged or open, and a read of the newest write is never stale.

use crate::common::proptest_config;
use proptest::prelude::*;
use sim_core::observer::replicas::Replicas;

/// One step of a history: at most 3 keys, replicas 1 (a table) and 2 (a
/// cache).
#[derive(Debug, Clone)]
enum Step {
    Write {
        key: u64,
        delete: bool,
    },
    /// Replica `node` takes the `back`-th newest write of `key` (0: the
    /// newest), or drops the key.
    Hold {
        node: u32,
        key: u64,
        back: Option<usize>,
    },
    Crash,
    Read {
        key: u64,
        back: Option<usize>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3u64, prop::bool::weighted(0.2)).prop_map(|(key, delete)| Step::Write { key, delete }),
        (1..3u32, 0..3u64, prop::option::weighted(0.8, 0..3usize)).prop_map(|(node, key, back)| Step::Hold {
            node,
            key,
            back
        }),
        Just(Step::Crash),
        (0..3u64, prop::option::weighted(0.8, 0..3usize)).prop_map(|(key, back)| Step::Read { key, back }),
    ]
}

/// Plays `steps` one millisecond apart; returns the observer and each
/// key's writes (id, delete) in order.
fn play(steps: &[Step]) -> (Replicas, Vec<Vec<(u64, bool)>>) {
    let mut r = Replicas::default();
    r.replica(1, true);
    r.replica(2, false);
    let mut writes: Vec<Vec<(u64, bool)>> = vec![Vec::new(); 3];
    let pick = |w: &Vec<(u64, bool)>, back: Option<usize>| back.and_then(|b| w.iter().rev().nth(b)).map(|x| x.0);
    for (i, s) in steps.iter().enumerate() {
        let now = (i as u64 + 1) * 1_000_000;
        match *s {
            Step::Write { key, delete } => {
                let id = i as u64;
                writes[key as usize].push((id, delete));
                r.wrote(now, key, id, delete);
            }
            Step::Hold { node, key, back } => r.holds(now, node, key, pick(&writes[key as usize], back)),
            Step::Crash => r.crashed(now, 2),
            Step::Read { key, back } => r.read(now, key, pick(&writes[key as usize], back), false),
        }
    }
    (r, writes)
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn every_write_is_either_closed_or_open(steps in prop::collection::vec(step(), 0..60)) {
        let (r, _) = play(&steps);
        let s = r.summary();
        prop_assert_eq!(s.window_ms.count + s.open_windows, s.writes);
        prop_assert!(s.stale_reads <= s.reads);
        prop_assert_eq!(s.staleness_ms.count, s.reads);
    }

    #[test]
    fn replicas_that_end_on_the_newest_write_converge(steps in prop::collection::vec(step(), 0..60)) {
        let (mut r, writes) = play(&steps);
        let end = (steps.len() as u64 + 2) * 1_000_000;
        for (key, w) in writes.iter().enumerate() {
            if let Some(&(id, _)) = w.last() {
                r.holds(end, 1, key as u64, Some(id));
                r.holds(end, 2, key as u64, None);
                r.read(end, key as u64, Some(id), true);
            }
        }
        let s = r.summary();
        prop_assert_eq!((s.diverged, s.open_windows), (0, 0), "{:?}", s);
        prop_assert_eq!(s.window_ms.count, s.writes);
        prop_assert!(s.own_stale == 0, "a read of the newest write is never stale: {:?}", s);
    }
}

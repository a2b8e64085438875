//! Many independent runs: the one runner behind `check` and `sweep`.
//!
//! A command computes a *plan* (its normalized arguments, as JSON) and a
//! list of *units* numbered from 0 (a sweep's unit is one run; a search's is
//! one lane of runs). It runs the units its [`Shard`] owns on a [`Pool`],
//! turns each into a JSON record carrying its `index`, and hands the plan and
//! the records to a pure `finish` that prints and writes everything. Because
//! the units are independent and their results come back in index order,
//! the output is the same for any number of threads; because a shard writes
//! its records as a [`Partial`] and `asyncsim merge` hands the union to the
//! same `finish`, it is the same for any number of machines.
//!
//! What it leaves out: work stealing across machines (a shard's slice is
//! fixed in advance, so a slow machine finishes last) and retrying a lost
//! shard (run it again: a shard's output depends only on its index).

pub mod merge;
mod meter;
mod partial;

pub use meter::Meter;
pub use partial::Partial;

use anyhow::{bail, Context, Result};
use std::str::FromStr;

/// Worker threads for independent runs.
pub struct Pool {
    pool: rayon::ThreadPool,
}

impl Pool {
    /// A pool of `jobs` threads (`None`: one per core).
    pub fn new(jobs: Option<usize>) -> Result<Pool> {
        let mut b = rayon::ThreadPoolBuilder::new();
        if let Some(j) = jobs {
            if j == 0 {
                bail!("--jobs must be at least 1");
            }
            b = b.num_threads(j);
        }
        Ok(Pool { pool: b.build().context("starting worker threads")? })
    }

    /// `f` over `items` in parallel; the results in the items' order,
    /// whatever the number of threads.
    pub fn map<I: Send, T: Send>(&self, items: Vec<I>, f: impl Fn(I) -> T + Sync + Send) -> Vec<T> {
        use rayon::prelude::*;
        self.pool.install(|| items.into_par_iter().map(f).collect())
    }
}

/// One slice of the units, `--shard I/N`: the units `u` with `u % N == I - 1`
/// (so a slice's units are spread over the whole plan, and slices of a
/// sweep cost about the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 1.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl Shard {
    /// Whether unit `unit` is this slice's.
    pub fn owns(&self, unit: usize) -> bool {
        unit % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}`: expected I/N, slice I of N, with 1 <= I <= N (e.g. 2/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_units() {
        let shards: Vec<Shard> = (1..=3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for u in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(u)).count(), 1, "unit {u}");
        }
        for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("2/5".parse::<Shard>().unwrap().to_string(), "2/5");
    }

    #[test]
    fn results_come_back_in_order_whatever_the_threads() {
        let work = |i: u64| (0..i * 1000).fold(i, |a, x| a.wrapping_mul(31).wrapping_add(x));
        let one: Vec<u64> = Pool::new(Some(1)).unwrap().map((0..64).collect(), work);
        let two: Vec<u64> = Pool::new(Some(2)).unwrap().map((0..64).collect(), work);
        assert_eq!(one, two);
        assert_eq!(one[5], work(5));
        assert!(Pool::new(Some(0)).is_err());
    }
}

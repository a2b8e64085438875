//! Seeded random streams. One run has one seed; every component draws from its
//! own ChaCha stream derived from (seed, component name). Adding a component,
//! or reordering components in a file, therefore never shifts another
//! component's draws, and two runs with the same seed draw the same numbers.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random generator every component uses.
pub type SimRng = ChaCha8Rng;

/// 64-bit FNV-1a: a stable hash (unlike `std`'s, which may change between
/// Rust releases) used to turn stream names into stream numbers.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Returns the random stream named `name` under `seed`.
///
/// The seed picks the ChaCha key and the name picks the stream within it, so
/// streams of different names never overlap.
///
/// ```
/// use rand::Rng;
/// let mut a = sim_core::rng::stream(7, "node:web");
/// let mut b = sim_core::rng::stream(7, "node:web");
/// let mut c = sim_core::rng::stream(7, "node:worker");
/// let x: u64 = a.random();
/// assert_eq!(x, b.random::<u64>());
/// assert_ne!(x, c.random::<u64>());
/// ```
pub fn stream(seed: u64, name: &str) -> SimRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stable_hash(name.as_bytes()));
    rng
}

/// A uniform draw in [0, 1), from the top 53 bits of one 64-bit word.
#[inline]
pub fn unit(rng: &mut SimRng) -> f64 {
    use rand::RngCore;
    // Below 2^53, so the signed conversion (one instruction) gives the
    // same double as the unsigned one (a branchy sequence on x86-64).
    ((rng.next_u64() >> 11) as i64) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p`. Draws nothing when `p` is 0 or 1, so a
/// fault-free configuration does not consume random numbers for faults.
#[inline]
pub fn chance(rng: &mut SimRng, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        unit(rng) < p
    }
}

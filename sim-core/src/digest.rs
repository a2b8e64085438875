//! The run digest: every dispatched event, drop and phase change folded into
//! one 64-bit word (FNV-1a over words), so two runs can be compared cheaply
//! for identical histories, and a determinism check can point at the first
//! event where two histories part.
//!
//! Left out: any cryptographic strength. The digest detects accidental
//! divergence, not tampering.

/// A running 64-bit digest of a run's events (FNV-1a over words).
#[derive(Debug, Clone, Copy)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// Folds one word into the digest.
    #[inline]
    pub fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x0000_0100_0000_01b3);
    }

    /// The digest as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Digest tags: the first word folded for each kind of happening.
pub(crate) mod tag {
    pub const ARRIVE: u64 = 0xA1;
    pub const TIMER: u64 = 0xA2;
    pub const STALE_TIMER: u64 = 0xA3;
    pub const FAULT_BEGIN: u64 = 0xA4;
    pub const FAULT_END: u64 = 0xA5;
    pub const SAMPLE: u64 = 0xA6;
    pub const END_RUN: u64 = 0xA7;
    pub const END_DRAIN: u64 = 0xA8;
    pub const DROP: u64 = 0xA9;
    pub const DUPLICATE: u64 = 0xAA;
    pub const CRASH: u64 = 0xAB;
    pub const RESTART: u64 = 0xAC;
    pub const DRAIN: u64 = 0xAD;
    pub const SKIPPED: u64 = 0xAE;
}

//! SplitMix64 (Steele, Lea & Flood 2014), the workspace's one copy: it expands a seed into the
//! engine's xoshiro256** state (`echos_core::rng`), and it is the small seeded generator of the
//! kernel's stress drivers and of ring-3 test programs. Its own crate because ring-3 programs
//! have no heap allocator and so cannot link the engine (`no_std`, no `alloc`, no dependencies).
#![no_std]
#![forbid(unsafe_code)]

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment, then mixed.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` by Lemire's multiply-shift without rejection (bias below n / 2^64):
    /// one multiply, for picking operations in stress tests where that bias is irrelevant.
    /// `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        match (hi - lo).checked_add(1) {
            Some(n) => lo + self.below(n),
            None => self.next_u64(),
        }
    }

    /// True with probability `num / den` (`den > 0`).
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference outputs of SplitMix64 seeded with 1234567 (from the authors' C code).
    #[test]
    fn matches_reference_outputs() {
        let mut g = SplitMix64::new(1234567);
        let want = [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ];
        for w in want {
            assert_eq!(g.next_u64(), w);
        }
    }

    #[test]
    fn below_and_between_stay_in_range() {
        let mut g = SplitMix64::new(9);
        for _ in 0..10_000 {
            assert!(g.below(7) < 7);
            let v = g.between(3, 5);
            assert!((3..=5).contains(&v));
        }
        // The full range does not overflow.
        g.between(0, u64::MAX);
    }
}

//! The integer ESN's deterministic generator: xoshiro256** (Blackman & Vigna, 2018) seeded by
//! SplitMix64, integer-only so ring 0 (no FPU) draws exactly the numbers the host draws.
//! Kept local to `integer` until the engine's crate-wide RNG reaches main; `next_u64`, the
//! seeding and `below` follow the same definitions as that generator (the `esn` branch's
//! `rng::Rng`), so swapping this module for it changes no digest.

/// SplitMix64 (Steele, Lea & Flood, 2014); used to expand a 64-bit seed into xoshiro state.
#[derive(Clone, Copy, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0.
#[derive(Clone, Debug)]
pub struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    /// State = four SplitMix64 outputs of `seed`, as the xoshiro authors recommend.
    pub fn from_seed(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        Self {
            s: [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n`, unbiased: Lemire's multiply-shift, redrawing while the low half of the
    /// product falls below `2⁶⁴ mod n` (probability below n / 2⁶⁴ per draw, so the loop almost
    /// never repeats; this is construction-time code, never on a step path). `n = 0` gives 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut product = self.next_u64() as u128 * n as u128;
        if (product as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (product as u64) < threshold {
                product = self.next_u64() as u128 * n as u128;
            }
        }
        (product >> 64) as u64
    }

    /// Uniform Q1.15 value in [−1, 1): the top 16 bits as a signed integer.
    pub fn next_q15(&mut self) -> i16 {
        (self.next_u64() >> 48) as u16 as i16
    }

    /// `+1` or `−1` with equal probability (the top bit).
    pub fn next_bipolar(&mut self) -> i8 {
        if self.next_u64() >> 63 == 1 {
            1
        } else {
            -1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference outputs: SplitMix64 from seed 1234567 (the values in Vigna's splitmix64.c
    /// test), xoshiro256** from state [1, 2, 3, 4] (first outputs of the reference C code).
    #[test]
    fn matches_reference_sequences() {
        let mut sm = SplitMix64::new(1234567);
        assert_eq!(sm.next_u64(), 6457827717110365317);
        assert_eq!(sm.next_u64(), 3203168211198807973);
        let mut x = Xoshiro256 { s: [1, 2, 3, 4] };
        assert_eq!(x.next_u64(), 11520);
        assert_eq!(x.next_u64(), 0);
        assert_eq!(x.next_u64(), 1509978240);
        assert_eq!(x.next_u64(), 1215971899390074240);
    }

    /// `below` rejects exactly the draws whose low product half is under 2⁶⁴ mod n: with
    /// n = 2⁶³ + 1, 2⁶⁴ mod n = 2⁶³ − 1, so about half of all draws are redrawn.
    #[test]
    fn below_rejects_the_biased_draws() {
        let n = (1u64 << 63) + 1;
        let threshold = n.wrapping_neg() % n;
        assert_eq!(threshold, (1 << 63) - 1);
        let mut a = Xoshiro256::from_seed(5);
        let mut b = a.clone();
        for _ in 0..1000 {
            let got = a.below(n);
            let want = loop {
                let p = b.next_u64() as u128 * n as u128;
                if (p as u64) >= threshold {
                    break (p >> 64) as u64;
                }
            };
            assert_eq!(got, want);
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut x = Xoshiro256::from_seed(9);
        for n in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..1000 {
                assert!(x.below(n) < n);
            }
        }
        assert_eq!(x.below(0), 0);
    }
}

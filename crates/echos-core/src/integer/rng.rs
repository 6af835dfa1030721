//! Integer-only draws for the ring-0 reservoirs, on the engine's one generator
//! ([`crate::rng::Rng`]: xoshiro256** seeded by SplitMix64, documented there). Only its integer
//! methods (`new`, `next_u64`, `below`) are used here, so ring 0 (no FPU) draws exactly the
//! numbers the host draws.

use crate::rng::Rng;

/// The draws the integer reservoirs need beyond `next_u64` and `below`.
pub trait IntegerDraws {
    /// Uniform Q1.15 value in [−1, 1): the top 16 bits as a signed integer.
    fn next_q15(&mut self) -> i16;
    /// `+1` or `−1` with equal probability (the top bit).
    fn next_bipolar(&mut self) -> i8;
}

impl IntegerDraws for Rng {
    fn next_q15(&mut self) -> i16 {
        (self.next_u64() >> 48) as u16 as i16
    }

    fn next_bipolar(&mut self) -> i8 {
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

    /// `below` rejects exactly the draws whose low product half is under 2⁶⁴ mod n: with
    /// n = 2⁶³ + 1, 2⁶⁴ mod n = 2⁶³ − 1, so about half of all draws are redrawn. The integer
    /// reservoirs' weights depend on this exact rule (their digests are compared with ring 0).
    #[test]
    fn below_rejects_the_biased_draws() {
        let n = (1u64 << 63) + 1;
        let threshold = n.wrapping_neg() % n;
        assert_eq!(threshold, (1 << 63) - 1);
        let mut a = Rng::new(5);
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
    fn q15_and_bipolar_take_the_top_bits() {
        let mut a = Rng::new(7);
        let mut b = a.clone();
        for _ in 0..100 {
            assert_eq!(a.next_q15(), (b.next_u64() >> 48) as u16 as i16);
            assert_eq!(
                a.next_bipolar(),
                if b.next_u64() >> 63 == 1 { 1 } else { -1 }
            );
        }
    }
}

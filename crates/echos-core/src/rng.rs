//! The engine's seeded random number generator: xoshiro256** (Blackman & Vigna, 2018) seeded
//! from one `u64` through SplitMix64, so a seed means the same stream on every platform.
//!
//! Algorithm, as in the public-domain reference `xoshiro256starstar.c`:
//! - state `s[0..4]` (256 bits), filled by four successive SplitMix64 outputs of the seed
//!   (`z += 0x9E3779B97F4A7C15; z = (z ^ z>>30)·0xBF58476D1CE4E5B9; z = (z ^ z>>27)·0x94D049BB133111EB;
//!   z ^ z>>31`), which never yields the all-zero state xoshiro cannot leave;
//! - output `rotl(s[1]·5, 7)·9`, then the xorshift/rotate state transition.
//!
//! Derived samples are defined exactly, so they are bit-identical everywhere:
//! - `uniform01`: the top 53 bits of `next_u64` times 2⁻⁵³, in [0, 1);
//! - `normal`: Box–Muller with `libm` (`sqrt(-2 ln u1)·cos(2π u2)`, u1 in (0, 1]); the sine
//!   partner is cached and returned by the next call;
//! - `bernoulli(p)`: `uniform01() < p`;
//! - `below(n)`: Lemire's multiply-shift with rejection, unbiased.

/// SplitMix64 (Steele, Lea & Flood 2014): expands a seed into xoshiro state. Its one home is
/// the `echos-rng` crate (ring-3 programs, which have no allocator, use it too).
pub use echos_rng::SplitMix64;

/// xoshiro256** with the sampling helpers the reservoirs need.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    /// Second Box–Muller value, returned by the next `normal` call.
    spare_normal: Option<f64>,
}

impl Rng {
    /// Seeds the state with four SplitMix64 outputs of `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Self {
            s,
            spare_normal: None,
        }
    }

    /// Uses a raw 256-bit state (for known-answer tests against the reference). Returns `None`
    /// for the all-zero state, from which xoshiro would only ever output zeros.
    pub fn from_state(s: [u64; 4]) -> Option<Self> {
        if s == [0; 4] {
            return None;
        }
        Some(Self {
            s,
            spare_normal: None,
        })
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

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform01(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform01()
    }

    /// Standard normal N(0, 1) by Box–Muller.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // 1 - u keeps the logarithm's argument in (0, 1].
        let u1 = 1.0 - self.uniform01();
        let u2 = self.uniform01();
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let theta = 2.0 * core::f64::consts::PI * u2;
        self.spare_normal = Some(r * libm::sin(theta));
        r * libm::cos(theta)
    }

    /// True with probability `p` (p ≤ 0 never, p ≥ 1 always).
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform01() < p
    }

    /// Uniform integer in [0, n); `n` must be nonzero (0 returns 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        let mut low = m as u64;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
                low = m as u64;
            }
        }
        (m >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro256starstar_matches_reference_outputs() {
        // Outputs of the reference xoshiro256starstar.c from state {1, 2, 3, 4}, as published
        // with the reference and reproduced by e.g. rand_xoshiro's and vigna::xoshiro256ss tests.
        let expected: [u64; 10] = [
            11520,
            0,
            1509978240,
            1215971899390074240,
            1216172134540287360,
            607988272756665600,
            16172922978634559625,
            8476171486693032832,
            10595114339597558777,
            2904607092377533576,
        ];
        let mut rng = Rng::from_state([1, 2, 3, 4]).unwrap();
        for e in expected {
            assert_eq!(rng.next_u64(), e);
        }
        assert!(Rng::from_state([0; 4]).is_none());
    }

    #[test]
    fn splitmix64_matches_reference_outputs() {
        // splitmix64.c seeded with 1234567 (the values Rosetta Code and many ports check).
        let mut sm = SplitMix64::new(1234567);
        for e in [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ] {
            assert_eq!(sm.next_u64(), e);
        }
    }

    #[test]
    fn seeding_goes_through_splitmix64() {
        let mut sm = SplitMix64::new(7);
        let state = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        let mut a = Rng::new(7);
        let mut b = Rng::from_state(state).unwrap();
        for _ in 0..16 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    fn moments(mut f: impl FnMut() -> f64, n: usize) -> (f64, f64) {
        let mut sum = 0.0;
        let mut sum_sq = 0.0;
        for _ in 0..n {
            let x = f();
            sum += x;
            sum_sq += x * x;
        }
        let mean = sum / n as f64;
        (mean, sum_sq / n as f64 - mean * mean)
    }

    #[test]
    fn uniform_moments() {
        let mut rng = Rng::new(1);
        let n = 200_000;
        let (mean, var) = moments(|| rng.uniform01(), n);
        // Standard errors: sqrt(1/12/n) ≈ 6.5e-4 for the mean; use about 5 sigma.
        assert!((mean - 0.5).abs() < 3.5e-3, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 2e-3, "var {var}");
        let (mean, var) = moments(|| rng.uniform(-1.0, 1.0), n);
        assert!(mean.abs() < 7e-3, "mean {mean}");
        assert!((var - 1.0 / 3.0).abs() < 6e-3, "var {var}");
        for _ in 0..10_000 {
            let u = rng.uniform01();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn normal_moments() {
        let mut rng = Rng::new(2);
        let n = 200_000;
        let mut xs = alloc::vec::Vec::with_capacity(n);
        for _ in 0..n {
            xs.push(rng.normal());
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let m4 = xs.iter().map(|x| libm::pow(x - mean, 4.0)).sum::<f64>() / n as f64;
        let kurtosis = m4 / (var * var);
        // sigma(mean) = 1/sqrt(n) ≈ 2.2e-3, sigma(var) ≈ sqrt(2/n) ≈ 3.2e-3, sigma(kurt) ≈ 5.5e-3.
        assert!(mean.abs() < 1.2e-2, "mean {mean}");
        assert!((var - 1.0).abs() < 1.6e-2, "var {var}");
        assert!((kurtosis - 3.0).abs() < 0.06, "kurtosis {kurtosis}");
        let within_1 = xs.iter().filter(|x| x.abs() < 1.0).count() as f64 / n as f64;
        assert!((within_1 - 0.682_689).abs() < 5e-3, "P(|z|<1) {within_1}");
    }

    #[test]
    fn bernoulli_frequency() {
        let mut rng = Rng::new(3);
        let n = 100_000;
        for p in [0.1, 0.5, 0.9] {
            let hits = (0..n).filter(|_| rng.bernoulli(p)).count() as f64 / n as f64;
            let sigma = libm::sqrt(p * (1.0 - p) / n as f64);
            assert!((hits - p).abs() < 5.0 * sigma, "p {p}: {hits}");
        }
        assert!(!(0..1000).any(|_| rng.bernoulli(0.0)));
        assert!((0..1000).all(|_| rng.bernoulli(1.0)));
    }

    #[test]
    fn below_is_in_range_and_uniform() {
        let mut rng = Rng::new(4);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            let k = rng.below(7);
            counts[k as usize] += 1;
        }
        for c in counts {
            // Expected 10000, sigma ≈ 93.
            assert!((c as i64 - 10_000).abs() < 500, "{counts:?}");
        }
        assert_eq!(rng.below(1), 0);
    }
}

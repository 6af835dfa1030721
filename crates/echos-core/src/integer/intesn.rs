//! The integer echo state network (intESN) of Kleyko, Frady, Kheffache & Osipov, "Integer Echo
//! State Networks: Efficient Reservoir Computing for Digital Hardware", IEEE TNNLS 33(4), 2022
//! (online 2020), doi:10.1109/TNNLS.2020.3043309, arXiv:1706.00280.
//!
//! The paper replaces the reservoir matrix with a cyclic shift (a permutation, so its spectral
//! radius is exactly 1) and the tanh with clipping, on n-bit integer states:
//!
//! ```text
//! x(t) = f_κ( Sh(x(t−1), 1) + u_HD(t) ),     f_κ(v) = −κ if v ≤ −κ;  v if −κ < v < κ;  κ if v ≥ κ
//! ```
//!
//! where `Sh(x, 1)` rotates the state vector by one position (`Sh(x,1)_i = x_{i−1 mod N}`) and
//! `u_HD(t)` is the input mapped into the reservoir's space by a random bipolar (±1) projection.
//! The state needs ⌈log₂(2κ + 1)⌉ bits per neuron (κ = 3 → 3 bits, κ = 7 → 4 bits); this
//! implementation stores it in `i8`, so 1 ≤ κ ≤ 127.
//!
//! The co-author's reference implementation (github.com/mansourkheffache/intESN, `intESN.py`)
//! computes the same rule as `clip(np.roll(states, 1) + q_in(x))` with `clip = 7` by default;
//! `np.roll(x, 1)[i] = x[i − 1]` is the shift used here.
//!
//! Inputs here are integer vectors `u ∈ ℤ^K` (the paper quantises each real input to a few
//! levels before encoding); `u_HD = W_in u` with `W_in ∈ {−1, +1}^{N×K}` packed one bit per
//! entry (set = +1), so the step is additions and subtractions only.

use super::IntegerError;
use crate::rng::Rng;

/// Largest supported κ: states are `i8`.
pub const MAX_KAPPA: i8 = i8::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntEsnConfig {
    /// Reservoir size N.
    pub units: usize,
    /// Input channels K.
    pub inputs: usize,
    /// Clipping threshold κ (1..=127).
    pub kappa: i8,
    /// Seed of the input projection.
    pub seed: u64,
}

impl IntEsnConfig {
    /// `u64` words of the packed ±1 input projection (saturating for configurations that
    /// validation refuses anyway).
    pub const fn w_in_words(&self) -> usize {
        self.units.saturating_mul(self.inputs).div_ceil(64)
    }

    /// Bits per neuron the state needs: ⌈log₂(2κ + 1)⌉.
    pub const fn bits_per_unit(&self) -> u32 {
        let levels = 2 * self.kappa as u32 + 1;
        u32::BITS - (levels - 1).leading_zeros()
    }

    fn validate(&self) -> Result<(), IntegerError> {
        if self.units == 0 {
            return Err(IntegerError::ZeroUnits);
        }
        if self.inputs == 0 {
            return Err(IntegerError::ZeroInputs);
        }
        if self.kappa < 1 {
            return Err(IntegerError::KappaOutOfRange { kappa: self.kappa });
        }
        // Bounds keep `units · inputs` (the projection's bit count) far from overflow.
        if self.units > super::MAX_UNITS {
            return Err(IntegerError::TooManyUnits {
                units: self.units,
                max: super::MAX_UNITS,
            });
        }
        if self.inputs > super::MAX_INPUTS {
            return Err(IntegerError::TooManyInputs {
                inputs: self.inputs,
                max: super::MAX_INPUTS,
            });
        }
        Ok(())
    }
}

/// An intESN over caller-provided buffers: no allocation, ever.
pub struct IntEsn<'a> {
    cfg: IntEsnConfig,
    state: &'a mut [i8],
    w_in: &'a mut [u64],
}

impl<'a> IntEsn<'a> {
    /// Generates the projection from `cfg.seed` and zeroes the state. `state` needs `units`
    /// entries and `w_in` needs [`IntEsnConfig::w_in_words`]; longer buffers are trimmed.
    ///
    /// Generation order (part of the determinism contract): xoshiro256** from `seed`, one
    /// `next_u64` per 64 projection entries, entry `(i, k)` = bit `(i·K + k) mod 64` of word
    /// `(i·K + k) / 64`.
    pub fn new(
        cfg: IntEsnConfig,
        state: &'a mut [i8],
        w_in: &'a mut [u64],
    ) -> Result<Self, IntegerError> {
        let esn = Self::check(cfg, state, w_in)?;
        let mut rng = Rng::new(cfg.seed);
        for w in esn.w_in.iter_mut() {
            *w = rng.next_u64();
        }
        Ok(esn)
    }

    /// From an explicit projection (bit set = +1), e.g. one made on the host.
    pub fn from_parts(
        cfg: IntEsnConfig,
        state: &'a mut [i8],
        w_in: &'a mut [u64],
    ) -> Result<Self, IntegerError> {
        Self::check(cfg, state, w_in)
    }

    fn check(
        cfg: IntEsnConfig,
        state: &'a mut [i8],
        w_in: &'a mut [u64],
    ) -> Result<Self, IntegerError> {
        cfg.validate()?;
        let words = cfg.w_in_words();
        if state.len() < cfg.units {
            return Err(IntegerError::BufferTooSmall {
                buffer: "state",
                needed: cfg.units,
                given: state.len(),
            });
        }
        if w_in.len() < words {
            return Err(IntegerError::BufferTooSmall {
                buffer: "w_in",
                needed: words,
                given: w_in.len(),
            });
        }
        let state = &mut state[..cfg.units];
        state.fill(0);
        Ok(Self {
            cfg,
            state,
            w_in: &mut w_in[..words],
        })
    }

    pub fn config(&self) -> &IntEsnConfig {
        &self.cfg
    }

    pub fn state(&self) -> &[i8] {
        self.state
    }

    pub fn reset(&mut self) {
        self.state.fill(0);
    }

    /// `u_HD` component of unit `i`: Σ_k ±u_k.
    #[inline(always)]
    fn projected(&self, i: usize, input: &[i32]) -> i64 {
        let k_len = self.cfg.inputs;
        let mut sum = 0i64;
        for (k, &u) in input.iter().enumerate() {
            let bit = i * k_len + k;
            let plus = (self.w_in[bit / 64] >> (bit % 64)) & 1 == 1;
            sum += if plus { u as i64 } else { -(u as i64) };
        }
        sum
    }

    /// One step: `x ← f_κ(Sh(x, 1) + W_in u)`. O(N·K), in place, no allocation; the only
    /// failure is an input of the wrong length.
    pub fn step(&mut self, input: &[i32]) -> Result<(), IntegerError> {
        if input.len() != self.cfg.inputs {
            return Err(IntegerError::InputLength {
                expected: self.cfg.inputs,
                given: input.len(),
            });
        }
        let kappa = self.cfg.kappa as i64;
        let n = self.cfg.units;
        // In place from the top: unit i reads old x_{i−1}, which is still unwritten; the old
        // x_{N−1} that unit 0 needs is saved first.
        let wrap = self.state[n - 1] as i64;
        for i in (1..n).rev() {
            let v = self.state[i - 1] as i64 + self.projected(i, input);
            self.state[i] = v.clamp(-kappa, kappa) as i8;
        }
        let v = wrap + self.projected(0, input);
        self.state[0] = v.clamp(-kappa, kappa) as i8;
        Ok(())
    }

    /// Resets the state, runs `steps` steps on inputs drawn from `input_seed` and returns the
    /// FNV-1a digest of the trajectory (see [`super::digest`]). Input channel values are
    /// `below(7) − 3` ∈ [−3, 3] from xoshiro256**, channel by channel, step by step. `input` is
    /// scratch of at least `inputs` entries.
    pub fn digest(
        &mut self,
        steps: u32,
        input_seed: u64,
        input: &mut [i32],
    ) -> Result<u64, IntegerError> {
        let k = self.cfg.inputs;
        if input.len() < k {
            return Err(IntegerError::BufferTooSmall {
                buffer: "input",
                needed: k,
                given: input.len(),
            });
        }
        let input = &mut input[..k];
        self.reset();
        let mut rng = Rng::new(input_seed);
        let mut h = super::Fnv1a::new();
        for _ in 0..steps {
            for u in input.iter_mut() {
                *u = rng.below(7) as i32 - 3;
            }
            self.step(input)?;
            for &x in self.state.iter() {
                h.write(&x.to_le_bytes());
            }
        }
        Ok(h.finish())
    }
}

/// Fixed-size storage for one intESN, for a `static` or a pool block in the kernel.
pub struct IntEsnStorage<const UNITS: usize, const W_IN_WORDS: usize> {
    pub state: [i8; UNITS],
    pub w_in: [u64; W_IN_WORDS],
}

impl<const UNITS: usize, const W_IN_WORDS: usize> IntEsnStorage<UNITS, W_IN_WORDS> {
    pub const fn new() -> Self {
        Self {
            state: [0; UNITS],
            w_in: [0; W_IN_WORDS],
        }
    }

    pub fn esn(&mut self, cfg: IntEsnConfig) -> Result<IntEsn<'_>, IntegerError> {
        IntEsn::new(cfg, &mut self.state, &mut self.w_in)
    }
}

impl<const UNITS: usize, const W_IN_WORDS: usize> Default for IntEsnStorage<UNITS, W_IN_WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn cfg(units: usize, inputs: usize, kappa: i8) -> IntEsnConfig {
        IntEsnConfig {
            units,
            inputs,
            kappa,
            seed: 5,
        }
    }

    /// N = 4, K = 1, κ = 2, projection (+1, −1, +1, +1) = bits 0b1101.
    /// Worked by hand: x(1) = clip(Sh(0) + u_HD) with u = 1 → (1, −1, 1, 1).
    /// x(2): Sh(x(1)) = (1, 1, −1, 1); + u_HD(u = 2) = (2, −2, 2, 2) → (3, −1, 1, 3) → clip (2, −1, 1, 2).
    /// x(3): Sh(x(2)) = (2, 2, −1, 1); + u_HD(u = −1) = (−1, 1, −1, −1) → (1, 3, −2, 0) → (1, 2, −2, 0).
    #[test]
    fn hand_worked_example() {
        let (mut state, mut w) = (vec![0i8; 4], vec![0b1101u64]);
        let mut esn = IntEsn::from_parts(cfg(4, 1, 2), &mut state, &mut w).unwrap();
        esn.step(&[1]).unwrap();
        assert_eq!(esn.state(), [1, -1, 1, 1]);
        esn.step(&[2]).unwrap();
        assert_eq!(esn.state(), [2, -1, 1, 2]);
        esn.step(&[-1]).unwrap();
        assert_eq!(esn.state(), [1, 2, -2, 0]);
    }

    /// Against a literal model of the reference code: `clip(roll(x, 1) + W_in u)` on copies.
    #[test]
    fn matches_a_literal_roll_add_clip_model() {
        let c = IntEsnConfig {
            units: 37,
            inputs: 3,
            kappa: 5,
            seed: 12,
        };
        let (mut state, mut w) = (vec![0i8; 37], vec![0u64; c.w_in_words()]);
        let mut esn = IntEsn::new(c, &mut state, &mut w).unwrap();
        let sign = |i: usize, k: usize| {
            let bit = i * 3 + k;
            if (esn.w_in[bit / 64] >> (bit % 64)) & 1 == 1 {
                1i64
            } else {
                -1
            }
        };
        let signs: std::vec::Vec<[i64; 3]> = (0..37)
            .map(|i| [sign(i, 0), sign(i, 1), sign(i, 2)])
            .collect();
        let mut model = vec![0i64; 37];
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let u = [
                rng.below(11) as i32 - 5,
                rng.below(3) as i32 - 1,
                rng.below(21) as i32 - 10,
            ];
            let mut rolled = vec![0i64; 37];
            for i in 0..37 {
                rolled[(i + 1) % 37] = model[i];
            }
            for i in 0..37 {
                let proj: i64 = (0..3).map(|k| signs[i][k] * u[k] as i64).sum();
                model[i] = (rolled[i] + proj).clamp(-5, 5);
            }
            esn.step(&u).unwrap();
            let got: std::vec::Vec<i64> = esn.state().iter().map(|&x| x as i64).collect();
            assert_eq!(got, model);
        }
    }

    /// With zero input the state only rotates: after N steps it is back where it started.
    #[test]
    fn zero_input_is_a_pure_rotation() {
        let (mut state, mut w) = (vec![0i8; 5], vec![0u64; 1]);
        let mut esn = IntEsn::new(cfg(5, 2, 3), &mut state, &mut w).unwrap();
        esn.step(&[1, 2]).unwrap();
        let start: std::vec::Vec<i8> = esn.state().to_vec();
        esn.step(&[0, 0]).unwrap();
        assert_eq!(esn.state()[1..], start[..4]);
        assert_eq!(esn.state()[0], start[4]);
        for _ in 0..4 {
            esn.step(&[0, 0]).unwrap();
        }
        assert_eq!(esn.state(), &start[..]);
    }

    #[test]
    fn clipping_bounds_hold_under_extreme_input() {
        let (mut state, mut w) = (vec![0i8; 64], vec![0u64; 64 * 3 / 64]);
        let mut esn = IntEsn::new(cfg(64, 3, 7), &mut state, &mut w).unwrap();
        let inputs = [
            [i32::MAX, i32::MAX, i32::MAX],
            [i32::MIN, i32::MIN, i32::MIN],
            [100, -3, 9],
        ];
        for t in 0..300 {
            esn.step(&inputs[t % 3]).unwrap();
            assert!(esn.state().iter().all(|&x| (-7..=7).contains(&x)));
        }
        // Saturation actually happens (the bound is reached, not just respected).
        assert!(esn.state().iter().any(|&x| x.abs() == 7));
    }

    #[test]
    fn errors_name_the_problem() {
        let (mut state, mut w) = (vec![0i8; 4], vec![0u64; 1]);
        assert_eq!(
            IntEsn::new(cfg(4, 1, 0), &mut state, &mut w).err(),
            Some(IntegerError::KappaOutOfRange { kappa: 0 })
        );
        assert_eq!(
            IntEsn::new(cfg(5, 1, 3), &mut state, &mut w).err(),
            Some(IntegerError::BufferTooSmall {
                buffer: "state",
                needed: 5,
                given: 4
            })
        );
        assert_eq!(
            IntEsn::new(cfg(4, 17, 3), &mut state, &mut w).err(),
            Some(IntegerError::BufferTooSmall {
                buffer: "w_in",
                needed: 2,
                given: 1
            })
        );
        let mut esn = IntEsn::new(cfg(4, 2, 3), &mut state, &mut w).unwrap();
        assert_eq!(
            esn.step(&[1]),
            Err(IntegerError::InputLength {
                expected: 2,
                given: 1
            })
        );
    }

    #[test]
    fn oversized_configurations_are_refused_without_overflow() {
        let (mut state, mut w) = (vec![0i8; 4], vec![0u64; 1]);
        assert_eq!(
            IntEsn::new(cfg(4, usize::MAX, 3), &mut state, &mut w).err(),
            Some(IntegerError::TooManyInputs {
                inputs: usize::MAX,
                max: 65535
            })
        );
        assert_eq!(
            IntEsn::new(cfg(usize::MAX, 1, 3), &mut state, &mut w).err(),
            Some(IntegerError::TooManyUnits {
                units: usize::MAX,
                max: 65535
            })
        );
    }

    #[test]
    fn bits_per_unit() {
        assert_eq!(cfg(1, 1, 1).bits_per_unit(), 2);
        assert_eq!(cfg(1, 1, 3).bits_per_unit(), 3);
        assert_eq!(cfg(1, 1, 7).bits_per_unit(), 4);
        assert_eq!(cfg(1, 1, 127).bits_per_unit(), 8);
    }

    #[test]
    fn deterministic_and_seed_sensitive() {
        let run = |seed: u64| {
            let c = IntEsnConfig {
                seed,
                ..cfg(100, 2, 3)
            };
            let (mut state, mut w) = (vec![0i8; 100], vec![0u64; c.w_in_words()]);
            let mut esn = IntEsn::new(c, &mut state, &mut w).unwrap();
            esn.digest(200, 1, &mut [0; 2]).unwrap()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    /// Accuracy of reading u(t − d) back from x(t) for each delay: drive one channel with random
    /// ±1 symbols, un-shift the state by d places and take the sign of its correlation with the
    /// projection (no trained readout).
    fn recall_accuracy(kappa: i8, delays: &[usize]) -> std::vec::Vec<f64> {
        let c = IntEsnConfig {
            units: 1000,
            inputs: 1,
            kappa,
            seed: 21,
        };
        let (mut state, mut w) = (vec![0i8; 1000], vec![0u64; c.w_in_words()]);
        let mut esn = IntEsn::new(c, &mut state, &mut w).unwrap();
        let proj: std::vec::Vec<i64> = (0..1000)
            .map(|i| {
                if (esn.w_in[i / 64] >> (i % 64)) & 1 == 1 {
                    1
                } else {
                    -1
                }
            })
            .collect();
        let mut rng = Rng::new(77);
        let mut hits = vec![0u32; delays.len()];
        let mut history = std::vec::Vec::new();
        let (warmup, steps) = (300, 1300);
        for t in 0..steps {
            let u = if rng.next_u64() >> 63 == 1 { 1 } else { -1 };
            history.push(u);
            esn.step(&[u]).unwrap();
            if t < warmup {
                continue;
            }
            for (h, &d) in hits.iter_mut().zip(delays) {
                // Sh^{-d}: unit i + d of x(t) holds what entered at unit i, d steps ago.
                let dot: i64 = (0..1000)
                    .map(|i| esn.state()[(i + d) % 1000] as i64 * proj[i])
                    .sum();
                if (dot >= 0) == (history[t - d] == 1) {
                    *h += 1;
                }
            }
        }
        let n = (steps - warmup) as f64;
        hits.iter().map(|&h| h as f64 / n).collect()
    }

    /// The paper's premise: the shift keeps a decodable history, clipping makes it fade, and a
    /// larger κ (more bits per neuron) remembers longer.
    #[test]
    fn recent_inputs_are_decodable_and_old_ones_fade() {
        let delays = [0usize, 1, 4, 16, 24, 32, 48, 64, 256];
        let k3 = recall_accuracy(3, &delays);
        let k7 = recall_accuracy(7, &delays);
        std::eprintln!("intESN recall accuracy by delay {delays:?}");
        std::eprintln!("  kappa = 3: {k3:.3?}");
        std::eprintln!("  kappa = 7: {k7:.3?}");
        assert!(k3[..4].iter().all(|&a| a > 0.95), "{k3:?}");
        assert!(k3[8] < 0.6 && k7[8] < 0.6, "no memory at d = 256 expected");
        let area = |a: &[f64]| a.iter().sum::<f64>();
        assert!(
            area(&k7) > area(&k3) + 0.5,
            "kappa 7 should remember longer"
        );
    }
}

//! Integer-only reservoirs for ring 0, where there is no FPU (the kernel target is soft-float):
//! the integer ESN of Kleyko et al. ([`intesn`]) and a fixed-point sparse leaky ESN
//! ([`sparse`]) with an integer tanh ([`fixed`]). Both step on caller-provided buffers without
//! allocating, in time that depends only on their dimensions, and produce bit-identical states
//! on the host and in the kernel.
//!
//! Weights are either generated in place from a seed by integer code (`FixedEsn::new`,
//! `IntEsn::new`: the kernel and the host build the same reservoir with no data moved), or made
//! by a float ESN on the host, converted with [`quantize_q15`] / [`quantize_q16`] and handed to
//! `FixedEsn::from_parts` / `IntEsn::from_parts`.
//!
//! Cross-checking kernel against host: each reservoir's `digest` runs a canonical configuration
//! on generated inputs and hashes the whole state trajectory with FNV-1a (64-bit; Fowler, Noll &
//! Vo: offset basis 0xcbf29ce484222325, prime 0x100000001b3, per byte `h = (h ^ b) · prime`).
//! [`canonical_int_esn_digest`] and [`canonical_fixed_esn_digest`] compute them; the constants
//! [`CANONICAL_INT_ESN_DIGEST`] and [`CANONICAL_FIXED_ESN_DIGEST`] are what the host computes
//! (a host test keeps them true), so the kernel compares its own result against them.

pub mod fixed;
pub mod intesn;
pub mod rng;
pub mod sparse;

use core::fmt;

pub use fixed::{q16_ratio, quantize_q15, quantize_q16, tanh_q15, QuantizeError, Q16_ONE};
pub use intesn::{IntEsn, IntEsnConfig, IntEsnStorage};
pub use sparse::{FixedEsn, FixedEsnBuffers, FixedEsnConfig, FixedEsnLayout, FixedEsnStorage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegerError {
    /// A reservoir needs at least one unit.
    ZeroUnits,
    /// A reservoir needs at least one input channel.
    ZeroInputs,
    /// κ must be in 1..=127 (states are `i8`).
    KappaOutOfRange { kappa: i8 },
    /// A caller buffer is shorter than the configuration needs.
    BufferTooSmall {
        buffer: &'static str,
        needed: usize,
        given: usize,
    },
    /// The input vector has the wrong number of channels.
    InputLength { expected: usize, given: usize },
    /// Column indices are `u16`.
    TooManyUnits { units: usize, max: usize },
    /// More input channels than supported.
    TooManyInputs { inputs: usize, max: usize },
    /// Connectivity must be 1..=1000 per mille.
    ConnectivityOutOfRange { permille: u32 },
    /// Leak rate must be in (0, 1] (Q16.16: 1..=65536).
    LeakRateOutOfRange { leak_rate_q16: i32 },
    /// A scaling parameter is negative or too large for Q1.15 weights.
    ScaleOutOfRange { name: &'static str, value_q16: i32 },
    /// With so few nonzeros per row the weights needed for this spectral radius exceed Q1.15.
    SpectralRadiusTooLarge {
        spectral_radius_q16: i32,
        per_row: usize,
    },
    /// Row offsets or column indices of a given CSR matrix are inconsistent at this row.
    BadCsr { row: usize },
}

impl fmt::Display for IntegerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroUnits => write!(f, "a reservoir needs at least one unit"),
            Self::ZeroInputs => write!(f, "a reservoir needs at least one input channel"),
            Self::KappaOutOfRange { kappa } => {
                write!(f, "clipping threshold kappa = {kappa} is outside 1..=127")
            }
            Self::BufferTooSmall {
                buffer,
                needed,
                given,
            } => write!(
                f,
                "buffer `{buffer}` has {given} entries but {needed} are needed"
            ),
            Self::InputLength { expected, given } => write!(
                f,
                "input has {given} channels but the reservoir takes {expected}"
            ),
            Self::TooManyUnits { units, max } => {
                write!(f, "{units} units exceed the limit of {max}")
            }
            Self::TooManyInputs { inputs, max } => {
                write!(f, "{inputs} input channels exceed the limit of {max}")
            }
            Self::ConnectivityOutOfRange { permille } => {
                write!(f, "connectivity {permille}‰ is outside 1..=1000‰")
            }
            Self::LeakRateOutOfRange { leak_rate_q16 } => write!(
                f,
                "leak rate {leak_rate_q16}/65536 is outside (0, 1]"
            ),
            Self::ScaleOutOfRange { name, value_q16 } => {
                write!(f, "{name} = {value_q16}/65536 is out of range")
            }
            Self::SpectralRadiusTooLarge {
                spectral_radius_q16,
                per_row,
            } => write!(
                f,
                "spectral radius {spectral_radius_q16}/65536 with {per_row} nonzeros per row needs weights beyond Q1.15; raise connectivity or lower the radius"
            ),
            Self::BadCsr { row } => write!(f, "CSR matrix is inconsistent at row {row}"),
        }
    }
}

/// 64-bit FNV-1a.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Fnv1a {
    pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    pub const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub const fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(Self::PRIME);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

/// Largest reservoir either integer reservoir accepts (sparse column indices are `u16`).
pub const MAX_UNITS: usize = u16::MAX as usize;
/// Largest number of input channels either integer reservoir accepts.
pub const MAX_INPUTS: usize = u16::MAX as usize;

/// Steps in a canonical digest run.
pub const DIGEST_STEPS: u32 = 1000;
/// Seed of the canonical digest inputs.
pub const DIGEST_INPUT_SEED: u64 = 0xEC40_0001;

/// Canonical intESN: 256 units, 4 inputs, κ = 7 (4-bit states).
pub const CANONICAL_INT_ESN: IntEsnConfig = IntEsnConfig {
    units: 256,
    inputs: 4,
    kappa: 7,
    seed: 0xEC40_1E50,
};
pub type CanonicalIntEsnStorage = IntEsnStorage<256, 16>;

/// Canonical fixed-point ESN: 200 units, 2 inputs, 10 % connectivity (20 per row), spectral
/// radius 0.9, input scaling 0.5, bias scaling 0.1, leak rate 0.3.
pub const CANONICAL_FIXED_ESN: FixedEsnConfig = FixedEsnConfig {
    units: 200,
    inputs: 2,
    connectivity_permille: 100,
    spectral_radius_q16: q16_ratio(9, 10),
    input_scaling_q16: q16_ratio(1, 2),
    bias_scaling_q16: q16_ratio(1, 10),
    leak_rate_q16: q16_ratio(3, 10),
    seed: 0xEC40_F1ED,
};
pub type CanonicalFixedEsnStorage = FixedEsnStorage<200, 201, 4000, 400>;

/// Host-computed digest of [`CANONICAL_INT_ESN`] over [`DIGEST_STEPS`] steps.
pub const CANONICAL_INT_ESN_DIGEST: u64 = 0xd52c_8a77_4d87_b55a;
/// Host-computed digest of [`CANONICAL_FIXED_ESN`] over [`DIGEST_STEPS`] steps.
pub const CANONICAL_FIXED_ESN_DIGEST: u64 = 0x91ad_2000_529e_9f4e;

/// The canonical intESN digest, computed in `storage` (about 400 bytes).
pub fn canonical_int_esn_digest(storage: &mut CanonicalIntEsnStorage) -> Result<u64, IntegerError> {
    let mut input = [0i32; 4];
    storage
        .esn(CANONICAL_INT_ESN)?
        .digest(DIGEST_STEPS, DIGEST_INPUT_SEED, &mut input)
}

/// The canonical fixed-point ESN digest, computed in `storage` (about 18 KB: keep it off a
/// small kernel stack).
pub fn canonical_fixed_esn_digest(
    storage: &mut CanonicalFixedEsnStorage,
) -> Result<u64, IntegerError> {
    let mut input = [0i32; 2];
    storage
        .esn(CANONICAL_FIXED_ESN)?
        .digest(DIGEST_STEPS, DIGEST_INPUT_SEED, &mut input)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 64 test vectors: "" and "a", "foobar".
        let h = |s: &[u8]| {
            let mut f = Fnv1a::new();
            f.write(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf29ce484222325);
        assert_eq!(h(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(h(b"foobar"), 0x85944171f73967e8);
    }

    /// The kernel compares its ring-0 digests with these constants: keep them what the host
    /// computes. Prints both for the kernel log to be compared by eye as well.
    #[test]
    fn canonical_digests() {
        let mut int_storage = Box::new(CanonicalIntEsnStorage::new());
        let d1 = canonical_int_esn_digest(&mut int_storage).unwrap();
        let mut fixed_storage = Box::new(CanonicalFixedEsnStorage::new());
        let d2 = canonical_fixed_esn_digest(&mut fixed_storage).unwrap();
        std::eprintln!("canonical intESN digest:        {d1:#018x}");
        std::eprintln!("canonical fixed-point digest:   {d2:#018x}");
        assert_eq!(d1, CANONICAL_INT_ESN_DIGEST);
        assert_eq!(d2, CANONICAL_FIXED_ESN_DIGEST);
        // Same storage, second run: the digest resets the state first.
        assert_eq!(canonical_int_esn_digest(&mut int_storage).unwrap(), d1);
        assert_eq!(canonical_fixed_esn_digest(&mut fixed_storage).unwrap(), d2);
    }

    /// The canonical storage types match the canonical configurations.
    #[test]
    fn canonical_storage_sizes() {
        assert_eq!(CANONICAL_INT_ESN.w_in_words(), 16);
        let l = FixedEsnLayout::of(&CANONICAL_FIXED_ESN);
        assert_eq!((l.units, l.nnz, l.units * l.inputs), (200, 4000, 400));
    }
}

//! The demo's trained model, embedded at build time: a ridge readout the host (xtask) fitted on
//! the demo reservoir's states and quantised to Q1.15, with the host's own prediction digest so
//! the kernel can check the ring-3 run bit for bit. Layout: xtask/src/demo_model.rs.

use alloc::vec::Vec;

use echos_abi::{ReservoirCreateArgs, Topology};

/// The blob xtask wrote (empty when the kernel was built without xtask).
static BLOB: &[u8] = include_bytes!(env!("ECHOS_DEMO_MODEL"));
const MAGIC: &[u8; 8] = b"ECHOSDM1";
const HEADER: usize = 8 + 8 + 8 * 4 + 16 + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoModelError {
    /// The kernel was built without `cargo xtask`, which trains the model.
    Missing,
    BadMagic,
    Truncated {
        len: usize,
    },
    /// The readout's length does not match the reservoir's units.
    ReadoutLength {
        units: u32,
        len: usize,
    },
}

impl core::fmt::Display for DemoModelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing => write!(
                f,
                "no trained demo model (build the kernel through cargo xtask)"
            ),
            Self::BadMagic => write!(f, "the demo model blob has a bad magic or version"),
            Self::Truncated { len } => write!(f, "the demo model blob is truncated ({len} bytes)"),
            Self::ReadoutLength { units, len } => {
                write!(
                    f,
                    "the demo model has {len} readout bytes for {units} units"
                )
            }
        }
    }
}

pub struct DemoModel {
    pub args: ReservoirCreateArgs,
    pub periods: u32,
    pub washout: u32,
    pub readout_shift: u32,
    /// FNV-1a of the readout outputs (i32 LE) over every period, computed on the host.
    pub digest: u64,
    /// The host's mean squared prediction error after the washout, Q16.16.
    pub mse_q16: u64,
    /// The host's memory capacity of the same reservoir, Q16.16.
    pub memory_capacity_q16: u32,
    pub readout: Vec<i16>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

pub fn parse(b: &[u8]) -> Result<DemoModel, DemoModelError> {
    if b.is_empty() {
        return Err(DemoModelError::Missing);
    }
    if b.len() < HEADER {
        return Err(DemoModelError::Truncated { len: b.len() });
    }
    if &b[..8] != MAGIC {
        return Err(DemoModelError::BadMagic);
    }
    let units = u32_at(b, 16);
    let body = &b[HEADER..];
    if body.len() != 2 * units as usize {
        return Err(DemoModelError::ReadoutLength {
            units,
            len: body.len(),
        });
    }
    Ok(DemoModel {
        args: ReservoirCreateArgs {
            seed: u64_at(b, 8),
            units,
            inputs: 1,
            outputs: 1,
            topology: Topology::SparseRandom,
            spectral_radius_q16: u32_at(b, 20),
            leak_rate_q16: u32_at(b, 24),
            input_scaling_q16: u32_at(b, 28),
            density_q16: u32_at(b, 32),
        },
        periods: u32_at(b, 36),
        washout: u32_at(b, 40),
        readout_shift: u32_at(b, 44),
        digest: u64_at(b, 48),
        mse_q16: u64_at(b, 56),
        memory_capacity_q16: u32_at(b, 64),
        readout: body
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
    })
}

/// The embedded model.
pub fn embedded() -> Result<DemoModel, DemoModelError> {
    parse(BLOB)
}

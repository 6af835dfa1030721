//! Argument structs passed by pointer: fixed `#[repr(C)]` layouts, decoded by the kernel from a
//! byte copy with every field validated (`from_bytes`) and encoded by the user library
//! (`to_bytes`). Reals are Q16.16 fixed point because ring 0 has no FPU state of its own.

use crate::{CapHandle, Errno, Topology, MAX_RESERVOIR_IO, MAX_RESERVOIR_UNITS};
use core::mem::{align_of, size_of};

/// 1.0 in Q16.16.
pub const Q16_ONE: u32 = 1 << 16;
/// Largest spectral radius a reservoir may be created with (4.0): beyond it the echo state
/// property is lost for any useful leak rate and the integer state would saturate.
pub const MAX_SPECTRAL_RADIUS_Q16: u32 = 4 * Q16_ONE;
/// Largest input scaling (1.0): the kernel's fixed-point reservoir holds its input weights in
/// Q1.15, so `echos_core::integer` refuses more; the contract says so at decode time instead
/// of accepting a value the engine then refuses.
pub const MAX_INPUT_SCALING_Q16: u32 = Q16_ONE;

pub(crate) fn u32_at<const N: usize>(b: &[u8; N], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

pub(crate) fn u64_at<const N: usize>(b: &[u8; N], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

pub(crate) fn put_u32<const N: usize>(b: &mut [u8; N], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64<const N: usize>(b: &mut [u8; N], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

fn in_range(v: u32, lo: u32, hi: u32) -> Result<u32, Errno> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(Errno::InvalidArgument)
    }
}

fn zero_padding(v: u32) -> Result<(), Errno> {
    // Nonzero padding is refused so the field can carry meaning in a later ABI version.
    if v == 0 {
        Ok(())
    } else {
        Err(Errno::InvalidArgument)
    }
}

/// `reservoir_create`: the reservoir's shape and hyper-parameters (ReservoirPy's vocabulary).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservoirCreateArgs {
    pub seed: u64,
    pub units: u32,
    pub inputs: u32,
    pub outputs: u32,
    pub topology: Topology,
    pub spectral_radius_q16: u32,
    pub leak_rate_q16: u32,
    pub input_scaling_q16: u32,
    /// Fraction of nonzero recurrent weights, in (0, 1].
    pub density_q16: u32,
}

impl ReservoirCreateArgs {
    pub const SIZE: usize = 40;

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Result<Self, Errno> {
        Ok(Self {
            seed: u64_at(b, 0),
            units: in_range(u32_at(b, 8), 1, MAX_RESERVOIR_UNITS)?,
            inputs: in_range(u32_at(b, 12), 1, MAX_RESERVOIR_IO)?,
            outputs: in_range(u32_at(b, 16), 0, MAX_RESERVOIR_IO)?,
            topology: Topology::try_from(u32_at(b, 20))?,
            spectral_radius_q16: in_range(u32_at(b, 24), 1, MAX_SPECTRAL_RADIUS_Q16)?,
            leak_rate_q16: in_range(u32_at(b, 28), 1, Q16_ONE)?,
            input_scaling_q16: in_range(u32_at(b, 32), 1, MAX_INPUT_SCALING_Q16)?,
            density_q16: in_range(u32_at(b, 36), 1, Q16_ONE)?,
        })
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.seed);
        put_u32(&mut b, 8, self.units);
        put_u32(&mut b, 12, self.inputs);
        put_u32(&mut b, 16, self.outputs);
        put_u32(&mut b, 20, self.topology as u32);
        put_u32(&mut b, 24, self.spectral_radius_q16);
        put_u32(&mut b, 28, self.leak_rate_q16);
        put_u32(&mut b, 32, self.input_scaling_q16);
        put_u32(&mut b, 36, self.density_q16);
        b
    }
}

/// `reservoir_step`: one input vector in, the readout (if any) out; elements are Q16.16 `i32`.
/// Pointer validity is checked by the kernel against the address space, not here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservoirStepArgs {
    pub handle: CapHandle,
    pub input_ptr: u64,
    pub output_ptr: u64,
    pub input_len: u32,
    pub output_len: u32,
}

impl ReservoirStepArgs {
    pub const SIZE: usize = 32;

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Result<Self, Errno> {
        let input_len = u32_at(b, 24);
        let output_len = u32_at(b, 28);
        if input_len == 0 || input_len > MAX_RESERVOIR_IO || output_len > MAX_RESERVOIR_IO {
            return Err(Errno::BadLength);
        }
        Ok(Self {
            handle: CapHandle::from_raw(u64_at(b, 0))?,
            input_ptr: u64_at(b, 8),
            output_ptr: u64_at(b, 16),
            input_len,
            output_len,
        })
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.handle.to_raw());
        put_u64(&mut b, 8, self.input_ptr);
        put_u64(&mut b, 16, self.output_ptr);
        put_u32(&mut b, 24, self.input_len);
        put_u32(&mut b, 28, self.output_len);
        b
    }
}

/// `reservoir_read_state`: copy the state vector (Q16.16 `i32`, `buf_len` elements) out.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservoirReadStateArgs {
    pub handle: CapHandle,
    pub buf_ptr: u64,
    pub buf_len: u32,
    pub _pad: u32,
}

impl ReservoirReadStateArgs {
    pub const SIZE: usize = 24;

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Result<Self, Errno> {
        let buf_len = u32_at(b, 16);
        if buf_len == 0 || buf_len > MAX_RESERVOIR_UNITS {
            return Err(Errno::BadLength);
        }
        zero_padding(u32_at(b, 20))?;
        Ok(Self {
            handle: CapHandle::from_raw(u64_at(b, 0))?,
            buf_ptr: u64_at(b, 8),
            buf_len,
            _pad: 0,
        })
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.handle.to_raw());
        put_u64(&mut b, 8, self.buf_ptr);
        put_u32(&mut b, 16, self.buf_len);
        b
    }
}

/// Which matrix `reservoir_modify_weights` writes.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightMatrix {
    Input = 0,
    Recurrent = 1,
    Readout = 2,
}

impl TryFrom<u32> for WeightMatrix {
    type Error = Errno;
    fn try_from(v: u32) -> Result<Self, Errno> {
        match v {
            0 => Ok(Self::Input),
            1 => Ok(Self::Recurrent),
            2 => Ok(Self::Readout),
            _ => Err(Errno::InvalidArgument),
        }
    }
}

/// `reservoir_modify_weights`: overwrite `count` Q16.16 entries of one matrix (row-major) from
/// `offset` on. The kernel checks `offset + count` against the matrix size.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservoirModifyWeightsArgs {
    pub handle: CapHandle,
    pub data_ptr: u64,
    pub matrix: WeightMatrix,
    pub offset: u32,
    pub count: u32,
    pub _pad: u32,
}

impl ReservoirModifyWeightsArgs {
    pub const SIZE: usize = 32;

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Result<Self, Errno> {
        let count = u32_at(b, 24);
        if count == 0 {
            return Err(Errno::BadLength);
        }
        zero_padding(u32_at(b, 28))?;
        Ok(Self {
            handle: CapHandle::from_raw(u64_at(b, 0))?,
            data_ptr: u64_at(b, 8),
            matrix: WeightMatrix::try_from(u32_at(b, 16))?,
            offset: u32_at(b, 20),
            count,
            _pad: 0,
        })
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.handle.to_raw());
        put_u64(&mut b, 8, self.data_ptr);
        put_u32(&mut b, 16, self.matrix as u32);
        put_u32(&mut b, 20, self.offset);
        put_u32(&mut b, 24, self.count);
        b
    }
}

/// `reservoir_introspect`: where to write the [`crate::ReservoirDebugInfo`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntrospectArgs {
    pub handle: CapHandle,
    pub out_ptr: u64,
}

impl IntrospectArgs {
    pub const SIZE: usize = 16;

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Result<Self, Errno> {
        Ok(Self {
            handle: CapHandle::from_raw(u64_at(b, 0))?,
            out_ptr: u64_at(b, 8),
        })
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.handle.to_raw());
        put_u64(&mut b, 8, self.out_ptr);
        b
    }
}

// The byte layouts above are the C layouts: a user program written against the structs and one
// written against the byte offsets agree.
const _: () = assert!(size_of::<ReservoirCreateArgs>() == ReservoirCreateArgs::SIZE);
const _: () = assert!(align_of::<ReservoirCreateArgs>() == 8);
const _: () = assert!(size_of::<ReservoirStepArgs>() == ReservoirStepArgs::SIZE);
const _: () = assert!(align_of::<ReservoirStepArgs>() == 8);
const _: () = assert!(size_of::<ReservoirReadStateArgs>() == ReservoirReadStateArgs::SIZE);
const _: () = assert!(align_of::<ReservoirReadStateArgs>() == 8);
const _: () = assert!(size_of::<ReservoirModifyWeightsArgs>() == ReservoirModifyWeightsArgs::SIZE);
const _: () = assert!(align_of::<ReservoirModifyWeightsArgs>() == 8);
const _: () = assert!(size_of::<IntrospectArgs>() == IntrospectArgs::SIZE);
const _: () = assert!(align_of::<IntrospectArgs>() == 8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rights;

    fn create() -> ReservoirCreateArgs {
        ReservoirCreateArgs {
            seed: 42,
            units: 100,
            inputs: 1,
            outputs: 1,
            topology: Topology::SparseRandom,
            spectral_radius_q16: Q16_ONE * 9 / 10,
            leak_rate_q16: Q16_ONE / 2,
            input_scaling_q16: Q16_ONE,
            density_q16: Q16_ONE / 10,
        }
    }

    #[test]
    fn create_args_round_trip() {
        let a = create();
        assert_eq!(ReservoirCreateArgs::from_bytes(&a.to_bytes()), Ok(a));
    }

    #[test]
    fn create_args_out_of_range_fields_are_refused() {
        let cases: [(usize, u32); 11] = [
            (8, 0),
            (8, MAX_RESERVOIR_UNITS + 1),
            (12, 0),
            (16, MAX_RESERVOIR_IO + 1),
            (20, 99),
            (24, 0),
            (24, MAX_SPECTRAL_RADIUS_Q16 + 1),
            (28, Q16_ONE + 1),
            (32, 0),
            (32, MAX_INPUT_SCALING_Q16 + 1),
            (36, 0),
        ];
        for (offset, value) in cases {
            let mut b = create().to_bytes();
            put_u32(&mut b, offset, value);
            assert_eq!(
                ReservoirCreateArgs::from_bytes(&b),
                Err(Errno::InvalidArgument),
                "field at {offset} = {value}"
            );
        }
    }

    #[test]
    fn step_args_round_trip_and_bad_lengths_and_handles_refused() {
        let a = ReservoirStepArgs {
            handle: CapHandle::new(3, 7, Rights::STEP),
            input_ptr: 0x1000,
            output_ptr: 0x2000,
            input_len: 1,
            output_len: 1,
        };
        assert_eq!(ReservoirStepArgs::from_bytes(&a.to_bytes()), Ok(a));
        let mut b = a.to_bytes();
        put_u32(&mut b, 24, 0);
        assert_eq!(ReservoirStepArgs::from_bytes(&b), Err(Errno::BadLength));
        let mut b = a.to_bytes();
        put_u32(&mut b, 28, MAX_RESERVOIR_IO + 1);
        assert_eq!(ReservoirStepArgs::from_bytes(&b), Err(Errno::BadLength));
        let mut b = a.to_bytes();
        put_u64(&mut b, 0, u64::MAX);
        assert_eq!(ReservoirStepArgs::from_bytes(&b), Err(Errno::BadHandle));
    }

    #[test]
    fn read_state_modify_and_introspect_args_validate() {
        let r = ReservoirReadStateArgs {
            handle: CapHandle::new(1, 1, Rights::READ),
            buf_ptr: 0x4000,
            buf_len: 100,
            _pad: 0,
        };
        assert_eq!(ReservoirReadStateArgs::from_bytes(&r.to_bytes()), Ok(r));
        let mut b = r.to_bytes();
        put_u32(&mut b, 20, 1);
        assert_eq!(
            ReservoirReadStateArgs::from_bytes(&b),
            Err(Errno::InvalidArgument)
        );

        let m = ReservoirModifyWeightsArgs {
            handle: CapHandle::new(1, 1, Rights::WRITE),
            data_ptr: 0x5000,
            matrix: WeightMatrix::Readout,
            offset: 10,
            count: 4,
            _pad: 0,
        };
        assert_eq!(ReservoirModifyWeightsArgs::from_bytes(&m.to_bytes()), Ok(m));
        let mut b = m.to_bytes();
        put_u32(&mut b, 16, 3);
        assert_eq!(
            ReservoirModifyWeightsArgs::from_bytes(&b),
            Err(Errno::InvalidArgument)
        );

        let i = IntrospectArgs {
            handle: CapHandle::new(2, 9, Rights::READ),
            out_ptr: 0x6000,
        };
        assert_eq!(IntrospectArgs::from_bytes(&i.to_bytes()), Ok(i));
    }
}

//! What introspection returns: the task's reservoir context (the vision's `echo_context_t`) and
//! the debug snapshot (`reservoir_debug_info`) — fixed-size so the syscall copies a known length.

use crate::args::{put_u32, put_u64, u32_at, u64_at};
use crate::Errno;
use core::mem::{align_of, size_of};

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    DenseRandom = 0,
    SparseRandom = 1,
    /// Simple cycle reservoir: one ring of equal weights.
    Ring = 2,
    /// Integer ESN (permutation + clipping), the ring-0 variant.
    IntegerEsn = 3,
}

impl TryFrom<u32> for Topology {
    type Error = Errno;
    fn try_from(v: u32) -> Result<Self, Errno> {
        match v {
            0 => Ok(Self::DenseRandom),
            1 => Ok(Self::SparseRandom),
            2 => Ok(Self::Ring),
            3 => Ok(Self::IntegerEsn),
            _ => Err(Errno::InvalidArgument),
        }
    }
}

/// A reservoir task's context: enough to interpret its state without the weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoContext {
    /// Time steps taken since creation.
    pub step: u64,
    /// Number of the current period of the owning periodic task (0 if not periodic).
    pub period: u64,
    pub units: u32,
    pub topology: Topology,
    pub spectral_radius_q16: u32,
    pub leak_rate_q16: u32,
    /// User address of the shared state page in the reader's address space, 0 if not mapped.
    pub state_addr: u64,
}

impl EchoContext {
    pub const SIZE: usize = 40;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.step);
        put_u64(&mut b, 8, self.period);
        put_u32(&mut b, 16, self.units);
        put_u32(&mut b, 20, self.topology as u32);
        put_u32(&mut b, 24, self.spectral_radius_q16);
        put_u32(&mut b, 28, self.leak_rate_q16);
        put_u64(&mut b, 32, self.state_addr);
        b
    }

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Result<Self, Errno> {
        Ok(Self {
            step: u64_at(b, 0),
            period: u64_at(b, 8),
            units: u32_at(b, 16),
            topology: Topology::try_from(u32_at(b, 20))?,
            spectral_radius_q16: u32_at(b, 24),
            leak_rate_q16: u32_at(b, 28),
            state_addr: u64_at(b, 32),
        })
    }
}

/// Units of the state shown in [`ReservoirDebugInfo::state`] (the full state is read with
/// `reservoir_read_state`).
pub const DEBUG_STATE_UNITS: usize = 32;
/// Steps of recent trajectory kept, and units per step.
pub const TRAJECTORY_STEPS: usize = 16;
pub const TRAJECTORY_UNITS: usize = 4;
/// `memory_capacity_q16` when the kernel has not measured it.
pub const MEMORY_CAPACITY_UNKNOWN: u32 = u32::MAX;

/// The introspection snapshot (`reservoir_debug_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservoirDebugInfo {
    pub context: EchoContext,
    /// Short-term memory capacity (sum over delays of squared correlation), Q16.16, or
    /// [`MEMORY_CAPACITY_UNKNOWN`].
    pub memory_capacity_q16: u32,
    /// Valid entries in `state` (min(units, DEBUG_STATE_UNITS)).
    pub state_len: u32,
    /// Valid rows in `trajectory` (steps recorded so far, at most TRAJECTORY_STEPS).
    pub trajectory_len: u32,
    pub _pad: u32,
    pub deadline_misses: u64,
    pub overruns: u64,
    /// First units of the current state, Q16.16.
    pub state: [i32; DEBUG_STATE_UNITS],
    /// Oldest first: `trajectory[t * TRAJECTORY_UNITS + u]` is unit `u` at step
    /// `context.step - trajectory_len + t`.
    pub trajectory: [i32; TRAJECTORY_STEPS * TRAJECTORY_UNITS],
}

impl ReservoirDebugInfo {
    pub const SIZE: usize = 456;
    const STATE_AT: usize = 72;
    const TRAJECTORY_AT: usize = Self::STATE_AT + DEBUG_STATE_UNITS * 4;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..EchoContext::SIZE].copy_from_slice(&self.context.to_bytes());
        put_u32(&mut b, 40, self.memory_capacity_q16);
        put_u32(&mut b, 44, self.state_len);
        put_u32(&mut b, 48, self.trajectory_len);
        put_u64(&mut b, 56, self.deadline_misses);
        put_u64(&mut b, 64, self.overruns);
        for (i, v) in self.state.iter().enumerate() {
            b[Self::STATE_AT + 4 * i..][..4].copy_from_slice(&v.to_le_bytes());
        }
        for (i, v) in self.trajectory.iter().enumerate() {
            b[Self::TRAJECTORY_AT + 4 * i..][..4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Decodes a snapshot (user side); counts beyond the arrays are refused.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Result<Self, Errno> {
        let mut ctx = [0u8; EchoContext::SIZE];
        ctx.copy_from_slice(&b[..EchoContext::SIZE]);
        let state_len = u32_at(b, 44);
        let trajectory_len = u32_at(b, 48);
        if state_len as usize > DEBUG_STATE_UNITS || trajectory_len as usize > TRAJECTORY_STEPS {
            return Err(Errno::InvalidArgument);
        }
        let word = |o: usize| i32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut state = [0i32; DEBUG_STATE_UNITS];
        for (i, v) in state.iter_mut().enumerate() {
            *v = word(Self::STATE_AT + 4 * i);
        }
        let mut trajectory = [0i32; TRAJECTORY_STEPS * TRAJECTORY_UNITS];
        for (i, v) in trajectory.iter_mut().enumerate() {
            *v = word(Self::TRAJECTORY_AT + 4 * i);
        }
        Ok(Self {
            context: EchoContext::from_bytes(&ctx)?,
            memory_capacity_q16: u32_at(b, 40),
            state_len,
            trajectory_len,
            _pad: 0,
            deadline_misses: u64_at(b, 56),
            overruns: u64_at(b, 64),
            state,
            trajectory,
        })
    }
}

const _: () = assert!(size_of::<EchoContext>() == EchoContext::SIZE);
const _: () = assert!(align_of::<EchoContext>() == 8);
const _: () = assert!(size_of::<ReservoirDebugInfo>() == ReservoirDebugInfo::SIZE);
const _: () = assert!(align_of::<ReservoirDebugInfo>() == 8);
const _: () = assert!(
    ReservoirDebugInfo::TRAJECTORY_AT + TRAJECTORY_STEPS * TRAJECTORY_UNITS * 4
        == ReservoirDebugInfo::SIZE
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_info_round_trips_and_refuses_bad_counts() {
        let mut info = ReservoirDebugInfo {
            context: EchoContext {
                step: 1234,
                period: 99,
                units: 100,
                topology: Topology::IntegerEsn,
                spectral_radius_q16: 58982,
                leak_rate_q16: 65536,
                state_addr: 0x7000_0000,
            },
            memory_capacity_q16: MEMORY_CAPACITY_UNKNOWN,
            state_len: 32,
            trajectory_len: 16,
            _pad: 0,
            deadline_misses: 0,
            overruns: 2,
            state: [0; DEBUG_STATE_UNITS],
            trajectory: [0; TRAJECTORY_STEPS * TRAJECTORY_UNITS],
        };
        for (i, v) in info.state.iter_mut().enumerate() {
            *v = i as i32 * -3;
        }
        for (i, v) in info.trajectory.iter_mut().enumerate() {
            *v = i as i32 * 7 - 100;
        }
        let b = info.to_bytes();
        assert_eq!(ReservoirDebugInfo::from_bytes(&b), Ok(info));
        let mut bad = b;
        put_u32(&mut bad, 48, TRAJECTORY_STEPS as u32 + 1);
        assert_eq!(
            ReservoirDebugInfo::from_bytes(&bad),
            Err(Errno::InvalidArgument)
        );
        let mut bad = b;
        put_u32(&mut bad, 20, 77);
        assert_eq!(
            ReservoirDebugInfo::from_bytes(&bad),
            Err(Errno::InvalidArgument)
        );
    }
}

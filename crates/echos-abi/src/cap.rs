//! Capability handles as a task sees them: one `u64` packing slot index, generation and the
//! rights the holder claims. The kernel trusts none of it; it checks each part against its table.
//!
//! Layout: bits 0..16 slot index, 16..48 generation, 48..52 rights, 52..64 reserved (zero).
//! A handle is therefore always a non-negative `i64`, so `reservoir_create` can return it in
//! `rax` without colliding with an [`Errno`].

use crate::Errno;
use core::ops::BitOr;

/// Rights a capability can carry. A derived capability holds a subset of its parent's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);
    /// Read state and introspect.
    pub const READ: Rights = Rights(1);
    /// Modify weights.
    pub const WRITE: Rights = Rights(1 << 1);
    /// Advance the reservoir one step.
    pub const STEP: Rights = Rights(1 << 2);
    /// Map the weights read-only into the holder's address space.
    pub const MAP: Rights = Rights(1 << 3);
    pub const ALL: Rights = Rights(0b1111);

    /// Rights from raw bits; unknown bits are refused so a future right cannot be claimed early.
    pub const fn from_bits(bits: u64) -> Result<Rights, Errno> {
        if bits & !(Self::ALL.0 as u64) != 0 {
            Err(Errno::InvalidArgument)
        } else {
            Ok(Rights(bits as u8))
        }
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }
}

impl BitOr for Rights {
    type Output = Rights;
    fn bitor(self, rhs: Rights) -> Rights {
        Rights(self.0 | rhs.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CapHandle {
    pub index: u16,
    pub generation: u32,
    pub rights: Rights,
}

const GENERATION_SHIFT: u32 = 16;
const RIGHTS_SHIFT: u32 = 48;
const RESERVED_MASK: u64 = !((1u64 << 52) - 1);

impl CapHandle {
    pub const fn new(index: u16, generation: u32, rights: Rights) -> Self {
        Self {
            index,
            generation,
            rights,
        }
    }

    pub const fn to_raw(self) -> u64 {
        self.index as u64
            | (self.generation as u64) << GENERATION_SHIFT
            | (self.rights.0 as u64) << RIGHTS_SHIFT
    }

    /// Decodes a handle from a register; reserved bits set → [`Errno::BadHandle`].
    pub const fn from_raw(raw: u64) -> Result<Self, Errno> {
        if raw & RESERVED_MASK != 0 {
            return Err(Errno::BadHandle);
        }
        Ok(Self {
            index: raw as u16,
            generation: (raw >> GENERATION_SHIFT) as u32,
            rights: Rights(((raw >> RIGHTS_SHIFT) & 0xF) as u8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_stay_non_negative() {
        for (index, generation, rights) in [
            (0u16, 0u32, Rights::NONE),
            (u16::MAX, u32::MAX, Rights::ALL),
            (17, 3, Rights::READ | Rights::STEP),
        ] {
            let h = CapHandle::new(index, generation, rights);
            let raw = h.to_raw();
            assert!((raw as i64) >= 0);
            assert_eq!(CapHandle::from_raw(raw), Ok(h));
        }
    }

    #[test]
    fn reserved_bits_and_unknown_rights_are_refused() {
        assert_eq!(CapHandle::from_raw(1 << 52), Err(Errno::BadHandle));
        assert_eq!(CapHandle::from_raw(u64::MAX), Err(Errno::BadHandle));
        assert_eq!(Rights::from_bits(0x10), Err(Errno::InvalidArgument));
        assert_eq!(Rights::from_bits(0xF), Ok(Rights::ALL));
    }

    #[test]
    fn rights_subset_logic() {
        let rs = Rights::READ | Rights::STEP;
        assert!(rs.contains(Rights::READ));
        assert!(!rs.contains(Rights::WRITE));
        assert!(Rights::ALL.contains(rs));
        assert_eq!(rs.intersect(Rights::STEP | Rights::MAP), Rights::STEP);
    }
}

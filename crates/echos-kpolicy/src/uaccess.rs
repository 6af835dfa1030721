//! User pointer validation: a task's address-space layout (mapped user regions with permissions)
//! and the check every syscall runs before touching user memory. All arithmetic is checked, so
//! `ptr + len` cannot wrap into the kernel half.
#![forbid(unsafe_code)]

use echos_abi::{Errno, USER_SPACE_END};

/// Lowest user address: page 0 stays unmapped so null pointers fault and are refused here.
pub const MIN_USER_ADDR: u64 = 0x1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Perms {
    pub const R: Perms = Perms {
        read: true,
        write: false,
        execute: false,
    };
    pub const RW: Perms = Perms {
        read: true,
        write: true,
        execute: false,
    };
    pub const RX: Perms = Perms {
        read: true,
        write: false,
        execute: true,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    pub perms: Perms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The region is empty or `start + len` overflows.
    BadRange { start: u64, len: u64 },
    /// The region reaches into page 0 or the kernel half.
    OutsideUserSpace { start: u64, end: u64 },
    /// The region overlaps one already mapped.
    Overlap { start: u64, end: u64 },
    /// The layout's fixed region table is full.
    Full { capacity: usize },
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::BadRange { start, len } => {
                write!(f, "region at {start:#x} of {len} bytes is empty or wraps")
            }
            Self::OutsideUserSpace { start, end } => write!(
                f,
                "region {start:#x}..{end:#x} is outside user space {MIN_USER_ADDR:#x}..{USER_SPACE_END:#x}"
            ),
            Self::Overlap { start, end } => {
                write!(f, "region {start:#x}..{end:#x} overlaps a mapped region")
            }
            Self::Full { capacity } => write!(f, "address space holds at most {capacity} regions"),
        }
    }
}

/// A validated user range the kernel may copy from or to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRange {
    pub start: u64,
    pub len: u64,
}

/// The mapped user regions of one task, kept sorted and disjoint.
#[derive(Clone, Copy, Debug)]
pub struct AddressSpace<const N: usize> {
    regions: [Region; N],
    len: usize,
}

impl<const N: usize> Default for AddressSpace<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> AddressSpace<N> {
    pub const fn new() -> Self {
        Self {
            regions: [Region {
                start: 0,
                end: 0,
                perms: Perms {
                    read: false,
                    write: false,
                    execute: false,
                },
            }; N],
            len: 0,
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    pub fn map(&mut self, start: u64, len: u64, perms: Perms) -> Result<(), LayoutError> {
        let end = start
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(LayoutError::BadRange { start, len })?;
        if start < MIN_USER_ADDR || end > USER_SPACE_END {
            return Err(LayoutError::OutsideUserSpace { start, end });
        }
        if self
            .regions()
            .iter()
            .any(|r| start < r.end && r.start < end)
        {
            return Err(LayoutError::Overlap { start, end });
        }
        if self.len == N {
            return Err(LayoutError::Full { capacity: N });
        }
        let at = self.regions().partition_point(|r| r.start < start);
        self.regions.copy_within(at..self.len, at + 1);
        self.regions[at] = Region { start, end, perms };
        self.len += 1;
        Ok(())
    }

    /// Checks that `[ptr, ptr + len)` lies in user space and is covered by mapped regions
    /// (possibly several adjacent ones) that allow `access`.
    ///
    /// Zero length, or `ptr + len` overflowing: [`Errno::BadLength`]. Any byte in the kernel
    /// half, in page 0, unmapped, or without the permission: [`Errno::BadPointer`].
    pub fn check(&self, ptr: u64, len: u64, access: Access) -> Result<UserRange, Errno> {
        if len == 0 {
            return Err(Errno::BadLength);
        }
        let end = ptr.checked_add(len).ok_or(Errno::BadLength)?;
        if ptr < MIN_USER_ADDR || end > USER_SPACE_END {
            return Err(Errno::BadPointer);
        }
        let mut cursor = ptr;
        let first = self.regions().partition_point(|r| r.end <= ptr);
        for r in &self.regions()[first..] {
            if r.start > cursor {
                break;
            }
            let allowed = match access {
                Access::Read => r.perms.read,
                Access::Write => r.perms.write,
            };
            if !allowed {
                return Err(Errno::BadPointer);
            }
            cursor = r.end;
            if cursor >= end {
                return Ok(UserRange { start: ptr, len });
            }
        }
        Err(Errno::BadPointer)
    }

    /// [`check`](Self::check) for an array of `count` elements of `size` bytes aligned to
    /// `align`: a count whose byte size overflows is [`Errno::BadLength`], a misaligned pointer
    /// [`Errno::BadPointer`].
    pub fn check_array(
        &self,
        ptr: u64,
        count: u64,
        size: u64,
        align: u64,
        access: Access,
    ) -> Result<UserRange, Errno> {
        let len = count.checked_mul(size).ok_or(Errno::BadLength)?;
        if align == 0 || !align.is_power_of_two() || ptr & (align - 1) != 0 {
            return Err(Errno::BadPointer);
        }
        self.check(ptr, len, access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> AddressSpace<8> {
        let mut s = AddressSpace::new();
        s.map(0x40_0000, 0x2000, Perms::RX).unwrap();
        s.map(0x10_0000, 0x1000, Perms::RW).unwrap();
        s.map(0x10_1000, 0x1000, Perms::RW).unwrap();
        s.map(0x20_0000, 0x1000, Perms::R).unwrap();
        s
    }

    #[test]
    fn mapped_ranges_pass_including_across_adjacent_regions() {
        let s = space();
        assert_eq!(
            s.check(0x10_0ff0, 0x20, Access::Write),
            Ok(UserRange {
                start: 0x10_0ff0,
                len: 0x20
            })
        );
        assert!(s.check(0x20_0000, 0x1000, Access::Read).is_ok());
        assert!(s.check(0x40_0000, 0x2000, Access::Read).is_ok());
        assert!(s.check_array(0x10_0000, 1024, 4, 4, Access::Write).is_ok());
    }

    #[test]
    fn kernel_unmapped_overflowing_and_readonly_ranges_are_refused() {
        let s = space();
        let kernel = 0xffff_8000_0000_0000;
        assert_eq!(s.check(kernel, 8, Access::Read), Err(Errno::BadPointer));
        assert_eq!(
            s.check(USER_SPACE_END - 4, 8, Access::Read),
            Err(Errno::BadPointer)
        );
        assert_eq!(s.check(0, 8, Access::Read), Err(Errno::BadPointer));
        assert_eq!(s.check(0x30_0000, 8, Access::Read), Err(Errno::BadPointer));
        // Runs off the end of the mapped pair into a hole.
        assert_eq!(s.check(0x10_1ff8, 16, Access::Read), Err(Errno::BadPointer));
        assert_eq!(
            s.check(0x10_0000, u64::MAX, Access::Read),
            Err(Errno::BadLength)
        );
        assert_eq!(s.check(0x10_0000, 0, Access::Read), Err(Errno::BadLength));
        // Weights are mapped read-only: a write into them is refused.
        assert_eq!(s.check(0x20_0000, 4, Access::Write), Err(Errno::BadPointer));
        assert_eq!(
            s.check_array(0x10_0000, u64::MAX / 2, 4, 4, Access::Read),
            Err(Errno::BadLength)
        );
        assert_eq!(
            s.check_array(0x10_0002, 4, 4, 4, Access::Read),
            Err(Errno::BadPointer)
        );
    }

    #[test]
    fn layout_refuses_overlaps_kernel_half_and_wrap() {
        let mut s = space();
        assert_eq!(
            s.map(0x10_0800, 0x1000, Perms::R),
            Err(LayoutError::Overlap {
                start: 0x10_0800,
                end: 0x10_1800
            })
        );
        assert!(matches!(
            s.map(USER_SPACE_END - 0x1000, 0x2000, Perms::R),
            Err(LayoutError::OutsideUserSpace { .. })
        ));
        assert!(matches!(
            s.map(u64::MAX - 10, 0x1000, Perms::R),
            Err(LayoutError::BadRange { .. })
        ));
        let starts: [u64; 4] = core::array::from_fn(|i| s.regions()[i].start);
        assert_eq!(starts, [0x10_0000, 0x10_1000, 0x20_0000, 0x40_0000]);
    }

    proptest::proptest! {
        #[test]
        fn check_never_accepts_bytes_outside_regions(ptr in 0u64..0x50_0000, len in 0u64..0x3000) {
            let s = space();
            if s.check(ptr, len, Access::Read).is_ok() {
                // Every byte of an accepted range lies in some readable region.
                for probe in ptr..ptr + len {
                    proptest::prop_assert!(s.regions().iter().any(|r| r.perms.read && r.start <= probe && probe < r.end));
                }
            }
        }
    }
}

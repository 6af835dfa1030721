//! Physical frame allocator bookkeeping over the usable ranges of a [`MemoryMap`]: a stack of
//! free frame numbers (O(1) alloc and free) plus a bitmap of allocated frames that catches double
//! frees, both in buffers the caller provides (the kernel carves them out of usable memory and
//! reserves that area in the map first).
//!
//! [`MemoryMap`]: crate::memmap::MemoryMap
#![forbid(unsafe_code)]

use core::fmt;

use crate::memmap::{PhysRange, PAGE_SIZE};

/// Most distinct usable ranges tracked; firmware maps have a handful.
pub const MAX_RANGES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Every usable frame is allocated.
    OutOfFrames,
    /// The address is not 4 KiB aligned.
    Misaligned { addr: u64 },
    /// The frame lies outside every usable range: it never came from this allocator.
    Foreign { addr: u64 },
    /// The frame is already free.
    DoubleFree { addr: u64 },
    /// The free-stack buffer holds fewer entries than there are usable frames.
    StackTooSmall { needed: usize, given: usize },
    /// The bitmap buffer holds fewer words than the usable span needs.
    BitmapTooSmall { needed: usize, given: usize },
    /// More than [`MAX_RANGES`] usable ranges.
    TooManyRanges { given: usize },
    /// Ranges must be page-aligned, non-empty, sorted and disjoint (as `usable_ranges` gives).
    BadRange { index: usize, start: u64, end: u64 },
    /// A frame number does not fit the 32-bit free stack (memory above 16 TiB).
    AboveLimit { addr: u64 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutOfFrames => write!(f, "no free physical frame left"),
            Self::Misaligned { addr } => write!(f, "frame address {addr:#x} is not 4 KiB aligned"),
            Self::Foreign { addr } => {
                write!(f, "frame {addr:#x} is not in any usable memory range")
            }
            Self::DoubleFree { addr } => write!(f, "frame {addr:#x} is already free"),
            Self::StackTooSmall { needed, given } => write!(
                f,
                "free-frame stack holds {given} entries but {needed} usable frames exist"
            ),
            Self::BitmapTooSmall { needed, given } => write!(
                f,
                "frame bitmap has {given} words but the usable span needs {needed}"
            ),
            Self::TooManyRanges { given } => {
                write!(f, "{given} usable ranges exceed the limit of {MAX_RANGES}")
            }
            Self::BadRange { index, start, end } => write!(
                f,
                "usable range #{index} [{start:#x}, {end:#x}) is empty, unaligned, unsorted or overlapping"
            ),
            Self::AboveLimit { addr } => {
                write!(f, "frame {addr:#x} is above the 16 TiB the allocator tracks")
            }
        }
    }
}

/// Buffer sizes a set of usable ranges needs: `(stack_entries, bitmap_words)`. Meaningful for
/// sorted ranges (as `FrameAllocator::new` requires); never panics on others.
pub fn buffer_requirements(ranges: &[PhysRange]) -> (usize, usize) {
    let frames = ranges
        .iter()
        .map(PhysRange::frames)
        .fold(0u64, u64::saturating_add);
    let span = match (ranges.first(), ranges.last()) {
        (Some(f), Some(l)) => l.end.saturating_sub(f.start) / PAGE_SIZE,
        _ => 0,
    };
    (
        usize::try_from(frames).unwrap_or(usize::MAX),
        usize::try_from(span.div_ceil(64)).unwrap_or(usize::MAX),
    )
}

/// The allocator. Frames are handed out lowest address first on a fresh allocator.
pub struct FrameAllocator<'a> {
    ranges: [PhysRange; MAX_RANGES],
    nranges: usize,
    /// Free frame numbers; `stack[..top]` are free.
    stack: &'a mut [u32],
    top: usize,
    /// One bit per frame of the span `[ranges[0].start, ranges[last].end)`; set = allocated.
    allocated: &'a mut [u64],
    base_frame: u64,
    total: usize,
}

impl<'a> FrameAllocator<'a> {
    /// Builds the allocator over `ranges` (sorted, disjoint, page-aligned: the output of
    /// `MemoryMap::usable_ranges`). O(frames) once at boot.
    pub fn new(
        ranges: &[PhysRange],
        stack: &'a mut [u32],
        bitmap: &'a mut [u64],
    ) -> Result<Self, FrameError> {
        if ranges.len() > MAX_RANGES {
            return Err(FrameError::TooManyRanges {
                given: ranges.len(),
            });
        }
        let mut prev_end = 0u64;
        for (index, r) in ranges.iter().enumerate() {
            let bad = r.start >= r.end
                || r.start % PAGE_SIZE != 0
                || r.end % PAGE_SIZE != 0
                || (index > 0 && r.start < prev_end);
            if bad {
                return Err(FrameError::BadRange {
                    index,
                    start: r.start,
                    end: r.end,
                });
            }
            prev_end = r.end;
        }
        if let Some(last) = ranges.last() {
            if (last.end - 1) / PAGE_SIZE > u32::MAX as u64 {
                return Err(FrameError::AboveLimit { addr: last.end });
            }
        }
        let (needed_stack, needed_words) = buffer_requirements(ranges);
        if stack.len() < needed_stack {
            return Err(FrameError::StackTooSmall {
                needed: needed_stack,
                given: stack.len(),
            });
        }
        if bitmap.len() < needed_words {
            return Err(FrameError::BitmapTooSmall {
                needed: needed_words,
                given: bitmap.len(),
            });
        }
        let mut this = Self {
            ranges: [PhysRange::default(); MAX_RANGES],
            nranges: ranges.len(),
            stack,
            top: 0,
            allocated: bitmap,
            base_frame: ranges.first().map_or(0, |r| r.start / PAGE_SIZE),
            total: needed_stack,
        };
        this.ranges[..ranges.len()].copy_from_slice(ranges);
        this.allocated[..needed_words].fill(0);
        // Pushed highest first so the first pops return the lowest frames.
        for r in ranges.iter().rev() {
            let (lo, hi) = (r.start / PAGE_SIZE, r.end / PAGE_SIZE);
            for frame in (lo..hi).rev() {
                this.stack[this.top] = frame as u32;
                this.top += 1;
            }
        }
        Ok(this)
    }

    pub fn total_frames(&self) -> usize {
        self.total
    }

    pub fn free_frames(&self) -> usize {
        self.top
    }

    /// One frame's physical address. O(1).
    pub fn alloc(&mut self) -> Result<u64, FrameError> {
        if self.top == 0 {
            return Err(FrameError::OutOfFrames);
        }
        self.top -= 1;
        let frame = self.stack[self.top] as u64;
        let bit = frame - self.base_frame;
        self.allocated[(bit / 64) as usize] |= 1 << (bit % 64);
        Ok(frame * PAGE_SIZE)
    }

    /// Returns a frame. O(log ranges) for the foreign check, O(1) otherwise.
    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(FrameError::Misaligned { addr });
        }
        if !self.is_usable(addr) {
            return Err(FrameError::Foreign { addr });
        }
        let frame = addr / PAGE_SIZE;
        let bit = frame - self.base_frame;
        let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
        if self.allocated[word] & mask == 0 {
            return Err(FrameError::DoubleFree { addr });
        }
        self.allocated[word] &= !mask;
        // Cannot overflow: a frame is only allocated after being popped, so a slot is free.
        self.stack[self.top] = frame as u32;
        self.top += 1;
        Ok(())
    }

    /// Whether `addr` lies in a usable range (binary search over the sorted ranges).
    pub fn is_usable(&self, addr: u64) -> bool {
        let ranges = &self.ranges[..self.nranges];
        let idx = ranges.partition_point(|r| r.end <= addr);
        ranges.get(idx).is_some_and(|r| r.start <= addr)
    }

    /// Whether a usable frame is currently allocated.
    pub fn is_allocated(&self, addr: u64) -> bool {
        if !self.is_usable(addr) {
            return false;
        }
        let bit = addr / PAGE_SIZE - self.base_frame;
        self.allocated[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::memmap::{MemoryMap, OverlapPolicy, Region, RegionKind};
    use crate::stress::SplitMix64;
    use std::vec;
    use std::vec::Vec;

    fn ranges() -> Vec<PhysRange> {
        vec![
            PhysRange {
                start: 0x1000,
                end: 0x4000,
            },
            PhysRange {
                start: 0x10_0000,
                end: 0x10_2000,
            },
        ]
    }

    #[test]
    fn allocates_lowest_first_until_empty() {
        let r = ranges();
        let (s, w) = buffer_requirements(&r);
        // Span 0x1000..0x10_2000 is 257 frames: 5 bitmap words.
        assert_eq!((s, w), (5, 5));
        let (mut stack, mut bitmap) = (vec![0u32; s], vec![0u64; w]);
        let mut fa = FrameAllocator::new(&r, &mut stack, &mut bitmap).unwrap();
        let got: Vec<u64> = (0..5).map(|_| fa.alloc().unwrap()).collect();
        assert_eq!(got, [0x1000, 0x2000, 0x3000, 0x10_0000, 0x10_1000]);
        assert_eq!(fa.alloc(), Err(FrameError::OutOfFrames));
        fa.free(0x2000).unwrap();
        assert_eq!(fa.alloc(), Ok(0x2000));
    }

    #[test]
    fn detects_double_free_foreign_and_misaligned() {
        let r = ranges();
        let (s, w) = buffer_requirements(&r);
        let (mut stack, mut bitmap) = (vec![0u32; s], vec![0u64; w]);
        let mut fa = FrameAllocator::new(&r, &mut stack, &mut bitmap).unwrap();
        let a = fa.alloc().unwrap();
        assert!(fa.is_allocated(a));
        fa.free(a).unwrap();
        assert_eq!(fa.free(a), Err(FrameError::DoubleFree { addr: a }));
        // Never-allocated usable frame: also a double free.
        assert_eq!(
            fa.free(0x3000),
            Err(FrameError::DoubleFree { addr: 0x3000 })
        );
        for addr in [0, 0x4000, 0x8_0000, 0x10_2000, 0xffff_f000] {
            assert_eq!(fa.free(addr), Err(FrameError::Foreign { addr }));
        }
        assert_eq!(
            fa.free(0x1001),
            Err(FrameError::Misaligned { addr: 0x1001 })
        );
        assert_eq!(fa.free_frames(), 5);
    }

    #[test]
    fn rejects_bad_buffers_and_ranges() {
        let r = ranges();
        let (mut stack, mut bitmap) = (vec![0u32; 4], vec![0u64; 5]);
        assert_eq!(
            FrameAllocator::new(&r, &mut stack, &mut bitmap).err(),
            Some(FrameError::StackTooSmall {
                needed: 5,
                given: 4
            })
        );
        let (mut stack, mut bitmap) = (vec![0u32; 5], vec![0u64; 4]);
        assert_eq!(
            FrameAllocator::new(&r, &mut stack, &mut bitmap).err(),
            Some(FrameError::BitmapTooSmall {
                needed: 5,
                given: 4
            })
        );
        let unsorted = [r[1], r[0]];
        let (mut stack, mut bitmap) = (vec![0u32; 5], vec![0u64; 300]);
        assert!(matches!(
            FrameAllocator::new(&unsorted, &mut stack, &mut bitmap),
            Err(FrameError::BadRange { index: 1, .. })
        ));
        let unaligned = [PhysRange {
            start: 0x1000,
            end: 0x1800,
        }];
        assert!(matches!(
            FrameAllocator::new(&unaligned, &mut stack, &mut bitmap),
            Err(FrameError::BadRange { index: 0, .. })
        ));
    }

    #[test]
    fn works_from_a_memory_map() {
        let m = MemoryMap::<8>::from_regions(
            &[
                Region::new(0, 0x9_fc00, RegionKind::Usable),
                Region::new(0x10_0000, 0x700_0000, RegionKind::Usable),
                Region::new(0x10_0000, 0x20_0000, RegionKind::Kernel),
            ],
            OverlapPolicy::ReservedWins,
        )
        .unwrap();
        let r: Vec<_> = m.usable_ranges().unwrap().collect();
        let (s, w) = buffer_requirements(&r);
        let (mut stack, mut bitmap) = (vec![0u32; s], vec![0u64; w]);
        let mut fa = FrameAllocator::new(&r, &mut stack, &mut bitmap).unwrap();
        assert_eq!(fa.total_frames(), 0x9f + (0x700_0000 - 0x20_0000) / 4096);
        while let Ok(a) = fa.alloc() {
            assert!(
                !(0x10_0000..0x30_0000).contains(&a),
                "kernel frame {a:#x} handed out"
            );
        }
    }

    /// Random alloc/free against a set model.
    #[test]
    fn random_operations_match_model() {
        let r = ranges();
        let (s, w) = buffer_requirements(&r);
        let (mut stack, mut bitmap) = (vec![0u32; s], vec![0u64; w]);
        let mut fa = FrameAllocator::new(&r, &mut stack, &mut bitmap).unwrap();
        let mut held: Vec<u64> = Vec::new();
        let mut rng = SplitMix64::new(3);
        for _ in 0..5000 {
            if rng.below(2) == 0 {
                match fa.alloc() {
                    Ok(a) => {
                        assert!(!held.contains(&a));
                        held.push(a);
                    }
                    Err(e) => {
                        assert_eq!(e, FrameError::OutOfFrames);
                        assert_eq!(held.len(), 5);
                    }
                }
            } else if !held.is_empty() {
                let a = held.swap_remove(rng.below(held.len() as u64) as usize);
                fa.free(a).unwrap();
            }
            assert_eq!(fa.free_frames(), 5 - held.len());
        }
    }
}

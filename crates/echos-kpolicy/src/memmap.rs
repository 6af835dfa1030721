//! The physical memory map: firmware regions (e820 / PVH / multiboot2) plus the kernel's own
//! reservations, validated and normalised into sorted, non-overlapping regions and page-aligned
//! usable ranges that the frame allocator can trust.
//!
//! Overlaps are either resolved conservatively (the most restrictive kind wins, so memory that any
//! source calls reserved is never handed out) or rejected, as the caller chooses. Holes between
//! regions are allowed and simply not reported. Everything lives in fixed-capacity arrays: no
//! allocator exists yet when the map is built.
#![forbid(unsafe_code)]

use core::fmt;

/// Size of a physical frame (x86_64 small page).
pub const PAGE_SIZE: u64 = 4096;

/// What a firmware entry says a region is. The order of variants is the overlap priority:
/// a later variant wins over an earlier one when two regions overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegionKind {
    /// RAM free for the kernel to use.
    Usable,
    /// ACPI tables that may be reclaimed once parsed; kept off limits until then.
    AcpiReclaimable,
    /// Firmware-reserved, MMIO holes, unknown e820 types.
    Reserved,
    /// ACPI non-volatile storage: must survive sleep states.
    AcpiNvs,
    /// Memory the kernel itself occupies (image, boot page tables, allocator metadata).
    Kernel,
    /// RAM reported faulty.
    Bad,
}

impl RegionKind {
    /// Maps an e820 / PVH `hvm_memmap_table_entry` type; unknown types are treated as reserved,
    /// as the ACPI specification asks.
    pub const fn from_e820(kind: u32) -> Self {
        match kind {
            1 => Self::Usable,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Bad,
            _ => Self::Reserved,
        }
    }
}

/// A physical address range `[base, base + len)` with a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub len: u64,
    pub kind: RegionKind,
}

impl Region {
    pub const fn new(base: u64, len: u64, kind: RegionKind) -> Self {
        Self { base, len, kind }
    }

    /// Exclusive end; only meaningful for a region that passed validation.
    pub const fn end(&self) -> u64 {
        self.base + self.len
    }
}

/// A page-aligned physical range `[start, end)` of usable frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PhysRange {
    pub start: u64,
    pub end: u64,
}

impl PhysRange {
    /// Whole frames in the range (zero for an inverted range).
    pub const fn frames(&self) -> u64 {
        self.end.saturating_sub(self.start) / PAGE_SIZE
    }
}

/// What to do when two input regions overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// The more restrictive kind wins on the overlap (see [`RegionKind`] order).
    ReservedWins,
    /// Any overlap between regions of different kinds is an error. Overlaps of the same kind are
    /// merged, since firmware often repeats a boundary.
    Reject,
}

/// Why a memory map was refused. Each variant names the offending input region by its index in
/// the order regions were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemMapError {
    /// The region has length zero.
    ZeroLength { index: usize, base: u64 },
    /// `base + len` does not fit in 64 bits.
    Overflow { index: usize, base: u64, len: u64 },
    /// Two regions of different kinds overlap and the policy is [`OverlapPolicy::Reject`].
    Overlap {
        first: usize,
        second: usize,
        first_kind: RegionKind,
        second_kind: RegionKind,
    },
    /// More input regions than the map's capacity.
    TooManyRegions { capacity: usize },
    /// The map has not been normalised yet (call [`MemoryMap::normalise`]).
    NotNormalised,
}

impl fmt::Display for MemMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroLength { index, base } => {
                write!(f, "memory region #{index} at {base:#x} has length zero")
            }
            Self::Overflow { index, base, len } => write!(
                f,
                "memory region #{index} at {base:#x} with length {len:#x} runs past the end of the 64-bit address space"
            ),
            Self::Overlap {
                first,
                second,
                first_kind,
                second_kind,
            } => write!(
                f,
                "memory regions #{first} ({first_kind:?}) and #{second} ({second_kind:?}) overlap"
            ),
            Self::TooManyRegions { capacity } => {
                write!(f, "more than {capacity} memory regions given")
            }
            Self::NotNormalised => write!(f, "memory map used before normalise()"),
        }
    }
}

/// A memory map of at most `N` input regions. `N` bounds every loop here (normalisation is
/// O(N²), run once at boot).
pub struct MemoryMap<const N: usize> {
    input: [Region; N],
    input_len: usize,
    /// Normalised regions: sorted, disjoint, adjacent same-kind regions merged. Normalising can
    /// split a region around a higher-priority one, so it needs up to 2N - 1 entries.
    out: [[Region; N]; 2],
    out_len: usize,
    normalised: bool,
}

impl<const N: usize> Default for MemoryMap<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MemoryMap<N> {
    const EMPTY: Region = Region::new(0, 0, RegionKind::Reserved);

    pub const fn new() -> Self {
        Self {
            input: [Self::EMPTY; N],
            input_len: 0,
            out: [[Self::EMPTY; N]; 2],
            out_len: 0,
            normalised: false,
        }
    }

    /// Adds one region (firmware entry or the kernel's own reservation), checking it alone.
    pub fn add(&mut self, region: Region) -> Result<(), MemMapError> {
        let index = self.input_len;
        if index == N {
            return Err(MemMapError::TooManyRegions { capacity: N });
        }
        if region.len == 0 {
            return Err(MemMapError::ZeroLength {
                index,
                base: region.base,
            });
        }
        if region.base.checked_add(region.len).is_none() {
            return Err(MemMapError::Overflow {
                index,
                base: region.base,
                len: region.len,
            });
        }
        self.input[index] = region;
        self.input_len += 1;
        self.normalised = false;
        Ok(())
    }

    /// Builds a map from a slice of regions and normalises it.
    pub fn from_regions(regions: &[Region], policy: OverlapPolicy) -> Result<Self, MemMapError> {
        let mut map = Self::new();
        for r in regions {
            map.add(*r)?;
        }
        map.normalise(policy)?;
        Ok(map)
    }

    /// The regions as added.
    pub fn input(&self) -> &[Region] {
        &self.input[..self.input_len]
    }

    /// Sorts, resolves overlaps and merges. Works on elementary intervals between the sorted
    /// boundaries of all regions: each takes the highest-priority kind among the regions covering
    /// it, and intervals no region covers are holes.
    pub fn normalise(&mut self, policy: OverlapPolicy) -> Result<(), MemMapError> {
        let n = self.input_len;
        if policy == OverlapPolicy::Reject {
            for i in 0..n {
                for j in (i + 1)..n {
                    let (a, b) = (self.input[i], self.input[j]);
                    if a.kind != b.kind && a.base < b.end() && b.base < a.end() {
                        return Err(MemMapError::Overlap {
                            first: i,
                            second: j,
                            first_kind: a.kind,
                            second_kind: b.kind,
                        });
                    }
                }
            }
        }
        // 2N boundaries on the stack (2 KiB for N = 128): no allocator exists at this point.
        let mut bounds = BoundaryBuf::<N>::new();
        let mut nb = 0usize;
        for r in self.input() {
            bounds.set(nb, r.base);
            bounds.set(nb + 1, r.end());
            nb += 2;
        }
        // Insertion sort: nb ≤ 2N, run once at boot.
        for i in 1..nb {
            let mut j = i;
            while j > 0 && bounds.get(j - 1) > bounds.get(j) {
                let (x, y) = (bounds.get(j - 1), bounds.get(j));
                bounds.set(j - 1, y);
                bounds.set(j, x);
                j -= 1;
            }
        }
        self.out_len = 0;
        for i in 0..nb.saturating_sub(1) {
            let (lo, hi) = (bounds.get(i), bounds.get(i + 1));
            if lo == hi {
                continue;
            }
            let mut kind: Option<RegionKind> = None;
            for r in &self.input[..n] {
                if r.base <= lo && hi <= r.end() {
                    kind = Some(match kind {
                        Some(k) if k >= r.kind => k,
                        _ => r.kind,
                    });
                }
            }
            let Some(kind) = kind else { continue };
            if self.out_len > 0 {
                let last = self.out_slot(self.out_len - 1);
                if last.kind == kind && last.end() == lo {
                    last.len += hi - lo;
                    continue;
                }
            }
            // At most 2n - 1 elementary intervals exist, so this never exceeds 2N.
            *self.out_slot(self.out_len) = Region::new(lo, hi - lo, kind);
            self.out_len += 1;
        }
        self.normalised = true;
        Ok(())
    }

    fn out_slot(&mut self, i: usize) -> &mut Region {
        &mut self.out[i / N][i % N]
    }

    /// The normalised regions in address order.
    pub fn regions(&self) -> Result<impl Iterator<Item = Region> + '_, MemMapError> {
        if !self.normalised {
            return Err(MemMapError::NotNormalised);
        }
        Ok((0..self.out_len).map(move |i| self.out[i / N][i % N]))
    }

    /// Usable regions shrunk inwards to page boundaries; ranges that hold no whole page vanish.
    pub fn usable_ranges(&self) -> Result<impl Iterator<Item = PhysRange> + '_, MemMapError> {
        Ok(self.regions()?.filter_map(|r| {
            if r.kind != RegionKind::Usable {
                return None;
            }
            let start = r.base.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
            let end = r.end() & !(PAGE_SIZE - 1);
            (start < end).then_some(PhysRange { start, end })
        }))
    }

    /// Total usable bytes after page alignment.
    pub fn usable_bytes(&self) -> Result<u64, MemMapError> {
        Ok(self.usable_ranges()?.map(|r| r.end - r.start).sum())
    }
}

/// Boundary storage: 2N entries, two halves so `N` need not be doubled in a const expression.
struct BoundaryBuf<const N: usize> {
    v: [[u64; N]; 2],
}

impl<const N: usize> BoundaryBuf<N> {
    fn new() -> Self {
        Self { v: [[0; N]; 2] }
    }
    fn get(&self, i: usize) -> u64 {
        self.v[i / N][i % N]
    }
    fn set(&mut self, i: usize, x: u64) {
        self.v[i / N][i % N] = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::SplitMix64;
    use RegionKind::*;

    fn collect<const N: usize>(m: &MemoryMap<N>) -> std::vec::Vec<Region> {
        m.regions().unwrap().collect()
    }
    extern crate std;

    #[test]
    fn sorts_merges_and_keeps_holes() {
        let m = MemoryMap::<8>::from_regions(
            &[
                Region::new(0x10_0000, 0x10_0000, Usable),
                Region::new(0, 0x9_f000, Usable),
                Region::new(0x20_0000, 0x10_0000, Usable),
                Region::new(0xf_0000, 0x1_0000, Reserved),
            ],
            OverlapPolicy::Reject,
        )
        .unwrap();
        assert_eq!(
            collect(&m),
            [
                Region::new(0, 0x9_f000, Usable),
                Region::new(0xf_0000, 0x1_0000, Reserved),
                Region::new(0x10_0000, 0x20_0000, Usable),
            ]
        );
    }

    #[test]
    fn reserved_wins_inside_usable() {
        let m = MemoryMap::<4>::from_regions(
            &[
                Region::new(0, 0x10000, Usable),
                Region::new(0x5000, 0x1000, Kernel),
            ],
            OverlapPolicy::ReservedWins,
        )
        .unwrap();
        assert_eq!(
            collect(&m),
            [
                Region::new(0, 0x5000, Usable),
                Region::new(0x5000, 0x1000, Kernel),
                Region::new(0x6000, 0xa000, Usable),
            ]
        );
    }

    #[test]
    fn most_restrictive_kind_wins_among_non_usable() {
        let m = MemoryMap::<4>::from_regions(
            &[
                Region::new(0, 0x3000, AcpiReclaimable),
                Region::new(0x1000, 0x1000, Bad),
                Region::new(0x2000, 0x2000, Reserved),
            ],
            OverlapPolicy::ReservedWins,
        )
        .unwrap();
        assert_eq!(
            collect(&m),
            [
                Region::new(0, 0x1000, AcpiReclaimable),
                Region::new(0x1000, 0x1000, Bad),
                Region::new(0x2000, 0x2000, Reserved),
            ]
        );
    }

    #[test]
    fn reject_policy_names_both_regions() {
        let err = MemoryMap::<4>::from_regions(
            &[
                Region::new(0, 0x1000, Usable),
                Region::new(0x8000, 0x1000, Usable),
                Region::new(0x8800, 0x1000, Reserved),
            ],
            OverlapPolicy::Reject,
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            MemMapError::Overlap {
                first: 1,
                second: 2,
                first_kind: Usable,
                second_kind: Reserved
            }
        );
        // Same-kind overlap is merged, not refused.
        let m = MemoryMap::<4>::from_regions(
            &[
                Region::new(0, 0x2000, Usable),
                Region::new(0x1000, 0x2000, Usable),
            ],
            OverlapPolicy::Reject,
        )
        .unwrap();
        assert_eq!(collect(&m), [Region::new(0, 0x3000, Usable)]);
    }

    #[test]
    fn bad_regions_are_named() {
        let mut m = MemoryMap::<2>::new();
        m.add(Region::new(0, 0x1000, Usable)).unwrap();
        assert_eq!(
            m.add(Region::new(0x5000, 0, Usable)),
            Err(MemMapError::ZeroLength {
                index: 1,
                base: 0x5000
            })
        );
        assert_eq!(
            m.add(Region::new(u64::MAX - 10, 11, Reserved)),
            Err(MemMapError::Overflow {
                index: 1,
                base: u64::MAX - 10,
                len: 11
            })
        );
        m.add(Region::new(u64::MAX - 10, 10, Reserved)).unwrap();
        assert_eq!(
            m.add(Region::new(0x9000, 1, Usable)),
            Err(MemMapError::TooManyRegions { capacity: 2 })
        );
        assert!(matches!(m.regions(), Err(MemMapError::NotNormalised)));
        m.normalise(OverlapPolicy::ReservedWins).unwrap();
        assert_eq!(m.regions().unwrap().count(), 2);
        assert!(std::format!("{}", MemMapError::ZeroLength { index: 3, base: 16 }).contains("#3"));
    }

    #[test]
    fn usable_ranges_are_page_aligned_inwards() {
        let m = MemoryMap::<4>::from_regions(
            &[
                Region::new(0x1234, 0x3000, Usable),
                Region::new(0x10_0000, 0x800, Usable),
                Region::new(0x20_0000, 0x2000, Usable),
            ],
            OverlapPolicy::Reject,
        )
        .unwrap();
        let r: std::vec::Vec<_> = m.usable_ranges().unwrap().collect();
        assert_eq!(
            r,
            [
                PhysRange {
                    start: 0x2000,
                    end: 0x4000
                },
                PhysRange {
                    start: 0x20_0000,
                    end: 0x20_2000
                }
            ]
        );
        assert_eq!(m.usable_bytes().unwrap(), 0x4000);
    }

    #[test]
    fn e820_types() {
        assert_eq!(RegionKind::from_e820(1), Usable);
        assert_eq!(RegionKind::from_e820(2), Reserved);
        assert_eq!(RegionKind::from_e820(3), AcpiReclaimable);
        assert_eq!(RegionKind::from_e820(4), AcpiNvs);
        assert_eq!(RegionKind::from_e820(5), Bad);
        assert_eq!(RegionKind::from_e820(0xdead), Reserved);
    }

    /// Random maps against a brute-force model: at sampled addresses the normalised kind must be
    /// the highest kind among covering inputs (or a hole), and the output must be sorted,
    /// disjoint and maximally merged.
    #[test]
    fn random_maps_match_model() {
        const KINDS: [RegionKind; 6] = [Usable, AcpiReclaimable, Reserved, AcpiNvs, Kernel, Bad];
        let mut rng = SplitMix64::new(7);
        for _ in 0..300 {
            let n = 1 + rng.below(40) as usize;
            let mut input = std::vec::Vec::new();
            for _ in 0..n {
                let base = rng.below(1 << 20) * 16;
                let len = 1 + rng.below(1 << 18);
                let kind = KINDS[rng.below(6) as usize];
                input.push(Region::new(base, len, kind));
            }
            let m = MemoryMap::<40>::from_regions(&input, OverlapPolicy::ReservedWins).unwrap();
            let out = collect(&m);
            for w in out.windows(2) {
                assert!(w[0].end() <= w[1].base, "unsorted or overlapping: {w:?}");
                assert!(
                    !(w[0].end() == w[1].base && w[0].kind == w[1].kind),
                    "unmerged: {w:?}"
                );
            }
            for _ in 0..200 {
                let a = rng.below((1 << 24) + (1 << 18));
                let want = input
                    .iter()
                    .filter(|r| r.base <= a && a < r.end())
                    .map(|r| r.kind)
                    .max();
                let got = out
                    .iter()
                    .find(|r| r.base <= a && a < r.end())
                    .map(|r| r.kind);
                assert_eq!(got, want, "address {a:#x}");
            }
        }
    }
}

//! Physical memory at boot: the firmware map plus the kernel's reservations, normalised by
//! `echos_kpolicy::memmap`; the frame allocator's buffers, the kernel heap and the reservoir pools
//! carved out of usable RAM; then the kernel page tables (guard pages, W^X).

use core::fmt;
use linked_list_allocator::LockedHeap;

use echos_kpolicy::frames::{self, FrameAllocator, FrameError};
use echos_kpolicy::memmap::{MemMapError, MemoryMap, OverlapPolicy, PhysRange, Region, RegionKind};
use echos_kpolicy::pool::{self, Pool, PoolError};

use crate::arch;
use crate::arch::phys::ClaimError;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Kernel heap (boot-time structures, test bookkeeping; never touched on a step path).
pub const HEAP_SIZE: u64 = 4 << 20;
/// Reservoirs the reservoir pool is sized for: 1000 units, 10 % connectivity, 8 inputs.
pub const POOL_RESERVOIRS: usize = 16;
pub const POOL_UNITS: usize = 1000;
pub const POOL_CONNECTIVITY_PERMILLE: usize = 100;
pub const POOL_INPUTS: usize = 8;
/// A separate pool for the allocation stress measurement, which needs an empty pool.
pub const STRESS_POOL_SIZE: u64 = 4 << 20;
const MAP_CAPACITY: usize = 80;

/// Bytes of the reservoir pool: the footprint of `POOL_RESERVOIRS` reservoirs with the TLSF
/// margin documented in `echos_kpolicy::pool` (×1.1 plus 64 B per block, 7 blocks each).
pub const fn reservoir_pool_size() -> u64 {
    let one = pool::reservoir_footprint(POOL_UNITS, POOL_CONNECTIVITY_PERMILLE, POOL_INPUTS);
    let with_margin = one + one / 10 + 7 * 64;
    ((with_margin * POOL_RESERVOIRS) as u64).div_ceil(4096) * 4096
}

#[derive(Debug, Clone, Copy)]
pub enum MemoryError {
    Map(MemMapError),
    Frames(FrameError),
    Claim(ClaimError),
    Pool(PoolError),
    /// No usable range is large enough for the boot-time carve-outs.
    NotEnoughMemory {
        needed: u64,
        largest: u64,
    },
    /// Page tables could not be built.
    Paging,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Map(e) => write!(f, "memory map: {e}"),
            Self::Frames(e) => write!(f, "frame allocator: {e}"),
            Self::Claim(e) => write!(f, "claiming memory: {e}"),
            Self::Pool(e) => write!(f, "reservoir pool: {e}"),
            Self::NotEnoughMemory { needed, largest } => write!(
                f,
                "not enough RAM: the kernel needs {needed} contiguous bytes, the largest usable range has {largest}"
            ),
            Self::Paging => write!(f, "no frame left for the kernel page tables"),
        }
    }
}

impl From<MemMapError> for MemoryError {
    fn from(e: MemMapError) -> Self {
        Self::Map(e)
    }
}
impl From<FrameError> for MemoryError {
    fn from(e: FrameError) -> Self {
        Self::Frames(e)
    }
}
impl From<ClaimError> for MemoryError {
    fn from(e: ClaimError) -> Self {
        Self::Claim(e)
    }
}
impl From<PoolError> for MemoryError {
    fn from(e: PoolError) -> Self {
        Self::Pool(e)
    }
}

/// Builds the normalised map of firmware regions plus the kernel's own reservations.
pub fn build_map(
    firmware: &[Region],
    reserved: &[Region],
) -> Result<MemoryMap<MAP_CAPACITY>, MemMapError> {
    let mut map = MemoryMap::new();
    for r in firmware.iter().chain(reserved) {
        map.add(*r)?;
    }
    map.normalise(OverlapPolicy::ReservedWins)?;
    Ok(map)
}

/// The kernel's reservations: low memory (BIOS data, real-mode structures) and its own image.
pub fn kernel_reservations() -> [Region; 2] {
    let k = arch::phys::kernel_layout();
    [
        Region::new(0, 1 << 20, RegionKind::Reserved),
        Region::new(k.start, k.end - k.start, RegionKind::Kernel),
    ]
}

fn collect_ranges(
    map: &MemoryMap<MAP_CAPACITY>,
    out: &mut [PhysRange; frames::MAX_RANGES],
) -> Result<usize, MemoryError> {
    let mut n = 0;
    for r in map.usable_ranges()? {
        if n == out.len() {
            return Err(FrameError::TooManyRanges { given: n + 1 }.into());
        }
        out[n] = r;
        n += 1;
    }
    Ok(n)
}

/// Where each boot-time carve-out went.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub frame_stack: PhysRange,
    pub frame_bitmap: PhysRange,
    pub heap: PhysRange,
    pub reservoir_pool: PhysRange,
    pub stress_pool: PhysRange,
}

pub struct Memory {
    pub map: MemoryMap<MAP_CAPACITY>,
    pub frames: FrameAllocator<'static>,
    pub layout: Layout,
    pub paging: arch::paging::PagingReport,
    pub reservoir_pool: Pool<'static>,
    pub stress_pool: Pool<'static>,
    pub usable_bytes: u64,
}

/// Sets up all of physical memory from the firmware regions. Runs once at boot.
pub fn init(firmware: &[Region], nx: bool) -> Result<Memory, MemoryError> {
    let first = build_map(firmware, &kernel_reservations())?;
    let mut ranges = [PhysRange::default(); frames::MAX_RANGES];
    let n = collect_ranges(&first, &mut ranges)?;
    let (stack_entries, bitmap_words) = frames::buffer_requirements(&ranges[..n]);
    let page = |b: u64| b.div_ceil(4096) * 4096;
    let sizes = [
        page(stack_entries as u64 * 4),
        page(bitmap_words as u64 * 8),
        HEAP_SIZE,
        reservoir_pool_size(),
        STRESS_POOL_SIZE,
    ];
    let needed: u64 = sizes.iter().sum();
    let largest = ranges[..n]
        .iter()
        .max_by_key(|r| r.end - r.start)
        .copied()
        .unwrap_or_default();
    if largest.end - largest.start < needed {
        return Err(MemoryError::NotEnoughMemory {
            needed,
            largest: largest.end - largest.start,
        });
    }
    // Carve from the top of the largest range, leaving low memory to the frame allocator.
    let mut cursor = largest.end;
    let mut carved = [PhysRange::default(); 5];
    for (c, size) in carved.iter_mut().zip(sizes) {
        cursor -= size;
        *c = PhysRange {
            start: cursor,
            end: cursor + size,
        };
    }
    let layout = Layout {
        frame_stack: carved[0],
        frame_bitmap: carved[1],
        heap: carved[2],
        reservoir_pool: carved[3],
        stress_pool: carved[4],
    };
    let carve_region = Region::new(cursor, largest.end - cursor, RegionKind::Kernel);
    let [low, image] = kernel_reservations();
    let map = build_map(firmware, &[low, image, carve_region])?;
    let n = collect_ranges(&map, &mut ranges)?;
    let usable_bytes = map.usable_bytes()?;

    let stack = arch::phys::claim_zeroed::<u32>(layout.frame_stack.start, stack_entries)?;
    let bitmap = arch::phys::claim_zeroed::<u64>(layout.frame_bitmap.start, bitmap_words)?;
    let mut frames = FrameAllocator::new(&ranges[..n], stack, bitmap)?;

    let paging =
        arch::paging::init(nx, &mut || frames.alloc().ok()).map_err(|_| MemoryError::Paging)?;

    let heap = arch::phys::claim(layout.heap.start, HEAP_SIZE)?;
    HEAP.lock().init_from_slice(heap);
    let reservoir_pool = Pool::new(arch::phys::claim(
        layout.reservoir_pool.start,
        layout.reservoir_pool.end - layout.reservoir_pool.start,
    )?)?;
    let stress_pool = Pool::new(arch::phys::claim(
        layout.stress_pool.start,
        STRESS_POOL_SIZE,
    )?)?;
    Ok(Memory {
        map,
        frames,
        layout,
        paging,
        reservoir_pool,
        stress_pool,
        usable_bytes,
    })
}

/// Heap bytes in use and free, for the boot report.
pub fn heap_usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}

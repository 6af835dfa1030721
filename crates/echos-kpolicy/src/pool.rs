//! Reservoir memory pools: O(1), bounded-time allocation and free with TLSF (the `rlsf` crate,
//! Masmano et al., ECRTS 2004) over one memory region the caller provides, with typed errors and
//! usage statistics. The kernel gives each reservoir task a pool so allocation never depends on
//! what other tasks did.
//!
//! # Sizing for reservoirs of 100–1000 neurons
//! [`reservoir_footprint`] gives the bytes of the integer sparse reservoir in
//! `echos_core::integer` (Q1.15 `i16` weights, `u16` column indices, `u32` row offsets, `i16`
//! state + scratch, one `i16` bias per unit), each array its own block:
//!
//! | units | connectivity | inputs | CSR values | CSR columns | row offsets | total (all blocks) |
//! |------:|-------------:|-------:|-----------:|------------:|------------:|-------------------:|
//! | 100   | 10 %         | 1      | 2,000 B    | 2,000 B     | 404 B       | 5,204 B            |
//! | 500   | 10 %         | 1      | 50,000 B   | 50,000 B    | 2,004 B     | 106,004 B          |
//! | 1000  | 10 %         | 1      | 200,000 B  | 200,000 B   | 4,004 B     | 412,004 B          |
//! | 1000  | 10 %         | 8      | 200,000 B  | 200,000 B   | 4,004 B     | 426,004 B          |
//!
//! The largest single block is the 200 kB value array of a 1000-unit reservoir; [`MAX_BLOCK`]
//! (32 MiB − 32 B with `FLLEN` = 20) leaves ample room for denser or wider reservoirs. Each block
//! costs a 16-byte header and rounds up to 32 bytes, and TLSF looks for a free block up to 1/16
//! larger than the request (`SLLEN` = 16), so a fresh pool of 1.1 × the footprint plus 64 B per
//! block fits one reservoir (a test allocates exactly that). A 1000-unit reservoir with `i32`
//! (Q16.16) values instead of `i16` would need 200 kB more for the values array.
#![allow(unsafe_code)]

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use rlsf::Tlsf;

/// First-level index count: blocks up to `(32 << FLLEN) - 32` bytes on 64-bit targets.
pub const FLLEN: usize = 20;
/// Second-level subdivisions per first level: bounds internal fragmentation to 1/16.
pub const SLLEN: usize = 16;
/// Largest block one allocation may request.
pub const MAX_BLOCK: usize = (rlsf::GRANULARITY << FLLEN) - rlsf::GRANULARITY;

type ReservoirTlsf<'p> = Tlsf<'p, u32, u32, FLLEN, SLLEN>;

/// Bytes of the integer sparse reservoir's arrays: `units` neurons, `connectivity_permille`
/// nonzeros per thousand entries of the recurrent matrix (rounded to whole entries per row),
/// `inputs` input channels. See the module table.
pub const fn reservoir_footprint(
    units: usize,
    connectivity_permille: usize,
    inputs: usize,
) -> usize {
    let per_row = (units * connectivity_permille + 500) / 1000;
    let nnz = units * per_row;
    let values = nnz * 2;
    let columns = nnz * 2;
    let row_offsets = (units + 1) * 4;
    let w_in = units * inputs * 2;
    let bias = units * 2;
    let state_and_scratch = units * 2 * 2;
    values + columns + row_offsets + w_in + bias + state_and_scratch
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// No free block large enough; `used` and `capacity` say how full the pool is.
    Exhausted {
        requested: usize,
        used: usize,
        capacity: usize,
    },
    /// Zero-byte blocks are refused: they would hide a sizing bug.
    ZeroSize,
    /// Alignment must be a power of two no larger than 4096.
    BadAlign { align: usize },
    /// Larger than [`MAX_BLOCK`].
    TooLarge { requested: usize },
    /// The block belongs to another pool; it was not freed.
    Foreign { addr: usize },
    /// The region given to [`Pool::new`] cannot hold even one block.
    RegionTooSmall { len: usize },
    /// A typed view was asked of a block whose size or alignment does not fit the type.
    BadView {
        size: usize,
        align: usize,
        elem_size: usize,
        elem_align: usize,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exhausted {
                requested,
                used,
                capacity,
            } => write!(
                f,
                "pool exhausted: {requested} bytes requested with {used} of {capacity} bytes in use"
            ),
            Self::ZeroSize => write!(f, "a zero-byte block was requested"),
            Self::BadAlign { align } => {
                write!(f, "alignment {align} is not a power of two up to 4096")
            }
            Self::TooLarge { requested } => write!(
                f,
                "{requested} bytes exceed the largest pool block ({MAX_BLOCK} bytes)"
            ),
            Self::Foreign { addr } => write!(f, "block at {addr:#x} does not belong to this pool"),
            Self::RegionTooSmall { len } => {
                write!(f, "a {len}-byte region is too small for a pool")
            }
            Self::BadView {
                size,
                align,
                elem_size,
                elem_align,
            } => write!(
                f,
                "a {size}-byte block aligned to {align} cannot be viewed as elements of {elem_size} bytes aligned to {elem_align}"
            ),
        }
    }
}

/// Usage figures. `used` counts requested payload bytes; TLSF headers and rounding are not in
/// it, so an allocation can fail a little before `free` reaches zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub capacity: usize,
    pub used: usize,
    pub free: usize,
    pub high_water: usize,
    pub live_blocks: usize,
    pub allocations: u64,
    pub frees: u64,
    pub failed_allocations: u64,
}

/// An allocated block. Not `Clone`: freeing consumes it, so a block cannot be freed twice.
/// Dropping it without [`Pool::free`] leaks its memory inside the pool.
#[derive(Debug)]
pub struct PoolBlock<'p> {
    ptr: NonNull<u8>,
    size: usize,
    align: usize,
    _pool: PhantomData<&'p mut [u8]>,
}

/// Element types whose every bit pattern, all-zero included, is a valid value.
pub trait PlainInt: Copy + sealed::Sealed {}
mod sealed {
    pub trait Sealed {}
}
macro_rules! plain_int {
    ($($t:ty),*) => {$(impl sealed::Sealed for $t {} impl PlainInt for $t {})*};
}
plain_int!(u8, i8, u16, i16, u32, i32, u64, i64);

impl<'p> PoolBlock<'p> {
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The block's memory, possibly uninitialised.
    pub fn as_uninit_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: the pool handed out `size` bytes at `ptr`, valid while the pool's memory is
        // borrowed ('p). This handle is their only owner (it is neither Clone nor Copy) and
        // `&mut self` makes the returned borrow exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.size) }
    }

    /// Zeroes the block (O(size)) and views it as a slice of `T`.
    pub fn zeroed_as<T: PlainInt>(&mut self) -> Result<&mut [T], PoolError> {
        let (elem_size, elem_align) = (core::mem::size_of::<T>(), core::mem::align_of::<T>());
        if !self.size.is_multiple_of(elem_size) || !self.addr().is_multiple_of(elem_align) {
            return Err(PoolError::BadView {
                size: self.size,
                align: self.align,
                elem_size,
                elem_align,
            });
        }
        for b in self.as_uninit_mut() {
            b.write(0);
        }
        // SAFETY: all `size` bytes were just initialised to zero, a valid `T` (PlainInt); the
        // address is aligned for `T` and `size` is a whole number of `T`s (both checked above);
        // exclusivity as in `as_uninit_mut`.
        Ok(unsafe {
            core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<T>(), self.size / elem_size)
        })
    }
}

/// A TLSF pool over one caller-provided region.
pub struct Pool<'p> {
    tlsf: ReservoirTlsf<'p>,
    start: usize,
    end: usize,
    stats: PoolStats,
}

impl<'p> Pool<'p> {
    /// Takes the whole region. O(region / MAX_BLOCK) once, then every operation is O(1).
    pub fn new(region: &'p mut [MaybeUninit<u8>]) -> Result<Self, PoolError> {
        let len = region.len();
        let start = region.as_ptr() as usize;
        let mut tlsf = ReservoirTlsf::new();
        tlsf.insert_free_block(region);
        // A region too small for TLSF's alignment and sentinel comes back unused: probe it.
        let probe = Layout::from_size_align(1, 1).map_err(|_| PoolError::ZeroSize)?;
        match tlsf.allocate(probe) {
            Some(p) => {
                // SAFETY: `p` was just allocated by `tlsf` with alignment 1.
                unsafe { tlsf.deallocate(p, 1) };
            }
            None => return Err(PoolError::RegionTooSmall { len }),
        }
        Ok(Self {
            tlsf,
            start,
            end: start + len,
            stats: PoolStats {
                capacity: len,
                free: len,
                ..PoolStats::default()
            },
        })
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Fraction of capacity in use, in percent (0–100).
    pub fn occupancy_percent(&self) -> usize {
        self.stats.used * 100 / self.stats.capacity.max(1)
    }

    /// Allocates `size` bytes aligned to `align`. O(1).
    pub fn alloc(&mut self, size: usize, align: usize) -> Result<PoolBlock<'p>, PoolError> {
        if size == 0 {
            return Err(PoolError::ZeroSize);
        }
        if !align.is_power_of_two() || align > 4096 {
            return Err(PoolError::BadAlign { align });
        }
        if size > MAX_BLOCK {
            return Err(PoolError::TooLarge { requested: size });
        }
        let layout =
            Layout::from_size_align(size, align).map_err(|_| PoolError::BadAlign { align })?;
        let Some(ptr) = self.tlsf.allocate(layout) else {
            self.stats.failed_allocations += 1;
            return Err(PoolError::Exhausted {
                requested: size,
                used: self.stats.used,
                capacity: self.stats.capacity,
            });
        };
        let s = &mut self.stats;
        s.used += size;
        s.free = s.capacity - s.used;
        s.high_water = s.high_water.max(s.used);
        s.live_blocks += 1;
        s.allocations += 1;
        Ok(PoolBlock {
            ptr,
            size,
            align,
            _pool: PhantomData,
        })
    }

    /// Whether `block` was allocated from this pool.
    pub fn owns(&self, block: &PoolBlock<'_>) -> bool {
        (self.start..self.end).contains(&block.addr())
    }

    /// Frees a block. O(1). A block of another pool is refused (and stays allocated there).
    pub fn free(&mut self, block: PoolBlock<'p>) -> Result<(), PoolError> {
        if !self.owns(&block) {
            return Err(PoolError::Foreign { addr: block.addr() });
        }
        // SAFETY: blocks are created only by `alloc`; the address lies in this pool's region,
        // which is exclusively borrowed by this pool, so `self.tlsf` allocated it, with
        // `block.align`. The handle is not Clone and is consumed here, so it was not freed before.
        unsafe { self.tlsf.deallocate(block.ptr, block.align) };
        let s = &mut self.stats;
        s.used -= block.size;
        s.free = s.capacity - s.used;
        s.live_blocks -= 1;
        s.frees += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn region(len: usize) -> Vec<MaybeUninit<u8>> {
        vec![MaybeUninit::uninit(); len]
    }

    #[test]
    fn alloc_free_and_statistics() {
        let mut mem = region(64 * 1024);
        let mut pool = Pool::new(&mut mem).unwrap();
        let a = pool.alloc(1000, 8).unwrap();
        let b = pool.alloc(3000, 64).unwrap();
        assert_eq!(b.addr() % 64, 0);
        let s = pool.stats();
        assert_eq!((s.used, s.live_blocks, s.high_water), (4000, 2, 4000));
        assert_eq!(s.free, 64 * 1024 - 4000);
        pool.free(a).unwrap();
        let s = pool.stats();
        assert_eq!((s.used, s.live_blocks, s.high_water), (3000, 1, 4000));
        pool.free(b).unwrap();
        assert_eq!(pool.stats().used, 0);
        assert_eq!((pool.stats().allocations, pool.stats().frees), (2, 2));
    }

    #[test]
    fn exhaustion_is_an_error_and_recovers() {
        let mut mem = region(16 * 1024);
        let mut pool = Pool::new(&mut mem).unwrap();
        let mut held = Vec::new();
        let err = loop {
            match pool.alloc(1024, 16) {
                Ok(b) => held.push(b),
                Err(e) => break e,
            }
        };
        assert!(matches!(
            err,
            PoolError::Exhausted {
                requested: 1024,
                ..
            }
        ));
        assert!(
            held.len() >= 12,
            "only {} KiB blocks fit 16 KiB",
            held.len()
        );
        assert_eq!(pool.stats().failed_allocations, 1);
        for b in held.drain(..) {
            pool.free(b).unwrap();
        }
        // Coalescing gives back one block of nearly the whole region.
        let big = pool.alloc(15 * 1024, 16).unwrap();
        pool.free(big).unwrap();
    }

    #[test]
    fn bad_requests_are_named() {
        let mut mem = region(4096);
        let mut pool = Pool::new(&mut mem).unwrap();
        assert_eq!(pool.alloc(0, 8).err(), Some(PoolError::ZeroSize));
        assert_eq!(
            pool.alloc(8, 3).err(),
            Some(PoolError::BadAlign { align: 3 })
        );
        assert_eq!(
            pool.alloc(8, 8192).err(),
            Some(PoolError::BadAlign { align: 8192 })
        );
        assert_eq!(
            pool.alloc(MAX_BLOCK + 1, 8).err(),
            Some(PoolError::TooLarge {
                requested: MAX_BLOCK + 1
            })
        );
        let mut tiny = region(16);
        assert_eq!(
            Pool::new(&mut tiny).err(),
            Some(PoolError::RegionTooSmall { len: 16 })
        );
    }

    #[test]
    fn foreign_block_is_refused() {
        let (mut m1, mut m2) = (region(4096), region(4096));
        let mut p1 = Pool::new(&mut m1).unwrap();
        let mut p2 = Pool::new(&mut m2).unwrap();
        let b = p2.alloc(100, 8).unwrap();
        let addr = b.addr();
        assert!(!p1.owns(&b) && p2.owns(&b));
        assert_eq!(p1.free(b), Err(PoolError::Foreign { addr }));
        assert_eq!(p1.stats().used, 0);
        assert_eq!(p2.stats().used, 100);
    }

    #[test]
    fn typed_views() {
        let mut mem = region(4096);
        let mut pool = Pool::new(&mut mem).unwrap();
        let mut b = pool.alloc(400, 4).unwrap();
        let v = b.zeroed_as::<i32>().unwrap();
        assert_eq!(v.len(), 100);
        assert!(v.iter().all(|&x| x == 0));
        v[99] = -5;
        assert_eq!(b.zeroed_as::<i16>().unwrap().len(), 200);
        let mut odd = pool.alloc(6, 2).unwrap();
        assert!(matches!(
            odd.zeroed_as::<u32>(),
            Err(PoolError::BadView { elem_size: 4, .. })
        ));
        pool.free(b).unwrap();
        pool.free(odd).unwrap();
    }

    #[test]
    fn footprint_table_matches_the_docs() {
        assert_eq!(reservoir_footprint(100, 100, 1), 5_204);
        assert_eq!(reservoir_footprint(500, 100, 1), 106_004);
        assert_eq!(reservoir_footprint(1000, 100, 1), 412_004);
        assert_eq!(reservoir_footprint(1000, 100, 8), 426_004);
    }

    /// The documented pool size (1.1 × footprint + 64 B per block) holds a 1000-unit reservoir's
    /// seven arrays, allocated in the order that fragments most (small first).
    #[test]
    fn documented_pool_size_fits_a_1000_unit_reservoir() {
        let (units, inputs, per_row) = (1000usize, 8usize, 100usize);
        let blocks = [
            (units + 1) * 4,
            units * 2,
            units * 2,
            units * 2,
            units * inputs * 2,
            units * per_row * 2,
            units * per_row * 2,
        ];
        let size = reservoir_footprint(units, 100, inputs) * 11 / 10 + 64 * blocks.len();
        let mut mem = region(size);
        let mut pool = Pool::new(&mut mem).unwrap();
        let held: Vec<_> = blocks.iter().map(|&b| pool.alloc(b, 4).unwrap()).collect();
        assert_eq!(pool.stats().used, reservoir_footprint(units, 100, inputs));
        for b in held {
            pool.free(b).unwrap();
        }
    }
}

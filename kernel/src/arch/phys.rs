//! Physical memory as the kernel sees it: identity-mapped, so a physical address is a pointer.
//! The two ways safe code gets at it: read-only views of firmware structures, and exclusive
//! claims of RAM ranges (each claimed at most once, so no two owners alias).

use core::mem::MaybeUninit;
use spin::Mutex;

extern "C" {
    static __kernel_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

/// The kernel image's section boundaries (all 4 KiB aligned).
#[derive(Debug, Clone, Copy)]
pub struct KernelLayout {
    pub start: u64,
    pub text_start: u64,
    pub text_end: u64,
    pub rodata_start: u64,
    pub rodata_end: u64,
    pub end: u64,
}

pub fn kernel_layout() -> KernelLayout {
    KernelLayout {
        start: core::ptr::addr_of!(__kernel_start) as u64,
        text_start: core::ptr::addr_of!(__text_start) as u64,
        text_end: core::ptr::addr_of!(__text_end) as u64,
        rodata_start: core::ptr::addr_of!(__rodata_start) as u64,
        rodata_end: core::ptr::addr_of!(__rodata_end) as u64,
        end: core::ptr::addr_of!(__kernel_end) as u64,
    }
}

/// Highest address the boot page tables (and `paging`) identity-map.
pub const IDENTITY_LIMIT: u64 = 4 << 30;

/// A read-only view of `len` bytes of firmware data at `paddr`, or `None` if the range is null,
/// wraps, or leaves the identity-mapped window. Reading firmware tables this way is how boot
/// information is parsed; the bytes are never written by the kernel.
pub fn firmware_bytes(paddr: u64, len: usize) -> Option<&'static [u8]> {
    let end = paddr.checked_add(len as u64)?;
    if paddr == 0 || end > IDENTITY_LIMIT {
        return None;
    }
    // SAFETY: the range is identity-mapped and below 4 GiB; firmware structures (boot info,
    // memory map, command line) are not in any range the kernel claims for writing, because the
    // memory map marks them reserved before anything is claimed.
    Some(unsafe { core::slice::from_raw_parts(paddr as *const u8, len) })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// The range is empty, unaligned, wraps or lies outside the identity map.
    BadRange { start: u64, len: u64 },
    /// The range overlaps the kernel image or the null page.
    KernelImage { start: u64, len: u64 },
    /// Part of the range was claimed before.
    AlreadyClaimed { start: u64, len: u64 },
    /// Too many claims to track.
    TooManyClaims,
}

impl core::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::BadRange { start, len } => write!(
                f,
                "physical range {start:#x}+{len:#x} is empty, unaligned or not identity-mapped"
            ),
            Self::KernelImage { start, len } => write!(
                f,
                "physical range {start:#x}+{len:#x} overlaps the kernel image or page 0"
            ),
            Self::AlreadyClaimed { start, len } => {
                write!(f, "physical range {start:#x}+{len:#x} is already claimed")
            }
            Self::TooManyClaims => write!(f, "too many physical memory claims"),
        }
    }
}

const MAX_CLAIMS: usize = 32;
static CLAIMS: Mutex<([(u64, u64); MAX_CLAIMS], usize)> = Mutex::new(([(0, 0); MAX_CLAIMS], 0));

fn register_claim(start: u64, len: u64) -> Result<(), ClaimError> {
    let end = start
        .checked_add(len)
        .filter(|&e| len > 0 && start.is_multiple_of(4096) && e <= IDENTITY_LIMIT)
        .ok_or(ClaimError::BadRange { start, len })?;
    let k = kernel_layout();
    if start < 4096 || (start < k.end && k.start < end) {
        return Err(ClaimError::KernelImage { start, len });
    }
    let mut claims = CLAIMS.lock();
    let (list, n) = &mut *claims;
    if list[..*n].iter().any(|&(s, e)| start < e && s < end) {
        return Err(ClaimError::AlreadyClaimed { start, len });
    }
    if *n == MAX_CLAIMS {
        return Err(ClaimError::TooManyClaims);
    }
    list[*n] = (start, end);
    *n += 1;
    Ok(())
}

/// Takes exclusive ownership of the RAM range `[start, start + len)` for the rest of the boot.
/// The caller must only claim RAM the memory map calls usable (the map is the authority on what
/// RAM exists; this function guarantees the exclusivity).
pub fn claim(start: u64, len: u64) -> Result<&'static mut [MaybeUninit<u8>], ClaimError> {
    register_claim(start, len)?;
    // SAFETY: identity-mapped, and registered above as claimed exactly once: no other reference
    // to this memory exists or will be created. MaybeUninit makes no claim about contents.
    Ok(unsafe { core::slice::from_raw_parts_mut(start as *mut MaybeUninit<u8>, len as usize) })
}

/// Integer types whose all-zero bit pattern is a valid value.
pub trait Zeroable: Copy + sealed::Sealed {}
mod sealed {
    pub trait Sealed {}
}
macro_rules! zeroable {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {} impl Zeroable for $t {})* };
}
zeroable!(u8, u16, u32, u64, i8, i16, i32, i64);

/// Claims room for `count` values of `T` at `start` and zeroes them.
pub fn claim_zeroed<T: Zeroable>(start: u64, count: usize) -> Result<&'static mut [T], ClaimError> {
    let bytes = (count * core::mem::size_of::<T>()) as u64;
    register_claim(start, bytes.div_ceil(4096) * 4096)?;
    // SAFETY: as in `claim`; the start is page-aligned (so aligned for T) and the memory is
    // zeroed before it is viewed as T, for which zero is a valid value.
    unsafe {
        core::ptr::write_bytes(start as *mut u8, 0, bytes as usize);
        Ok(core::slice::from_raw_parts_mut(start as *mut T, count))
    }
}

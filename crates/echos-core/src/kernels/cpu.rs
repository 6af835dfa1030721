//! Which SIMD kernel variants this CPU and OS can run: CPUID plus XGETBV (the OS must save the
//! AVX/AVX-512 register state), without std, cached in an atomic after the first query.

use core::sync::atomic::{AtomicU8, Ordering};

/// Bit set cached after detection; 0 means "not detected yet".
static FEATURES: AtomicU8 = AtomicU8::new(0);
const DETECTED: u8 = 1;
const AVX2_FMA: u8 = 2;
const AVX512F: u8 = 4;

/// The CPU features the kernels care about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuFeatures {
    /// AVX2 and FMA instructions with OS support for the YMM state.
    pub avx2_fma: bool,
    /// AVX-512 Foundation with OS support for the ZMM and opmask state.
    pub avx512f: bool,
}

/// Features of the running CPU (detected once, then read from the cache).
pub fn features() -> CpuFeatures {
    let mut bits = FEATURES.load(Ordering::Relaxed);
    if bits == 0 {
        bits = DETECTED | detect();
        FEATURES.store(bits, Ordering::Relaxed);
    }
    CpuFeatures {
        avx2_fma: bits & AVX2_FMA != 0,
        avx512f: bits & AVX512F != 0,
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn detect() -> u8 {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 0 reports the highest supported leaf.
    let max_leaf = unsafe { __cpuid(0) }.eax;
    if max_leaf < 7 {
        return 0;
    }
    #[allow(unused_unsafe)]
    // SAFETY: leaf 1 is below max_leaf (checked above).
    let leaf1 = unsafe { __cpuid(1) };
    let fma = leaf1.ecx & (1 << 12) != 0;
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let avx = leaf1.ecx & (1 << 28) != 0;
    if !(osxsave && avx) {
        return 0;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available and the OS has enabled XCR0.
    let xcr0 = unsafe { read_xcr0() };
    let ymm_state = xcr0 & 0b110 == 0b110; // SSE and AVX state
    let zmm_state = xcr0 & 0b1110_0110 == 0b1110_0110; // plus opmask, ZMM_Hi256, Hi16_ZMM
    #[allow(unused_unsafe)]
    // SAFETY: leaf 7 is below max_leaf (checked above).
    let leaf7 = unsafe { __cpuid_count(7, 0) };
    let avx2 = leaf7.ebx & (1 << 5) != 0;
    let avx512f = leaf7.ebx & (1 << 16) != 0;
    let mut bits = 0;
    if ymm_state && avx2 && fma {
        bits |= AVX2_FMA;
        if zmm_state && avx512f {
            bits |= AVX512F;
        }
    }
    bits
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "xsave")]
unsafe fn read_xcr0() -> u64 {
    // SAFETY: the caller checked CPUID.1:ECX.OSXSAVE, which makes XGETBV(0) legal.
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

/// Soft-float targets (x86_64-unknown-none) and other architectures: scalar only, fixed at
/// build time, because SIMD float code there would be soft-float calls or not exist.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn detect() -> u8 {
    0
}

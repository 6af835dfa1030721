//! Which SIMD kernel variants this CPU and OS can run: CPUID plus XGETBV (the OS must save the
//! AVX/AVX-512 register state), without std, cached in an atomic after the first query. The
//! workspace's one CPU-feature detector: the reservoir kernels, the bf16 block kernel and the
//! RWKV matrix kernels all ask here.

use core::sync::atomic::{AtomicU32, Ordering};

/// Bit set cached after detection; 0 means "not detected yet".
static FEATURES: AtomicU32 = AtomicU32::new(0);
const DETECTED: u32 = 1;
const AVX2: u32 = 1 << 1;
const FMA: u32 = 1 << 2;
const F16C: u32 = 1 << 3;
const AVX512F: u32 = 1 << 4;
const AVX512BW: u32 = 1 << 5;
const AVX512VL: u32 = 1 << 6;
const AVX512VNNI: u32 = 1 << 7;
const AVX512_BF16: u32 = 1 << 8;

/// The CPU features the kernels care about, each reported only when the OS also saves the
/// registers it needs (YMM state for the AVX group, opmask and ZMM state for AVX-512).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CpuFeatures {
    /// AVX2 and FMA together: what the AVX2 kernels need.
    pub avx2_fma: bool,
    /// AVX-512 Foundation, with AVX2 and FMA (the AVX-512 kernels also use their 256-bit forms).
    pub avx512f: bool,
    pub avx2: bool,
    pub fma: bool,
    /// Half-precision conversions (VCVTPH2PS / VCVTPS2PH).
    pub f16c: bool,
    /// AVX-512 byte and word instructions.
    pub avx512bw: bool,
    /// AVX-512 at 128 and 256 bits.
    pub avx512vl: bool,
    /// AVX-512 VNNI: `vpdpbusd`, int8 dot products.
    pub avx512vnni: bool,
    /// AVX-512 BF16: `vdpbf16ps`, bf16 dot products.
    pub avx512_bf16: bool,
}

/// Features of the running CPU (detected once, then read from the cache).
pub fn features() -> CpuFeatures {
    let mut bits = FEATURES.load(Ordering::Relaxed);
    if bits == 0 {
        bits = DETECTED | detect();
        FEATURES.store(bits, Ordering::Relaxed);
    }
    let has = |b: u32| bits & b != 0;
    let avx2_fma = has(AVX2) && has(FMA);
    CpuFeatures {
        avx2_fma,
        avx512f: avx2_fma && has(AVX512F),
        avx2: has(AVX2),
        fma: has(FMA),
        f16c: has(F16C),
        avx512bw: has(AVX512BW),
        avx512vl: has(AVX512VL),
        avx512vnni: has(AVX512VNNI),
        avx512_bf16: has(AVX512_BF16),
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn detect() -> u32 {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 0 reports the highest supported leaf.
    let max_leaf = unsafe { __cpuid(0) }.eax;
    if max_leaf < 1 {
        return 0;
    }
    #[allow(unused_unsafe)]
    // SAFETY: leaf 1 is at most max_leaf (checked above).
    let leaf1 = unsafe { __cpuid(1) };
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let avx = leaf1.ecx & (1 << 28) != 0;
    if !(osxsave && avx) {
        return 0;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available and the OS has enabled XCR0.
    let xcr0 = unsafe { read_xcr0() };
    let ymm_state = xcr0 & 0b110 == 0b110; // SSE and AVX state
    let zmm_state = ymm_state && xcr0 & 0b1110_0000 == 0b1110_0000; // opmask, ZMM_Hi256, Hi16_ZMM
    if !ymm_state {
        return 0;
    }
    let bit = |reg: u32, b: u32, flag: u32| if reg & (1 << b) != 0 { flag } else { 0 };
    let mut bits = bit(leaf1.ecx, 12, FMA) | bit(leaf1.ecx, 29, F16C);
    if max_leaf >= 7 {
        #[allow(unused_unsafe)]
        // SAFETY: leaf 7 is at most max_leaf (checked above).
        let leaf7 = unsafe { __cpuid_count(7, 0) };
        bits |= bit(leaf7.ebx, 5, AVX2);
        if zmm_state {
            bits |= bit(leaf7.ebx, 16, AVX512F)
                | bit(leaf7.ebx, 30, AVX512BW)
                | bit(leaf7.ebx, 31, AVX512VL)
                | bit(leaf7.ecx, 11, AVX512VNNI);
            // Leaf 7's EAX is its highest sub-leaf; BF16 is in sub-leaf 1.
            if leaf7.eax >= 1 {
                #[allow(unused_unsafe)]
                // SAFETY: sub-leaf 1 of leaf 7 exists (leaf7.eax >= 1).
                let leaf7_1 = unsafe { __cpuid_count(7, 1) };
                bits |= bit(leaf7_1.eax, 5, AVX512_BF16);
            }
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
fn detect() -> u32 {
    0
}

#[cfg(all(test, target_arch = "x86_64", target_feature = "sse2"))]
mod tests {
    use super::*;

    /// Our CPUID + XGETBV reading agrees with std's detector feature by feature (std applies
    /// the same OS-state rules), on whatever CPU runs the tests.
    #[test]
    fn agrees_with_std_detection() {
        let f = features();
        let checks = [
            ("avx2", f.avx2, std::is_x86_feature_detected!("avx2")),
            ("fma", f.fma, std::is_x86_feature_detected!("fma")),
            ("f16c", f.f16c, std::is_x86_feature_detected!("f16c")),
            (
                "avx512f",
                f.avx512f,
                std::is_x86_feature_detected!("avx512f"),
            ),
            (
                "avx512bw",
                f.avx512bw,
                std::is_x86_feature_detected!("avx512bw"),
            ),
            (
                "avx512vl",
                f.avx512vl,
                std::is_x86_feature_detected!("avx512vl"),
            ),
            (
                "avx512vnni",
                f.avx512vnni,
                std::is_x86_feature_detected!("avx512vnni"),
            ),
            (
                "avx512bf16",
                f.avx512_bf16,
                std::is_x86_feature_detected!("avx512bf16"),
            ),
        ];
        for (name, ours, std) in checks {
            assert_eq!(ours, std, "{name}: ours {ours}, std {std}");
        }
        assert_eq!(f.avx2_fma, f.avx2 && f.fma);
        assert_eq!(features(), f, "the cached answer is the detected one");
    }
}

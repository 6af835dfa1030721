//! Micro-kernels that measure the hardware limits the reservoir kernels run into: the rate of
//! gathers from a vector (the single-sequence sparse step is gather-bound) and the rate of
//! separate multiply + add per lane (the batched step is arithmetic-bound). Timed by the host.

use super::Kernel;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use super::Variant;

/// Sum of x[idx[k]] over all k, gathering 16 (AVX-512) or 8 (AVX2) at a time into four
/// independent accumulators; indices are clamped to x.len() − 1. Scalar: plain loads.
pub fn gather_sum(kernel: Kernel, x: &[f32], idx: &[u32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    match kernel.variant() {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX-512F).
        Variant::Avx512 => unsafe { simd::gather_sum_avx512(x, idx) },
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX2 + FMA).
        Variant::Avx2Fma => unsafe { simd::gather_sum_avx2(x, idx) },
        _ => {
            let last = x.len() - 1;
            let mut acc = [0.0f32; 4];
            for (k, &i) in idx.iter().enumerate() {
                acc[k & 3] += x[(i as usize).min(last)];
            }
            (acc[0] + acc[1]) + (acc[2] + acc[3])
        }
    }
}

/// `rounds` rounds of acc = acc + v·w on 8 independent registers of the variant's width;
/// returns the lane count per round (so lane-mul-adds = rounds · lanes).
pub fn muladd_spin(kernel: Kernel, rounds: usize, v: f32) -> (f32, usize) {
    match kernel.variant() {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX-512F).
        Variant::Avx512 => (unsafe { simd::muladd_avx512(rounds, v) }, 8 * 16),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX2 + FMA).
        Variant::Avx2Fma => (unsafe { simd::muladd_avx2(rounds, v) }, 8 * 8),
        _ => {
            let mut acc = [0.0f32; 8];
            for _ in 0..rounds {
                for (j, a) in acc.iter_mut().enumerate() {
                    *a += v * j as f32;
                }
            }
            (acc.iter().sum(), 8)
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod simd {
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) fn gather_sum_avx512(x: &[f32], idx: &[u32]) -> f32 {
        let last = _mm512_set1_epi32((x.len() - 1) as i32);
        let mut acc = [_mm512_setzero_ps(); 4];
        let blocks = idx.chunks_exact(16);
        for (b, block) in blocks.enumerate() {
            // SAFETY: the block holds 16 indices; clamped offsets are inside x.
            unsafe {
                let i = _mm512_min_epu32(_mm512_loadu_si512(block.as_ptr().cast()), last);
                acc[b & 3] = _mm512_add_ps(acc[b & 3], _mm512_i32gather_ps::<4>(i, x.as_ptr()));
            }
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn gather_sum_avx2(x: &[f32], idx: &[u32]) -> f32 {
        let last = _mm256_set1_epi32((x.len() - 1) as i32);
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, block) in idx.chunks_exact(8).enumerate() {
            // SAFETY: the block holds 8 indices; clamped offsets are inside x.
            unsafe {
                let i = _mm256_min_epu32(_mm256_loadu_si256(block.as_ptr().cast()), last);
                acc[b & 3] = _mm256_add_ps(acc[b & 3], _mm256_i32gather_ps::<4>(x.as_ptr(), i));
            }
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn muladd_avx512(rounds: usize, v: f32) -> f32 {
        let w = _mm512_set1_ps(v);
        let mut acc = [_mm512_setzero_ps(); 8];
        for (j, a) in acc.iter_mut().enumerate() {
            *a = _mm512_set1_ps(j as f32);
        }
        for _ in 0..rounds {
            for a in acc.iter_mut() {
                *a = _mm512_add_ps(*a, _mm512_mul_ps(*a, w));
            }
        }
        let mut s = _mm512_setzero_ps();
        for a in acc {
            s = _mm512_add_ps(s, a);
        }
        _mm512_reduce_add_ps(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn muladd_avx2(rounds: usize, v: f32) -> f32 {
        let w = _mm256_set1_ps(v);
        let mut acc = [_mm256_setzero_ps(); 8];
        for (j, a) in acc.iter_mut().enumerate() {
            *a = _mm256_set1_ps(j as f32);
        }
        for _ in 0..rounds {
            for a in acc.iter_mut() {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(*a, w));
            }
        }
        let mut s = _mm256_setzero_ps();
        for a in acc {
            s = _mm256_add_ps(s, a);
        }
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_sum_agrees_across_variants() {
        let x: alloc::vec::Vec<f32> = (0..100).map(|i| i as f32).collect();
        let idx: alloc::vec::Vec<u32> = (0..64u32).map(|k| (k * 37) % 100).collect();
        let want: f32 = idx.iter().map(|&i| i as f32).sum();
        for k in Kernel::available() {
            assert_eq!(gather_sum(k, &x, &idx), want, "{:?}", k.variant());
            assert!(muladd_spin(k, 10, 0.0).0.is_finite());
        }
    }
}

//! Micro-kernels that exercise one hardware resource each — streaming loads, gathers, lane
//! multiply + add, `vdpbf16ps` — so [`crate::limits`] can time the ceilings the reservoir
//! kernels run into. Each variant uses the instructions of the engine's kernel of the same
//! name; what they compute is only kept alive against the optimizer.
//!
//! Dispatch takes a [`Kernel`]: the engine hands one out only for variants the CPU (and the
//! OS's saved vector state) supports, which is what makes the `unsafe` calls below sound.

use echos_core::kernels::{Kernel, Variant};

/// Sum of `data` with four interleaved accumulators of the variant's width: streams memory at
/// the load-port rate (the bandwidth probe).
pub fn read_sum(kernel: Kernel, data: &[f32]) -> f32 {
    match kernel.variant() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX2 + FMA).
        Variant::Avx2Fma => unsafe { simd::read_sum_avx2(data) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX-512F).
        Variant::Avx512 => unsafe { simd::read_sum_avx512(data) },
        _ => {
            let mut acc = [0.0f32; 4];
            let chunks = data.chunks_exact(4);
            let rest = chunks.remainder();
            for c in chunks {
                for (a, &v) in acc.iter_mut().zip(c) {
                    *a += v;
                }
            }
            (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest.iter().sum::<f32>()
        }
    }
}

/// Sum of x[idx[k]] over all k, gathering 16 (AVX-512) or 8 (AVX2) at a time into four
/// independent accumulators; indices are clamped to x.len() − 1. Scalar: plain loads.
pub fn gather_sum(kernel: Kernel, x: &[f32], idx: &[u32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    match kernel.variant() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX-512F).
        Variant::Avx512 => unsafe { simd::gather_sum_avx512(x, idx) },
        #[cfg(target_arch = "x86_64")]
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

/// `rounds` rounds of acc = acc + acc·v (separate multiply and add, as the batched kernels
/// do) on 8 independent registers of the variant's width; returns the lane count per round
/// (so lane mul-adds = rounds · lanes).
pub fn muladd_spin(kernel: Kernel, rounds: usize, v: f32) -> (f32, usize) {
    match kernel.variant() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `kernel` exists only for variants the CPU supports (AVX-512F).
        Variant::Avx512 => (unsafe { simd::muladd_avx512(rounds, v) }, 8 * 16),
        #[cfg(target_arch = "x86_64")]
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

/// Whether this CPU runs `vdpbf16ps`: the engine's AVX-512 kernel is usable and the CPU
/// reports AVX-512 BF16, BW and VL — the condition under which the engine's bf16 batch
/// format runs natively (`BlockBf16::step_kernel_name` says `avx512bf16-block-batch`).
pub fn has_native_bf16() -> bool {
    let f = echos_core::kernels::cpu::features();
    Kernel::new(Variant::Avx512).is_ok() && f.avx512_bf16 && f.avx512bw && f.avx512vl
}

/// The arithmetic ceiling of the bf16 batch step: `iters` rounds of 16 independent
/// `vdpbf16ps` (weights broadcast from memory, as in the step). Returns a value to keep and
/// the lane products performed, or `None` where the CPU lacks AVX-512 BF16.
pub fn dpbf16_spin(iters: usize, seed: f32) -> Option<(f32, usize)> {
    const ROWS: usize = 16;
    if !has_native_bf16() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use echos_core::kernels::block_bf16::bf16_bits;
        let w: [u32; ROWS] = core::array::from_fn(|r| {
            let h = u32::from(bf16_bits(seed * r as f32));
            (h << 16) | h
        });
        // SAFETY: has_native_bf16 confirmed AVX-512F (with the OS's ZMM and opmask state,
        // through the engine's Avx512 kernel) and AVX-512 BF16/BW/VL.
        let v = unsafe { simd::dpbf16_spin(iters, &w, seed) };
        Some((v, iters * ROWS * 2 * 16))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (iters, seed);
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn read_sum_avx2(data: &[f32]) -> f32 {
        let mut acc = [_mm256_setzero_ps(); 4];
        let blocks = data.chunks_exact(32);
        let rest = blocks.remainder();
        for b in blocks {
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: each block holds 4·8 values; this load reads values 8v..8v+8.
                *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(b.as_ptr().add(v * 8)) });
            }
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum::<f32>() + rest.iter().sum::<f32>()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn read_sum_avx512(data: &[f32]) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 4];
        let blocks = data.chunks_exact(64);
        let rest = blocks.remainder();
        for b in blocks {
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: each block holds 4·16 values; this load reads values 16v..16v+16.
                *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(b.as_ptr().add(v * 16)) });
            }
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s) + rest.iter().sum::<f32>()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn gather_sum_avx512(x: &[f32], idx: &[u32]) -> f32 {
        let last = _mm512_set1_epi32((x.len() - 1) as i32);
        let mut acc = [_mm512_setzero_ps(); 4];
        for (b, block) in idx.chunks_exact(16).enumerate() {
            // SAFETY: the block holds 16 indices; clamped offsets are inside x (non-empty,
            // checked by the caller).
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
            // SAFETY: the block holds 8 indices; clamped offsets are inside x (non-empty,
            // checked by the caller).
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

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) fn dpbf16_spin(iters: usize, w: &[u32; 16], seed: f32) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 16];
        let x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(seed), _mm512_set1_ps(seed));
        for _ in 0..iters {
            for (acc_r, &wr) in acc.iter_mut().zip(w) {
                // SAFETY: reinterprets 16 dwords (bf16 pairs) as the 32 bf16 lanes of a vector
                // of the same size.
                let wv: __m512bh = unsafe { core::mem::transmute(_mm512_set1_epi32(wr as i32)) };
                *acc_r = _mm512_dpbf16_ps(*acc_r, x, wv);
            }
        }
        let mut total = _mm512_setzero_ps();
        for a in acc {
            total = _mm512_add_ps(total, a);
        }
        _mm512_reduce_add_ps(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echos_core::kernels::block_bf16::BlockBf16;
    use echos_core::kernels::reservoir::FusedReservoir;

    #[test]
    fn read_sum_agrees_across_variants() {
        // Lengths off the 64-value blocks so the remainders are summed too.
        for len in [0usize, 7, 1000, 1037] {
            let d: Vec<f32> = (0..len).map(|i| ((i * 37) % 11) as f32 * 0.25).collect();
            let reference: f64 = d.iter().map(|&v| f64::from(v)).sum();
            for k in Kernel::available() {
                let got = f64::from(read_sum(k, &d));
                assert!(
                    (got - reference).abs() < 1e-3,
                    "{:?} len {len}",
                    k.variant()
                );
            }
        }
    }

    #[test]
    fn gather_sum_agrees_across_variants_and_clamps_indices() {
        let x: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let idx: Vec<u32> = (0..64u32).map(|k| (k * 37) % 100).collect();
        let want: f32 = idx.iter().map(|&i| i as f32).sum();
        let wild = [u32::MAX; 16];
        for k in Kernel::available() {
            assert_eq!(gather_sum(k, &x, &idx), want, "{:?}", k.variant());
            assert_eq!(gather_sum(k, &x, &wild), 16.0 * 99.0, "{:?}", k.variant());
            assert_eq!(gather_sum(k, &[], &idx), 0.0);
        }
    }

    #[test]
    fn muladd_spin_counts_the_variant_lanes() {
        for k in Kernel::available() {
            let (v, lanes) = muladd_spin(k, 10, 0.0);
            assert!(v.is_finite());
            let want = match k.variant() {
                Variant::Scalar => 8,
                Variant::Avx2Fma => 64,
                Variant::Avx512 => 128,
            };
            assert_eq!(lanes, want, "{:?}", k.variant());
        }
    }

    /// The probe runs exactly where the engine's bf16 batch format runs `vdpbf16ps`.
    #[test]
    fn dpbf16_spin_runs_where_the_engine_uses_the_instruction() {
        let idx: Vec<u32> = (0..4).collect();
        let r = FusedReservoir::new_block(
            16,
            1,
            16,
            4,
            &idx,
            &[0.1; 64],
            vec![0.5; 16],
            vec![0.0; 16],
            1.0,
        )
        .unwrap();
        let m = BlockBf16::from_block(r.block().unwrap()).unwrap();
        let engine_native = Kernel::new(Variant::Avx512)
            .is_ok_and(|k| m.step_kernel_name(k) == "avx512bf16-block-batch");
        assert_eq!(has_native_bf16(), engine_native);
        assert_eq!(dpbf16_spin(1, 0.5).is_some(), engine_native);
        if let Some((v, products)) = dpbf16_spin(3, 0.5) {
            assert_eq!(products, 3 * 16 * 32);
            assert!(v > 0.0);
        }
    }
}

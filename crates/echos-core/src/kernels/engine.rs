//! SIMD twins of the engine's portable `matrix` products (`Csr::matvec_add`,
//! `Dense::matvec_add`) that give the *same bits*: the engine sums each row in 8 partial sums
//! (entry k into lane k mod 8, unfused multiply then add), reduces (0+4, 1+5, 2+6, 3+7), then
//! (h0+h2) + (h1+h3), then adds it to y — exactly an 8-lane AVX2 accumulator with an unfused
//! multiply-add and our fixed halving tree. So `Esn<f32>` keeps identical results on every CPU
//! while its matvec runs on AVX2 where the CPU has it.

use super::{CsrRef, DenseRef, Kernel, Variant};

/// y += A·x for a CSR matrix in the engine's lane order. Returns false (and leaves y alone)
/// when AVX2 is unavailable or the matrix/buffers do not check out: the caller then runs its own
/// portable loop, which gives the same bits (and reports its own errors).
pub fn csr_matvec_add_lanes8_f32(
    cols: usize,
    indptr: &[u32],
    indices: &[u32],
    values: &[f32],
    x: &[f32],
    y: &mut [f32],
) -> bool {
    let Ok(kernel) = Kernel::new(Variant::Avx2Fma) else {
        return false;
    };
    let rows = y.len();
    let Ok(a) = CsrRef::new(rows, cols, indptr, indices, values) else {
        return false;
    };
    if x.len() != cols {
        return false;
    }
    let _ = kernel; // the token proves AVX2 + FMA
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `kernel` exists, so the CPU and OS support AVX2 + FMA.
        unsafe { simd::csr_matvec_add(a, x, y) };
        true
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        let _ = a;
        false
    }
}

/// y += A·x for a row-major dense matrix in the engine's lane order (see the CSR twin).
pub fn dense_matvec_add_lanes8_f32(cols: usize, data: &[f32], x: &[f32], y: &mut [f32]) -> bool {
    let Ok(kernel) = Kernel::new(Variant::Avx2Fma) else {
        return false;
    };
    let Ok(a) = DenseRef::new(y.len(), cols, data) else {
        return false;
    };
    if x.len() != cols {
        return false;
    }
    let _ = kernel;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `kernel` exists, so the CPU and OS support AVX2 + FMA.
        unsafe { simd::dense_matvec_add(a, x, y) };
        true
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        let _ = a;
        false
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod simd {
    use super::{CsrRef, DenseRef};
    use core::arch::x86_64::*;

    /// (0+4, 1+5, 2+6, 3+7), then (h0+h2) + (h1+h3): the engine's `reduce_lanes`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn reduce(v: __m256) -> f32 {
        let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(h, _mm_movehl_ps(h, h));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
    }

    /// Lanes below `n` set (n ≤ 8), as a blend/maskload mask.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn first_lanes(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn csr_matvec_add(a: CsrRef<'_>, x: &[f32], y: &mut [f32]) {
        let last = _mm256_set1_epi32((a.cols - 1) as i32);
        for (r, yr) in y.iter_mut().enumerate() {
            let (s, e) = (a.indptr[r] as usize, a.indptr[r + 1] as usize);
            let (idx, val) = (&a.indices[s..e], &a.values[s..e]);
            let n = e - s;
            let mut acc = _mm256_setzero_ps();
            let mut k = 0;
            while k + 8 <= n {
                // SAFETY: k + 8 <= n keeps the loads inside the row; clamped offsets < x.len().
                unsafe {
                    let i = _mm256_min_epu32(_mm256_loadu_si256(idx.as_ptr().add(k).cast()), last);
                    let g = _mm256_i32gather_ps::<4>(x.as_ptr(), i);
                    let v = _mm256_loadu_ps(val.as_ptr().add(k));
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(v, g));
                }
                k += 8;
            }
            if k < n {
                let m = first_lanes(n - k);
                // SAFETY: masked-off lanes are neither loaded nor gathered; active lanes are < n.
                unsafe {
                    let i = _mm256_min_epu32(
                        _mm256_maskload_epi32(idx.as_ptr().add(k).cast(), m),
                        last,
                    );
                    let g = _mm256_mask_i32gather_ps::<4>(
                        _mm256_setzero_ps(),
                        x.as_ptr(),
                        i,
                        _mm256_castsi256_ps(m),
                    );
                    let v = _mm256_maskload_ps(val.as_ptr().add(k), m);
                    // Untouched lanes keep their value exactly (a +0 add would turn −0 into +0).
                    acc = _mm256_blendv_ps(
                        acc,
                        _mm256_add_ps(acc, _mm256_mul_ps(v, g)),
                        _mm256_castsi256_ps(m),
                    );
                }
            }
            *yr += reduce(acc);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dense_matvec_add(a: DenseRef<'_>, x: &[f32], y: &mut [f32]) {
        for (r, yr) in y.iter_mut().enumerate() {
            let row = &a.data[r * a.cols..(r + 1) * a.cols];
            let n = row.len();
            let mut acc = _mm256_setzero_ps();
            let mut k = 0;
            while k + 8 <= n {
                // SAFETY: k + 8 <= n = row.len() = x.len().
                unsafe {
                    let v = _mm256_loadu_ps(row.as_ptr().add(k));
                    let g = _mm256_loadu_ps(x.as_ptr().add(k));
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(v, g));
                }
                k += 8;
            }
            if k < n {
                let m = first_lanes(n - k);
                // SAFETY: only lanes below n − k are loaded.
                unsafe {
                    let v = _mm256_maskload_ps(row.as_ptr().add(k), m);
                    let g = _mm256_maskload_ps(x.as_ptr().add(k), m);
                    acc = _mm256_blendv_ps(
                        acc,
                        _mm256_add_ps(acc, _mm256_mul_ps(v, g)),
                        _mm256_castsi256_ps(m),
                    );
                }
            }
            *yr += reduce(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::TestCsr;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The engine's portable order written out independently (matrix.rs now dispatches to the
    /// kernels under test, so it cannot be the reference): lane k mod 8, unfused, fixed tree.
    fn reference_row(terms: impl Iterator<Item = (f32, f32)>, init: f32) -> f32 {
        let mut acc = [0.0f32; 8];
        for (k, (v, x)) in terms.enumerate() {
            acc[k % 8] += v * x;
        }
        let h = [
            acc[0] + acc[4],
            acc[1] + acc[5],
            acc[2] + acc[6],
            acc[3] + acc[7],
        ];
        init + ((h[0] + h[2]) + (h[1] + h[3]))
    }

    /// Bit-identical to the engine's portable products, for row lengths around the 8 lanes.
    #[test]
    fn lanes8_kernels_match_the_engine_order_bit_for_bit() {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for &(n, p) in &[
            (1usize, 1.0f64),
            (9, 0.5),
            (40, 0.2),
            (100, 0.1),
            (257, 0.07),
        ] {
            let t = TestCsr::random(n, p, 1.0, n as u64 * 3);
            let x: Vec<f32> = (0..n)
                .map(|i| {
                    if i % 5 == 0 {
                        -0.0
                    } else {
                        libm::sinf(i as f32 * 0.7)
                    }
                })
                .collect();
            let init: Vec<f32> = (0..n)
                .map(|i| if i % 3 == 0 { -0.0 } else { i as f32 * 0.01 })
                .collect();
            let want: Vec<f32> = (0..n)
                .map(|r| {
                    let k = t.indptr[r] as usize..t.indptr[r + 1] as usize;
                    reference_row(k.map(|k| (t.values[k], x[t.indices[k] as usize])), init[r])
                })
                .collect();
            let mut got = init.clone();
            let handled =
                csr_matvec_add_lanes8_f32(n, &t.indptr, &t.indices, &t.values, &x, &mut got);
            assert_eq!(handled, Variant::Avx2Fma.is_supported());
            if handled {
                assert_eq!(bits(&got), bits(&want), "csr n {n}");
            }
            let mut d = vec![0.0f32; n * n];
            for r in 0..n {
                for k in t.indptr[r] as usize..t.indptr[r + 1] as usize {
                    d[r * n + t.indices[k] as usize] = t.values[k];
                }
            }
            let want: Vec<f32> = (0..n)
                .map(|r| reference_row((0..n).map(|c| (d[r * n + c], x[c])), init[r]))
                .collect();
            let mut got = init.clone();
            if dense_matvec_add_lanes8_f32(n, &d, &x, &mut got) {
                assert_eq!(bits(&got), bits(&want), "dense n {n}");
            }
        }
    }
}

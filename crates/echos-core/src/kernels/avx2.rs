//! AVX2 + FMA kernels. Single-sequence rows: two 8-lane FMA accumulators over blocks of 8
//! non-zeros, reduced 8→4→2→1, then the remaining (< 8) non-zeros in index order. Batched:
//! lanes run over the batch and repeat the scalar arithmetic exactly (mul then add, index order).

use super::scalar;
use super::tanh::{ALPHA, BETA, CLAMP, TINY};
use super::{CsrRef, DenseRef, LeakyUpdate, WeightsRef};
use core::arch::x86_64::*;
use core::ops::Range;

const LANES: usize = 8;

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

/// The shared rational tanh, lane by lane with exactly the scalar operations.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tanh8(x: __m256) -> __m256 {
    let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
    let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(abs, _mm256_set1_ps(TINY));
    let c = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-CLAMP)),
        _mm256_set1_ps(CLAMP),
    );
    let x2 = _mm256_mul_ps(c, c);
    let mut p = _mm256_set1_ps(ALPHA[6]);
    for &a in ALPHA[..6].iter().rev() {
        p = _mm256_add_ps(_mm256_mul_ps(p, x2), _mm256_set1_ps(a));
    }
    p = _mm256_mul_ps(p, c);
    let mut q = _mm256_set1_ps(BETA[3]);
    for &b in BETA[..3].iter().rev() {
        q = _mm256_add_ps(_mm256_mul_ps(q, x2), _mm256_set1_ps(b));
    }
    _mm256_blendv_ps(_mm256_div_ps(p, q), x, tiny)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn leak8(keep: __m256, a: __m256, x: __m256, pre: __m256) -> __m256 {
    _mm256_add_ps(_mm256_mul_ps(keep, x), _mm256_mul_ps(a, tanh8(pre)))
}

/// Row `row` of A·x; see the AVX-512 twin for why every access is in bounds.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn csr_row(a: CsrRef<'_>, row: usize, x: &[f32]) -> f32 {
    let (s, e) = (a.indptr[row] as usize, a.indptr[row + 1] as usize);
    let (idx, val) = (&a.indices[s..e], &a.values[s..e]);
    let last_col = a.cols - 1;
    let last = _mm256_set1_epi32(last_col as i32);
    let xp = x.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 2];
    let n = e - s;
    let mut k = 0;
    while k + LANES <= n {
        // SAFETY: k + 8 <= n keeps the loads inside `idx`/`val`; clamped offsets are < x.len().
        unsafe {
            let i = _mm256_min_epu32(_mm256_loadu_si256(idx.as_ptr().add(k).cast()), last);
            let g = _mm256_i32gather_ps::<4>(xp, i);
            let v = _mm256_loadu_ps(val.as_ptr().add(k));
            let slot = (k / LANES) & 1;
            acc[slot] = _mm256_fmadd_ps(v, g, acc[slot]);
        }
        k += LANES;
    }
    let mut sum = hsum(_mm256_add_ps(acc[0], acc[1]));
    for (&v, &c) in val[k..].iter().zip(&idx[k..]) {
        sum += v * x[(c as usize).min(last_col)];
    }
    sum
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn dense_row(a: DenseRef<'_>, row: usize, x: &[f32]) -> f32 {
    let r = &a.data[row * a.cols..(row + 1) * a.cols];
    let n = r.len();
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut k = 0;
    while k + LANES <= n {
        // SAFETY: k + 8 <= n = r.len() = x.len().
        unsafe {
            let v = _mm256_loadu_ps(r.as_ptr().add(k));
            let g = _mm256_loadu_ps(x.as_ptr().add(k));
            let slot = (k / LANES) & 1;
            acc[slot] = _mm256_fmadd_ps(v, g, acc[slot]);
        }
        k += LANES;
    }
    let mut sum = hsum(_mm256_add_ps(acc[0], acc[1]));
    for (&v, &xi) in r[k..].iter().zip(&x[k..]) {
        sum += v * xi;
    }
    sum
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn csr_matvec(a: CsrRef<'_>, x: &[f32], y: &mut [f32]) {
    for (row, yr) in y.iter_mut().enumerate() {
        *yr = csr_row(a, row, x);
    }
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn dense_matvec(a: DenseRef<'_>, x: &[f32], y: &mut [f32]) {
    for (row, yr) in y.iter_mut().enumerate() {
        *yr = dense_row(a, row, x);
    }
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn leaky_step_rows(
    w: WeightsRef<'_>,
    p: LeakyUpdate<'_>,
    rows: Range<usize>,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let keep_s = 1.0 - p.leak_rate;
    let keep = _mm256_set1_ps(keep_s);
    let a = _mm256_set1_ps(p.leak_rate);
    let start = rows.start;
    let mut pre = [0.0f32; LANES];
    for (c, out) in x_next.chunks_mut(LANES).enumerate() {
        let i0 = start + c * LANES;
        for (l, slot) in pre.iter_mut().enumerate().take(out.len()) {
            let i = i0 + l;
            let wx = match w {
                WeightsRef::Csr(m) => csr_row(m, i, x),
                WeightsRef::Dense(m) => dense_row(m, i, x),
            };
            *slot = scalar::input_and_bias(&p, i, u, wx);
        }
        if out.len() == LANES {
            // SAFETY: i0 + 8 <= rows.end <= x.len(); `pre` and `out` hold 8 values.
            unsafe {
                let xv = _mm256_loadu_ps(x.as_ptr().add(i0));
                let pv = _mm256_loadu_ps(pre.as_ptr());
                _mm256_storeu_ps(out.as_mut_ptr(), leak8(keep, a, xv, pv));
            }
        } else {
            for (l, o) in out.iter_mut().enumerate() {
                *o = scalar::leak(keep_s, p.leak_rate, x[i0 + l], pre[l]);
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn leaky_step_batch_rows(
    w: CsrRef<'_>,
    p: LeakyUpdate<'_>,
    batch: usize,
    rows: Range<usize>,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let full = batch / LANES * LANES;
    let keep_s = 1.0 - p.leak_rate;
    let keep = _mm256_set1_ps(keep_s);
    let a = _mm256_set1_ps(p.leak_rate);
    let last = w.cols - 1;
    for (i, out) in rows.zip(x_next.chunks_exact_mut(batch)) {
        let (s, e) = (w.indptr[i] as usize, w.indptr[i + 1] as usize);
        // Four vectors (32 lanes) per pass keep the accumulators in registers.
        let mut b0 = 0;
        while b0 < full {
            let nv = ((full - b0) / LANES).min(4);
            let mut acc = [_mm256_setzero_ps(); 4];
            for (&val, &col) in w.values[s..e].iter().zip(&w.indices[s..e]) {
                let wv = _mm256_set1_ps(val);
                let row = &x[(col as usize).min(last) * batch..][..batch];
                for (v, av) in acc.iter_mut().enumerate().take(nv) {
                    // SAFETY: b0 + (v + 1)·8 <= full <= batch = row.len().
                    let xv = unsafe { _mm256_loadu_ps(row.as_ptr().add(b0 + v * LANES)) };
                    *av = _mm256_add_ps(*av, _mm256_mul_ps(wv, xv));
                }
            }
            for j in 0..p.inputs {
                let wv = _mm256_set1_ps(p.w_in[i * p.inputs + j]);
                let uj = &u[j * batch..(j + 1) * batch];
                for (v, av) in acc.iter_mut().enumerate().take(nv) {
                    // SAFETY: as above, inside uj (length batch).
                    let uv = unsafe { _mm256_loadu_ps(uj.as_ptr().add(b0 + v * LANES)) };
                    *av = _mm256_add_ps(*av, _mm256_mul_ps(wv, uv));
                }
            }
            let bias = _mm256_set1_ps(p.bias[i]);
            let xi = &x[i * batch..(i + 1) * batch];
            for (v, av) in acc.iter().enumerate().take(nv) {
                // SAFETY: as above, inside xi and out (length batch).
                unsafe {
                    let xv = _mm256_loadu_ps(xi.as_ptr().add(b0 + v * LANES));
                    let r = leak8(keep, a, xv, _mm256_add_ps(*av, bias));
                    _mm256_storeu_ps(out.as_mut_ptr().add(b0 + v * LANES), r);
                }
            }
            b0 += nv * LANES;
        }
        // The last batch % 8 lanes: the same arithmetic in scalar form.
        for b in full..batch {
            let mut acc = 0.0f32;
            for (&val, &col) in w.values[s..e].iter().zip(&w.indices[s..e]) {
                acc += val * x[(col as usize).min(last) * batch + b];
            }
            for j in 0..p.inputs {
                acc += p.w_in[i * p.inputs + j] * u[j * batch + b];
            }
            out[b] = scalar::leak(keep_s, p.leak_rate, x[i * batch + b], acc + p.bias[i]);
        }
    }
}

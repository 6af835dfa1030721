//! AVX-512F kernels. Single-sequence rows: two 16-lane FMA accumulators over blocks of 16
//! non-zeros (the last partial block masked), reduced 16→8→4→2→1. Batched: lanes run over the
//! batch and repeat the scalar arithmetic exactly (mul then add, index order).

use super::scalar;
use super::tanh::{ALPHA, BETA, CLAMP, TINY};
use super::{CsrRef, DenseRef, LeakyUpdate, WeightsRef};
use core::arch::x86_64::*;
use core::ops::Range;

const LANES: usize = 16;

#[inline]
#[target_feature(enable = "avx512f")]
fn hsum(v: __m512) -> f32 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    let s8 = _mm256_add_ps(lo, hi);
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

/// The shared rational tanh, lane by lane with exactly the scalar operations.
#[inline]
#[target_feature(enable = "avx512f")]
fn tanh16(x: __m512) -> __m512 {
    let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(x), _mm512_set1_ps(TINY));
    let c = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(-CLAMP)),
        _mm512_set1_ps(CLAMP),
    );
    let x2 = _mm512_mul_ps(c, c);
    let mut p = _mm512_set1_ps(ALPHA[6]);
    for &a in ALPHA[..6].iter().rev() {
        p = _mm512_add_ps(_mm512_mul_ps(p, x2), _mm512_set1_ps(a));
    }
    p = _mm512_mul_ps(p, c);
    let mut q = _mm512_set1_ps(BETA[3]);
    for &b in BETA[..3].iter().rev() {
        q = _mm512_add_ps(_mm512_mul_ps(q, x2), _mm512_set1_ps(b));
    }
    _mm512_mask_blend_ps(tiny, _mm512_div_ps(p, q), x)
}

#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn leak16(keep: __m512, a: __m512, x: __m512, pre: __m512) -> __m512 {
    _mm512_add_ps(_mm512_mul_ps(keep, x), _mm512_mul_ps(a, tanh16(pre)))
}

/// Row `row` of A·x. Safe to call for any `a` that passed `CsrRef::new` and `x.len() == cols`:
/// the row range lies inside `indices`/`values` and gathered indices are clamped to cols − 1.
#[inline]
#[target_feature(enable = "avx512f")]
fn csr_row(a: CsrRef<'_>, row: usize, x: &[f32]) -> f32 {
    let (s, e) = (a.indptr[row] as usize, a.indptr[row + 1] as usize);
    let (idx, val) = (&a.indices[s..e], &a.values[s..e]);
    let last = _mm512_set1_epi32((a.cols - 1) as i32);
    let xp = x.as_ptr();
    let mut acc = [_mm512_setzero_ps(); 2];
    let n = e - s;
    let mut k = 0;
    while k + LANES <= n {
        // SAFETY: k + 16 <= n, so the 16-element loads stay inside `idx` and `val`; the gather
        // offsets are clamped to cols − 1 < x.len(), so every gathered address is inside x.
        unsafe {
            let i = _mm512_min_epu32(_mm512_loadu_si512(idx.as_ptr().add(k).cast()), last);
            let g = _mm512_i32gather_ps::<4>(i, xp);
            let v = _mm512_loadu_ps(val.as_ptr().add(k));
            let slot = (k / LANES) & 1;
            acc[slot] = _mm512_fmadd_ps(v, g, acc[slot]);
        }
        k += LANES;
    }
    if k < n {
        let m: __mmask16 = (1u32 << (n - k)).wrapping_sub(1) as u16;
        // SAFETY: masked-off lanes are neither loaded nor gathered; active lanes are < n as above.
        unsafe {
            let i = _mm512_min_epu32(
                _mm512_maskz_loadu_epi32(m, idx.as_ptr().add(k).cast()),
                last,
            );
            let g = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, i, xp);
            let v = _mm512_maskz_loadu_ps(m, val.as_ptr().add(k));
            let slot = (k / LANES) & 1;
            acc[slot] = _mm512_fmadd_ps(v, g, acc[slot]);
        }
    }
    hsum(_mm512_add_ps(acc[0], acc[1]))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn dense_row(a: DenseRef<'_>, row: usize, x: &[f32]) -> f32 {
    let r = &a.data[row * a.cols..(row + 1) * a.cols];
    let n = r.len();
    let mut acc = [_mm512_setzero_ps(); 2];
    let mut k = 0;
    while k + LANES <= n {
        // SAFETY: k + 16 <= n = r.len() = x.len().
        unsafe {
            let v = _mm512_loadu_ps(r.as_ptr().add(k));
            let g = _mm512_loadu_ps(x.as_ptr().add(k));
            let slot = (k / LANES) & 1;
            acc[slot] = _mm512_fmadd_ps(v, g, acc[slot]);
        }
        k += LANES;
    }
    if k < n {
        let m: __mmask16 = (1u32 << (n - k)).wrapping_sub(1) as u16;
        // SAFETY: only lanes below n are loaded.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, r.as_ptr().add(k));
            let g = _mm512_maskz_loadu_ps(m, x.as_ptr().add(k));
            let slot = (k / LANES) & 1;
            acc[slot] = _mm512_fmadd_ps(v, g, acc[slot]);
        }
    }
    hsum(_mm512_add_ps(acc[0], acc[1]))
}

/// Four consecutive rows of a dense A·x at once: x is loaded once per block for all four, and
/// the four rows' accumulator chains overlap. Each row's arithmetic is exactly `dense_row`'s.
#[inline]
#[target_feature(enable = "avx512f")]
fn dense_rows4(a: DenseRef<'_>, row0: usize, x: &[f32]) -> [f32; 4] {
    let n = a.cols;
    let base = &a.data[row0 * n..(row0 + 4) * n];
    let mut acc = [[_mm512_setzero_ps(); 2]; 4];
    let mut k = 0;
    while k + LANES <= n {
        let slot = (k / LANES) & 1;
        // SAFETY: k + 16 <= n = x.len(), and each row r·n + k + 16 <= 4·n = base.len().
        unsafe {
            let g = _mm512_loadu_ps(x.as_ptr().add(k));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let v = _mm512_loadu_ps(base.as_ptr().add(r * n + k));
                acc_r[slot] = _mm512_fmadd_ps(v, g, acc_r[slot]);
            }
        }
        k += LANES;
    }
    if k < n {
        let m: __mmask16 = (1u32 << (n - k)).wrapping_sub(1) as u16;
        let slot = (k / LANES) & 1;
        // SAFETY: only lanes below n are loaded.
        unsafe {
            let g = _mm512_maskz_loadu_ps(m, x.as_ptr().add(k));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let v = _mm512_maskz_loadu_ps(m, base.as_ptr().add(r * n + k));
                acc_r[slot] = _mm512_fmadd_ps(v, g, acc_r[slot]);
            }
        }
    }
    let mut out = [0.0f32; 4];
    for (o, acc_r) in out.iter_mut().zip(acc) {
        *o = hsum(_mm512_add_ps(acc_r[0], acc_r[1]));
    }
    out
}

#[target_feature(enable = "avx512f")]
pub(crate) fn csr_matvec(a: CsrRef<'_>, x: &[f32], y: &mut [f32]) {
    for (row, yr) in y.iter_mut().enumerate() {
        *yr = csr_row(a, row, x);
    }
}

#[target_feature(enable = "avx512f")]
pub(crate) fn dense_matvec(a: DenseRef<'_>, x: &[f32], y: &mut [f32]) {
    let mut quads = y.chunks_exact_mut(4);
    for (q, yq) in quads.by_ref().enumerate() {
        yq.copy_from_slice(&dense_rows4(a, 4 * q, x));
    }
    let done = a.rows / 4 * 4;
    for (r, yr) in quads.into_remainder().iter_mut().enumerate() {
        *yr = dense_row(a, done + r, x);
    }
}

#[target_feature(enable = "avx512f")]
pub(crate) fn leaky_step_rows(
    w: WeightsRef<'_>,
    p: LeakyUpdate<'_>,
    rows: Range<usize>,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let keep = _mm512_set1_ps(1.0 - p.leak_rate);
    let a = _mm512_set1_ps(p.leak_rate);
    let start = rows.start;
    let mut pre = [0.0f32; LANES];
    for (c, out) in x_next.chunks_mut(LANES).enumerate() {
        let i0 = start + c * LANES;
        let mut l = 0;
        while l < out.len() {
            match w {
                WeightsRef::Dense(m) if l + 4 <= out.len() => {
                    let wx = dense_rows4(m, i0 + l, x);
                    for (r, &v) in wx.iter().enumerate() {
                        pre[l + r] = scalar::input_and_bias(&p, i0 + l + r, u, v);
                    }
                    l += 4;
                }
                _ => {
                    let wx = match w {
                        WeightsRef::Csr(m) => csr_row(m, i0 + l, x),
                        WeightsRef::Dense(m) => dense_row(m, i0 + l, x),
                    };
                    pre[l] = scalar::input_and_bias(&p, i0 + l, u, wx);
                    l += 1;
                }
            }
        }
        let m: __mmask16 = (1u32 << out.len()).wrapping_sub(1) as u16;
        // SAFETY: lanes below out.len() are in bounds of `pre`, of `x` (i0 + l < rows.end <=
        // x.len()) and of `out`; the rest are masked off.
        unsafe {
            let xv = _mm512_maskz_loadu_ps(m, x.as_ptr().add(i0));
            let pv = _mm512_loadu_ps(pre.as_ptr());
            _mm512_mask_storeu_ps(out.as_mut_ptr(), m, leak16(keep, a, xv, pv));
        }
    }
}

/// R consecutive rows from `i0`, batch lanes b0 .. b0 + NV·16 (masked to the batch): each
/// lane repeats the scalar arithmetic of its row. The R rows' sums are independent chains,
/// interleaved over their common length so the adds do not wait on each other's latency.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn batch_block<const R: usize, const NV: usize>(
    w: CsrRef<'_>,
    p: &LeakyUpdate<'_>,
    batch: usize,
    i0: usize,
    b0: usize,
    u: &[f32],
    x: &[f32],
    out: &mut [f32],
) {
    let width = (batch - b0).min(NV * LANES);
    let mut masks = [0u16; NV];
    for (v, m) in masks.iter_mut().enumerate() {
        let n = width.saturating_sub(v * LANES).min(LANES);
        *m = (1u32 << n).wrapping_sub(1) as u16;
    }
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    let mut start = [0usize; R];
    let mut len = [0usize; R];
    for r in 0..R {
        start[r] = w.indptr[i0 + r] as usize;
        len[r] = w.indptr[i0 + r + 1] as usize - start[r];
    }
    let common = len.iter().copied().min().unwrap_or(0);
    let full = width == NV * LANES;
    let (xp, vals, cols) = (x.as_ptr(), w.values.as_ptr(), w.indices.as_ptr());
    // One non-zero (entry k) into a row's accumulators. Full blocks skip the masks.
    let term = |acc: &mut [__m512; NV], k: usize| {
        // SAFETY: k < indptr[rows] = values.len() = indices.len() (checked CsrRef); the column is
        // below cols (`CsrRef::new` checked every index), so its row of x starts at most at
        // (cols − 1)·batch and the lanes read, b0 .. b0 + width <= batch, stay inside x (length
        // cols·batch, checked).
        unsafe {
            let col = *cols.add(k) as usize;
            let row = xp.add(col * batch + b0);
            let wv = _mm512_set1_ps(*vals.add(k));
            for v in 0..NV {
                let xv = if full {
                    _mm512_loadu_ps(row.add(v * LANES))
                } else {
                    _mm512_maskz_loadu_ps(masks[v], row.add(v * LANES))
                };
                acc[v] = _mm512_add_ps(acc[v], _mm512_mul_ps(wv, xv));
            }
        }
    };
    for k in 0..common {
        for r in 0..R {
            term(&mut acc[r], start[r] + k);
        }
    }
    for r in 0..R {
        for k in common..len[r] {
            term(&mut acc[r], start[r] + k);
        }
    }
    let keep = _mm512_set1_ps(1.0 - p.leak_rate);
    let a = _mm512_set1_ps(p.leak_rate);
    for (r, acc_r) in acc.iter_mut().enumerate() {
        let i = i0 + r;
        for j in 0..p.inputs {
            let wv = _mm512_set1_ps(p.w_in[i * p.inputs + j]);
            let uj = &u[j * batch..(j + 1) * batch];
            for v in 0..NV {
                // SAFETY: as above, enabled lanes are inside uj (length batch).
                let uv =
                    unsafe { _mm512_maskz_loadu_ps(masks[v], uj.as_ptr().add(b0 + v * LANES)) };
                acc_r[v] = _mm512_add_ps(acc_r[v], _mm512_mul_ps(wv, uv));
            }
        }
        let bias = _mm512_set1_ps(p.bias[i]);
        let xi = &x[i * batch..(i + 1) * batch];
        let out_r = &mut out[r * batch..(r + 1) * batch];
        for v in 0..NV {
            // SAFETY: enabled lanes are inside xi and out_r (both of length batch).
            unsafe {
                let xv = _mm512_maskz_loadu_ps(masks[v], xi.as_ptr().add(b0 + v * LANES));
                let res = leak16(keep, a, xv, _mm512_add_ps(acc_r[v], bias));
                _mm512_mask_storeu_ps(out_r.as_mut_ptr().add(b0 + v * LANES), masks[v], res);
            }
        }
    }
}

/// Rows `i0 .. i0 + R` over the whole batch, in blocks of up to two vectors (32 lanes).
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn batch_rows<const R: usize>(
    w: CsrRef<'_>,
    p: &LeakyUpdate<'_>,
    batch: usize,
    i0: usize,
    u: &[f32],
    x: &[f32],
    out: &mut [f32],
) {
    let mut b0 = 0;
    while b0 < batch {
        if batch - b0 > LANES {
            batch_block::<R, 2>(w, p, batch, i0, b0, u, x, out);
        } else {
            batch_block::<R, 1>(w, p, batch, i0, b0, u, x, out);
        }
        b0 += 2 * LANES;
    }
}

#[target_feature(enable = "avx512f")]
pub(crate) fn leaky_step_batch_rows(
    w: CsrRef<'_>,
    p: LeakyUpdate<'_>,
    batch: usize,
    rows: Range<usize>,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    const R: usize = 4;
    let start = rows.start;
    let mut chunks = x_next.chunks_exact_mut(R * batch);
    for (c, out) in chunks.by_ref().enumerate() {
        batch_rows::<R>(w, &p, batch, start + c * R, u, x, out);
    }
    let done = (rows.len() / R) * R;
    for (r, out) in chunks.into_remainder().chunks_exact_mut(batch).enumerate() {
        batch_rows::<1>(w, &p, batch, start + done + r, u, x, out);
    }
}

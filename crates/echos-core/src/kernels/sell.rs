//! SELL-16 (sliced ELLPACK, Kreutzer et al. 2014, rows sorted by length) for the
//! single-sequence step: 16 rows share one vector accumulator, so one gather serves 16 rows and
//! no horizontal sum or per-row tail is needed. Each lane sums its row in index order with
//! separate multiply and add (a per-lane mask skips the padding), which is exactly the scalar
//! CSR arithmetic: the SELL step is bit-identical to the scalar step, on every variant.

use super::{CsrRef, KernelError, LeakyUpdate};
use alloc::vec;
use alloc::vec::Vec;

/// Rows per slice: one AVX-512 vector, or two AVX2 vectors.
pub const SLICE: usize = 16;

/// A reservoir's CSR matrix, input weights and bias rearranged into 16-row slices.
#[derive(Clone, Debug)]
pub struct SellLeaky {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    // Read by the SIMD steps only, which soft-float targets do not build.
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "sse2")),
        allow(dead_code)
    )]
    pub(crate) slices: usize,
    pub(crate) inputs: usize,
    /// Original row of each slot (slot = slice·16 + lane); padding slots point at row 0.
    pub(crate) perm: Vec<u32>,
    /// Non-zeros of each slot's row; 0 for padding.
    pub(crate) lens: Vec<u32>,
    /// Start of each slice in `values`/`indices` (slices + 1); a slice is k-major, 16 wide.
    pub(crate) slice_ptr: Vec<u32>,
    pub(crate) values: Vec<f32>,
    pub(crate) indices: Vec<u32>,
    /// Input weights per slice: w_in_t[(slice·inputs + j)·16 + lane].
    pub(crate) w_in_t: Vec<f32>,
    /// Bias per slot.
    pub(crate) bias: Vec<f32>,
    /// Per slice: the length every lane reaches (its shortest row), 0 if it has padding lanes.
    pub(crate) full: Vec<u32>,
}

impl SellLeaky {
    /// Rearranges `w` with the update's input weights and bias. O(nnz + rows·log rows). The
    /// SIMD steps gather x at `w`'s column indices without a clamp: a [`CsrRef`] has had every
    /// index checked below `cols`, and the step checks `x.len() == cols`. `p`'s lengths are
    /// checked here.
    pub fn new(w: CsrRef<'_>, p: LeakyUpdate<'_>) -> Result<SellLeaky, KernelError> {
        p.check(w.rows)?;
        let rows = w.rows;
        let slices = rows.div_ceil(SLICE);
        let row_len = |r: usize| w.indptr[r + 1] - w.indptr[r];
        let mut order: Vec<u32> = (0..rows as u32).collect();
        // Longest rows first (stable), so each slice pads little.
        order.sort_by_key(|&r| core::cmp::Reverse(row_len(r as usize)));
        let mut perm = vec![0u32; slices * SLICE];
        let mut lens = vec![0u32; slices * SLICE];
        for (slot, &r) in order.iter().enumerate() {
            perm[slot] = r;
            lens[slot] = row_len(r as usize);
        }
        let mut slice_ptr = Vec::with_capacity(slices + 1);
        slice_ptr.push(0u32);
        let mut total = 0usize;
        for s in 0..slices {
            let width = lens[s * SLICE..(s + 1) * SLICE]
                .iter()
                .copied()
                .max()
                .unwrap_or(0) as usize;
            total += width * SLICE;
            // Padding can push the slot count past u32 even when nnz fits.
            let end = u32::try_from(total).map_err(|_| KernelError::Dimension {
                what: "SELL-16 slots (non-zeros with padding)",
                value: total,
            })?;
            slice_ptr.push(end);
        }
        let mut values = vec![0.0f32; total];
        let mut indices = vec![0u32; total];
        for (s, &start) in slice_ptr.iter().enumerate().take(slices) {
            let base = start as usize;
            for lane in 0..SLICE {
                let slot = s * SLICE + lane;
                if slot >= rows {
                    continue;
                }
                let r = perm[slot] as usize;
                let start = w.indptr[r] as usize;
                for k in 0..lens[slot] as usize {
                    values[base + k * SLICE + lane] = w.values[start + k];
                    indices[base + k * SLICE + lane] = w.indices[start + k];
                }
            }
        }
        let mut w_in_t = vec![0.0f32; slices * p.inputs * SLICE];
        let mut bias = vec![0.0f32; slices * SLICE];
        for slot in 0..rows {
            let (s, lane, r) = (slot / SLICE, slot % SLICE, perm[slot] as usize);
            for j in 0..p.inputs {
                w_in_t[(s * p.inputs + j) * SLICE + lane] = p.w_in[r * p.inputs + j];
            }
            bias[slot] = p.bias[r];
        }
        let full = (0..slices)
            .map(|s| {
                if (s + 1) * SLICE <= rows {
                    lens[s * SLICE..(s + 1) * SLICE]
                        .iter()
                        .copied()
                        .min()
                        .unwrap_or(0)
                } else {
                    0
                }
            })
            .collect();
        Ok(SellLeaky {
            full,
            rows,
            cols: w.cols,
            slices,
            inputs: p.inputs,
            perm,
            lens,
            slice_ptr,
            values,
            indices,
            w_in_t,
            bias,
        })
    }

    /// Bytes held (and read once per step).
    pub fn bytes(&self) -> usize {
        4 * (self.perm.len() + self.lens.len() + self.slice_ptr.len() + self.values.len())
            + 4 * (self.indices.len() + self.w_in_t.len() + self.bias.len() + self.full.len())
    }

    /// Stored entries including padding.
    pub fn padded_nnz(&self) -> usize {
        self.values.len()
    }

    /// Number of 16-row slices.
    pub fn slices(&self) -> usize {
        self.slices
    }

    /// Original row of each slot (slot = slice·16 + lane; only the first `rows` are real).
    pub fn slot_rows(&self) -> &[u32] {
        &self.perm
    }
}

/// Slices `slices` of the step in portable code, each slot's new value written in slot order
/// (`out[slot − slices.start·16]`; padding slots get 0): the same arithmetic as the SIMD steps.
pub(crate) fn leaky_step_slots_scalar(
    m: &SellLeaky,
    leak_rate: f32,
    u: &[f32],
    x: &[f32],
    slices: core::ops::Range<usize>,
    out: &mut [f32],
) {
    let keep = 1.0 - leak_rate;
    let first = slices.start * SLICE;
    for (o, slot) in out.iter_mut().zip(first..slices.end * SLICE) {
        if slot >= m.rows {
            *o = 0.0;
            continue;
        }
        let (s, lane) = (slot / SLICE, slot % SLICE);
        let base = m.slice_ptr[s] as usize;
        let mut acc = 0.0f32;
        for k in 0..m.lens[slot] as usize {
            acc +=
                m.values[base + k * SLICE + lane] * x[m.indices[base + k * SLICE + lane] as usize];
        }
        for (j, &uj) in u.iter().enumerate() {
            acc += m.w_in_t[(s * m.inputs + j) * SLICE + lane] * uj;
        }
        let r = m.perm[slot] as usize;
        *o = super::scalar::leak(keep, leak_rate, x[r], acc + m.bias[slot]);
    }
}

/// The SELL step in portable code (for tests; the scalar *variant* steps on CSR directly).
pub(crate) fn leaky_step_scalar(
    m: &SellLeaky,
    leak_rate: f32,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let keep = 1.0 - leak_rate;
    for slot in 0..m.rows {
        let (s, lane) = (slot / SLICE, slot % SLICE);
        let base = m.slice_ptr[s] as usize;
        let mut acc = 0.0f32;
        for k in 0..m.lens[slot] as usize {
            acc +=
                m.values[base + k * SLICE + lane] * x[m.indices[base + k * SLICE + lane] as usize];
        }
        for (j, &uj) in u.iter().enumerate() {
            acc += m.w_in_t[(s * m.inputs + j) * SLICE + lane] * uj;
        }
        let r = m.perm[slot] as usize;
        x_next[r] = super::scalar::leak(keep, leak_rate, x[r], acc + m.bias[slot]);
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)] // the SIMD steps
pub(crate) mod simd {
    use super::{SellLeaky, SLICE};
    use core::arch::x86_64::*;

    /// k-steps `k0 .. k1` of one slice into `acc`, every lane active (no masks needed).
    ///
    /// # Safety
    /// AVX-512F available; base + k1·16 <= values.len(); indices of those entries < x.len().
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn full_steps(
        m: &SellLeaky,
        base: usize,
        k0: usize,
        k1: usize,
        xp: *const f32,
        acc: &mut __m512,
    ) {
        for k in k0..k1 {
            // SAFETY: guaranteed by the caller.
            unsafe {
                let idx = _mm512_loadu_si512(m.indices.as_ptr().add(base + k * SLICE).cast());
                let v = _mm512_loadu_ps(m.values.as_ptr().add(base + k * SLICE));
                let g = _mm512_i32gather_ps::<4>(idx, xp);
                *acc = _mm512_add_ps(*acc, _mm512_mul_ps(v, g));
            }
        }
    }

    /// One 16-row slice per iteration, two slices interleaved over their common all-lanes-active
    /// prefix (independent add chains), then the masked remainder; padding lanes are masked out
    /// of every add, gather and scatter. Bounds: `new` built indices < cols = x.len() and perm <
    /// rows = x_next.len(), and each slice's k-major block lies inside values/indices by
    /// construction of slice_ptr.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn leaky_step_avx512(
        m: &SellLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        // SAFETY: scatter mode writes x_next[perm[slot]] for live slots, perm < rows =
        // x_next.len() (checked by the caller).
        unsafe { step_avx512::<false>(m, leak_rate, u, x, 0..m.slices, x_next.as_mut_ptr()) }
    }

    /// Slices `slices` only, each slice's 16 results stored in slot order at
    /// `out[(slice − slices.start)·16 ..]` (padding lanes untouched): lets threads share one
    /// step without sharing an output (the caller puts slot values back in row order).
    #[target_feature(enable = "avx512f")]
    pub(crate) fn leaky_step_slots_avx512(
        m: &SellLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        slices: core::ops::Range<usize>,
        out: &mut [f32],
    ) {
        // SAFETY: slot mode writes out[(sl − start)·16 + lane] for live lanes of slices in the
        // range, and out.len() = range length · 16 (checked by the caller).
        unsafe { step_avx512::<true>(m, leak_rate, u, x, slices, out.as_mut_ptr()) }
    }

    /// # Safety
    /// AVX-512F available; `slices.end <= m.slices`; x.len() = m.rows; with SLOTS `out` points
    /// at (slices.len()·16) writable floats, otherwise at m.rows (scattered by perm).
    #[target_feature(enable = "avx512f")]
    unsafe fn step_avx512<const SLOTS: bool>(
        m: &SellLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        slices: core::ops::Range<usize>,
        out: *mut f32,
    ) {
        let keep = _mm512_set1_ps(1.0 - leak_rate);
        let a = _mm512_set1_ps(leak_rate);
        let xp = x.as_ptr();
        let mut s = slices.start;
        while s < slices.end {
            let pair = s + 1 < slices.end;
            let mut acc = [_mm512_setzero_ps(); 2];
            let mut done = [0usize; 2];
            if pair {
                // Both slices have every lane active for k < common.
                let common = m.full[s].min(m.full[s + 1]) as usize;
                let (b0, b1) = (m.slice_ptr[s] as usize, m.slice_ptr[s + 1] as usize);
                for k in 0..common {
                    // SAFETY: k < min row length of each slice, so the entries are real, inside
                    // the slice blocks, with indices < x.len().
                    unsafe {
                        full_steps(m, b0, k, k + 1, xp, &mut acc[0]);
                        full_steps(m, b1, k, k + 1, xp, &mut acc[1]);
                    }
                }
                done = [common, common];
            }
            for (h, acc_h) in acc.iter_mut().enumerate().take(if pair { 2 } else { 1 }) {
                let sl = s + h;
                let base = m.slice_ptr[sl] as usize;
                let width = (m.slice_ptr[sl + 1] as usize - base) / SLICE;
                let slot0 = sl * SLICE;
                // SAFETY: lens holds slices·16 entries; slot0 + 16 <= that.
                let lens = unsafe { _mm512_loadu_si512(m.lens.as_ptr().add(slot0).cast()) };
                for k in done[h]..width {
                    let active = _mm512_cmpgt_epu32_mask(lens, _mm512_set1_epi32(k as i32));
                    // SAFETY: base + (k + 1)·16 <= slice_ptr[sl + 1] <= values.len() =
                    // indices.len(); active lanes hold column indices < cols = x.len().
                    unsafe {
                        let idx =
                            _mm512_loadu_si512(m.indices.as_ptr().add(base + k * SLICE).cast());
                        let v = _mm512_loadu_ps(m.values.as_ptr().add(base + k * SLICE));
                        let g = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), active, idx, xp);
                        *acc_h = _mm512_mask_add_ps(*acc_h, active, *acc_h, _mm512_mul_ps(v, g));
                    }
                }
                let mut r = *acc_h;
                for (j, &uj) in u.iter().enumerate() {
                    // SAFETY: w_in_t holds slices·inputs·16 values.
                    let w = unsafe {
                        _mm512_loadu_ps(m.w_in_t.as_ptr().add((sl * m.inputs + j) * SLICE))
                    };
                    r = _mm512_add_ps(r, _mm512_mul_ps(w, _mm512_set1_ps(uj)));
                }
                // Real rows (a row without non-zeros still gets its input, bias and leak).
                let live: __mmask16 = ((1u32 << (m.rows - slot0).min(SLICE)) - 1) as u16;
                // SAFETY: live lanes have perm < rows = x.len() = x_next.len(); others are
                // masked; perm and bias hold slices·16 entries.
                unsafe {
                    let perm = _mm512_loadu_si512(m.perm.as_ptr().add(slot0).cast());
                    let bias = _mm512_loadu_ps(m.bias.as_ptr().add(slot0));
                    let xv = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), live, perm, xp);
                    let res = super::super::avx512::leak16(keep, a, xv, _mm512_add_ps(r, bias));
                    if SLOTS {
                        _mm512_mask_storeu_ps(out.add((sl - slices.start) * SLICE), live, res);
                    } else {
                        _mm512_mask_i32scatter_ps::<4>(out, live, perm, res);
                    }
                }
            }
            s += if pair { 2 } else { 1 };
        }
    }

    /// The same with two 8-lane halves per slice (AVX2 has no scatter: stores are scalar).
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn leaky_step_avx2(
        m: &SellLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        let keep = _mm256_set1_ps(1.0 - leak_rate);
        let a = _mm256_set1_ps(leak_rate);
        let xp = x.as_ptr();
        let mut out = [0.0f32; 8];
        for s in 0..m.slices {
            let base = m.slice_ptr[s] as usize;
            let width = (m.slice_ptr[s + 1] as usize - base) / SLICE;
            for h in 0..2 {
                let slot0 = s * SLICE + h * 8;
                if slot0 >= m.rows {
                    break;
                }
                // SAFETY: slot0 + 8 <= slices·16 = lens.len() = perm.len() = bias.len().
                let (lens, perm, bias) = unsafe {
                    (
                        _mm256_loadu_si256(m.lens.as_ptr().add(slot0).cast()),
                        _mm256_loadu_si256(m.perm.as_ptr().add(slot0).cast()),
                        _mm256_loadu_ps(m.bias.as_ptr().add(slot0)),
                    )
                };
                let mut acc = _mm256_setzero_ps();
                for k in 0..width {
                    // lens are < 2^31, so a signed compare is exact.
                    let active = _mm256_cmpgt_epi32(lens, _mm256_set1_epi32(k as i32));
                    let off = base + k * SLICE + h * 8;
                    // SAFETY: off + 8 <= slice_ptr[s + 1]; active lanes index inside x.
                    unsafe {
                        let idx = _mm256_loadu_si256(m.indices.as_ptr().add(off).cast());
                        let v = _mm256_loadu_ps(m.values.as_ptr().add(off));
                        let g = _mm256_mask_i32gather_ps::<4>(
                            _mm256_setzero_ps(),
                            xp,
                            idx,
                            _mm256_castsi256_ps(active),
                        );
                        let sum = _mm256_add_ps(acc, _mm256_mul_ps(v, g));
                        acc = _mm256_blendv_ps(acc, sum, _mm256_castsi256_ps(active));
                    }
                }
                for (j, &uj) in u.iter().enumerate() {
                    // SAFETY: w_in_t holds slices·inputs·16 values.
                    let w = unsafe {
                        _mm256_loadu_ps(m.w_in_t.as_ptr().add((s * m.inputs + j) * SLICE + h * 8))
                    };
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(w, _mm256_set1_ps(uj)));
                }
                // Padding lanes point at row 0, so this gather is in bounds for every lane.
                // SAFETY: perm < rows = x.len() for every slot.
                let xv = unsafe { _mm256_i32gather_ps::<4>(xp, perm) };
                let r = super::super::avx2::leak8(keep, a, xv, _mm256_add_ps(acc, bias));
                // SAFETY: `out` holds 8 floats.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), r) };
                let n = (m.rows - slot0).min(8);
                for (lane, &v) in out.iter().enumerate().take(n) {
                    x_next[m.perm[slot0 + lane] as usize] = v;
                }
            }
        }
    }
}

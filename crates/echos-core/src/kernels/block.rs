//! The fused leaky step for block-sparse reservoirs (`Topology::Block`): rows come in groups of
//! `size` that share their k columns, so a group's product is k broadcasts of x[col] times
//! `size` contiguous weights — vector loads and multiply–adds, no gathers.
//!
//! Arithmetic (identical in every variant, so all three give the same bits): for row i of
//! group g, acc = 0, then for each of the group's columns in ascending order
//! acc = acc + w·x[col] (separate multiply and add), then acc = acc + W_in[i,j]·u[j] for j in
//! index order, then x'[i] = (1−a)·x[i] + a·fast_tanh(acc + b[i]).
//!
//! Layout: each group is cut into chunks of up to 16 rows (one AVX-512 register; AVX2 uses two
//! halves), and chunks are taken `TILE` at a time. A tile stores, column step by column step,
//! the `TILE` chunks' column indices and their 16-lane weight vectors side by side, so the step
//! streams through one index array and one weight array with fixed offsets, keeping `TILE`
//! (AVX2: 2·`TILE`) add chains in flight without running out of registers. Lanes past a
//! chunk's rows, and the dummy chunks that fill the last tile, hold zero weights (column 0) and
//! are never stored. Groups whose size is not a multiple of 16 waste the unused lanes.

use super::{check_dim, check_len, checked_size, KernelError, LeakyUpdate};
use alloc::vec;
use alloc::vec::Vec;

/// Rows per chunk: one AVX-512 register of f32.
pub const LANES: usize = 16;
/// Chunks stepped together (independent add chains).
pub const TILE: usize = 4;

/// A block-sparse reservoir's weights, input weights and bias laid out in tiles for the step.
#[derive(Clone, Debug)]
pub struct BlockLeaky {
    pub(crate) units: usize,
    pub(crate) size: usize,
    pub(crate) per_group: usize,
    pub(crate) inputs: usize,
    pub(crate) tiles: usize,
    /// First row of each chunk slot (tiles·TILE); dummy slots hold 0.
    pub(crate) chunk_first: Vec<u32>,
    /// Rows of each chunk slot (0 for dummy slots).
    pub(crate) chunk_live: Vec<u32>,
    /// `idx[(t·k + c)·TILE + h]`: chunk h of tile t, its group's c-th column (< units).
    pub(crate) idx: Vec<u32>,
    /// `w[((t·k + c)·TILE + h)·16 + lane]`: the weight of that column for the chunk's row `lane`.
    pub(crate) w: Vec<f32>,
    /// `w_in_t[((t·inputs + j)·TILE + h)·16 + lane]`.
    pub(crate) w_in_t: Vec<f32>,
    /// `bias_t[(t·TILE + h)·16 + lane]`.
    pub(crate) bias_t: Vec<f32>,
}

/// The CSR form of block-sparse weights laid out as `topology::BlockSparse` (`indices[g·k + c]`,
/// `values[(g·k + c)·size + r]`): row i = (group g, row r) lists its group's k columns in
/// their stored order. The workspace's one block-to-CSR conversion (the model's
/// `BlockSparse::to_csr` and the fused reservoir's batch form both use it). Inputs must be
/// consistent (checked by `BlockSparse::validate` or `BlockLeaky::new`).
pub fn block_to_csr<T: Copy>(
    units: usize,
    size: usize,
    per_group: usize,
    indices: &[u32],
    values: &[T],
) -> (Vec<u32>, Vec<u32>, Vec<T>) {
    let k = per_group;
    let mut indptr = Vec::with_capacity(units + 1);
    let mut cols = Vec::with_capacity(units * k);
    let mut vals = Vec::with_capacity(units * k);
    indptr.push(0u32);
    for i in 0..units {
        let (g, r) = (i / size, i % size);
        for c in 0..k {
            cols.push(indices[g * k + c]);
            vals.push(values[(g * k + c) * size + r]);
        }
        indptr.push(cols.len() as u32);
    }
    (indptr, cols, vals)
}

impl BlockLeaky {
    /// Checks the shape and every column index and rearranges the weights (given as in
    /// `topology::BlockSparse`: `indices[g·k + c]`, `values[(g·k + c)·size + r]`) into tiles.
    pub fn new(
        units: usize,
        size: usize,
        per_group: usize,
        indices: &[u32],
        values: &[f32],
        p: LeakyUpdate<'_>,
    ) -> Result<BlockLeaky, KernelError> {
        check_dim("units", units)?;
        check_dim("block size", size)?;
        check_dim("columns per group", per_group)?;
        if size > units {
            return Err(KernelError::Dimension {
                what: "block size (must be <= units)",
                value: size,
            });
        }
        if per_group > units {
            return Err(KernelError::Dimension {
                what: "columns per group (must be <= units)",
                value: per_group,
            });
        }
        let k = per_group;
        let groups = units.div_ceil(size);
        let n_idx = checked_size("groups × columns per group", groups, k)?;
        check_len("block indices", n_idx, indices.len())?;
        check_len(
            "block values",
            checked_size("block indices × size", n_idx, size)?,
            values.len(),
        )?;
        if let Some(position) = indices.iter().position(|&i| i as usize >= units) {
            return Err(KernelError::ColumnIndex {
                position,
                index: indices[position],
                cols: units,
            });
        }
        p.check(units)?;
        // Chunks: (group, first row in group, live rows), in group order.
        let mut chunks = Vec::new();
        for g in 0..groups {
            let rows = size.min(units - g * size);
            let mut r = 0;
            while r < rows {
                chunks.push((g, r, LANES.min(rows - r)));
                r += LANES;
            }
        }
        let tiles = chunks.len().div_ceil(TILE);
        let slots = tiles * TILE;
        let n_w = checked_size("tiles × columns × 64", slots * k, LANES)?;
        let mut chunk_first = vec![0u32; slots];
        let mut chunk_live = vec![0u32; slots];
        let mut idx = vec![0u32; slots * k];
        let mut w = vec![0.0f32; n_w];
        let mut w_in_t =
            vec![0.0f32; checked_size("tiles × inputs × 64", slots * p.inputs, LANES)?];
        let mut bias_t = vec![0.0f32; slots * LANES];
        for (slot, &(g, r0, live)) in chunks.iter().enumerate() {
            let (t, h) = (slot / TILE, slot % TILE);
            let first = g * size + r0;
            chunk_first[slot] = first as u32;
            chunk_live[slot] = live as u32;
            for c in 0..k {
                let at = (t * k + c) * TILE + h;
                idx[at] = indices[g * k + c];
                for lane in 0..live {
                    w[at * LANES + lane] = values[(g * k + c) * size + r0 + lane];
                }
            }
            for lane in 0..live {
                let i = first + lane;
                for j in 0..p.inputs {
                    w_in_t[((t * p.inputs + j) * TILE + h) * LANES + lane] =
                        p.w_in[i * p.inputs + j];
                }
                bias_t[slot * LANES + lane] = p.bias[i];
            }
        }
        Ok(BlockLeaky {
            units,
            size,
            per_group,
            inputs: p.inputs,
            tiles,
            chunk_first,
            chunk_live,
            idx,
            w,
            w_in_t,
            bias_t,
        })
    }

    /// Number of units.
    pub fn units(&self) -> usize {
        self.units
    }
    /// Rows per group.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Columns per group (= nonzeros per row).
    pub fn per_group(&self) -> usize {
        self.per_group
    }
    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.inputs
    }
    /// Nonzeros of the matrix (padding excluded).
    pub fn nnz(&self) -> usize {
        self.units * self.per_group
    }
    /// Lane multiply–adds one step performs on the recurrent weights (padding lanes and dummy
    /// chunks included): the work the SIMD steps do.
    pub fn padded_nnz(&self) -> usize {
        self.w.len()
    }
    /// Bytes held, all of which one step reads (weights, indices, input weights, bias, chunk
    /// table).
    pub fn bytes(&self) -> usize {
        4 * (self.idx.len()
            + self.w.len()
            + self.w_in_t.len()
            + self.bias_t.len()
            + self.chunk_first.len()
            + self.chunk_live.len())
    }
}

/// The block step in portable code: the reference arithmetic of the module note, chunk by
/// chunk with a 16-lane stack accumulator (column-outer; each row still adds in column order).
pub(crate) fn leaky_step_scalar(
    m: &BlockLeaky,
    leak_rate: f32,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let keep = 1.0 - leak_rate;
    let k = m.per_group;
    for slot in 0..m.tiles * TILE {
        let live = m.chunk_live[slot] as usize;
        if live == 0 {
            continue;
        }
        let (t, h) = (slot / TILE, slot % TILE);
        let mut acc = [0.0f32; LANES];
        for c in 0..k {
            let at = (t * k + c) * TILE + h;
            let xc = x[m.idx[at] as usize];
            for (a, &w) in acc.iter_mut().zip(&m.w[at * LANES..at * LANES + LANES]) {
                *a += w * xc;
            }
        }
        for (j, &uj) in u.iter().enumerate() {
            let at = ((t * m.inputs + j) * TILE + h) * LANES;
            for (a, &w) in acc.iter_mut().zip(&m.w_in_t[at..at + LANES]) {
                *a += w * uj;
            }
        }
        let first = m.chunk_first[slot] as usize;
        for (lane, &a) in acc.iter().enumerate().take(live) {
            let i = first + lane;
            x_next[i] =
                super::scalar::leak(keep, leak_rate, x[i], a + m.bias_t[slot * LANES + lane]);
        }
    }
}

/// The batched block step in portable code: `batch` sequences, states unit-major
/// (`x[i·batch + b]`, `u[j·batch + b]`); each sequence gets exactly the single step's
/// arithmetic. `x_next` holds the running sums (column-outer, batch lanes innermost so the
/// loop vectorises); every (row, sequence) still adds its terms in column order.
pub(crate) fn leaky_step_batch_scalar(
    m: &BlockLeaky,
    leak_rate: f32,
    batch: usize,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let keep = 1.0 - leak_rate;
    let k = m.per_group;
    for slot in 0..m.tiles * TILE {
        let live = m.chunk_live[slot] as usize;
        let (t, h) = (slot / TILE, slot % TILE);
        let first = m.chunk_first[slot] as usize;
        let acc = &mut x_next[first * batch..(first + live) * batch];
        acc.fill(0.0);
        for c in 0..k {
            let at = (t * k + c) * TILE + h;
            let col = m.idx[at] as usize;
            let xc = &x[col * batch..(col + 1) * batch];
            for (r, acc_r) in acc.chunks_exact_mut(batch).enumerate() {
                let w = m.w[at * LANES + r];
                for (a, &xb) in acc_r.iter_mut().zip(xc) {
                    *a += w * xb;
                }
            }
        }
        for j in 0..m.inputs {
            let uj = &u[j * batch..(j + 1) * batch];
            for (r, acc_r) in acc.chunks_exact_mut(batch).enumerate() {
                let w = m.w_in_t[((t * m.inputs + j) * TILE + h) * LANES + r];
                for (a, &ub) in acc_r.iter_mut().zip(uj) {
                    *a += w * ub;
                }
            }
        }
        for (r, acc_r) in acc.chunks_exact_mut(batch).enumerate() {
            let i = first + r;
            let bias = m.bias_t[slot * LANES + r];
            for (b, a) in acc_r.iter_mut().enumerate() {
                *a = super::scalar::leak(keep, leak_rate, x[i * batch + b], *a + bias);
            }
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)] // the SIMD steps
pub(crate) mod simd {
    use super::{BlockLeaky, LANES, TILE};
    use core::arch::x86_64::*;

    /// The block step, one tile (TILE chunks of 16 rows) at a time.
    ///
    /// Bounds: `new` sized idx = tiles·k·TILE, w = idx·16, w_in_t = tiles·inputs·TILE·16,
    /// bias_t = tiles·TILE·16, and made every idx < units = x.len(); a live chunk's rows
    /// first..first+live are < units = x_next.len() (the caller checked the lengths).
    #[target_feature(enable = "avx512f")]
    pub(crate) fn leaky_step_avx512(
        m: &BlockLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        let keep = _mm512_set1_ps(1.0 - leak_rate);
        let a = _mm512_set1_ps(leak_rate);
        let k = m.per_group;
        let xp = x.as_ptr();
        let out = x_next.as_mut_ptr();
        for t in 0..m.tiles {
            // SAFETY: tile t's index and weight blocks start inside idx / w (see above).
            let (ip, wp) = unsafe {
                (
                    m.idx.as_ptr().add(t * k * TILE),
                    m.w.as_ptr().add(t * k * TILE * LANES),
                )
            };
            let mut acc = [_mm512_setzero_ps(); TILE];
            for c in 0..k {
                for (h, acc_h) in acc.iter_mut().enumerate() {
                    // SAFETY: c < k and h < TILE stay inside the tile's blocks; the index is
                    // < units = x.len().
                    unsafe {
                        let at = c * TILE + h;
                        let xc = _mm512_set1_ps(*xp.add(*ip.add(at) as usize));
                        let w = _mm512_loadu_ps(wp.add(at * LANES));
                        *acc_h = _mm512_add_ps(*acc_h, _mm512_mul_ps(w, xc));
                    }
                }
            }
            for (h, &acc_h) in acc.iter().enumerate() {
                let slot = t * TILE + h;
                let live = m.chunk_live[slot];
                if live == 0 {
                    continue;
                }
                let mask = ((1u32 << live) - 1) as u16;
                let first = m.chunk_first[slot] as usize;
                let mut r = acc_h;
                for (j, &uj) in u.iter().enumerate() {
                    // SAFETY: inside w_in_t (see above).
                    let w = unsafe {
                        _mm512_loadu_ps(
                            m.w_in_t
                                .as_ptr()
                                .add(((t * m.inputs + j) * TILE + h) * LANES),
                        )
                    };
                    r = _mm512_add_ps(r, _mm512_mul_ps(w, _mm512_set1_ps(uj)));
                }
                // SAFETY: bias_t holds slot·16 + 16 values; live lanes of x / x_next are rows
                // < units, masked lanes are neither read nor written.
                unsafe {
                    let bias = _mm512_loadu_ps(m.bias_t.as_ptr().add(slot * LANES));
                    let xv = _mm512_maskz_loadu_ps(mask, xp.add(first));
                    let res = super::super::avx512::leak16(keep, a, xv, _mm512_add_ps(r, bias));
                    _mm512_mask_storeu_ps(out.add(first), mask, res);
                }
            }
        }
    }

    /// The batched block step: lanes over 16 sequences, one accumulator per row of the chunk
    /// (16), so each column's x[col][b0..b0+16] is loaded once and multiplied by the chunk's
    /// 16 weights (broadcast). Padding rows have zero weights and are never stored.
    ///
    /// Bounds: as for the single step, with states unit-major of `batch` lanes (the caller
    /// checked x, x_next = units·batch, u = inputs·batch); lanes past `batch` are masked.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn leaky_step_batch_avx512(
        m: &BlockLeaky,
        leak_rate: f32,
        batch: usize,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        let keep = _mm512_set1_ps(1.0 - leak_rate);
        let a = _mm512_set1_ps(leak_rate);
        let k = m.per_group;
        let (xp, up, out) = (x.as_ptr(), u.as_ptr(), x_next.as_mut_ptr());
        for slot in 0..m.tiles * TILE {
            let live = m.chunk_live[slot] as usize;
            if live == 0 {
                continue;
            }
            let (t, h) = (slot / TILE, slot % TILE);
            let first = m.chunk_first[slot] as usize;
            let mut b0 = 0;
            while b0 < batch {
                let mask = if batch - b0 >= LANES {
                    0xFFFF
                } else {
                    ((1u32 << (batch - b0)) - 1) as u16
                };
                let mut acc = [_mm512_setzero_ps(); LANES];
                for c in 0..k {
                    let at = (t * k + c) * TILE + h;
                    // SAFETY: at < idx.len() and at·16 + 16 <= w.len(); the column is < units,
                    // so its batch lanes b0.. (masked to < batch) are inside x.
                    unsafe {
                        let col = *m.idx.as_ptr().add(at) as usize;
                        let xv = _mm512_maskz_loadu_ps(mask, xp.add(col * batch + b0));
                        let wp = m.w.as_ptr().add(at * LANES);
                        for (r, acc_r) in acc.iter_mut().enumerate() {
                            let w = _mm512_set1_ps(*wp.add(r));
                            *acc_r = _mm512_add_ps(*acc_r, _mm512_mul_ps(w, xv));
                        }
                    }
                }
                for (r, &acc_r) in acc.iter().enumerate().take(live) {
                    let i = first + r;
                    let mut pre = acc_r;
                    for j in 0..m.inputs {
                        // SAFETY: inside w_in_t; u lanes masked to < batch.
                        unsafe {
                            let w = _mm512_set1_ps(
                                *m.w_in_t
                                    .as_ptr()
                                    .add(((t * m.inputs + j) * TILE + h) * LANES + r),
                            );
                            let uv = _mm512_maskz_loadu_ps(mask, up.add(j * batch + b0));
                            pre = _mm512_add_ps(pre, _mm512_mul_ps(w, uv));
                        }
                    }
                    // SAFETY: row i < units; lanes masked to < batch.
                    unsafe {
                        let bias = _mm512_set1_ps(*m.bias_t.as_ptr().add(slot * LANES + r));
                        let xv = _mm512_maskz_loadu_ps(mask, xp.add(i * batch + b0));
                        let res =
                            super::super::avx512::leak16(keep, a, xv, _mm512_add_ps(pre, bias));
                        _mm512_mask_storeu_ps(out.add(i * batch + b0), mask, res);
                    }
                }
                b0 += LANES;
            }
        }
    }

    /// AVX2 form: each 16-row chunk as two 8-lane halves (2·TILE add chains).
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn leaky_step_avx2(
        m: &BlockLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        let keep = _mm256_set1_ps(1.0 - leak_rate);
        let a = _mm256_set1_ps(leak_rate);
        let k = m.per_group;
        let xp = x.as_ptr();
        let lane_ids = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut out = [0.0f32; LANES];
        for t in 0..m.tiles {
            // SAFETY: as in the AVX-512 step.
            let (ip, wp) = unsafe {
                (
                    m.idx.as_ptr().add(t * k * TILE),
                    m.w.as_ptr().add(t * k * TILE * LANES),
                )
            };
            let mut acc = [[_mm256_setzero_ps(); 2]; TILE];
            for c in 0..k {
                for (h, acc_h) in acc.iter_mut().enumerate() {
                    // SAFETY: as in the AVX-512 step.
                    unsafe {
                        let at = c * TILE + h;
                        let xc = _mm256_set1_ps(*xp.add(*ip.add(at) as usize));
                        let w0 = _mm256_loadu_ps(wp.add(at * LANES));
                        let w1 = _mm256_loadu_ps(wp.add(at * LANES + 8));
                        acc_h[0] = _mm256_add_ps(acc_h[0], _mm256_mul_ps(w0, xc));
                        acc_h[1] = _mm256_add_ps(acc_h[1], _mm256_mul_ps(w1, xc));
                    }
                }
            }
            for (h, acc_h) in acc.iter().enumerate() {
                let slot = t * TILE + h;
                let live = m.chunk_live[slot] as usize;
                if live == 0 {
                    continue;
                }
                let first = m.chunk_first[slot] as usize;
                for (half, &acc_half) in acc_h.iter().enumerate() {
                    let lo = half * 8;
                    if lo >= live {
                        break;
                    }
                    let n = (live - lo).min(8);
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lane_ids);
                    let mut r = acc_half;
                    for (j, &uj) in u.iter().enumerate() {
                        // SAFETY: inside w_in_t.
                        let w = unsafe {
                            _mm256_loadu_ps(
                                m.w_in_t
                                    .as_ptr()
                                    .add(((t * m.inputs + j) * TILE + h) * LANES + lo),
                            )
                        };
                        r = _mm256_add_ps(r, _mm256_mul_ps(w, _mm256_set1_ps(uj)));
                    }
                    // SAFETY: bias_t holds slot·16 + 16 values; masked-off lanes of the x load
                    // are not read (rows past first + n may be past the end of x).
                    let res = unsafe {
                        let bias = _mm256_loadu_ps(m.bias_t.as_ptr().add(slot * LANES + lo));
                        let xv = _mm256_maskload_ps(xp.add(first + lo), mask);
                        super::super::avx2::leak8(keep, a, xv, _mm256_add_ps(r, bias))
                    };
                    // SAFETY: `out` holds 16 floats.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(lo), res) };
                }
                x_next[first..first + live].copy_from_slice(&out[..live]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bits, block_reservoir, TestRng};
    use super::super::{Kernel, KernelError};
    use alloc::vec;
    use alloc::vec::Vec;

    /// Every variant, and the scalar CSR step on the same weights (independent code), give the
    /// same bits over 40 steps, for ragged and exact group sizes, 0–3 inputs.
    #[test]
    fn block_step_is_bit_identical_to_scalar_csr_on_every_variant() {
        let shapes = [
            (1, 1, 1, 1),
            (7, 3, 2, 0),
            (50, 16, 5, 1),
            (100, 16, 10, 1),
            (100, 8, 10, 2),
            (129, 16, 13, 3),
            (129, 17, 12, 1),
            (200, 32, 20, 1),
            (64, 64, 64, 1),
            (40, 5, 40, 2),
        ];
        for (seed, &(n, size, k, inputs)) in shapes.iter().enumerate() {
            let base = block_reservoir(n, size, k, inputs, seed as u64 + 1);
            let csr = base.csr_ref().unwrap();
            let p = base.update_ref();
            let mut reference = vec![0.0f32; n];
            let mut next = vec![0.0f32; n];
            let mut runs = Vec::new();
            for kernel in Kernel::available() {
                let mut r = base.clone();
                let mut rng = TestRng::new(99);
                for _ in 0..40 {
                    let u: Vec<f32> = (0..inputs).map(|_| rng.uniform()).collect();
                    r.step(kernel, &u).unwrap();
                }
                runs.push((kernel, bits(r.state())));
            }
            let mut rng = TestRng::new(99);
            for _ in 0..40 {
                let u: Vec<f32> = (0..inputs).map(|_| rng.uniform()).collect();
                Kernel::scalar()
                    .leaky_step(
                        super::super::WeightsRef::Csr(csr),
                        p,
                        &u,
                        &reference,
                        &mut next,
                    )
                    .unwrap();
                core::mem::swap(&mut reference, &mut next);
            }
            assert!(reference.iter().any(|&v| v != 0.0));
            for (kernel, got) in &runs {
                assert_eq!(
                    got,
                    &bits(&reference),
                    "{:?} on N={n} size={size} k={k} inputs={inputs}",
                    kernel.variant()
                );
            }
        }
    }

    #[test]
    fn block_step_repeats_its_bits() {
        for kernel in Kernel::available() {
            let run = || {
                let mut r = block_reservoir(300, 16, 30, 1, 5);
                for t in 0..30 {
                    r.step(kernel, &[libm::sinf(t as f32)]).unwrap();
                }
                bits(r.state())
            };
            assert_eq!(run(), run(), "{:?}", kernel.variant());
        }
    }

    #[test]
    fn bad_block_layouts_are_typed_errors() {
        let p = |w_in: &'static [f32], bias: &'static [f32]| super::LeakyUpdate {
            w_in,
            inputs: 1,
            bias,
            leak_rate: 0.5,
        };
        const W4: [f32; 4] = [0.1; 4];
        const B4: [f32; 4] = [0.0; 4];
        let idx = [0u32, 1, 2, 3];
        let vals = [0.5f32; 8];
        // size 0, size > units, k > units, wrong lengths, index out of range.
        assert!(matches!(
            super::BlockLeaky::new(4, 0, 2, &idx, &vals, p(&W4, &B4)),
            Err(KernelError::Dimension { .. })
        ));
        assert!(matches!(
            super::BlockLeaky::new(4, 5, 2, &idx, &vals, p(&W4, &B4)),
            Err(KernelError::Dimension { .. })
        ));
        assert!(matches!(
            super::BlockLeaky::new(4, 2, 5, &idx, &vals, p(&W4, &B4)),
            Err(KernelError::Dimension { .. })
        ));
        assert!(matches!(
            super::BlockLeaky::new(4, 2, 2, &idx[..3], &vals, p(&W4, &B4)),
            Err(KernelError::Length { .. })
        ));
        assert!(matches!(
            super::BlockLeaky::new(4, 2, 2, &idx, &vals[..7], p(&W4, &B4)),
            Err(KernelError::Length { .. })
        ));
        assert!(matches!(
            super::BlockLeaky::new(4, 2, 2, &[0, 1, 2, 4], &vals, p(&W4, &B4)),
            Err(KernelError::ColumnIndex { index: 4, .. })
        ));
        assert!(super::BlockLeaky::new(4, 2, 2, &idx, &vals, p(&W4, &B4)).is_ok());
        let mut r = block_reservoir(10, 4, 3, 2, 1);
        for kernel in Kernel::available() {
            assert!(matches!(
                r.step(kernel, &[0.1]),
                Err(KernelError::Length { what: "u", .. })
            ));
        }
    }

    /// Each sequence of a batched step equals that sequence stepped alone, bit for bit, for
    /// every variant and batch size (lanes past a multiple of 16 included).
    #[test]
    fn batched_block_step_equals_one_by_one() {
        for (n, size, k, inputs) in [(50, 16, 5, 1), (129, 17, 12, 2), (200, 32, 20, 1)] {
            let base = block_reservoir(n, size, k, inputs, 7);
            let m = base.block().unwrap();
            for batch in [1, 5, 16, 17, 33] {
                let mut rng = TestRng::new(3);
                let us: Vec<Vec<f32>> = (0..10 * batch)
                    .map(|_| (0..inputs).map(|_| rng.uniform()).collect())
                    .collect();
                // One by one with the scalar single step.
                let mut alone = Vec::new();
                for b in 0..batch {
                    let mut r = base.clone();
                    for s in 0..10 {
                        r.step(Kernel::scalar(), &us[s * batch + b]).unwrap();
                    }
                    alone.push(bits(r.state()));
                }
                for kernel in Kernel::available() {
                    let (mut x, mut next) = (vec![0.0f32; n * batch], vec![0.0f32; n * batch]);
                    let mut u = vec![0.0f32; inputs * batch];
                    for s in 0..10 {
                        for b in 0..batch {
                            for j in 0..inputs {
                                u[j * batch + b] = us[s * batch + b][j];
                            }
                        }
                        kernel
                            .block_leaky_step_batch(m, base.leak_rate(), batch, &u, &x, &mut next)
                            .unwrap();
                        core::mem::swap(&mut x, &mut next);
                    }
                    for (b, want) in alone.iter().enumerate() {
                        let got: Vec<f32> = (0..n).map(|i| x[i * batch + b]).collect();
                        assert_eq!(
                            &bits(&got),
                            want,
                            "{:?} N={n} size={size} batch={batch} seq {b}",
                            kernel.variant()
                        );
                    }
                }
            }
        }
        let m = block_reservoir(20, 4, 3, 1, 1);
        let b = m.block().unwrap();
        let (x, mut next) = (vec![0.0f32; 40], vec![0.0f32; 40]);
        assert!(matches!(
            Kernel::scalar().block_leaky_step_batch(b, 0.5, 2, &[0.1], &x, &mut next),
            Err(KernelError::Length { what: "u", .. })
        ));
        assert!(matches!(
            Kernel::scalar().block_leaky_step_batch(b, 0.5, 0, &[], &[], &mut []),
            Err(KernelError::Dimension { .. })
        ));
    }
}

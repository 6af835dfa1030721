//! The fused leaky step for block-sparse reservoirs (`Topology::Block`): rows come in groups of
//! `size` that share their k columns, so a group's product is k broadcasts of x[col] times
//! `size` contiguous weights — vector loads and multiply–adds, no gathers.
//!
//! Arithmetic (identical in every variant, so all three give the same bits): for row i of
//! group g, acc = 0, then for each of the group's columns in ascending order
//! acc = acc + w·x[col] (separate multiply and add), then acc = acc + W_in[i,j]·u[j] for j in
//! index order, then x'[i] = (1−a)·x[i] + a·fast_tanh(acc + b[i]). SIMD lanes run over the
//! rows of a group (16 for AVX-512, 8 for AVX2, masked at the end of a group); several
//! row-chunks are interleaved so their add chains overlap, which changes no lane's order.

use super::{check_dim, check_len, checked_size, KernelError, LeakyUpdate};
use alloc::vec;
use alloc::vec::Vec;

/// Row-chunks whose add chains the SIMD steps keep in flight at once.
pub const INTERLEAVE: usize = 4;

/// A block-sparse reservoir's weights, input weights and bias laid out for the fused step.
#[derive(Clone, Debug)]
pub struct BlockLeaky {
    pub(crate) units: usize,
    pub(crate) size: usize,
    pub(crate) per_group: usize,
    pub(crate) groups: usize,
    pub(crate) inputs: usize,
    /// Group g's columns: `indices[g·k .. (g+1)·k]`, each < units.
    pub(crate) indices: Vec<u32>,
    /// Weight of row g·size + r at the group's c-th column: `values[(g·k + c)·size + r]`.
    pub(crate) values: Vec<f32>,
    /// Input weights per group, column-major like `values`: `w_in_t[(g·inputs + j)·size + r]`.
    pub(crate) w_in_t: Vec<f32>,
    /// Bias, padded to groups·size.
    pub(crate) bias: Vec<f32>,
}

impl BlockLeaky {
    /// Checks the shape and every column index (O(groups·k + values)), and lays out the input
    /// weights and bias per group. Padding rows of a ragged last group get zero weights.
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
        let groups = units.div_ceil(size);
        let n_idx = checked_size("groups × columns per group", groups, per_group)?;
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
        let padded = groups * size;
        let mut w_in_t = vec![0.0f32; checked_size("groups × inputs × size", padded, p.inputs)?];
        let mut bias = vec![0.0f32; padded];
        bias[..units].copy_from_slice(p.bias);
        for (i, row) in p.w_in.chunks_exact(p.inputs.max(1)).enumerate().take(units) {
            let (g, r) = (i / size, i % size);
            for (j, &w) in row.iter().enumerate().take(p.inputs) {
                w_in_t[(g * p.inputs + j) * size + r] = w;
            }
        }
        // Padding rows are never stored, but zero weights keep their lanes finite.
        let mut values = values.to_vec();
        for (q, v) in values.iter_mut().enumerate() {
            if (q / (per_group * size)) * size + q % size >= units {
                *v = 0.0;
            }
        }
        Ok(BlockLeaky {
            units,
            size,
            per_group,
            groups,
            inputs: p.inputs,
            indices: indices.to_vec(),
            values,
            w_in_t,
            bias,
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
    /// Group g's columns, then its weights (column-major), as `BlockLeaky::new` takes them.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// Weights, `values[(g·k + c)·size + r]`.
    pub fn values(&self) -> &[f32] {
        &self.values
    }
    /// Bytes held, all of which one step reads (weights, indices, input weights, bias).
    pub fn bytes(&self) -> usize {
        4 * (self.indices.len() + self.values.len() + self.w_in_t.len() + self.bias.len())
    }
}

/// The block step in portable code: the reference arithmetic of the module note.
pub(crate) fn leaky_step_scalar(
    m: &BlockLeaky,
    leak_rate: f32,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let keep = 1.0 - leak_rate;
    let (size, k) = (m.size, m.per_group);
    for g in 0..m.groups {
        let cols = &m.indices[g * k..(g + 1) * k];
        let first = g * size;
        for r in 0..size.min(m.units - first) {
            let mut acc = 0.0f32;
            for (c, &col) in cols.iter().enumerate() {
                acc += m.values[(g * k + c) * size + r] * x[col as usize];
            }
            for (j, &uj) in u.iter().enumerate() {
                acc += m.w_in_t[(g * m.inputs + j) * size + r] * uj;
            }
            let i = first + r;
            x_next[i] = super::scalar::leak(keep, leak_rate, x[i], acc + m.bias[i]);
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) mod simd {
    use super::{BlockLeaky, INTERLEAVE};
    use core::arch::x86_64::*;

    /// A run of up to 16 (AVX-512) or 8 (AVX2) consecutive rows of one group.
    #[derive(Clone, Copy)]
    struct Chunk {
        group: usize,
        /// First row inside the group.
        row: usize,
        /// Rows in the chunk that are real units (≥ 1).
        live: usize,
    }

    /// The i-th chunk of `lanes` rows, in group order.
    #[inline(always)]
    fn chunk(m: &BlockLeaky, per_group: usize, lanes: usize, i: usize) -> Chunk {
        let (group, v) = (i / per_group, i % per_group);
        let row = v * lanes;
        let live = lanes
            .min(m.size - row)
            .min(m.units - (group * m.size + row));
        Chunk { group, row, live }
    }

    /// Chunks processed together: `N` accumulators over the same k-loop.
    ///
    /// # Safety
    /// AVX-512F available; `m` built by `BlockLeaky::new` (indices < units); x.len() =
    /// x_next.len() = m.units; u.len() = m.inputs; every chunk has `live` ≥ 1.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn chunks_avx512<const N: usize>(
        m: &BlockLeaky,
        cs: [Chunk; N],
        keep: __m512,
        a: __m512,
        u: &[f32],
        x: &[f32],
        x_next: *mut f32,
    ) {
        let (size, k) = (m.size, m.per_group);
        let xp = x.as_ptr();
        let mut masks = [0u16; N];
        let mut cols = [core::ptr::null::<u32>(); N];
        let mut ws = [core::ptr::null::<f32>(); N];
        for h in 0..N {
            masks[h] = ((1u32 << cs[h].live) - 1) as u16;
            // SAFETY: group < groups, so both offsets are inside indices / values.
            unsafe {
                cols[h] = m.indices.as_ptr().add(cs[h].group * k);
                ws[h] = m.values.as_ptr().add(cs[h].group * k * size + cs[h].row);
            }
        }
        let mut acc = [_mm512_setzero_ps(); N];
        for c in 0..k {
            for h in 0..N {
                // SAFETY: c < k, so the column is inside the group's indices and < units =
                // x.len(); masked lanes of the weight load are not read (no fault), live lanes
                // are rows row..row+live < size of this group's column c.
                unsafe {
                    let xc = _mm512_set1_ps(*xp.add(*cols[h].add(c) as usize));
                    let w = _mm512_maskz_loadu_ps(masks[h], ws[h].add(c * size));
                    acc[h] = _mm512_add_ps(acc[h], _mm512_mul_ps(w, xc));
                }
            }
        }
        for h in 0..N {
            let Chunk { group, row, .. } = cs[h];
            let first = group * size + row;
            let mut r = acc[h];
            for (j, &uj) in u.iter().enumerate() {
                // SAFETY: live lanes are inside w_in_t's (group, j) block of `size`.
                let w = unsafe {
                    _mm512_maskz_loadu_ps(
                        masks[h],
                        m.w_in_t.as_ptr().add((group * m.inputs + j) * size + row),
                    )
                };
                r = _mm512_add_ps(r, _mm512_mul_ps(w, _mm512_set1_ps(uj)));
            }
            // SAFETY: live lanes are units first..first+live < units = x.len() = bias rows.
            unsafe {
                let bias = _mm512_maskz_loadu_ps(masks[h], m.bias.as_ptr().add(first));
                let xv = _mm512_maskz_loadu_ps(masks[h], xp.add(first));
                let res = super::super::avx512::leak16(keep, a, xv, _mm512_add_ps(r, bias));
                _mm512_mask_storeu_ps(x_next.add(first), masks[h], res);
            }
        }
    }

    /// The block step with 16-row chunks, `INTERLEAVE` chunks at a time.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn leaky_step_avx512(
        m: &BlockLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        const LANES: usize = 16;
        let keep = _mm512_set1_ps(1.0 - leak_rate);
        let a = _mm512_set1_ps(leak_rate);
        let per_group = m.size.div_ceil(LANES);
        // The ragged last group may have fewer real chunks than per_group.
        let total =
            (m.groups - 1) * per_group + (m.units - (m.groups - 1) * m.size).div_ceil(LANES);
        let out = x_next.as_mut_ptr();
        let mut i = 0;
        while i + INTERLEAVE <= total {
            let cs: [Chunk; INTERLEAVE] =
                core::array::from_fn(|h| chunk(m, per_group, LANES, i + h));
            // SAFETY: the caller checked x, u, x_next lengths; chunks below `total` are live.
            unsafe { chunks_avx512(m, cs, keep, a, u, x, out) };
            i += INTERLEAVE;
        }
        while i < total {
            // SAFETY: as above.
            unsafe { chunks_avx512(m, [chunk(m, per_group, LANES, i)], keep, a, u, x, out) };
            i += 1;
        }
    }

    /// AVX2 form: 8-row chunks, masked loads, full or lane-by-lane stores.
    ///
    /// # Safety
    /// AVX2 + FMA available; as for `chunks_avx512`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chunks_avx2<const N: usize>(
        m: &BlockLeaky,
        cs: [Chunk; N],
        keep: __m256,
        a: __m256,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        let (size, k) = (m.size, m.per_group);
        let xp = x.as_ptr();
        let lane_ids = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut masks = [_mm256_setzero_si256(); N];
        let mut cols = [core::ptr::null::<u32>(); N];
        let mut ws = [core::ptr::null::<f32>(); N];
        for h in 0..N {
            masks[h] = _mm256_cmpgt_epi32(_mm256_set1_epi32(cs[h].live as i32), lane_ids);
            // SAFETY: group < groups, so both offsets are inside indices / values.
            unsafe {
                cols[h] = m.indices.as_ptr().add(cs[h].group * k);
                ws[h] = m.values.as_ptr().add(cs[h].group * k * size + cs[h].row);
            }
        }
        let mut acc = [_mm256_setzero_ps(); N];
        for c in 0..k {
            for h in 0..N {
                // SAFETY: as in chunks_avx512; masked-off lanes of vmaskmovps do not fault.
                unsafe {
                    let xc = _mm256_set1_ps(*xp.add(*cols[h].add(c) as usize));
                    let w = _mm256_maskload_ps(ws[h].add(c * size), masks[h]);
                    acc[h] = _mm256_add_ps(acc[h], _mm256_mul_ps(w, xc));
                }
            }
        }
        let mut out = [0.0f32; 8];
        for h in 0..N {
            let Chunk { group, row, live } = cs[h];
            let first = group * size + row;
            let mut r = acc[h];
            for (j, &uj) in u.iter().enumerate() {
                // SAFETY: live lanes are inside w_in_t's (group, j) block of `size`.
                let w = unsafe {
                    _mm256_maskload_ps(
                        m.w_in_t.as_ptr().add((group * m.inputs + j) * size + row),
                        masks[h],
                    )
                };
                r = _mm256_add_ps(r, _mm256_mul_ps(w, _mm256_set1_ps(uj)));
            }
            // SAFETY: live lanes are units first..first+live < units = x.len() = bias rows.
            let res = unsafe {
                let bias = _mm256_maskload_ps(m.bias.as_ptr().add(first), masks[h]);
                let xv = _mm256_maskload_ps(xp.add(first), masks[h]);
                super::super::avx2::leak8(keep, a, xv, _mm256_add_ps(r, bias))
            };
            if live == 8 {
                // SAFETY: first + 8 <= units = x_next.len().
                unsafe { _mm256_storeu_ps(x_next.as_mut_ptr().add(first), res) };
            } else {
                // SAFETY: `out` holds 8 floats.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), res) };
                x_next[first..first + live].copy_from_slice(&out[..live]);
            }
        }
    }

    /// The block step with 8-row chunks, `INTERLEAVE` chunks at a time.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn leaky_step_avx2(
        m: &BlockLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) {
        const LANES: usize = 8;
        let keep = _mm256_set1_ps(1.0 - leak_rate);
        let a = _mm256_set1_ps(leak_rate);
        let per_group = m.size.div_ceil(LANES);
        let total =
            (m.groups - 1) * per_group + (m.units - (m.groups - 1) * m.size).div_ceil(LANES);
        let mut i = 0;
        while i + INTERLEAVE <= total {
            let cs: [Chunk; INTERLEAVE] =
                core::array::from_fn(|h| chunk(m, per_group, LANES, i + h));
            // SAFETY: the caller checked x, u, x_next lengths; chunks below `total` are live.
            unsafe { chunks_avx2(m, cs, keep, a, u, x, x_next) };
            i += INTERLEAVE;
        }
        while i < total {
            // SAFETY: as above.
            unsafe { chunks_avx2(m, [chunk(m, per_group, LANES, i)], keep, a, u, x, x_next) };
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::reservoir::FusedReservoir;
    use super::super::tests::TestRng;
    use super::super::{Kernel, KernelError};
    use alloc::vec;
    use alloc::vec::Vec;

    /// A block reservoir with distinct ascending columns per group and weights in ±scale.
    fn block_reservoir(
        units: usize,
        size: usize,
        k: usize,
        inputs: usize,
        seed: u64,
    ) -> FusedReservoir {
        let mut rng = TestRng(seed);
        let groups = units.div_ceil(size);
        let mut indices = Vec::new();
        for _ in 0..groups {
            let mut cols: Vec<u32> = (0..units as u32).collect();
            for c in 0..k {
                let j = c + (rng.next_u64() % (units - c) as u64) as usize;
                cols.swap(c, j);
            }
            let mut g = cols[..k].to_vec();
            g.sort_unstable();
            indices.extend(g);
        }
        let scale = 1.2 / (k as f32).sqrt();
        let values: Vec<f32> = (0..groups * k * size)
            .map(|_| rng.uniform() * scale)
            .collect();
        let w_in = (0..units * inputs).map(|_| rng.uniform()).collect();
        let bias = (0..units).map(|_| 0.1 * rng.uniform()).collect();
        FusedReservoir::new_block(units, inputs, size, k, &indices, &values, w_in, bias, 0.7)
            .unwrap()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

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
                let mut rng = TestRng(99);
                for _ in 0..40 {
                    let u: Vec<f32> = (0..inputs).map(|_| rng.uniform()).collect();
                    r.step(kernel, &u).unwrap();
                }
                runs.push((kernel, bits(r.state())));
            }
            let mut rng = TestRng(99);
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
}

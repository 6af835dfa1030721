//! An opt-in reduced-precision batch format for block-sparse reservoirs ("bf16 products"):
//! recurrent weights and the states *as multiplied* are rounded to bfloat16, products are
//! accumulated in f32 two columns at a time (AVX-512 BF16 `vdpbf16ps`), and everything else —
//! input terms, bias, tanh, leak and the stored states — stays f32. Never chosen silently: it
//! is a separate type ([`BlockBf16`]) built from an f32 [`BlockLeaky`].
//!
//! States are multiplied as deviations from a fixed centre c (per unit; zero, or e.g. the
//! reservoir's zero-input fixed point): W·x = W·(x − c) + W·c, the second term folded into the
//! bias once. Rounding a deviation to bf16 costs 2⁻⁹ of the deviation, not of the state, which
//! matters because reservoirs tuned for tasks like NARMA10 sit near a bias-driven operating
//! point and carry their signal in small fluctuations around it.
//!
//! Arithmetic (the portable path repeats the instruction's, so both give the same bits): for
//! row i and sequence b, acc = 0; for each pair of the group's columns (c₀, c₁) in ascending
//! order (an odd last column pairs with itself at weight 0):
//! acc = ftz(acc + w̃[i,c₀]·d̃[c₀]) then acc = ftz(acc + w̃[i,c₁]·d̃[c₁]), where d = x − c (f32),
//! ~ is round-to-nearest-even to bfloat16 with subnormals read as zero, each product is exact
//! in f32 (8-bit × 8-bit significands), and ftz flushes a subnormal sum to zero. Then
//! acc = acc + W_in[i,j]·u[j] for j in index order (unfused), and
//! x'[i] = (1−a)·x[i] + a·fast_tanh(acc + b'[i]) as the f32 block step, with
//! b'[i] = b[i] + Σ w̃[i,c]·c[c] (f32, columns in ascending order, unfused) computed once.

use super::block::{BlockLeaky, LANES, TILE};
use super::{check_dim, check_len, checked_size, Kernel, KernelError, Variant};
use alloc::vec;
use alloc::vec::Vec;

/// f32 → bfloat16 bits, round to nearest even; subnormal inputs read as (signed) zero and NaNs
/// stay NaN: what `vcvtne2ps2bf16` does.
pub fn bf16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    if b & 0x7f80_0000 == 0 {
        return ((b >> 16) & 0x8000) as u16;
    }
    if v.is_nan() {
        return ((b >> 16) | 0x0040) as u16;
    }
    let lsb = (b >> 16) & 1;
    (b.wrapping_add(0x7fff + lsb) >> 16) as u16
}

/// The f32 value of bfloat16 bits (exact).
pub fn bf16_value(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Flushes a subnormal to zero of the same sign (the instruction's FTZ).
fn ftz(v: f32) -> f32 {
    if v != 0.0 && v.abs() < f32::MIN_POSITIVE {
        f32::from_bits(v.to_bits() & 0x8000_0000)
    } else {
        v
    }
}

/// acc + w·x as `vdpbf16ps` adds one product: the product is exact; the sum is rounded once.
fn dp_add(acc: f32, w: u16, x: u16) -> f32 {
    let (wv, xv) = (bf16_value(w), bf16_value(x));
    let exact = f64::from(wv) * f64::from(xv);
    if exact != 0.0 && exact.abs() < f64::from(f32::MIN_POSITIVE) {
        // The product is below f32's normal range (never for reservoir-sized values): add it
        // exactly, round once.
        ftz((f64::from(acc) + exact) as f32)
    } else {
        ftz(acc + wv * xv)
    }
}

/// A block-sparse reservoir's weights in the bf16-products format, chunk by chunk.
#[derive(Clone, Debug)]
pub struct BlockBf16 {
    units: usize,
    inputs: usize,
    /// Column pairs per group: ⌈k/2⌉.
    pairs: usize,
    /// Chunk slots (as in [`BlockLeaky`], dummy slots included).
    slots: usize,
    chunk_first: Vec<u32>,
    chunk_live: Vec<u32>,
    /// `cols[(slot·pairs + p)·2 + {0, 1}]`: the pair's first and second column (< units).
    cols: Vec<u32>,
    /// `w[(slot·pairs + p)·16 + r]`: row r's weights for the pair, bf16, first column in the
    /// high half (`vdpbf16ps` adds the high product first).
    w: Vec<u32>,
    /// `w_in[((slot·inputs + j)·16 + r]`, f32.
    w_in: Vec<f32>,
    /// `bias[slot·16 + r]`: the bias plus W̃·centre.
    bias: Vec<f32>,
    /// The centre the multiplied states are taken from (one value per unit).
    centre: Vec<f32>,
    /// The CPU has AVX-512F and AVX-512 BF16 (checked once, at construction).
    native: bool,
}

impl BlockBf16 {
    /// Rounds `m`'s recurrent weights to bf16 (input weights and bias stay f32); states are
    /// multiplied as they are (centre zero).
    pub fn from_block(m: &BlockLeaky) -> Result<BlockBf16, KernelError> {
        Self::with_centre(m, &vec![0.0; m.units])
    }

    /// As [`BlockBf16::from_block`], multiplying the deviations x − `centre` (one finite value
    /// per unit); W̃·centre is folded into the bias.
    pub fn with_centre(m: &BlockLeaky, centre: &[f32]) -> Result<BlockBf16, KernelError> {
        check_len("centre", m.units, centre.len())?;
        if let Some(i) = centre.iter().position(|v| !v.is_finite()) {
            return Err(KernelError::Dimension {
                what: "centre unit with a non-finite value",
                value: i,
            });
        }
        let k = m.per_group;
        let pairs = k.div_ceil(2);
        let slots = m.tiles * TILE;
        let n_pairs = checked_size("chunks × column pairs", slots, pairs)?;
        let mut cols = vec![0u32; checked_size("column pairs × 2", n_pairs, 2)?];
        let mut w = vec![0u32; checked_size("column pairs × 16", n_pairs, LANES)?];
        let mut w_in =
            vec![0.0f32; checked_size("chunks × inputs × 16", slots * m.inputs, LANES)?];
        let mut bias = vec![0.0f32; slots * LANES];
        for slot in 0..slots {
            let (t, h) = (slot / TILE, slot % TILE);
            let at = |c: usize| (t * k + c) * TILE + h;
            for p in 0..pairs {
                let c0 = 2 * p;
                // An odd last column pairs with itself at weight 0 (adds +0: acc unchanged
                // unless acc is −0, and both paths do the same).
                let c1 = if c0 + 1 < k { c0 + 1 } else { c0 };
                let q = slot * pairs + p;
                cols[2 * q] = m.idx[at(c0)];
                cols[2 * q + 1] = m.idx[at(c1)];
                for r in 0..LANES {
                    let w0 = bf16_bits(m.w[at(c0) * LANES + r]);
                    let w1 = if c1 != c0 {
                        bf16_bits(m.w[at(c1) * LANES + r])
                    } else {
                        0
                    };
                    w[q * LANES + r] = (u32::from(w0) << 16) | u32::from(w1);
                }
            }
            for j in 0..m.inputs {
                let src = ((t * m.inputs + j) * TILE + h) * LANES;
                let dst = (slot * m.inputs + j) * LANES;
                w_in[dst..dst + LANES].copy_from_slice(&m.w_in_t[src..src + LANES]);
            }
            for r in 0..LANES {
                let mut fold = 0.0f32;
                for p in 0..pairs {
                    let q = slot * pairs + p;
                    let wq = w[q * LANES + r];
                    fold += bf16_value((wq >> 16) as u16) * centre[cols[2 * q] as usize];
                    fold += bf16_value(wq as u16) * centre[cols[2 * q + 1] as usize];
                }
                bias[slot * LANES + r] = m.bias_t[slot * LANES + r] + fold;
            }
        }
        Ok(BlockBf16 {
            units: m.units,
            inputs: m.inputs,
            pairs,
            slots,
            chunk_first: m.chunk_first.clone(),
            chunk_live: m.chunk_live.clone(),
            cols,
            w,
            w_in,
            bias,
            centre: centre.to_vec(),
            native: native_bf16(),
        })
    }

    /// Number of units.
    pub fn units(&self) -> usize {
        self.units
    }
    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.inputs
    }
    /// Bytes held (all read every step).
    pub fn bytes(&self) -> usize {
        4 * (self.cols.len()
            + self.w.len()
            + self.w_in.len()
            + self.bias.len()
            + self.chunk_first.len()
            + self.chunk_live.len())
    }
    /// Which code [`BlockBf16::step_batch`] runs for `kernel`: `avx512bf16-block-batch` (the
    /// instruction) or `portable-bf16-block-batch` (its arithmetic in portable code).
    pub fn step_kernel_name(&self, kernel: Kernel) -> &'static str {
        if self.native && kernel.variant() == Variant::Avx512 {
            "avx512bf16-block-batch"
        } else {
            "portable-bf16-block-batch"
        }
    }

    /// One step of `batch` sequences, states unit-major (`x[i·batch + b]`, `u[j·batch + b]`).
    /// `scratch` (length units·batch, contents ignored) receives the rounded deviations
    /// d̃ = bf16(x − centre) once per step, so each group's column pairs reuse them.
    /// AVX-512 with BF16 runs `vdpbf16ps`; every other case the portable form; both give the
    /// same bits, and each sequence's result does not depend on the others or on `batch`.
    #[allow(clippy::too_many_arguments)]
    pub fn step_batch(
        &self,
        kernel: Kernel,
        leak_rate: f32,
        batch: usize,
        u: &[f32],
        x: &[f32],
        scratch: &mut [u16],
        x_next: &mut [f32],
    ) -> Result<(), KernelError> {
        check_dim("batch", batch)?;
        let states = checked_size("units × batch", self.units, batch)?;
        check_len(
            "u",
            checked_size("inputs × batch", self.inputs, batch)?,
            u.len(),
        )?;
        check_len("x", states, x.len())?;
        check_len("scratch", states, scratch.len())?;
        check_len("x_next", states, x_next.len())?;
        if !(leak_rate > 0.0 && leak_rate <= 1.0) {
            return Err(KernelError::LeakRate);
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if self.native && kernel.variant() == Variant::Avx512 {
            // SAFETY: `native` is set only when CPUID reports AVX-512 BF16, and the Avx512
            // `Kernel` exists only when AVX-512F and its OS state support were confirmed.
            unsafe { simd::step_batch(self, leak_rate, batch, u, x, scratch, x_next) };
            return Ok(());
        }
        let _ = kernel;
        step_batch_portable(self, leak_rate, batch, u, x, scratch, x_next);
        Ok(())
    }
}

/// AVX512_BF16 with AVX512BW and VL (the 16-bit shuffles and loads), as `kernels::cpu`
/// reports them, and the Avx512 kernel usable (AVX-512F with the OS's ZMM and opmask state).
fn native_bf16() -> bool {
    let f = super::cpu::features();
    Kernel::new(Variant::Avx512).is_ok() && f.avx512_bf16 && f.avx512bw && f.avx512vl
}

fn step_batch_portable(
    m: &BlockBf16,
    leak_rate: f32,
    batch: usize,
    u: &[f32],
    x: &[f32],
    scratch: &mut [u16],
    x_next: &mut [f32],
) {
    let keep = 1.0 - leak_rate;
    for (i, (d, xi)) in scratch
        .chunks_exact_mut(batch)
        .zip(x.chunks_exact(batch))
        .enumerate()
    {
        for (d, &v) in d.iter_mut().zip(xi) {
            *d = bf16_bits(v - m.centre[i]);
        }
    }
    for slot in 0..m.slots {
        let live = m.chunk_live[slot] as usize;
        let first = m.chunk_first[slot] as usize;
        for r in 0..live {
            let i = first + r;
            for b in 0..batch {
                let mut acc = 0.0f32;
                for p in 0..m.pairs {
                    let q = slot * m.pairs + p;
                    let (c0, c1) = (m.cols[2 * q] as usize, m.cols[2 * q + 1] as usize);
                    let wq = m.w[q * LANES + r];
                    acc = dp_add(acc, (wq >> 16) as u16, scratch[c0 * batch + b]);
                    acc = dp_add(acc, wq as u16, scratch[c1 * batch + b]);
                }
                for j in 0..m.inputs {
                    acc += m.w_in[(slot * m.inputs + j) * LANES + r] * u[j * batch + b];
                }
                x_next[i * batch + b] = super::scalar::leak(
                    keep,
                    leak_rate,
                    x[i * batch + b],
                    acc + m.bias[slot * LANES + r],
                );
            }
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod simd {
    use super::{BlockBf16, LANES};
    use core::arch::x86_64::*;

    /// First the rounded deviations of every unit into `scratch` (once per step); then per
    /// 16-row chunk and 16 sequences: 16 accumulators (one per row); per column pair the two
    /// columns' 16 rounded deviations are loaded and interleaved (first column in each dword's
    /// high half), and each row's weight pair is broadcast into `vdpbf16ps`.
    ///
    /// Bounds: `with_centre` sized centre = units, cols = slots·pairs·2, w = slots·pairs·16, w_in =
    /// slots·inputs·16, bias = slots·16, every column < units; the caller checked x, x_next =
    /// units·batch and u = inputs·batch; lanes past `batch` are masked.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step_batch(
        m: &BlockBf16,
        leak_rate: f32,
        batch: usize,
        u: &[f32],
        x: &[f32],
        scratch: &mut [u16],
        x_next: &mut [f32],
    ) {
        let keep = _mm512_set1_ps(1.0 - leak_rate);
        let a = _mm512_set1_ps(leak_rate);
        let (xp, up, out) = (x.as_ptr(), u.as_ptr(), x_next.as_mut_ptr());
        let mask_of = |b0: usize| -> u16 {
            if batch - b0 >= LANES {
                0xFFFF
            } else {
                ((1u32 << (batch - b0)) - 1) as u16
            }
        };
        // The rounded deviations, once per unit and 16 sequences.
        let dp = scratch.as_mut_ptr();
        for i in 0..m.units {
            let mut b0 = 0;
            while b0 < batch {
                let mask = mask_of(b0);
                // SAFETY: i < units = centre.len(); lanes masked to < batch stay inside x and
                // scratch (both units·batch, checked by the caller).
                unsafe {
                    let d = _mm512_sub_ps(
                        _mm512_maskz_loadu_ps(mask, xp.add(i * batch + b0)),
                        _mm512_set1_ps(*m.centre.as_ptr().add(i)),
                    );
                    let h: __m256i = core::mem::transmute(_mm512_cvtneps_pbh(d));
                    _mm256_mask_storeu_epi16(dp.add(i * batch + b0) as *mut i16, mask, h);
                }
                b0 += LANES;
            }
        }
        // Element 2i ← second column's lane i (32 + i: the second table), element 2i + 1 ←
        // first column's lane i.
        let interleave = _mm512_set_epi16(
            15, 47, 14, 46, 13, 45, 12, 44, 11, 43, 10, 42, 9, 41, 8, 40, 7, 39, 6, 38, 5, 37, 4,
            36, 3, 35, 2, 34, 1, 33, 0, 32,
        );
        let dp = scratch.as_ptr();
        for slot in 0..m.slots {
            let live = m.chunk_live[slot] as usize;
            if live == 0 {
                continue;
            }
            let first = m.chunk_first[slot] as usize;
            let mut b0 = 0;
            while b0 < batch {
                let mask = mask_of(b0);
                let mut acc = [_mm512_setzero_ps(); LANES];
                for p in 0..m.pairs {
                    let q = slot * m.pairs + p;
                    // SAFETY: q < slots·pairs (see above); columns < units, lanes masked to
                    // < batch, so both loads stay inside scratch; the weight block holds 16 u32.
                    unsafe {
                        let c0 = *m.cols.as_ptr().add(2 * q) as usize;
                        let c1 = *m.cols.as_ptr().add(2 * q + 1) as usize;
                        let d0 =
                            _mm256_maskz_loadu_epi16(mask, dp.add(c0 * batch + b0) as *const i16);
                        let d1 =
                            _mm256_maskz_loadu_epi16(mask, dp.add(c1 * batch + b0) as *const i16);
                        let xb: __m512bh = core::mem::transmute(_mm512_permutex2var_epi16(
                            _mm512_castsi256_si512(d0),
                            interleave,
                            _mm512_castsi256_si512(d1),
                        ));
                        let wp = m.w.as_ptr().add(q * LANES) as *const i32;
                        for (r, acc_r) in acc.iter_mut().enumerate() {
                            let w: __m512bh = core::mem::transmute(_mm512_set1_epi32(*wp.add(r)));
                            *acc_r = _mm512_dpbf16_ps(*acc_r, xb, w);
                        }
                    }
                }
                for (r, &acc_r) in acc.iter().enumerate().take(live) {
                    let i = first + r;
                    let mut pre = acc_r;
                    for j in 0..m.inputs {
                        // SAFETY: inside w_in; u lanes masked to < batch.
                        unsafe {
                            let w = _mm512_set1_ps(
                                *m.w_in.as_ptr().add((slot * m.inputs + j) * LANES + r),
                            );
                            let uv = _mm512_maskz_loadu_ps(mask, up.add(j * batch + b0));
                            pre = _mm512_add_ps(pre, _mm512_mul_ps(w, uv));
                        }
                    }
                    // SAFETY: row i < units; lanes masked to < batch.
                    unsafe {
                        let bias = _mm512_set1_ps(*m.bias.as_ptr().add(slot * LANES + r));
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
}

#[cfg(test)]
mod tests {
    use super::super::reservoir::FusedReservoir;
    use super::super::tests::{bits, block_reservoir as seeded_block, TestRng};
    use super::super::Kernel;
    use super::*;

    fn block_reservoir(units: usize, size: usize, k: usize, inputs: usize) -> FusedReservoir {
        seeded_block(units, size, k, inputs, units as u64 * 31 + k as u64)
    }

    #[test]
    fn bf16_rounding_is_nearest_even_with_subnormals_as_zero() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16_bits(-2.5), 0xc020);
        assert_eq!(bf16_bits(f32::from_bits(1)), 0);
        assert_eq!(bf16_bits(-f32::from_bits(1)), 0x8000);
        assert!(bf16_value(bf16_bits(f32::NAN)).is_nan());
        assert_eq!(bf16_value(bf16_bits(0.3)), 0.30078125);
    }

    /// The instruction (where the CPU has it) and the portable form agree bit for bit, and
    /// every sequence of a batch equals that sequence stepped alone, for ragged groups, odd k,
    /// 0–2 inputs and batch widths around 16.
    #[test]
    fn bf16_batch_is_bit_identical_across_paths_and_to_one_by_one() {
        for (n, size, k, inputs) in [(50, 16, 5, 1), (129, 17, 12, 2), (200, 16, 20, 0)] {
            let base = block_reservoir(n, size, k, inputs);
            let centre: Vec<f32> = (0..n).map(|i| 0.01 * (i % 7) as f32 - 0.03).collect();
            let zero = BlockBf16::from_block(base.block().unwrap()).unwrap();
            let centred = BlockBf16::with_centre(base.block().unwrap(), &centre).unwrap();
            for (m, batch) in [
                (&zero, 1),
                (&zero, 7),
                (&centred, 16),
                (&zero, 33),
                (&centred, 33),
            ] {
                let mut rng = TestRng::new(5);
                let steps = 12;
                let us: Vec<f32> = (0..steps * inputs * batch).map(|_| rng.uniform()).collect();
                let run = |kernel: Kernel, batch_run: usize, b_only: Option<usize>| {
                    let (mut x, mut next) =
                        (vec![0.0f32; n * batch_run], vec![0.0f32; n * batch_run]);
                    let mut scratch = vec![0u16; n * batch_run];
                    let mut u = vec![0.0f32; inputs * batch_run];
                    for s in 0..steps {
                        for bl in 0..batch_run {
                            let b = b_only.unwrap_or(bl);
                            for j in 0..inputs {
                                u[j * batch_run + bl] = us[(s * batch + b) * inputs + j];
                            }
                        }
                        m.step_batch(kernel, 0.7, batch_run, &u, &x, &mut scratch, &mut next)
                            .unwrap();
                        core::mem::swap(&mut x, &mut next);
                    }
                    x
                };
                if crate::kernels::cpu::features().avx512_bf16 {
                    // The comparison below must exercise the instruction where it exists.
                    assert_eq!(m.step_kernel_name(Kernel::best()), "avx512bf16-block-batch");
                }
                let portable = run(Kernel::scalar(), batch, None);
                assert!(portable.iter().any(|&v| v != 0.0));
                for kernel in Kernel::available() {
                    assert_eq!(
                        bits(&run(kernel, batch, None)),
                        bits(&portable),
                        "{} N={n} k={k} batch={batch}",
                        m.step_kernel_name(kernel)
                    );
                }
                for b in [0, batch - 1] {
                    let alone = run(Kernel::best(), 1, Some(b));
                    let got: Vec<f32> = (0..n).map(|i| portable[i * batch + b]).collect();
                    assert_eq!(bits(&got), bits(&alone), "N={n} batch={batch} seq {b}");
                }
            }
        }
    }

    /// bf16 products are a different format: close to the f32 block step, never equal to it.
    #[test]
    fn bf16_batch_stays_close_to_the_f32_block_step() {
        let base = block_reservoir(200, 16, 20, 1);
        let m = BlockBf16::from_block(base.block().unwrap()).unwrap();
        let mut f32_run = base.clone();
        let (mut x, mut next) = (vec![0.0f32; 200], vec![0.0f32; 200]);
        let mut scratch = vec![0u16; 200];
        for t in 0..20 {
            let u = [libm::sinf(t as f32 * 0.3)];
            f32_run.step(Kernel::scalar(), &u).unwrap();
            m.step_batch(Kernel::best(), 0.7, 1, &u, &x, &mut scratch, &mut next)
                .unwrap();
            core::mem::swap(&mut x, &mut next);
        }
        let worst = x
            .iter()
            .zip(f32_run.state())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst > 0.0 && worst < 0.05, "largest difference {worst}");
    }

    /// Centring changes only where the rounding falls: the states stay close to the
    /// uncentred run's but are not equal to them.
    #[test]
    fn centring_only_moves_the_rounding() {
        let base = block_reservoir(64, 16, 8, 1);
        let centre: Vec<f32> = (0..64).map(|i| 0.25 * (i % 3) as f32).collect();
        let zero = BlockBf16::from_block(base.block().unwrap()).unwrap();
        let centred = BlockBf16::with_centre(base.block().unwrap(), &centre).unwrap();
        let run = |m: &BlockBf16| {
            let (mut x, mut next) = (vec![0.0f32; 64], vec![0.0f32; 64]);
            let mut scratch = vec![0u16; 64];
            for t in 0..15 {
                let u = [0.1 * t as f32];
                m.step_batch(Kernel::best(), 0.7, 1, &u, &x, &mut scratch, &mut next)
                    .unwrap();
                core::mem::swap(&mut x, &mut next);
            }
            x
        };
        let (a, b) = (run(&zero), run(&centred));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.02, "centring moved a state by {worst}");
        assert!(a != b);
    }

    #[test]
    fn bad_shapes_are_typed_errors() {
        let base = block_reservoir(20, 4, 3, 1);
        assert!(matches!(
            BlockBf16::with_centre(base.block().unwrap(), &[0.0; 19]),
            Err(KernelError::Length { what: "centre", .. })
        ));
        let mut nan = vec![0.0f32; 20];
        nan[3] = f32::NAN;
        assert!(matches!(
            BlockBf16::with_centre(base.block().unwrap(), &nan),
            Err(KernelError::Dimension { value: 3, .. })
        ));
        let m = BlockBf16::from_block(base.block().unwrap()).unwrap();
        let (x, mut next) = (vec![0.0f32; 40], vec![0.0f32; 40]);
        let mut sc = vec![0u16; 40];
        let k = Kernel::best();
        assert!(matches!(
            m.step_batch(k, 0.5, 2, &[0.1], &x, &mut sc, &mut next),
            Err(KernelError::Length { what: "u", .. })
        ));
        assert!(matches!(
            m.step_batch(k, 0.5, 0, &[], &[], &mut [], &mut []),
            Err(KernelError::Dimension { .. })
        ));
        assert!(matches!(
            m.step_batch(k, 1.5, 2, &[0.1, 0.2], &x, &mut sc, &mut next),
            Err(KernelError::LeakRate)
        ));
        assert!(matches!(
            m.step_batch(k, 0.5, 2, &[0.1, 0.2], &x[..39], &mut sc, &mut next),
            Err(KernelError::Length { what: "x", .. })
        ));
        assert!(matches!(
            m.step_batch(k, 0.5, 2, &[0.1, 0.2], &x, &mut sc[..39], &mut next),
            Err(KernelError::Length {
                what: "scratch",
                ..
            })
        ));
    }
}

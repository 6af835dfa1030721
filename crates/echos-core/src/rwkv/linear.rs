//! Weight matrices (f32, or int8 with one scale per row) and the matrix products of the RWKV
//! step: y[t] = W x[t] for a block of rows t, each weight row read once per block.
//!
//! Kept inside `rwkv/` (the generic reservoir kernels live in `kernels/`); the SIMD variants
//! are chosen at run time by the host and each has a fixed reduction order, so results are
//! deterministic per kernel.

// Index loops mirror the reference's tensor formulas and keep several arrays in step.
#![allow(clippy::needless_range_loop)]

use alloc::vec::Vec;

/// Widest int8 matrix: 255 * 127 * 65536 < 2^31, so the u8 x i8 sums fit an i32.
pub const MAX_INT8_COLS: usize = 65536;

/// A dense (rows x cols) matrix in row-major order: row `o` holds the weights of output `o`.
#[derive(Clone, Debug, PartialEq)]
pub enum Matrix {
    F32 {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    },
    /// `data[o * cols + i] * scale[o]` approximates the f32 weight; `row_sum[o]` is the sum of
    /// row o's int8 values (the VNNI kernel needs it to use unsigned activations).
    I8 {
        rows: usize,
        cols: usize,
        data: Vec<i8>,
        scale: Vec<f32>,
        row_sum: Vec<i32>,
    },
}

impl Matrix {
    pub fn f32(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
        Matrix::F32 { rows, cols, data }
    }

    pub fn rows(&self) -> usize {
        match self {
            Matrix::F32 { rows, .. } | Matrix::I8 { rows, .. } => *rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Matrix::F32 { cols, .. } | Matrix::I8 { cols, .. } => *cols,
        }
    }

    pub(crate) fn is_consistent(&self) -> bool {
        match self {
            Matrix::F32 { rows, cols, data } => data.len() == rows * cols,
            Matrix::I8 {
                rows,
                cols,
                data,
                scale,
                row_sum,
            } => data.len() == rows * cols && scale.len() == *rows && row_sum.len() == *rows,
        }
    }

    /// Bytes a product reads from this matrix.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32 { data, .. } => data.len() * 4,
            Matrix::I8 { data, scale, .. } => data.len() + scale.len() * 4,
        }
    }

    /// Symmetric per-row int8: scale = max|w| / 127, q = round(w / scale). Matrices wider
    /// than [`MAX_INT8_COLS`] stay f32 (their integer dot products could overflow i32).
    pub fn to_int8(&self) -> Matrix {
        match self {
            Matrix::I8 { .. } => self.clone(),
            Matrix::F32 { cols, .. } if *cols > MAX_INT8_COLS => self.clone(),
            Matrix::F32 { rows, cols, data } => {
                let mut q = Vec::with_capacity(data.len());
                let mut scale = Vec::with_capacity(*rows);
                for row in data.chunks_exact((*cols).max(1)).take(*rows) {
                    let m = row.iter().fold(0.0f32, |m, &w| m.max(libm::fabsf(w)));
                    let s = if m > 0.0 { m / 127.0 } else { 1.0 };
                    scale.push(s);
                    q.extend(
                        row.iter()
                            .map(|&w| libm::roundf(w / s).clamp(-127.0, 127.0) as i8),
                    );
                }
                let row_sum = q
                    .chunks_exact((*cols).max(1))
                    .take(*rows)
                    .map(|r| r.iter().map(|&v| v as i32).sum())
                    .collect();
                Matrix::I8 {
                    rows: *rows,
                    cols: *cols,
                    data: q,
                    scale,
                    row_sum,
                }
            }
        }
    }

    /// The f32 value of weight (o, i) (for tests and error reports).
    pub fn get(&self, o: usize, i: usize) -> f32 {
        match self {
            Matrix::F32 { cols, data, .. } => data[o * cols + i],
            Matrix::I8 {
                cols, data, scale, ..
            } => data[o * cols + i] as f32 * scale[o],
        }
    }
}

/// Which implementation of the products runs. Only constructible as scalar, or through
/// detection of the CPU features the SIMD variants need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel(KernelKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KernelKind {
    Scalar,
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    Avx2,
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    Avx512,
    /// AVX-512 with VNNI: int8 products with `vpdpbusd`.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    Avx512Vnni,
}

impl Kernel {
    pub const fn scalar() -> Kernel {
        Kernel(KernelKind::Scalar)
    }

    /// The widest kernel this CPU runs: AVX-512F with BW and VNNI, then AVX-512F, then
    /// AVX2+FMA, else scalar. Detection is `kernels::cpu` (CPUID + XGETBV), so it works
    /// without `std`; soft-float targets always get scalar.
    pub fn detect() -> Kernel {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        {
            let f = crate::kernels::cpu::features();
            if f.avx512f && f.avx512bw && f.avx512vnni {
                return Kernel(KernelKind::Avx512Vnni);
            }
            if f.avx512f {
                return Kernel(KernelKind::Avx512);
            }
            if f.avx2_fma {
                return Kernel(KernelKind::Avx2);
            }
        }
        Kernel::scalar()
    }

    /// AVX2+FMA without detection, for targets without `std` whose CPU is known.
    ///
    /// # Safety
    /// The CPU that runs the model must support AVX2 and FMA.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    pub const unsafe fn assume_avx2() -> Kernel {
        Kernel(KernelKind::Avx2)
    }

    /// AVX-512F without detection, for targets without `std` whose CPU is known.
    ///
    /// # Safety
    /// The CPU that runs the model must support AVX-512F.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    pub const unsafe fn assume_avx512() -> Kernel {
        Kernel(KernelKind::Avx512)
    }

    /// AVX-512F, BW and VNNI without detection, for targets without `std` whose CPU is known.
    ///
    /// # Safety
    /// The CPU that runs the model must support AVX-512F, AVX-512BW and AVX-512VNNI.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    pub const unsafe fn assume_avx512_vnni() -> Kernel {
        Kernel(KernelKind::Avx512Vnni)
    }

    /// AVX-512F without VNNI if present (to compare kernels), else scalar.
    pub fn detect_avx512() -> Kernel {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if crate::kernels::cpu::features().avx512f {
            return Kernel(KernelKind::Avx512);
        }
        Kernel::scalar()
    }

    /// AVX2+FMA if present (to compare kernels), else scalar.
    pub fn detect_avx2() -> Kernel {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if crate::kernels::cpu::features().avx2_fma {
            return Kernel(KernelKind::Avx2);
        }
        Kernel::scalar()
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            KernelKind::Scalar => "scalar",
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            KernelKind::Avx2 => "avx2",
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            KernelKind::Avx512 => "avx512",
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            KernelKind::Avx512Vnni => "avx512-vnni",
        }
    }
}

/// Runs work on several threads. `run` calls `f(i)` with distinct `i < threads()` on up to
/// `threads()` threads concurrently (at least once, on the caller) and returns when all calls
/// returned. A thread that is late may be skipped: the engine's work items are claimed from a
/// shared counter, so any number of calls completes the job.
pub trait Parallel: Sync {
    fn threads(&self) -> usize;
    fn run(&self, f: &(dyn Fn(usize) + Sync));
}

/// Everything on the calling thread.
pub struct Serial;

impl Parallel for Serial {
    fn threads(&self) -> usize {
        1
    }
    fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        f(0)
    }
}

/// Input rows quantized for int8 products: u8 = round(x / scale) + 128, one scale per row.
/// Part of the [`super::Scratch`], so products allocate nothing.
#[derive(Clone, Debug, Default)]
pub struct QuantBuf {
    pub(crate) q: Vec<u8>,
    pub(crate) scale: Vec<f32>,
}

impl QuantBuf {
    pub fn new(rows: usize, cols: usize) -> QuantBuf {
        QuantBuf {
            q: alloc::vec![0; rows * cols],
            scale: alloc::vec![0.0; rows],
        }
    }

    fn quantize(&mut self, x: &[f32], rows: usize, cols: usize) {
        assert!(
            self.q.len() >= rows * cols && self.scale.len() >= rows,
            "quantization buffer too small"
        );
        for t in 0..rows {
            let xr = &x[t * cols..(t + 1) * cols];
            let m = xr.iter().fold(0.0f32, |m, &v| m.max(libm::fabsf(v)));
            let s = if m > 0.0 && m.is_finite() {
                m / 127.0
            } else {
                1.0
            };
            let inv = 1.0 / s;
            self.scale[t] = s;
            // Adding and subtracting 1.5 * 2^23 rounds to nearest-even in f32 arithmetic for
            // |v| < 2^22: the same on every platform, and it vectorizes (libm's roundf did not).
            const ROUND: f32 = 12_582_912.0;
            for (q, &v) in self.q[t * cols..(t + 1) * cols].iter_mut().zip(xr) {
                let r = ((v * inv).clamp(-127.0, 127.0) + ROUND) - ROUND;
                *q = (r as i32 + 128) as u8;
            }
        }
    }
}

/// Output pointer shared by the threads of one product; each writes disjoint rows.
struct OutPtr(*mut f32);
// SAFETY: threads write disjoint index sets (their own output rows), and `matmul` returns only
// after all of them finished, so no data race and no dangling use.
unsafe impl Sync for OutPtr {}
// SAFETY: as for Sync: the pointer is only written through for disjoint rows while `matmul`
// keeps the buffer borrowed.
unsafe impl Send for OutPtr {}

/// Rows of weights a thread takes per pass (outputs computed together).
const ROW_BLOCK: usize = 4;

/// y[t * w.rows() + o] = sum_i W[o, i] * x[t * w.cols() + i], for t < rows.
/// Threads split the output rows; every weight row is read once for all `rows` inputs.
///
/// For int8 matrices the inputs are quantized per row to int8 first (into `quant`), and the
/// product is y = scale_w[o] * scale_x[t] * (exact integer dot product): the same numbers on
/// every kernel.
pub fn matmul(
    w: &Matrix,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    kernel: Kernel,
    par: &dyn Parallel,
    quant: &mut QuantBuf,
) {
    let (n_out, n_in) = (w.rows(), w.cols());
    assert!(
        x.len() >= rows * n_in && y.len() >= rows * n_out,
        "matmul buffer too small"
    );
    if matches!(w, Matrix::I8 { .. }) {
        quant.quantize(x, rows, n_in);
    }
    let quant = &*quant;
    let threads = par.threads().max(1);
    // Small products are not worth waking the other threads for.
    let threads = if n_out * n_in < 64 * 1024 { 1 } else { threads };
    let out = OutPtr(y.as_mut_ptr());
    // Row blocks are claimed from a shared counter, so a thread the OS deschedules delays
    // nothing: the others take its share.
    let chunk = (n_out / (threads * 8))
        .next_multiple_of(ROW_BLOCK)
        .max(4 * ROW_BLOCK);
    let next = core::sync::atomic::AtomicUsize::new(0);
    let work = |_: usize| loop {
        let lo = next.fetch_add(chunk, core::sync::atomic::Ordering::Relaxed);
        if lo >= n_out {
            return;
        }
        let hi = (lo + chunk).min(n_out);
        let out = &out;
        // SAFETY: `out.0` points to `y`, which holds rows * n_out values (asserted above) and
        // outlives this call; each claimed range lo..hi goes to exactly one caller, which
        // writes only outputs o in lo..hi of every row t, so writes never overlap.
        let y = unsafe { core::slice::from_raw_parts_mut(out.0, rows * n_out) };
        rows_range(w, x, quant, rows, y, lo, hi, kernel);
    };
    if threads == 1 {
        work(0);
    } else {
        par.run(&work);
    }
}

#[allow(clippy::too_many_arguments)]
// Without SIMD (soft-float targets) the int8 row sums feed no kernel.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    allow(unused_variables)
)]
fn rows_range(
    w: &Matrix,
    x: &[f32],
    quant: &QuantBuf,
    rows: usize,
    y: &mut [f32],
    lo: usize,
    hi: usize,
    kernel: Kernel,
) {
    match w {
        Matrix::F32 {
            cols,
            data,
            rows: n_out,
        } => match kernel.0 {
            KernelKind::Scalar => scalar_f32(data, *cols, *n_out, x, rows, y, lo, hi),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            // SAFETY: a Kernel with Avx2 is only made after checking avx2 and fma.
            KernelKind::Avx2 => unsafe { x86::avx2_f32(data, *cols, *n_out, x, rows, y, lo, hi) },
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            KernelKind::Avx512 | KernelKind::Avx512Vnni => {
                // SAFETY: Avx512 kernels are only made after checking avx512f.
                unsafe { super::avx512::f32_rows(data, *cols, *n_out, x, rows, y, lo, hi) }
            }
        },
        Matrix::I8 {
            cols,
            data,
            scale,
            row_sum,
            rows: n_out,
        } => match kernel.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            KernelKind::Avx512Vnni => {
                // SAFETY: Avx512Vnni is only made after checking avx512f, avx512bw and
                // avx512vnni.
                unsafe {
                    super::avx512::i8_rows(
                        data, scale, row_sum, *cols, *n_out, quant, rows, y, lo, hi,
                    )
                }
            }
            _ => scalar_i8(data, scale, *cols, *n_out, quant, rows, y, lo, hi),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn scalar_f32(
    w: &[f32],
    cols: usize,
    n_out: usize,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    lo: usize,
    hi: usize,
) {
    for o in lo..hi {
        let wr = &w[o * cols..(o + 1) * cols];
        for t in 0..rows {
            let xr = &x[t * cols..(t + 1) * cols];
            // Eight partial sums in a fixed order (determinism is per kernel).
            let mut acc = [0.0f32; 8];
            let mut wc = wr.chunks_exact(8);
            let mut xc = xr.chunks_exact(8);
            for (a, b) in (&mut wc).zip(&mut xc) {
                for j in 0..8 {
                    acc[j] += a[j] * b[j];
                }
            }
            let mut s =
                ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (a, b) in wc.remainder().iter().zip(xc.remainder()) {
                s += a * b;
            }
            y[t * n_out + o] = s;
        }
    }
}

/// The int8 product every kernel computes: an exact i32 dot product of the int8 weights with
/// the quantized inputs, then two scales.
#[inline]
pub(crate) fn int8_output(dot: i32, w_scale: f32, x_scale: f32) -> f32 {
    dot as f32 * w_scale * x_scale
}

#[allow(clippy::too_many_arguments)]
fn scalar_i8(
    w: &[i8],
    scale: &[f32],
    cols: usize,
    n_out: usize,
    quant: &QuantBuf,
    rows: usize,
    y: &mut [f32],
    lo: usize,
    hi: usize,
) {
    for o in lo..hi {
        let wr = &w[o * cols..(o + 1) * cols];
        for t in 0..rows {
            let xq = &quant.q[t * cols..(t + 1) * cols];
            let dot: i32 = wr
                .iter()
                .zip(xq)
                .map(|(&a, &b)| a as i32 * (b as i32 - 128))
                .sum();
            y[t * n_out + o] = int8_output(dot, scale[o], quant.scale[t]);
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86 {
    //! AVX2/AVX-512 products: ROW_BLOCK weight rows at a time against each input row, one
    //! vector accumulator per weight row, reduced in a fixed order.
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; slices must hold n_out x cols weights, rows x cols
    /// inputs and rows x n_out outputs, and lo <= hi <= n_out.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx2_f32(
        w: &[f32],
        cols: usize,
        n_out: usize,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        lo: usize,
        hi: usize,
    ) {
        let vec_end = cols / 8 * 8;
        let mut o = lo;
        while o < hi {
            let nb = (hi - o).min(4);
            for t in 0..rows {
                let xr = &x[t * cols..(t + 1) * cols];
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                while i < vec_end {
                    // SAFETY: i + 8 <= cols, so the loads stay inside row t of x and rows
                    // o..o+nb of w.
                    let xv = unsafe { _mm256_loadu_ps(xr.as_ptr().add(i)) };
                    for (b, a) in acc.iter_mut().enumerate().take(nb) {
                        // SAFETY: o + b < hi <= n_out and i + 8 <= cols: inside row o + b of w.
                        let wv = unsafe { _mm256_loadu_ps(w.as_ptr().add((o + b) * cols + i)) };
                        *a = _mm256_fmadd_ps(wv, xv, *a);
                    }
                    i += 8;
                }
                for (b, a) in acc.iter().enumerate().take(nb) {
                    let mut s = hsum256(*a);
                    for j in vec_end..cols {
                        s += w[(o + b) * cols + j] * xr[j];
                    }
                    y[t * n_out + o + b] = s;
                }
            }
            o += nb;
        }
    }
}

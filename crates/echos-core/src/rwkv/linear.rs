//! Weight matrices (f32, or int8 with one scale per row) and the matrix products of the RWKV
//! step: y[t] = W x[t] for a block of rows t, each weight row read once per block.
//!
//! Kept inside `rwkv/` (the generic reservoir kernels live in `kernels/`); the SIMD variants
//! are chosen at run time by the host and each has a fixed reduction order, so results are
//! deterministic per kernel.

// Index loops mirror the reference's tensor formulas and keep several arrays in step.
#![allow(clippy::needless_range_loop)]

use alloc::vec::Vec;

/// A dense (rows x cols) matrix in row-major order: row `o` holds the weights of output `o`.
#[derive(Clone, Debug, PartialEq)]
pub enum Matrix {
    F32 {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    },
    /// `data[o * cols + i] * scale[o]` approximates the f32 weight.
    I8 {
        rows: usize,
        cols: usize,
        data: Vec<i8>,
        scale: Vec<f32>,
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
            } => data.len() == rows * cols && scale.len() == *rows,
        }
    }

    /// Bytes a product reads from this matrix.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32 { data, .. } => data.len() * 4,
            Matrix::I8 { data, scale, .. } => data.len() + scale.len() * 4,
        }
    }

    /// Symmetric per-row int8: scale = max|w| / 127, q = round(w / scale).
    pub fn to_int8(&self) -> Matrix {
        match self {
            Matrix::I8 { .. } => self.clone(),
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
                Matrix::I8 {
                    rows: *rows,
                    cols: *cols,
                    data: q,
                    scale,
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
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    pub const fn scalar() -> Kernel {
        Kernel(KernelKind::Scalar)
    }

    /// The widest kernel this CPU runs: AVX-512F, then AVX2+FMA, else scalar.
    #[cfg(feature = "std")]
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Kernel(KernelKind::Avx512);
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Kernel(KernelKind::Avx2);
            }
        }
        Kernel::scalar()
    }

    /// AVX2+FMA without detection, for targets without `std` whose CPU is known.
    ///
    /// # Safety
    /// The CPU that runs the model must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    pub const unsafe fn assume_avx2() -> Kernel {
        Kernel(KernelKind::Avx2)
    }

    /// AVX-512F without detection, for targets without `std` whose CPU is known.
    ///
    /// # Safety
    /// The CPU that runs the model must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    pub const unsafe fn assume_avx512() -> Kernel {
        Kernel(KernelKind::Avx512)
    }

    /// AVX2+FMA if present (to compare kernels), else scalar.
    #[cfg(feature = "std")]
    pub fn detect_avx2() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Kernel(KernelKind::Avx2);
            }
        }
        Kernel::scalar()
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            KernelKind::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => "avx512",
        }
    }
}

/// Runs work on several threads. `run` calls `f(i)` once for every `i < threads()`,
/// concurrently, and returns when all calls returned. The engine splits matrix rows by `i`.
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

/// Output pointer shared by the threads of one product; each writes disjoint rows.
struct OutPtr(*mut f32);
// SAFETY: threads write disjoint index sets (their own output rows), and `matmul` returns only
// after all of them finished, so no data race and no dangling use.
unsafe impl Sync for OutPtr {}
unsafe impl Send for OutPtr {}

/// Rows of weights a thread takes per pass (outputs computed together).
const ROW_BLOCK: usize = 4;

/// y[t * w.rows() + o] = sum_i W[o, i] * x[t * w.cols() + i], for t < rows.
/// Threads split the output rows; every weight row is read once for all `rows` inputs.
pub fn matmul(
    w: &Matrix,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    kernel: Kernel,
    par: &dyn Parallel,
) {
    let (n_out, n_in) = (w.rows(), w.cols());
    assert!(
        x.len() >= rows * n_in && y.len() >= rows * n_out,
        "matmul buffer too small"
    );
    let threads = par.threads().max(1);
    // Small products are not worth waking the other threads for.
    let threads = if n_out * n_in < 64 * 1024 { 1 } else { threads };
    let out = OutPtr(y.as_mut_ptr());
    let work = |i: usize| {
        let blocks = n_out.div_ceil(ROW_BLOCK);
        let lo = (blocks * i / threads) * ROW_BLOCK;
        let hi = ((blocks * (i + 1) / threads) * ROW_BLOCK).min(n_out);
        if lo >= hi {
            return;
        }
        let out = &out;
        // SAFETY: `out.0` points to `y`, which holds rows * n_out values (asserted above) and
        // outlives this call; thread `i` writes only outputs o in lo..hi of every row t, and the
        // ranges of different threads are disjoint.
        let y = unsafe { core::slice::from_raw_parts_mut(out.0, rows * n_out) };
        rows_range(w, x, rows, y, lo, hi, kernel);
    };
    if threads == 1 {
        work(0);
    } else {
        par.run(&|i| {
            if i < threads {
                work(i)
            }
        });
    }
}

fn rows_range(
    w: &Matrix,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    lo: usize,
    hi: usize,
    kernel: Kernel,
) {
    match (w, kernel.0) {
        (
            Matrix::F32 {
                cols,
                data,
                rows: n_out,
            },
            KernelKind::Scalar,
        ) => scalar_f32(data, *cols, *n_out, x, rows, y, lo, hi),
        (
            Matrix::I8 {
                cols,
                data,
                scale,
                rows: n_out,
            },
            KernelKind::Scalar,
        ) => scalar_i8(data, scale, *cols, *n_out, x, rows, y, lo, hi),
        #[cfg(target_arch = "x86_64")]
        (
            Matrix::F32 {
                cols,
                data,
                rows: n_out,
            },
            KernelKind::Avx2,
        ) => {
            // SAFETY: a Kernel with Avx2 is only made by `detect*` after checking avx2 and fma.
            unsafe { x86::avx2_f32(data, *cols, *n_out, x, rows, y, lo, hi) }
        }
        #[cfg(target_arch = "x86_64")]
        (
            Matrix::I8 {
                cols,
                data,
                scale,
                rows: n_out,
            },
            KernelKind::Avx2,
        ) => {
            // SAFETY: as above, avx2 and fma were detected.
            unsafe { x86::avx2_i8(data, scale, *cols, *n_out, x, rows, y, lo, hi) }
        }
        #[cfg(target_arch = "x86_64")]
        (
            Matrix::F32 {
                cols,
                data,
                rows: n_out,
            },
            KernelKind::Avx512,
        ) => {
            // SAFETY: a Kernel with Avx512 is only made by `detect` after checking avx512f.
            unsafe { x86::avx512_f32(data, *cols, *n_out, x, rows, y, lo, hi) }
        }
        #[cfg(target_arch = "x86_64")]
        (
            Matrix::I8 {
                cols,
                data,
                scale,
                rows: n_out,
            },
            KernelKind::Avx512,
        ) => {
            // SAFETY: as above, avx512f was detected.
            unsafe { x86::avx512_i8(data, scale, *cols, *n_out, x, rows, y, lo, hi) }
        }
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
            // Eight partial sums: a fixed order that vectorizes and matches nothing else, which
            // is fine: determinism is per kernel.
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

#[allow(clippy::too_many_arguments)]
fn scalar_i8(
    w: &[i8],
    scale: &[f32],
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
            let mut acc = [0.0f32; 8];
            let mut wc = wr.chunks_exact(8);
            let mut xc = xr.chunks_exact(8);
            for (a, b) in (&mut wc).zip(&mut xc) {
                for j in 0..8 {
                    acc[j] += a[j] as f32 * b[j];
                }
            }
            let mut s =
                ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (a, b) in wc.remainder().iter().zip(xc.remainder()) {
                s += *a as f32 * b;
            }
            y[t * n_out + o] = s * scale[o];
        }
    }
}

#[cfg(target_arch = "x86_64")]
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

    /// # Safety
    /// As [`avx2_f32`], with `scale` holding n_out values.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx2_i8(
        w: &[i8],
        scale: &[f32],
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
                    // SAFETY: i + 8 <= cols: 8 inputs and 8 int8 weights per row in bounds.
                    let xv = unsafe { _mm256_loadu_ps(xr.as_ptr().add(i)) };
                    for (b, a) in acc.iter_mut().enumerate().take(nb) {
                        let q = unsafe {
                            _mm_loadl_epi64(w.as_ptr().add((o + b) * cols + i) as *const __m128i)
                        };
                        let wv = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
                        *a = _mm256_fmadd_ps(wv, xv, *a);
                    }
                    i += 8;
                }
                for (b, a) in acc.iter().enumerate().take(nb) {
                    let mut s = hsum256(*a);
                    for j in vec_end..cols {
                        s += w[(o + b) * cols + j] as f32 * xr[j];
                    }
                    y[t * n_out + o + b] = s * scale[o + b];
                }
            }
            o += nb;
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; slices as for [`avx2_f32`].
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx512_f32(
        w: &[f32],
        cols: usize,
        n_out: usize,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        lo: usize,
        hi: usize,
    ) {
        let vec_end = cols / 16 * 16;
        let mut o = lo;
        while o < hi {
            let nb = (hi - o).min(4);
            for t in 0..rows {
                let xr = &x[t * cols..(t + 1) * cols];
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut i = 0;
                while i < vec_end {
                    // SAFETY: i + 16 <= cols: loads stay inside row t of x and rows of w.
                    let xv = unsafe { _mm512_loadu_ps(xr.as_ptr().add(i)) };
                    for (b, a) in acc.iter_mut().enumerate().take(nb) {
                        let wv = unsafe { _mm512_loadu_ps(w.as_ptr().add((o + b) * cols + i)) };
                        *a = _mm512_fmadd_ps(wv, xv, *a);
                    }
                    i += 16;
                }
                for (b, a) in acc.iter().enumerate().take(nb) {
                    let mut s = _mm512_reduce_add_ps(*a);
                    for j in vec_end..cols {
                        s += w[(o + b) * cols + j] * xr[j];
                    }
                    y[t * n_out + o + b] = s;
                }
            }
            o += nb;
        }
    }

    /// # Safety
    /// As [`avx512_f32`], with `scale` holding n_out values.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx512_i8(
        w: &[i8],
        scale: &[f32],
        cols: usize,
        n_out: usize,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        lo: usize,
        hi: usize,
    ) {
        let vec_end = cols / 16 * 16;
        let mut o = lo;
        while o < hi {
            let nb = (hi - o).min(4);
            for t in 0..rows {
                let xr = &x[t * cols..(t + 1) * cols];
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut i = 0;
                while i < vec_end {
                    // SAFETY: i + 16 <= cols: 16 inputs and 16 int8 weights per row in bounds.
                    let xv = unsafe { _mm512_loadu_ps(xr.as_ptr().add(i)) };
                    for (b, a) in acc.iter_mut().enumerate().take(nb) {
                        let q = unsafe {
                            _mm_loadu_si128(w.as_ptr().add((o + b) * cols + i) as *const __m128i)
                        };
                        let wv = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
                        *a = _mm512_fmadd_ps(wv, xv, *a);
                    }
                    i += 16;
                }
                for (b, a) in acc.iter().enumerate().take(nb) {
                    let mut s = _mm512_reduce_add_ps(*a);
                    for j in vec_end..cols {
                        s += w[(o + b) * cols + j] as f32 * xr[j];
                    }
                    y[t * n_out + o + b] = s * scale[o + b];
                }
            }
            o += nb;
        }
    }
}

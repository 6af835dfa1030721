//! Hot-loop kernels for f32 reservoirs: dense and CSR matrix–vector products, the fused leaky
//! reservoir update, and its batched form (many sequences, one matrix read), in scalar, AVX2+FMA
//! and AVX-512 variants chosen at run time, plus int8/int16
//! quantized reservoirs.
//!
//! Determinism: each variant has a fixed reduction order, so it is bit-reproducible with itself.
//! * scalar: each row sum runs in index order, `acc = acc + w·x` (no FMA);
//! * AVX2 / AVX-512 single-sequence: per row, two vector accumulators over blocks of 8 / 16
//!   non-zeros (FMA), reduced by a fixed halving tree, then the remainder in index order;
//! * batched (every variant): the lanes run over the batch, each lane repeats the scalar
//!   arithmetic exactly, so a batched run equals running the sequences one by one with `Scalar`.
//! * block-sparse step ([`block`], every variant): lanes run over the rows of a group, each
//!   row sums its group's columns in ascending order (unfused multiply then add), then its
//!   inputs in index order, then the bias — the scalar CSR arithmetic, so every variant gives
//!   the bits of [`Kernel::scalar`]'s CSR step on the same weights.
//!
//! The activation of the fused update is [`tanh::fast_tanh`], evaluated with identical operations
//! in every variant. Variants agree with scalar within [`CROSS_VARIANT_RTOL`] (relative to the
//! row's Σ|w·x|).
//!
//! Safety of the SIMD paths against bad input: every view or layout an `unsafe` kernel reads is
//! built by a constructor that checks what the kernel relies on — [`CsrRef::new`] checks the row
//! pointers and every column index, [`sell::SellLeaky::new`] and [`block::BlockLeaky::new`] take
//! checked views or check their indices — so safe code cannot hand a kernel an index that reads
//! out of bounds. The single-row CSR kernels also clamp each gathered index to `cols − 1`, which
//! costs one `min` per vector and keeps a future unchecked path from becoming a wild read.

pub mod block;
#[allow(unsafe_code)] // AVX-512 BF16 dot products
pub mod block_bf16;
#[allow(unsafe_code)] // CPUID and XGETBV
pub mod cpu;
#[allow(unsafe_code)] // the lanes-of-8 SIMD matvecs
pub mod engine;
pub mod quant;
pub mod reservoir;
pub mod scalar;
pub mod sell;
pub mod tanh;

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)] // AVX2 + FMA bodies
mod avx2;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)] // AVX-512 bodies
mod avx512;

use core::fmt;
use core::ops::Range;

/// Relative tolerance between any SIMD variant and scalar, per output element, measured against
/// the sum of |terms| of that element (summation-order rounding grows with that sum).
pub const CROSS_VARIANT_RTOL: f32 = 1e-5;

/// A kernel implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Portable code, the reference; the only variant on soft-float targets.
    Scalar,
    /// 256-bit AVX2 with fused multiply–add.
    Avx2Fma,
    /// 512-bit AVX-512F.
    Avx512,
}

impl Variant {
    /// All variants, slowest first.
    pub const ALL: [Variant; 3] = [Variant::Scalar, Variant::Avx2Fma, Variant::Avx512];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Scalar => "scalar",
            Variant::Avx2Fma => "avx2",
            Variant::Avx512 => "avx512",
        }
    }

    /// Parses `scalar`, `avx2` or `avx512`.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Whether this CPU (and OS) can run the variant.
    pub fn is_supported(self) -> bool {
        let f = cpu::features();
        match self {
            Variant::Scalar => true,
            Variant::Avx2Fma => {
                cfg!(all(target_arch = "x86_64", target_feature = "sse2")) && f.avx2_fma
            }
            Variant::Avx512 => {
                cfg!(all(target_arch = "x86_64", target_feature = "sse2")) && f.avx512f
            }
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a kernel call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// The requested variant needs instructions this CPU or OS does not provide.
    Unsupported(Variant),
    /// A buffer has the wrong length.
    Length {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// A dimension is zero, or so large that sizes overflow or gather offsets do not fit in i32.
    Dimension { what: &'static str, value: usize },
    /// `indptr` is not a non-decreasing sequence from 0 to nnz.
    RowPointers { row: usize },
    /// A column index is not below `cols`.
    ColumnIndex {
        position: usize,
        index: u32,
        cols: usize,
    },
    /// The leak rate is not in (0, 1].
    LeakRate,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Unsupported(v) => {
                write!(
                    f,
                    "kernel variant `{v}` is not supported by this CPU/OS (detected: {:?})",
                    cpu::features()
                )
            }
            KernelError::Length {
                what,
                expected,
                found,
            } => {
                write!(f, "{what} has length {found}, expected {expected}")
            }
            KernelError::Dimension { what, value } => {
                write!(f, "{what} = {value} is out of range (zero, or too large: must fit in i32 and sizes must not overflow)")
            }
            KernelError::RowPointers { row } => {
                write!(
                    f,
                    "CSR indptr is not non-decreasing from 0 to nnz at row {row}"
                )
            }
            KernelError::ColumnIndex {
                position,
                index,
                cols,
            } => {
                write!(
                    f,
                    "CSR column index {index} at position {position} is not below cols = {cols}"
                )
            }
            KernelError::LeakRate => f.write_str("leak_rate must be in (0, 1]"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KernelError {}

/// Largest dimension the kernels accept: gather offsets are signed 32-bit.
pub const MAX_DIM: usize = i32::MAX as usize;

pub(crate) fn check_dim(what: &'static str, value: usize) -> Result<(), KernelError> {
    if value == 0 || value > MAX_DIM {
        Err(KernelError::Dimension { what, value })
    } else {
        Ok(())
    }
}

pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), KernelError> {
    if expected == found {
        Ok(())
    } else {
        Err(KernelError::Length {
            what,
            expected,
            found,
        })
    }
}

/// `a · b` as a size, or a dimension error naming `what`.
pub(crate) fn checked_size(what: &'static str, a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b)
        .filter(|&n| n <= isize::MAX as usize / 4)
        .ok_or(KernelError::Dimension {
            what,
            value: a.max(b),
        })
}

/// A borrowed CSR matrix whose row pointers and column indices have been checked: holding one
/// is the proof the `unsafe` kernels rely on (see the module note).
#[derive(Clone, Copy, Debug)]
pub struct CsrRef<'a> {
    rows: usize,
    cols: usize,
    indptr: &'a [u32],
    indices: &'a [u32],
    values: &'a [f32],
}

impl<'a> CsrRef<'a> {
    /// Checks the shape, the row pointers and every column index: O(rows + nnz), so build the
    /// view once and reuse it (it is `Copy`).
    pub fn new(
        rows: usize,
        cols: usize,
        indptr: &'a [u32],
        indices: &'a [u32],
        values: &'a [f32],
    ) -> Result<Self, KernelError> {
        check_dim("rows", rows)?;
        check_dim("cols", cols)?;
        check_len("indptr", rows + 1, indptr.len())?;
        check_len("values", indices.len(), values.len())?;
        let mut prev = 0u32;
        if indptr[0] != 0 {
            return Err(KernelError::RowPointers { row: 0 });
        }
        for (row, &p) in indptr.iter().enumerate().skip(1) {
            if p < prev {
                return Err(KernelError::RowPointers { row: row - 1 });
            }
            prev = p;
        }
        if prev as usize != indices.len() {
            return Err(KernelError::RowPointers { row: rows });
        }
        if let Some(position) = indices.iter().position(|&i| i as usize >= cols) {
            return Err(KernelError::ColumnIndex {
                position,
                index: indices[position],
                cols,
            });
        }
        Ok(CsrRef {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Row pointers (rows + 1).
    pub fn indptr(&self) -> &'a [u32] {
        self.indptr
    }
    /// Column indices.
    pub fn indices(&self) -> &'a [u32] {
        self.indices
    }
    /// Stored values.
    pub fn values(&self) -> &'a [f32] {
        self.values
    }
    /// Bytes the step reads for this matrix (values, indices, row pointers).
    pub fn bytes(&self) -> usize {
        self.nnz() * 8 + self.indptr.len() * 4
    }
}

/// A borrowed row-major dense matrix whose shape has been checked.
#[derive(Clone, Copy, Debug)]
pub struct DenseRef<'a> {
    rows: usize,
    cols: usize,
    data: &'a [f32],
}

impl<'a> DenseRef<'a> {
    /// Checks that `data` holds `rows × cols` values.
    pub fn new(rows: usize, cols: usize, data: &'a [f32]) -> Result<Self, KernelError> {
        check_dim("rows", rows)?;
        check_dim("cols", cols)?;
        check_len(
            "dense data",
            checked_size("rows × cols", rows, cols)?,
            data.len(),
        )?;
        Ok(DenseRef { rows, cols, data })
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Row-major values.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
}

/// The reservoir matrix of a fused update.
#[derive(Clone, Copy, Debug)]
pub enum WeightsRef<'a> {
    /// Sparse recurrent weights.
    Csr(CsrRef<'a>),
    /// Dense recurrent weights.
    Dense(DenseRef<'a>),
}

impl WeightsRef<'_> {
    fn rows(&self) -> usize {
        match self {
            WeightsRef::Csr(a) => a.rows,
            WeightsRef::Dense(a) => a.rows,
        }
    }
    fn cols(&self) -> usize {
        match self {
            WeightsRef::Csr(a) => a.cols,
            WeightsRef::Dense(a) => a.cols,
        }
    }
}

/// Everything of the update x' = (1−a)·x + a·tanh(W·x + W_in·u + b) except W and the state.
/// Per row the pre-activation is summed as (W·x in the variant's order) + Σ_j W_in[i,j]·u[j]
/// (index order) + b[i].
#[derive(Clone, Copy, Debug)]
pub struct LeakyUpdate<'a> {
    /// Input weights, units × inputs, row-major (inputs may be 0).
    pub w_in: &'a [f32],
    /// Number of inputs.
    pub inputs: usize,
    /// Bias per unit.
    pub bias: &'a [f32],
    /// Leak rate a in (0, 1].
    pub leak_rate: f32,
}

impl LeakyUpdate<'_> {
    fn check(&self, units: usize) -> Result<(), KernelError> {
        check_len(
            "w_in",
            checked_size("units × inputs", units, self.inputs)?,
            self.w_in.len(),
        )?;
        check_len("bias", units, self.bias.len())?;
        if !(self.leak_rate > 0.0 && self.leak_rate <= 1.0) {
            return Err(KernelError::LeakRate);
        }
        Ok(())
    }
}

/// A kernel variant that has been checked against the running CPU: holding one is the proof
/// that its instructions are available, which makes the dispatch below sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    variant: Variant,
}

/// Runs the body of the held kernel's variant: the portable body for `Scalar` (and on targets
/// without SSE2, where the SIMD bodies are not built), else the `#[target_feature]` body. The
/// one place the variants are matched, so the soundness argument is written once.
macro_rules! by_variant {
    ($kernel:expr, scalar: $s:expr, avx2: $a2:expr, avx512: $a5:expr $(,)?) => {
        match $kernel.variant {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            // SAFETY: a `Kernel` exists only for a variant `is_supported` confirmed, so this
            // CPU and OS run AVX2 + FMA.
            Variant::Avx2Fma => unsafe { $a2 },
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            // SAFETY: as above, for AVX-512F.
            Variant::Avx512 => unsafe { $a5 },
            _ => $s,
        }
    };
    ($kernel:expr, scalar: $s:expr, avx512: $a5:expr $(,)?) => {
        match $kernel.variant {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            // SAFETY: a `Kernel` exists only for a variant `is_supported` confirmed, so this
            // CPU and OS run AVX-512F.
            Variant::Avx512 => unsafe { $a5 },
            _ => $s,
        }
    };
}

// Dispatch: each arm calls a `#[target_feature]` body that the held `Kernel` proves runnable.
#[allow(unsafe_code)]
impl Kernel {
    /// The fastest variant this CPU supports.
    pub fn best() -> Kernel {
        let variant = [Variant::Avx512, Variant::Avx2Fma]
            .into_iter()
            .find(|v| v.is_supported())
            .unwrap_or(Variant::Scalar);
        Kernel { variant }
    }

    /// The scalar reference.
    pub const fn scalar() -> Kernel {
        Kernel {
            variant: Variant::Scalar,
        }
    }

    /// A forced variant, or [`KernelError::Unsupported`] if this CPU lacks it.
    pub fn new(variant: Variant) -> Result<Kernel, KernelError> {
        if variant.is_supported() {
            Ok(Kernel { variant })
        } else {
            Err(KernelError::Unsupported(variant))
        }
    }

    /// Every variant this CPU supports, slowest first.
    pub fn available() -> impl Iterator<Item = Kernel> {
        Variant::ALL.into_iter().filter_map(|v| Kernel::new(v).ok())
    }

    /// Which variant this is.
    pub fn variant(self) -> Variant {
        self.variant
    }

    /// y = A·x for a CSR matrix.
    pub fn csr_matvec(self, a: CsrRef<'_>, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
        check_len("x", a.cols, x.len())?;
        check_len("y", a.rows, y.len())?;
        by_variant!(self,
            scalar: scalar::csr_matvec(a, x, y),
            avx2: avx2::csr_matvec(a, x, y),
            avx512: avx512::csr_matvec(a, x, y),
        );
        Ok(())
    }

    /// y = A·x for a row-major dense matrix.
    pub fn dense_matvec(
        self,
        a: DenseRef<'_>,
        x: &[f32],
        y: &mut [f32],
    ) -> Result<(), KernelError> {
        check_len("x", a.cols, x.len())?;
        check_len("y", a.rows, y.len())?;
        by_variant!(self,
            scalar: scalar::dense_matvec(a, x, y),
            avx2: avx2::dense_matvec(a, x, y),
            avx512: avx512::dense_matvec(a, x, y),
        );
        Ok(())
    }

    /// One fused reservoir step for rows `rows` of x_next:
    /// x_next[i] = (1−a)·x[i] + a·tanh((W·x)[i] + (W_in·u)[i] + b[i]).
    /// `x_next` holds just those rows, so disjoint row ranges can run on different cores.
    pub fn leaky_step_rows(
        self,
        w: WeightsRef<'_>,
        p: LeakyUpdate<'_>,
        rows: Range<usize>,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) -> Result<(), KernelError> {
        let units = w.rows();
        check_len("x (square reservoir)", units, w.cols())?;
        check_len("x", units, x.len())?;
        check_len("u", p.inputs, u.len())?;
        p.check(units)?;
        if rows.start > rows.end || rows.end > units {
            return Err(KernelError::Dimension {
                what: "row range end",
                value: rows.end,
            });
        }
        check_len("x_next (row range)", rows.len(), x_next.len())?;
        by_variant!(self,
            scalar: scalar::leaky_step_rows(w, p, rows, u, x, x_next),
            avx2: avx2::leaky_step_rows(w, p, rows, u, x, x_next),
            avx512: avx512::leaky_step_rows(w, p, rows, u, x, x_next),
        );
        Ok(())
    }

    /// One fused step on a SELL-16 matrix; bit-identical to [`Kernel::leaky_step`] with
    /// [`Kernel::scalar`] on the CSR matrix it was built from.
    pub fn sell_leaky_step(
        self,
        m: &sell::SellLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) -> Result<(), KernelError> {
        check_len("x (square reservoir)", m.rows, m.cols)?;
        check_len("u", m.inputs, u.len())?;
        check_len("x", m.rows, x.len())?;
        check_len("x_next", m.rows, x_next.len())?;
        if !(leak_rate > 0.0 && leak_rate <= 1.0) {
            return Err(KernelError::LeakRate);
        }
        by_variant!(self,
            scalar: sell::leaky_step_scalar(m, leak_rate, u, x, x_next),
            avx2: sell::simd::leaky_step_avx2(m, leak_rate, u, x, x_next),
            avx512: sell::simd::leaky_step_avx512(m, leak_rate, u, x, x_next),
        );
        Ok(())
    }

    /// One fused step on a block-sparse reservoir ([`block`]); every variant gives the same
    /// bits as [`Kernel::scalar`].
    pub fn block_leaky_step(
        self,
        m: &block::BlockLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) -> Result<(), KernelError> {
        check_len("u", m.inputs, u.len())?;
        check_len("x", m.units, x.len())?;
        check_len("x_next", m.units, x_next.len())?;
        if !(leak_rate > 0.0 && leak_rate <= 1.0) {
            return Err(KernelError::LeakRate);
        }
        by_variant!(self,
            scalar: block::leaky_step_scalar(m, leak_rate, u, x, x_next),
            avx2: block::simd::leaky_step_avx2(m, leak_rate, u, x, x_next),
            avx512: block::simd::leaky_step_avx512(m, leak_rate, u, x, x_next),
        );
        Ok(())
    }

    /// One fused block step of `batch` sequences through the same reservoir, states unit-major
    /// (`x[i·batch + b]`, `u[j·batch + b]`): sequence b's result is bit-identical to
    /// [`Kernel::block_leaky_step`] on that sequence alone. AVX-512 runs SIMD (lanes over the
    /// batch); other variants the portable form of the same arithmetic.
    pub fn block_leaky_step_batch(
        self,
        m: &block::BlockLeaky,
        leak_rate: f32,
        batch: usize,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) -> Result<(), KernelError> {
        check_dim("batch", batch)?;
        let states = checked_size("units × batch", m.units, batch)?;
        check_len(
            "u",
            checked_size("inputs × batch", m.inputs, batch)?,
            u.len(),
        )?;
        check_len("x", states, x.len())?;
        check_len("x_next", states, x_next.len())?;
        if !(leak_rate > 0.0 && leak_rate <= 1.0) {
            return Err(KernelError::LeakRate);
        }
        by_variant!(self,
            scalar: block::leaky_step_batch_scalar(m, leak_rate, batch, u, x, x_next),
            avx512: block::simd::leaky_step_batch_avx512(m, leak_rate, batch, u, x, x_next),
        );
        Ok(())
    }

    /// Part of the SELL step: slices `slices` only, results in slot order
    /// (`out[slot − slices.start·16]`, slot = slice·16 + lane, original row
    /// `m.slot_rows()[slot]`; padding slots are 0 on the portable path, untouched on AVX-512).
    /// Disjoint slice ranges can run on different threads; each value is bit-identical to
    /// [`Kernel::sell_leaky_step`]'s for that row. AVX-512 runs SIMD; other variants the
    /// portable form of the same arithmetic.
    #[allow(clippy::too_many_arguments)]
    pub fn sell_leaky_step_slots(
        self,
        m: &sell::SellLeaky,
        leak_rate: f32,
        u: &[f32],
        x: &[f32],
        slices: Range<usize>,
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        check_len("x (square reservoir)", m.rows, m.cols)?;
        check_len("u", m.inputs, u.len())?;
        check_len("x", m.rows, x.len())?;
        if slices.start > slices.end || slices.end > m.slices {
            return Err(KernelError::Dimension {
                what: "slice range end",
                value: slices.end,
            });
        }
        check_len("out (slices × 16)", slices.len() * sell::SLICE, out.len())?;
        if !(leak_rate > 0.0 && leak_rate <= 1.0) {
            return Err(KernelError::LeakRate);
        }
        by_variant!(self,
            scalar: sell::leaky_step_slots_scalar(m, leak_rate, u, x, slices, out),
            avx512: sell::simd::leaky_step_slots_avx512(m, leak_rate, u, x, slices, out),
        );
        Ok(())
    }

    /// One fused step of every row: see [`Kernel::leaky_step_rows`].
    pub fn leaky_step(
        self,
        w: WeightsRef<'_>,
        p: LeakyUpdate<'_>,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) -> Result<(), KernelError> {
        self.leaky_step_rows(w, p, 0..w.rows(), u, x, x_next)
    }

    /// One fused step of `batch` sequences through the same CSR reservoir, reading the matrix
    /// once. Layouts are unit-major: `x[i·batch + b]`, `u[j·batch + b]`, and `x_next` holds rows
    /// `rows` only (`x_next[(i − rows.start)·batch + b]`). Sequence b's result is bit-identical
    /// to [`Kernel::scalar`]'s [`Kernel::leaky_step`] on that sequence alone, for every variant.
    #[allow(clippy::too_many_arguments)]
    pub fn leaky_step_batch_rows(
        self,
        w: CsrRef<'_>,
        p: LeakyUpdate<'_>,
        batch: usize,
        rows: Range<usize>,
        u: &[f32],
        x: &[f32],
        x_next: &mut [f32],
    ) -> Result<(), KernelError> {
        let units = w.rows;
        check_dim("batch", batch)?;
        check_len("x (square reservoir)", units, w.cols)?;
        check_len("x", checked_size("units × batch", units, batch)?, x.len())?;
        check_len(
            "u",
            checked_size("inputs × batch", p.inputs, batch)?,
            u.len(),
        )?;
        p.check(units)?;
        if rows.start > rows.end || rows.end > units {
            return Err(KernelError::Dimension {
                what: "row range end",
                value: rows.end,
            });
        }
        check_len(
            "x_next (row range × batch)",
            rows.len() * batch,
            x_next.len(),
        )?;
        by_variant!(self,
            scalar: scalar::leaky_step_batch_rows(w, p, batch, rows, u, x, x_next),
            avx2: avx2::leaky_step_batch_rows(w, p, batch, rows, u, x, x_next),
            avx512: avx512::leaky_step_batch_rows(w, p, batch, rows, u, x, x_next),
        );
        Ok(())
    }
}

/// Raw-slice CSR y = A·x with the best kernel of this CPU (the contract's layout).
pub fn csr_matvec_f32(
    indptr: &[u32],
    indices: &[u32],
    values: &[f32],
    x: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError> {
    let rows = indptr.len().checked_sub(1).ok_or(KernelError::Dimension {
        what: "rows",
        value: 0,
    })?;
    let a = CsrRef::new(rows, x.len(), indptr, indices, values)?;
    Kernel::best().csr_matvec(a, x, y)
}

/// Raw-slice dense row-major y = A·x with the best kernel of this CPU.
pub fn dense_matvec_f32(
    a: &[f32],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError> {
    Kernel::best().dense_matvec(DenseRef::new(rows, cols, a)?, x, y)
}

#[cfg(test)]
mod tests;

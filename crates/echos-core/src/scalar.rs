//! The floating-point types reservoirs compute in (`f32`, `f64`), with the few operations the
//! engine needs routed through `libm` so results do not depend on the platform's math library.

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real number type a reservoir can run in: `Esn<f32>` really computes in f32.
pub trait Scalar:
    Copy
    + Default
    + Debug
    + PartialOrd
    + PartialEq
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// Name used in model files and messages ("f32" / "f64").
    const NAME: &'static str;

    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn zero() -> Self;
    fn one() -> Self;
    /// `self * a + b`, deliberately *unfused* (two roundings): a software FMA would be slow and a
    /// hardware one is not in baseline x86_64, and the scalar kernel must give the same bits on
    /// every target.
    fn mul_add(self, a: Self, b: Self) -> Self;
    fn tanh(self) -> Self;
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn is_finite(self) -> bool;
    /// The larger of two values; NaN in `self` propagates (so ReLU does not hide a NaN state).
    fn max(self, other: Self) -> Self;
    /// y += A·x (CSR) by a SIMD kernel giving the portable loop's exact bits; false = not taken.
    fn csr_matvec_add_simd(
        _cols: usize,
        _indptr: &[u32],
        _indices: &[u32],
        _values: &[Self],
        _x: &[Self],
        _y: &mut [Self],
    ) -> bool {
        false
    }
    /// y += A·x (dense row-major) likewise; false = not taken.
    fn dense_matvec_add_simd(_cols: usize, _data: &[Self], _x: &[Self], _y: &mut [Self]) -> bool {
        false
    }
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";

    fn csr_matvec_add_simd(
        cols: usize,
        indptr: &[u32],
        indices: &[u32],
        values: &[f32],
        x: &[f32],
        y: &mut [f32],
    ) -> bool {
        crate::kernels::engine::csr_matvec_add_lanes8_f32(cols, indptr, indices, values, x, y)
    }
    fn dense_matvec_add_simd(cols: usize, data: &[f32], x: &[f32], y: &mut [f32]) -> bool {
        crate::kernels::engine::dense_matvec_add_lanes8_f32(cols, data, x, y)
    }

    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn zero() -> Self {
        0.0
    }
    #[inline]
    fn one() -> Self {
        1.0
    }
    #[inline]
    fn mul_add(self, a: Self, b: Self) -> Self {
        self * a + b
    }
    #[inline]
    fn tanh(self) -> Self {
        libm::tanhf(self)
    }
    #[inline]
    fn exp(self) -> Self {
        libm::expf(self)
    }
    #[inline]
    fn sqrt(self) -> Self {
        libm::sqrtf(self)
    }
    #[inline]
    fn abs(self) -> Self {
        libm::fabsf(self)
    }
    #[inline]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline]
    fn max(self, other: Self) -> Self {
        if self.is_nan() || self >= other {
            self
        } else {
            other
        }
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";

    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn zero() -> Self {
        0.0
    }
    #[inline]
    fn one() -> Self {
        1.0
    }
    #[inline]
    fn mul_add(self, a: Self, b: Self) -> Self {
        self * a + b
    }
    #[inline]
    fn tanh(self) -> Self {
        libm::tanh(self)
    }
    #[inline]
    fn exp(self) -> Self {
        libm::exp(self)
    }
    #[inline]
    fn sqrt(self) -> Self {
        libm::sqrt(self)
    }
    #[inline]
    fn abs(self) -> Self {
        libm::fabs(self)
    }
    #[inline]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline]
    fn max(self, other: Self) -> Self {
        if self.is_nan() || self >= other {
            self
        } else {
            other
        }
    }
}

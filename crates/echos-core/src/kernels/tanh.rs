//! A rational tanh for f32 that every kernel variant evaluates with the same operations in the
//! same order (no FMA), so the activation is bit-identical across scalar, AVX2 and AVX-512.
//!
//! The coefficients are Eigen's `generic_fast_tanh_float` (a [13/6] minimax rational fit on the
//! clamped range); measured against `libm::tanhf` in the tests below: see `MAX_ABS_ERROR`.

/// Inputs are clamped to ±CLAMP, where the fit already rounds to ±1.
pub(crate) const CLAMP: f32 = 7.905_311;
/// Below this magnitude tanh(x) rounds to x; returning x keeps tiny inputs exact.
pub(crate) const TINY: f32 = 0.0004;
pub(crate) const ALPHA: [f32; 7] = [
    4.893_524_6e-3,
    6.372_619_3e-4,
    1.485_722_4e-5,
    5.122_297e-8,
    -8.604_672e-11,
    2.000_188e-13,
    -2.760_768_5e-16,
];
pub(crate) const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];

/// Largest |fast_tanh(x) − tanhf(x)| the tests accept (measured max 4.2e-7 on [-10, 10]).
pub const MAX_ABS_ERROR: f32 = 2e-6;

/// tanh(x) by the shared rational approximation; NaN in gives an unspecified finite value.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    if x.abs() < TINY {
        return x;
    }
    let c = x.clamp(-CLAMP, CLAMP);
    let x2 = c * c;
    let mut p = ALPHA[6];
    p = p * x2 + ALPHA[5];
    p = p * x2 + ALPHA[4];
    p = p * x2 + ALPHA[3];
    p = p * x2 + ALPHA[2];
    p = p * x2 + ALPHA[1];
    p = p * x2 + ALPHA[0];
    p *= c;
    let mut q = BETA[3];
    q = q * x2 + BETA[2];
    q = q * x2 + BETA[1];
    q = q * x2 + BETA[0];
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_agrees_with_libm_over_the_whole_range() {
        let mut worst = 0.0f32;
        let mut x = -12.0f32;
        while x <= 12.0 {
            let err = (fast_tanh(x) - libm::tanhf(x)).abs();
            worst = worst.max(err);
            x += 1.0e-4;
        }
        assert!(worst <= MAX_ABS_ERROR, "worst abs error {worst}");
        assert_eq!(fast_tanh(0.0), 0.0);
        assert_eq!(fast_tanh(100.0), fast_tanh(CLAMP));
        assert!(fast_tanh(100.0) <= 1.0 && fast_tanh(-100.0) >= -1.0);
    }

    #[test]
    fn fast_tanh_is_odd() {
        for i in 0..10_000 {
            let x = i as f32 * 1.3e-3;
            assert_eq!(fast_tanh(-x), -fast_tanh(x));
        }
    }
}

//! Fixed-point arithmetic for ring 0 (no FPU): Q1.15 (`i16`, value = raw / 2¹⁵) for weights and
//! states, Q16.16 (`i32`, value = raw / 2¹⁶) for inputs, pre-activations and parameters, and an
//! integer-only tanh.
//!
//! `tanh_q15` interpolates linearly in a table of tanh at steps of 1/64 on [0, 6] and saturates
//! beyond. Error bound against the exact tanh of the Q16.16 input, in Q1.15 LSBs (2⁻¹⁵):
//! table rounding ≤ 0.5, interpolation ≤ h²/8 · max|tanh''| = 2⁻¹² / 8 · 0.770 · 2¹⁵ = 0.77,
//! rounding of the interpolated value ≤ 0.5, so ≤ 1.77 LSB (5.4 · 10⁻⁵) everywhere; the tail
//! (|x| ≥ 6, output ±32767) is off by at most 1 LSB. The host test checks every Q16.16 input in
//! [−8, 8] against `libm::tanh`. The function is exactly odd: `tanh_q15(−x) = −tanh_q15(x)`.

/// 1.0 in Q16.16.
pub const Q16_ONE: i32 = 1 << 16;
/// Largest Q1.15 value (1 − 2⁻¹⁵); Q1.15 cannot hold 1.0.
pub const Q15_MAX: i16 = i16::MAX;

/// `num / den` in Q16.16, rounded to nearest, for building parameters without floats
/// (e.g. `q16_ratio(9, 10)` for a spectral radius of 0.9). `den` must be nonzero.
pub const fn q16_ratio(num: i64, den: i64) -> i32 {
    let scaled = num * (1 << 16);
    let half = den.abs() / 2;
    let q = if (scaled >= 0) == (den > 0) {
        (scaled.abs() + half) / den.abs()
    } else {
        -((scaled.abs() + half) / den.abs())
    };
    q as i32
}

/// Arithmetic right shift with rounding half up (towards +∞), the one rounding used throughout so
/// host and kernel agree bit for bit.
#[inline(always)]
pub const fn round_shift(x: i64, shift: u32) -> i64 {
    (x + (1 << (shift - 1))) >> shift
}

/// Saturating conversion to `i32`.
#[inline(always)]
pub const fn sat_i32(x: i64) -> i32 {
    if x > i32::MAX as i64 {
        i32::MAX
    } else if x < i32::MIN as i64 {
        i32::MIN
    } else {
        x as i32
    }
}

/// Why a float value has no fixed-point form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuantizeError {
    /// NaN or infinite.
    NotFinite { index: usize },
    /// Outside the format's range (Q1.15: [−1, 1); Q16.16: [−32768, 32768)).
    OutOfRange { index: usize, value: f64 },
}

impl core::fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::NotFinite { index } => write!(f, "value #{index} is not a finite number"),
            Self::OutOfRange { index, value } => {
                write!(
                    f,
                    "value #{index} = {value} is outside the fixed-point range"
                )
            }
        }
    }
}

fn quantize(x: f64, one: f64, min: i64, max: i64, index: usize) -> Result<i64, QuantizeError> {
    if !x.is_finite() {
        return Err(QuantizeError::NotFinite { index });
    }
    let scaled = x * one;
    if scaled < min as f64 || scaled >= (max + 1) as f64 {
        return Err(QuantizeError::OutOfRange { index, value: x });
    }
    // libm's round (half away from zero) is the same on every platform; values in the last half
    // LSB below the top round up past it and saturate.
    Ok((libm::round(scaled) as i64).min(max))
}

/// Converts a float weight matrix (e.g. CSR values of a float ESN trained or generated on the
/// host) to Q1.15 for ring 0, rounding to nearest; names the first value that does not fit.
pub fn quantize_q15(src: &[f64], dst: &mut [i16]) -> Result<(), QuantizeError> {
    for (index, (&x, d)) in src.iter().zip(dst.iter_mut()).enumerate() {
        *d = quantize(x, 32768.0, -32768, 32767, index)? as i16;
    }
    Ok(())
}

/// Converts float inputs or parameters to Q16.16, rounding to nearest.
pub fn quantize_q16(src: &[f64], dst: &mut [i32]) -> Result<(), QuantizeError> {
    for (index, (&x, d)) in src.iter().zip(dst.iter_mut()).enumerate() {
        *d = quantize(x, 65536.0, i32::MIN as i64, i32::MAX as i64, index)? as i32;
    }
    Ok(())
}

/// Table step is 2^-TANH_STEP_LOG2.
const TANH_STEP_LOG2: u32 = 6;
/// Interpolation bits below the table step in a Q16.16 input.
const FRAC_BITS: u32 = 16 - TANH_STEP_LOG2;
/// Inputs at or above this magnitude (6.0) saturate.
const TANH_LIMIT_Q16: u32 = 6 << 16;

/// `TANH_TABLE[i] = min(round(tanh(i / 64) · 2¹⁵), 32767)`, i = 0..=384. Generated once with a
/// double-precision tanh; `tanh_table_matches_libm` re-derives every entry.
#[rustfmt::skip]
pub(crate) const TANH_TABLE: [i16; 385] = [
    0, 512, 1024, 1535, 2045, 2555, 3063, 3570, 4075, 4578, 5079, 5577,
    6073, 6566, 7056, 7542, 8025, 8505, 8980, 9452, 9919, 10382, 10840, 11294,
    11743, 12186, 12625, 13058, 13486, 13909, 14326, 14737, 15143, 15542, 15936, 16324,
    16706, 17082, 17452, 17816, 18173, 18525, 18870, 19209, 19542, 19869, 20189, 20504,
    20813, 21115, 21411, 21702, 21986, 22265, 22538, 22804, 23066, 23321, 23571, 23815,
    24054, 24287, 24516, 24738, 24956, 25168, 25376, 25578, 25776, 25969, 26157, 26340,
    26519, 26694, 26864, 27029, 27191, 27348, 27502, 27651, 27797, 27938, 28076, 28211,
    28341, 28469, 28592, 28713, 28830, 28944, 29055, 29163, 29268, 29370, 29470, 29566,
    29660, 29751, 29840, 29926, 30010, 30091, 30170, 30247, 30322, 30394, 30465, 30533,
    30600, 30664, 30727, 30788, 30847, 30904, 30960, 31014, 31067, 31118, 31167, 31215,
    31262, 31307, 31351, 31394, 31435, 31476, 31515, 31553, 31589, 31625, 31659, 31693,
    31726, 31757, 31788, 31817, 31846, 31874, 31901, 31928, 31953, 31978, 32002, 32025,
    32048, 32070, 32091, 32112, 32132, 32151, 32170, 32188, 32206, 32223, 32240, 32256,
    32271, 32287, 32301, 32316, 32329, 32343, 32356, 32368, 32381, 32392, 32404, 32415,
    32426, 32436, 32447, 32456, 32466, 32475, 32484, 32493, 32501, 32509, 32517, 32525,
    32532, 32540, 32547, 32553, 32560, 32566, 32573, 32579, 32584, 32590, 32596, 32601,
    32606, 32611, 32616, 32620, 32625, 32629, 32634, 32638, 32642, 32646, 32649, 32653,
    32657, 32660, 32663, 32667, 32670, 32673, 32676, 32678, 32681, 32684, 32686, 32689,
    32691, 32694, 32696, 32698, 32700, 32702, 32704, 32706, 32708, 32710, 32712, 32714,
    32715, 32717, 32718, 32720, 32721, 32723, 32724, 32726, 32727, 32728, 32729, 32731,
    32732, 32733, 32734, 32735, 32736, 32737, 32738, 32739, 32740, 32741, 32741, 32742,
    32743, 32744, 32745, 32745, 32746, 32747, 32747, 32748, 32749, 32749, 32750, 32750,
    32751, 32751, 32752, 32752, 32753, 32753, 32754, 32754, 32755, 32755, 32755, 32756,
    32756, 32757, 32757, 32757, 32758, 32758, 32758, 32759, 32759, 32759, 32759, 32760,
    32760, 32760, 32760, 32761, 32761, 32761, 32761, 32762, 32762, 32762, 32762, 32762,
    32762, 32763, 32763, 32763, 32763, 32763, 32763, 32764, 32764, 32764, 32764, 32764,
    32764, 32764, 32764, 32765, 32765, 32765, 32765, 32765, 32765, 32765, 32765, 32765,
    32765, 32765, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766,
    32766, 32766, 32766, 32766, 32766, 32766, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767,
];

/// tanh of a Q16.16 value, as Q1.15. Integer-only, constant time, no table access out of
/// bounds for any input.
#[inline]
pub fn tanh_q15(x_q16: i32) -> i16 {
    let ax = x_q16.unsigned_abs();
    let y = if ax >= TANH_LIMIT_Q16 {
        Q15_MAX as i32
    } else {
        let idx = (ax >> FRAC_BITS) as usize;
        let frac = (ax & ((1 << FRAC_BITS) - 1)) as i32;
        let y0 = TANH_TABLE[idx] as i32;
        let y1 = TANH_TABLE[idx + 1] as i32;
        y0 + (((y1 - y0) * frac + (1 << (FRAC_BITS - 1))) >> FRAC_BITS)
    };
    (if x_q16 < 0 { -y } else { y }) as i16
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const LSB: f64 = 1.0 / 32768.0;

    #[test]
    fn tanh_table_matches_libm() {
        for (i, &t) in TANH_TABLE.iter().enumerate() {
            let want = libm::round(libm::tanh(i as f64 / 64.0) * 32768.0).min(32767.0) as i16;
            assert_eq!(t, want, "entry {i}");
        }
    }

    /// Every Q16.16 input in [−8, 8] (1,048,577 points) and the extremes: error within the
    /// documented 1.77 LSB, and exact oddness.
    #[test]
    fn tanh_error_bound() {
        let mut worst = 0.0f64;
        let mut worst_at = 0i32;
        let check = |x: i32, worst: &mut f64, worst_at: &mut i32| {
            let got = tanh_q15(x) as f64 * LSB;
            let err = (got - libm::tanh(x as f64 / 65536.0)).abs();
            if err > *worst {
                *worst = err;
                *worst_at = x;
            }
            assert_eq!(tanh_q15(x.wrapping_neg()), tanh_q15(x).wrapping_neg());
        };
        for x in -(8 << 16)..=(8 << 16) {
            check(x, &mut worst, &mut worst_at);
        }
        for x in [i32::MIN + 1, i32::MAX, -(6 << 16), 6 << 16, (6 << 16) - 1] {
            check(x, &mut worst, &mut worst_at);
        }
        assert_eq!(tanh_q15(i32::MIN), -32767);
        std::eprintln!(
            "tanh_q15 max error {:.3} LSB ({worst:.3e}) at x = {}",
            worst / LSB,
            worst_at as f64 / 65536.0
        );
        assert!(worst <= 1.77 * LSB, "max error {} LSB", worst / LSB);
    }

    #[test]
    fn quantizers_round_and_refuse_what_does_not_fit() {
        let mut q = [0i16; 4];
        quantize_q15(&[0.5, -1.0, 0.999_99, -0.000_015], &mut q).unwrap();
        assert_eq!(q, [16384, -32768, 32767, 0]);
        assert_eq!(
            quantize_q15(&[0.0, 1.0], &mut q),
            Err(QuantizeError::OutOfRange {
                index: 1,
                value: 1.0
            })
        );
        assert_eq!(
            quantize_q15(&[f64::NAN], &mut q),
            Err(QuantizeError::NotFinite { index: 0 })
        );
        let mut q = [0i32; 3];
        quantize_q16(&[1.5, -0.25, 32767.9], &mut q).unwrap();
        assert_eq!(q, [98304, -16384, 2147477094]);
        quantize_q16(&[32_767.999_999], &mut q[..1]).unwrap();
        assert_eq!(q[0], i32::MAX);
        assert!(quantize_q16(&[32768.0], &mut q[..1]).is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(q16_ratio(9, 10), 58982);
        assert_eq!(q16_ratio(-9, 10), -58982);
        assert_eq!(q16_ratio(1, 3), 21845);
        assert_eq!(round_shift(3, 1), 2);
        assert_eq!(round_shift(-3, 1), -1);
        assert_eq!(sat_i32(1 << 40), i32::MAX);
        assert_eq!(sat_i32(-(1 << 40)), i32::MIN);
    }
}

//! AVX-512 matrix products for the RWKV step. Decode (one input row) is bound by memory
//! bandwidth: four weight rows are streamed at once, a cache line per row per iteration, with
//! software prefetch ahead and two accumulators per row. Prefill (several input rows) is bound
//! by arithmetic: 4 weight rows x 4 input rows tiles keep 16 accumulators in registers, so each
//! weight vector loaded (and, for int8, converted) feeds four FMAs.
//!
//! Reduction order is fixed per (kernel, input-row count class), so results are deterministic.

// Index loops keep several rows and accumulators in step.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

#[inline(always)]
fn prefetch(p: *const u8) {
    // SAFETY: prefetch never faults, whatever the address.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
}

/// # Safety
/// AVX-512F must be present; `w` holds n_out x cols, `x` rows x cols, `y` rows x n_out values
/// and lo <= hi <= n_out.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn f32_rows(
    w: &[f32],
    cols: usize,
    n_out: usize,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    lo: usize,
    hi: usize,
) {
    assert!(
        w.len() >= n_out * cols && x.len() >= rows * cols && y.len() >= rows * n_out && hi <= n_out
    );
    let v_end = cols / 16 * 16;
    let mut o = lo;
    while o + 4 <= hi {
        let mut t = 0;
        while t + 4 <= rows {
            tile_f32(w, cols, v_end, x, o, t, n_out, y);
            t += 4;
        }
        while t < rows {
            stream4_f32(w, cols, v_end, x, o, t, n_out, y);
            t += 1;
        }
        o += 4;
    }
    while o < hi {
        for t in 0..rows {
            let wr = &w[o * cols..(o + 1) * cols];
            let xr = &x[t * cols..(t + 1) * cols];
            let mut acc = _mm512_setzero_ps();
            let mut i = 0;
            while i < v_end {
                // SAFETY: i + 16 <= cols.
                let (wv, xv) = unsafe {
                    (
                        _mm512_loadu_ps(wr.as_ptr().add(i)),
                        _mm512_loadu_ps(xr.as_ptr().add(i)),
                    )
                };
                acc = _mm512_fmadd_ps(wv, xv, acc);
                i += 16;
            }
            let mut s = _mm512_reduce_add_ps(acc);
            for j in v_end..cols {
                s += wr[j] * xr[j];
            }
            y[t * n_out + o] = s;
        }
        o += 1;
    }
}

/// Four weight rows against one input row. The rows are contiguous, so reading them one
/// after the other is a single sequential stream (what hardware prefetchers follow best);
/// four accumulators per row hide the FMA latency, and a software prefetch runs ahead.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn stream4_f32(
    w: &[f32],
    cols: usize,
    v_end: usize,
    x: &[f32],
    o: usize,
    t: usize,
    n_out: usize,
    y: &mut [f32],
) {
    let xr = &x[t * cols..(t + 1) * cols];
    for b in 0..4 {
        let row = &w[(o + b) * cols..(o + b + 1) * cols];
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= v_end {
            let p = (row.as_ptr() as *const u8).wrapping_add(i * 4 + 2048);
            prefetch(p);
            prefetch(p.wrapping_add(64));
            prefetch(p.wrapping_add(128));
            prefetch(p.wrapping_add(192));
            // SAFETY: i + 64 <= cols for the row and for x.
            unsafe {
                for k in 0..4 {
                    let wv = _mm512_loadu_ps(row.as_ptr().add(i + 16 * k));
                    let xv = _mm512_loadu_ps(xr.as_ptr().add(i + 16 * k));
                    acc[k] = _mm512_fmadd_ps(wv, xv, acc[k]);
                }
            }
            i += 64;
        }
        while i < v_end {
            // SAFETY: i + 16 <= cols.
            unsafe {
                let wv = _mm512_loadu_ps(row.as_ptr().add(i));
                let xv = _mm512_loadu_ps(xr.as_ptr().add(i));
                acc[0] = _mm512_fmadd_ps(wv, xv, acc[0]);
            }
            i += 16;
        }
        let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        let mut s = _mm512_reduce_add_ps(sum);
        for j in v_end..cols {
            s += row[j] * xr[j];
        }
        y[t * n_out + o + b] = s;
    }
}

/// Four weight rows against four input rows: 16 accumulators.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn tile_f32(
    w: &[f32],
    cols: usize,
    v_end: usize,
    x: &[f32],
    o: usize,
    t: usize,
    n_out: usize,
    y: &mut [f32],
) {
    let rows: [&[f32]; 4] = core::array::from_fn(|b| &w[(o + b) * cols..(o + b + 1) * cols]);
    let xs: [&[f32]; 4] = core::array::from_fn(|r| &x[(t + r) * cols..(t + r + 1) * cols]);
    let mut acc = [[_mm512_setzero_ps(); 4]; 4];
    let mut i = 0;
    while i < v_end {
        // SAFETY: i + 16 <= cols for all rows.
        unsafe {
            let wv: [__m512; 4] =
                core::array::from_fn(|b| _mm512_loadu_ps(rows[b].as_ptr().add(i)));
            for r in 0..4 {
                let xv = _mm512_loadu_ps(xs[r].as_ptr().add(i));
                for b in 0..4 {
                    acc[r][b] = _mm512_fmadd_ps(wv[b], xv, acc[r][b]);
                }
            }
        }
        i += 16;
    }
    for r in 0..4 {
        for b in 0..4 {
            let mut s = _mm512_reduce_add_ps(acc[r][b]);
            for j in v_end..cols {
                s += rows[b][j] * xs[r][j];
            }
            y[(t + r) * n_out + o + b] = s;
        }
    }
}

/// 64 unsigned activations or signed weights from `p`, the lanes past `n` zeroed.
#[inline(always)]
fn load64(p: *const u8, n: usize) -> __m512i {
    if n >= 64 {
        // SAFETY: callers pass 64 readable bytes when n >= 64; avx512f is enabled by callers.
        unsafe { _mm512_loadu_si512(p as *const __m512i) }
    } else {
        let mask: __mmask64 = (1u64 << n) - 1;
        // SAFETY: a masked load reads only the n bytes the mask selects; avx512bw is enabled by
        // the callers.
        unsafe { _mm512_maskz_loadu_epi8(mask, p as *const i8) }
    }
}

/// # Safety
/// AVX-512F, AVX-512BW and AVX-512VNNI must be present; `w` holds n_out x cols int8 weights,
/// `quant` rows x cols quantized inputs, `y` rows x n_out values; lo <= hi <= n_out.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn i8_rows(
    w: &[i8],
    scale: &[f32],
    row_sum: &[i32],
    cols: usize,
    n_out: usize,
    quant: &super::linear::QuantBuf,
    rows: usize,
    y: &mut [f32],
    lo: usize,
    hi: usize,
) {
    assert!(
        w.len() >= n_out * cols
            && scale.len() >= n_out
            && row_sum.len() >= n_out
            && quant.q.len() >= rows * cols
            && quant.scale.len() >= rows
            && y.len() >= rows * n_out
            && hi <= n_out
    );
    let mut o = lo;
    while o < hi {
        let nb = (hi - o).min(4);
        let mut t = 0;
        while t < rows {
            if nb == 4 && rows - t >= 4 {
                vnni_block::<4>(w, scale, row_sum, cols, n_out, quant, o, t, y);
                t += 4;
            } else if nb == 4 {
                vnni_block::<1>(w, scale, row_sum, cols, n_out, quant, o, t, y);
                t += 1;
            } else {
                vnni_tail(w, scale, row_sum, cols, n_out, quant, o, nb, t, y);
                t += 1;
            }
        }
        o += nb;
    }
}

/// Four weight rows (contiguous in memory) against NT input rows. The prefetch runs one block
/// ahead in the weight stream, which is sequential across blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn vnni_block<const NT: usize>(
    w: &[i8],
    scale: &[f32],
    row_sum: &[i32],
    cols: usize,
    n_out: usize,
    quant: &super::linear::QuantBuf,
    o: usize,
    t: usize,
    y: &mut [f32],
) {
    let base = (w.as_ptr() as *const u8).wrapping_add(o * cols);
    let mut acc = [[_mm512_setzero_si512(); 4]; NT];
    let mut i = 0;
    while i < cols {
        let n = (cols - i).min(64);
        let wv: [__m512i; 4] = core::array::from_fn(|b| {
            prefetch(base.wrapping_add(4 * cols + b * cols + i));
            load64(base.wrapping_add(b * cols + i), n)
        });
        for r in 0..NT {
            let xv = load64(quant.q.as_ptr().wrapping_add((t + r) * cols + i), n);
            for b in 0..4 {
                acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], xv, wv[b]);
            }
        }
        i += 64;
    }
    for r in 0..NT {
        for b in 0..4 {
            // sum (q + 128) w - 128 sum w = sum q w, exactly.
            let dot = _mm512_reduce_add_epi32(acc[r][b]).wrapping_sub(128 * row_sum[o + b]);
            y[(t + r) * n_out + o + b] =
                super::linear::int8_output(dot, scale[o + b], quant.scale[t + r]);
        }
    }
}

/// The last nb < 4 rows against one input row.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn vnni_tail(
    w: &[i8],
    scale: &[f32],
    row_sum: &[i32],
    cols: usize,
    n_out: usize,
    quant: &super::linear::QuantBuf,
    o: usize,
    nb: usize,
    t: usize,
    y: &mut [f32],
) {
    for b in 0..nb {
        let row = (w.as_ptr() as *const u8).wrapping_add((o + b) * cols);
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i < cols {
            let n = (cols - i).min(64);
            let xv = load64(quant.q.as_ptr().wrapping_add(t * cols + i), n);
            acc = _mm512_dpbusd_epi32(acc, xv, load64(row.wrapping_add(i), n));
            i += 64;
        }
        let dot = _mm512_reduce_add_epi32(acc).wrapping_sub(128 * row_sum[o + b]);
        y[t * n_out + o + b] = super::linear::int8_output(dot, scale[o + b], quant.scale[t]);
    }
}

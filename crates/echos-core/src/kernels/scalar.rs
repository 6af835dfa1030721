//! The scalar reference kernels: every sum in index order with separate multiply and add, which
//! is also exactly what each lane of the batched SIMD kernels computes.

use super::tanh::fast_tanh;
use super::{CsrRef, DenseRef, LeakyUpdate, WeightsRef};
use core::ops::Range;

#[inline(always)]
pub(crate) fn csr_row(a: CsrRef<'_>, row: usize, x: &[f32]) -> f32 {
    let (s, e) = (a.indptr[row] as usize, a.indptr[row + 1] as usize);
    let last = a.cols - 1;
    let mut acc = 0.0f32;
    for (&v, &c) in a.values[s..e].iter().zip(&a.indices[s..e]) {
        acc += v * x[(c as usize).min(last)];
    }
    acc
}

#[inline(always)]
pub(crate) fn dense_row(a: DenseRef<'_>, row: usize, x: &[f32]) -> f32 {
    let r = &a.data[row * a.cols..(row + 1) * a.cols];
    let mut acc = 0.0f32;
    for (&v, &xi) in r.iter().zip(x) {
        acc += v * xi;
    }
    acc
}

/// The input and bias part of row `i`, added to `acc` in index order.
#[inline(always)]
pub(crate) fn input_and_bias(p: &LeakyUpdate<'_>, i: usize, u: &[f32], mut acc: f32) -> f32 {
    let w = &p.w_in[i * p.inputs..(i + 1) * p.inputs];
    for (&wj, &uj) in w.iter().zip(u) {
        acc += wj * uj;
    }
    acc + p.bias[i]
}

/// (1−a)·x + a·tanh(pre), the leak written so every variant rounds the same way.
#[inline(always)]
pub(crate) fn leak(keep: f32, a: f32, x: f32, pre: f32) -> f32 {
    keep * x + a * fast_tanh(pre)
}

pub(crate) fn csr_matvec(a: CsrRef<'_>, x: &[f32], y: &mut [f32]) {
    for (row, yr) in y.iter_mut().enumerate() {
        *yr = csr_row(a, row, x);
    }
}

pub(crate) fn dense_matvec(a: DenseRef<'_>, x: &[f32], y: &mut [f32]) {
    for (row, yr) in y.iter_mut().enumerate() {
        *yr = dense_row(a, row, x);
    }
}

pub(crate) fn leaky_step_rows(
    w: WeightsRef<'_>,
    p: LeakyUpdate<'_>,
    rows: Range<usize>,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let a = p.leak_rate;
    let keep = 1.0 - a;
    for (i, out) in rows.zip(x_next.iter_mut()) {
        let wx = match w {
            WeightsRef::Csr(m) => csr_row(m, i, x),
            WeightsRef::Dense(m) => dense_row(m, i, x),
        };
        *out = leak(keep, a, x[i], input_and_bias(&p, i, u, wx));
    }
}

pub(crate) fn leaky_step_batch_rows(
    w: CsrRef<'_>,
    p: LeakyUpdate<'_>,
    batch: usize,
    rows: Range<usize>,
    u: &[f32],
    x: &[f32],
    x_next: &mut [f32],
) {
    let a = p.leak_rate;
    let keep = 1.0 - a;
    let last = w.cols - 1;
    for (i, out) in rows.zip(x_next.chunks_exact_mut(batch)) {
        out.fill(0.0);
        let (s, e) = (w.indptr[i] as usize, w.indptr[i + 1] as usize);
        for (&v, &c) in w.values[s..e].iter().zip(&w.indices[s..e]) {
            let xc = &x[(c as usize).min(last) * batch..][..batch];
            for (o, &xv) in out.iter_mut().zip(xc) {
                *o += v * xv;
            }
        }
        for j in 0..p.inputs {
            let wj = p.w_in[i * p.inputs + j];
            for (o, &uv) in out.iter_mut().zip(&u[j * batch..(j + 1) * batch]) {
                *o += wj * uv;
            }
        }
        let b = p.bias[i];
        for (o, &xv) in out.iter_mut().zip(&x[i * batch..(i + 1) * batch]) {
            *o = leak(keep, a, xv, *o + b);
        }
    }
}

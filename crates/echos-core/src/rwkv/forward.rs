//! The forward pass over a block of rows: either consecutive tokens of one sequence (prefill;
//! decode is one row) or one token of each of several sequences (batch). Projections run as
//! matrix products over all rows; the recurrences run row by row.

// Index loops mirror the reference's tensor formulas and keep several arrays in step.
#![allow(clippy::needless_range_loop)]

use super::linear::{matmul, Kernel, Matrix, Parallel, QuantBuf};
use super::ops::{group_norm, layer_norm, relu_sq, sigmoid, silu};
use super::{AttV4V5, AttV6, AttV7, ChannelMix, Model, Scratch, State, TimeMix, Version};

/// Where the rows' recurrent state lives.
pub enum Rows<'a> {
    /// Rows are consecutive tokens of this sequence.
    Sequence(&'a mut State),
    /// Row t is the next token of sequence t.
    Batch(&'a mut [State]),
}

#[derive(Clone, Copy)]
enum Shift {
    Att,
    Ffn,
}

impl Rows<'_> {
    /// Writes the token-shift input of every row into `sx` and stores the last normalized
    /// inputs `xx` as the new shift state.
    fn shift(&mut self, which: Shift, l: usize, c: usize, xx: &[f32], sx: &mut [f32], n: usize) {
        match self {
            Rows::Sequence(state) => {
                let prev = shift_slot(state, which, l, c);
                sx[..c].copy_from_slice(prev);
                for t in 1..n {
                    sx[t * c..(t + 1) * c].copy_from_slice(&xx[(t - 1) * c..t * c]);
                }
                prev.copy_from_slice(&xx[(n - 1) * c..n * c]);
            }
            Rows::Batch(states) => {
                for (t, s) in states.iter_mut().enumerate().take(n) {
                    let prev = shift_slot(s, which, l, c);
                    sx[t * c..(t + 1) * c].copy_from_slice(prev);
                    prev.copy_from_slice(&xx[t * c..(t + 1) * c]);
                }
            }
        }
    }

    fn wkv(&mut self, l: usize, t: usize, len: usize) -> &mut [f32] {
        match self {
            Rows::Sequence(s) => &mut s.wkv[l * len..(l + 1) * len],
            Rows::Batch(states) => &mut states[t].wkv[l * len..(l + 1) * len],
        }
    }
}

fn shift_slot(s: &mut State, which: Shift, l: usize, c: usize) -> &mut [f32] {
    let v = match which {
        Shift::Att => &mut s.att_x,
        Shift::Ffn => &mut s.ffn_x,
    };
    &mut v[l * c..(l + 1) * c]
}

struct Ctx<'p> {
    kernel: Kernel,
    par: &'p dyn Parallel,
    /// Taken out of the scratch for the duration of the pass (no allocation: a Vec moves).
    quant: QuantBuf,
}

impl Ctx<'_> {
    fn mm(&mut self, w: &Matrix, x: &[f32], n: usize, y: &mut [f32]) {
        matmul(w, x, n, y, self.kernel, self.par, &mut self.quant);
    }
}

pub(super) fn forward(
    model: &Model,
    mut rows: Rows<'_>,
    tokens: &[u32],
    s: &mut Scratch,
    par: &dyn Parallel,
    all_logits: bool,
) {
    let d = model.dims;
    let c = d.n_embd;
    let n = tokens.len();
    let mut ctx = Ctx {
        kernel: model.kernel(),
        par,
        quant: core::mem::take(&mut s.quant),
    };
    for (t, &tok) in tokens.iter().enumerate() {
        let tok = tok as usize;
        s.x[t * c..(t + 1) * c].copy_from_slice(&model.emb[tok * c..(tok + 1) * c]);
    }
    for (l, layer) in model.layers.iter().enumerate() {
        for t in 0..n {
            layer_norm(
                &s.x[t * c..(t + 1) * c],
                &layer.ln1,
                &mut s.xx[t * c..(t + 1) * c],
            );
        }
        rows.shift(Shift::Att, l, c, &s.xx, &mut s.sx, n);
        match &layer.att {
            TimeMix::V4V5(a) if model.version == Version::V4 => {
                att_v4(a, l, &mut rows, s, n, c, &mut ctx)
            }
            TimeMix::V4V5(a) => att_v5(model, a, l, &mut rows, s, n, &mut ctx),
            TimeMix::V6(a) => att_v6(model, a, l, &mut rows, s, n, &mut ctx),
            TimeMix::V7(a) => att_v7(model, a, l, &mut rows, s, n, &mut ctx),
        }
        for i in 0..n * c {
            s.x[i] += s.out[i];
        }
        for t in 0..n {
            layer_norm(
                &s.x[t * c..(t + 1) * c],
                &layer.ln2,
                &mut s.xx[t * c..(t + 1) * c],
            );
        }
        rows.shift(Shift::Ffn, l, c, &s.xx, &mut s.sx, n);
        ffn(model.version, &layer.ffn, s, n, c, &mut ctx);
        for i in 0..n * c {
            s.x[i] += s.out[i];
        }
    }
    let first = if all_logits { 0 } else { n - 1 };
    for t in first..n {
        layer_norm(
            &s.x[t * c..(t + 1) * c],
            &model.ln_out,
            &mut s.xx[(t - first) * c..(t - first + 1) * c],
        );
    }
    ctx.mm(&model.head, &s.xx, n - first, &mut s.logits);
    s.quant = ctx.quant;
}

/// kx = xx * mix + sx * (1 - mix), the v4/v5 token shift.
fn lerp_mix(xx: &[f32], sx: &[f32], mix: &[f32], out: &mut [f32], n: usize, c: usize) {
    for t in 0..n {
        for i in 0..c {
            let j = t * c + i;
            out[j] = xx[j] * mix[i] + sx[j] * (1.0 - mix[i]);
        }
    }
}

/// out = xx + sx * mix, the v6/v7 token shift (sx already holds prev - xx).
fn add_mix(xx: &[f32], sx: &[f32], mix: &[f32], out: &mut [f32], n: usize, c: usize) {
    for t in 0..n {
        for i in 0..c {
            let j = t * c + i;
            out[j] = xx[j] + sx[j] * mix[i];
        }
    }
}

fn att_v4(
    a: &AttV4V5,
    l: usize,
    rows: &mut Rows<'_>,
    s: &mut Scratch,
    n: usize,
    c: usize,
    ctx: &mut Ctx<'_>,
) {
    let nc = n * c;
    let [kx, vx, rx, ..] = &mut s.mix;
    lerp_mix(&s.xx, &s.sx, &a.mix_k, kx, n, c);
    lerp_mix(&s.xx, &s.sx, &a.mix_v, vx, n, c);
    lerp_mix(&s.xx, &s.sx, &a.mix_r, rx, n, c);
    ctx.mm(&a.receptance, rx, n, &mut s.r);
    ctx.mm(&a.key, kx, n, &mut s.k);
    ctx.mm(&a.value, vx, n, &mut s.v);
    for t in 0..n {
        let st = rows.wkv(l, t, 3 * c);
        let (aa, rest) = st.split_at_mut(c);
        let (bb, pp) = rest.split_at_mut(c);
        for i in 0..c {
            let j = t * c + i;
            let (k, v) = (s.k[j], s.v[j]);
            let ww = a.bonus[i] + k;
            let p = pp[i].max(ww);
            let e1 = libm::expf(pp[i] - p);
            let e2 = libm::expf(ww - p);
            let wkv = (e1 * aa[i] + e2 * v) / (e1 * bb[i] + e2);
            let ww = a.decay[i] + pp[i];
            let p = ww.max(k);
            let e1 = libm::expf(ww - p);
            let e2 = libm::expf(k - p);
            aa[i] = e1 * aa[i] + e2 * v;
            bb[i] = e1 * bb[i] + e2;
            pp[i] = p;
            s.a[j] = sigmoid(s.r[j]) * wkv;
        }
    }
    ctx.mm(&a.output, &s.a[..nc], n, &mut s.out);
}

/// The v5/v6 WKV: per head, S[j][i] (key j, value i); out_i = sum_j r_j (u_j k_j v_i + S_ji),
/// then S_ji = k_j v_i + w_j S_ji. `w` holds the per-row decay (n x c).
#[allow(clippy::too_many_arguments)]
fn wkv_v5(
    model: &Model,
    l: usize,
    rows: &mut Rows<'_>,
    r: &[f32],
    k: &[f32],
    v: &[f32],
    w: &[f32],
    u: &[f32],
    out: &mut [f32],
    n: usize,
) {
    let d = model.dims;
    let (c, hs) = (d.n_embd, d.head_size);
    let len = d.n_head * hs * hs;
    for t in 0..n {
        let st = rows.wkv(l, t, len);
        for h in 0..d.n_head {
            let base = t * c + h * hs;
            let sh = &mut st[h * hs * hs..(h + 1) * hs * hs];
            let o = &mut out[base..base + hs];
            o.fill(0.0);
            let vv = &v[base..base + hs];
            for j in 0..hs {
                let (rj, kj) = (r[base + j], k[base + j]);
                let (uj, wj) = (u[h * hs + j], w[base + j]);
                let row = &mut sh[j * hs..(j + 1) * hs];
                for i in 0..hs {
                    let kv = kj * vv[i];
                    o[i] += rj * (uj * kv + row[i]);
                    row[i] = kv + wj * row[i];
                }
            }
        }
    }
}

fn att_v5(
    model: &Model,
    a: &AttV4V5,
    l: usize,
    rows: &mut Rows<'_>,
    s: &mut Scratch,
    n: usize,
    ctx: &mut Ctx<'_>,
) {
    let c = model.dims.n_embd;
    let nc = n * c;
    let [kx, vx, rx, gx, ..] = &mut s.mix;
    lerp_mix(&s.xx, &s.sx, &a.mix_k, kx, n, c);
    lerp_mix(&s.xx, &s.sx, &a.mix_v, vx, n, c);
    lerp_mix(&s.xx, &s.sx, &a.mix_r, rx, n, c);
    ctx.mm(&a.receptance, rx, n, &mut s.r);
    ctx.mm(&a.key, kx, n, &mut s.k);
    ctx.mm(&a.value, vx, n, &mut s.v);
    if let Some(g) = &a.gate {
        lerp_mix(&s.xx, &s.sx, &a.mix_g, gx, n, c);
        ctx.mm(g, gx, n, &mut s.g);
    }
    // The decay does not depend on the input before v6: repeat it per row.
    for t in 0..n {
        s.w[t * c..(t + 1) * c].copy_from_slice(&a.decay);
    }
    wkv_v5(
        model, l, rows, &s.r, &s.k, &s.v, &s.w, &a.bonus, &mut s.a, n,
    );
    let ln_x = a.ln_x.as_ref().expect("checked in Model::new: v5 has ln_x");
    for t in 0..n {
        group_norm(
            &mut s.a[t * c..(t + 1) * c],
            ln_x,
            model.dims.head_size,
            model.ln_x_eps,
        );
    }
    if a.gate.is_some() {
        for i in 0..nc {
            s.a[i] *= silu(s.g[i]);
        }
    }
    ctx.mm(&a.output, &s.a[..nc], n, &mut s.out);
}

fn att_v6(
    model: &Model,
    a: &AttV6,
    l: usize,
    rows: &mut Rows<'_>,
    s: &mut Scratch,
    n: usize,
    ctx: &mut Ctx<'_>,
) {
    let c = model.dims.n_embd;
    let nc = n * c;
    for i in 0..nc {
        s.sx[i] -= s.xx[i];
    }
    let r5 = a.maa_w1.rows();
    let rank = r5 / 5;
    add_mix(&s.xx, &s.sx, &a.maa_x, &mut s.mix[0], n, c);
    ctx.mm(&a.maa_w1, &s.mix[0], n, &mut s.lora_h);
    for v in &mut s.lora_h[..n * r5] {
        *v = libm::tanhf(*v);
    }
    // mix[0..5] = w, k, v, r, g inputs.
    for (m, w2) in a.maa_w2.iter().enumerate() {
        for t in 0..n {
            let src = &s.lora_h[t * r5 + m * rank..t * r5 + (m + 1) * rank];
            s.lora_t[t * rank..(t + 1) * rank].copy_from_slice(src);
        }
        ctx.mm(w2, &s.lora_t, n, &mut s.lora_o);
        let maa = &a.maa[m];
        let out = &mut s.mix[m];
        for t in 0..n {
            for i in 0..c {
                let j = t * c + i;
                out[j] = s.xx[j] + s.sx[j] * (maa[i] + s.lora_o[j]);
            }
        }
    }
    let [wx, kx, vx, rx, gx, _] = &mut s.mix;
    ctx.mm(&a.decay_w1, wx, n, &mut s.lora_h);
    let dr = a.decay_w1.rows();
    for v in &mut s.lora_h[..n * dr] {
        *v = libm::tanhf(*v);
    }
    ctx.mm(&a.decay_w2, &s.lora_h, n, &mut s.lora_o);
    for t in 0..n {
        for i in 0..c {
            let j = t * c + i;
            s.w[j] = libm::expf(-libm::expf(a.decay[i] + s.lora_o[j]));
        }
    }
    ctx.mm(&a.receptance, rx, n, &mut s.r);
    ctx.mm(&a.key, kx, n, &mut s.k);
    ctx.mm(&a.value, vx, n, &mut s.v);
    ctx.mm(&a.gate, gx, n, &mut s.g);
    wkv_v5(
        model, l, rows, &s.r, &s.k, &s.v, &s.w, &a.bonus, &mut s.a, n,
    );
    for t in 0..n {
        group_norm(
            &mut s.a[t * c..(t + 1) * c],
            &a.ln_x,
            model.dims.head_size,
            model.ln_x_eps,
        );
    }
    for i in 0..nc {
        s.a[i] *= silu(s.g[i]);
    }
    ctx.mm(&a.output, &s.a[..nc], n, &mut s.out);
}

fn att_v7(
    model: &Model,
    a: &AttV7,
    l: usize,
    rows: &mut Rows<'_>,
    s: &mut Scratch,
    n: usize,
    ctx: &mut Ctx<'_>,
) {
    let d = model.dims;
    let (c, hs) = (d.n_embd, d.head_size);
    let nc = n * c;
    for i in 0..nc {
        s.sx[i] -= s.xx[i];
    }
    let [xr, xw, xk, xv, xa, xg] = &mut s.mix;
    add_mix(&s.xx, &s.sx, &a.x_r, xr, n, c);
    add_mix(&s.xx, &s.sx, &a.x_w, xw, n, c);
    add_mix(&s.xx, &s.sx, &a.x_k, xk, n, c);
    add_mix(&s.xx, &s.sx, &a.x_v, xv, n, c);
    add_mix(&s.xx, &s.sx, &a.x_a, xa, n, c);
    add_mix(&s.xx, &s.sx, &a.x_g, xg, n, c);
    ctx.mm(&a.receptance, xr, n, &mut s.r);
    ctx.mm(&a.key, xk, n, &mut s.k);
    ctx.mm(&a.value, xv, n, &mut s.v);

    // Decay: w = exp(-e^{-1/2} sigmoid(w0 + W2 tanh(W1 xw))).
    ctx.mm(&a.w1, xw, n, &mut s.lora_h);
    for v in &mut s.lora_h[..n * a.w1.rows()] {
        *v = libm::tanhf(*v);
    }
    ctx.mm(&a.w2, &s.lora_h, n, &mut s.lora_o);
    for t in 0..n {
        for i in 0..c {
            let j = t * c + i;
            s.w[j] = libm::expf(-0.606531 * sigmoid(a.w0[i] + s.lora_o[j]));
        }
    }
    // In-context learning rate a = sigmoid(a0 + A2 A1 xa).
    ctx.mm(&a.a1, xa, n, &mut s.lora_h);
    ctx.mm(&a.a2, &s.lora_h, n, &mut s.lora_o);
    for t in 0..n {
        for i in 0..c {
            let j = t * c + i;
            s.a[j] = sigmoid(a.a0[i] + s.lora_o[j]);
        }
    }
    // Gate g = G2 sigmoid(G1 xg).
    ctx.mm(&a.g1, xg, n, &mut s.lora_h);
    for v in &mut s.lora_h[..n * a.g1.rows()] {
        *v = sigmoid(*v);
    }
    ctx.mm(&a.g2, &s.lora_h, n, &mut s.g);
    // Value residual: layer 0 keeps its v for the others to mix in.
    match (&a.v1, &a.v2) {
        (Some(v1), Some(v2)) => {
            ctx.mm(v1, xv, n, &mut s.lora_h);
            ctx.mm(v2, &s.lora_h, n, &mut s.lora_o);
            for t in 0..n {
                for i in 0..c {
                    let j = t * c + i;
                    s.v[j] += (s.v_first[j] - s.v[j]) * sigmoid(a.v0[i] + s.lora_o[j]);
                }
            }
        }
        _ => s.v_first[..nc].copy_from_slice(&s.v[..nc]),
    }

    let len = d.n_head * hs * hs;
    // s.mix[0] (xr) is free now: it holds kk, the normalized removal key.
    let kk = &mut s.mix[0];
    for t in 0..n {
        for h in 0..d.n_head {
            let base = t * c + h * hs;
            let mut ss = 0.0f32;
            for j in 0..hs {
                let q = s.k[base + j] * a.k_k[h * hs + j];
                kk[base + j] = q;
                ss += q * q;
            }
            let inv = 1.0 / libm::sqrtf(ss).max(1e-12);
            for j in 0..hs {
                kk[base + j] *= inv;
                let cj = h * hs + j;
                s.k[base + j] *= 1.0 + (s.a[base + j] - 1.0) * a.k_a[cj];
            }
        }
        let st = rows.wkv(l, t, len);
        for h in 0..d.n_head {
            let base = t * c + h * hs;
            let sh = &mut st[h * hs * hs..(h + 1) * hs * hs];
            // S_ij (value i, key j) <- S_ij w_j - (S kk)_i kk_j a_j + v_i k_j; out_i = (S r)_i.
            let (wv, kkv, av) = (
                &s.w[base..base + hs],
                &kk[base..base + hs],
                &s.a[base..base + hs],
            );
            let (kv, rv) = (&s.k[base..base + hs], &s.r[base..base + hs]);
            for i in 0..hs {
                let row = &mut sh[i * hs..(i + 1) * hs];
                let sa = -dot8(row, kkv);
                let vi = s.v[base + i];
                for j in 0..hs {
                    row[j] = row[j] * wv[j] + sa * kkv[j] * av[j] + vi * kv[j];
                }
                s.out[base + i] = dot8(row, rv);
            }
        }
    }
    for t in 0..n {
        group_norm(&mut s.out[t * c..(t + 1) * c], &a.ln_x, hs, model.ln_x_eps);
        for h in 0..d.n_head {
            let base = t * c + h * hs;
            let mut rk = 0.0f32;
            for j in 0..hs {
                rk += s.r[base + j] * s.k[base + j] * a.r_k[h * hs + j];
            }
            for i in 0..hs {
                s.out[base + i] = (s.out[base + i] + rk * s.v[base + i]) * s.g[base + i];
            }
        }
    }
    // Project out of s.out via s.a (free now) so the result lands in s.out.
    s.a[..nc].copy_from_slice(&s.out[..nc]);
    ctx.mm(&a.output, &s.a[..nc], n, &mut s.out);
}

/// Dot product with eight partial sums in a fixed order (vectorizes; deterministic).
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

fn ffn(version: Version, f: &ChannelMix, s: &mut Scratch, n: usize, c: usize, ctx: &mut Ctx<'_>) {
    let nc = n * c;
    let [kx, rx, ..] = &mut s.mix;
    match version {
        Version::V6 | Version::V7 => {
            for i in 0..nc {
                s.sx[i] -= s.xx[i];
            }
            add_mix(&s.xx, &s.sx, &f.mix_k, kx, n, c);
            if version == Version::V6 {
                add_mix(&s.xx, &s.sx, &f.mix_r, rx, n, c);
            }
        }
        _ => {
            lerp_mix(&s.xx, &s.sx, &f.mix_k, kx, n, c);
            lerp_mix(&s.xx, &s.sx, &f.mix_r, rx, n, c);
        }
    }
    ctx.mm(&f.key, kx, n, &mut s.ffn_h);
    for v in &mut s.ffn_h[..n * f.key.rows()] {
        *v = relu_sq(*v);
    }
    ctx.mm(&f.value, &s.ffn_h, n, &mut s.out);
    if let Some(r) = &f.receptance {
        ctx.mm(r, rx, n, &mut s.r);
        for i in 0..nc {
            s.out[i] *= sigmoid(s.r[i]);
        }
    }
}

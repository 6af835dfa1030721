//! RWKV language models (v4, v5.0/5.1/5.2, v6, v7) in RNN mode: one token at a time with the
//! state carried, a prefill of many tokens in one call, or a batch of independent sequences.
//!
//! Follows the BlinkDL reference (`rwkv` PyPI package `model.py`, `RWKV_x070` for v7). Weights
//! arrive as plain f32 (or int8 + per-row scale) matrices from a host loader; the step functions
//! take a preallocated [`Scratch`] and allocate nothing.

// Soft-float targets (x86_64-unknown-none) get the scalar kernel only: LLVM cannot lower SIMD there.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)] // AVX-512 matrix-vector bodies
mod avx512;
mod forward;
#[allow(unsafe_code)] // kernel selection and its SIMD dispatch
pub mod linear;
pub(crate) mod ops;

use alloc::vec;
use alloc::vec::Vec;

pub use forward::Rows;
pub use linear::{Kernel, Matrix, Parallel, Serial};
pub use ops::layer_norm;

/// Architecture generation, as the reference tells them apart from the checkpoint keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V4,
    /// v5.0: `ln_x` but no gate; one decay and one bonus per head.
    V5_0,
    /// v5.1: gate; one decay per head.
    V5_1,
    /// v5.2: gate; decay and bonus per channel.
    V5_2,
    V6,
    V7,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V4 => "4",
            Version::V5_0 => "5.0",
            Version::V5_1 => "5.1",
            Version::V5_2 => "5.2",
            Version::V6 => "6",
            Version::V7 => "7",
        }
    }
}

/// Shapes of a model; every buffer size follows from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub n_layer: usize,
    pub n_embd: usize,
    /// Number of heads (1 for v4, where the WKV state is per channel).
    pub n_head: usize,
    pub head_size: usize,
    pub n_ffn: usize,
    pub vocab: usize,
}

/// Errors from assembling a model or calling a step with wrong arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RwkvError {
    /// A weight has the wrong number of elements or rows/columns for the model dimensions.
    ShapeMismatch {
        what: &'static str,
        layer: usize,
        expected: (usize, usize),
        found: (usize, usize),
    },
    /// A layer's weights belong to another version than the model's.
    WrongLayerKind { layer: usize },
    /// The dimensions are inconsistent (zero, or n_head * head_size != n_embd).
    BadDims(&'static str),
    /// A token id is not below the vocabulary size.
    TokenOutOfRange { token: u32, vocab: usize },
    /// More rows than the scratch was sized for.
    TooManyRows { rows: usize, max_rows: usize },
    /// A state built for another model shape.
    StateMismatch,
    /// A scratch built for another model shape.
    ScratchMismatch,
    /// No tokens given.
    Empty,
}

impl core::fmt::Display for RwkvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RwkvError::ShapeMismatch {
                what,
                layer,
                expected,
                found,
            } => write!(
                f,
                "weight `{what}` of layer {layer} has shape {found:?}, expected {expected:?}"
            ),
            RwkvError::WrongLayerKind { layer } => {
                write!(
                    f,
                    "layer {layer} holds weights of another RWKV version than the model"
                )
            }
            RwkvError::BadDims(why) => write!(f, "inconsistent model dimensions: {why}"),
            RwkvError::TokenOutOfRange { token, vocab } => {
                write!(
                    f,
                    "token id {token} is outside the vocabulary (size {vocab})"
                )
            }
            RwkvError::TooManyRows { rows, max_rows } => write!(
                f,
                "{rows} tokens in one call, but the scratch was sized for {max_rows}"
            ),
            RwkvError::StateMismatch => {
                write!(f, "the state was made for a model of another shape")
            }
            RwkvError::ScratchMismatch => {
                write!(
                    f,
                    "the scratch buffers were made for a model of another shape"
                )
            }
            RwkvError::Empty => write!(f, "no tokens given"),
        }
    }
}

impl core::error::Error for RwkvError {}

/// Layer norm parameters.
#[derive(Clone, Debug)]
pub struct Norm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// v4 and v5.x time mixing. Decay and bonus are stored per channel, already transformed
/// as the step uses them (v4: `-exp(time_decay)` and raw `time_first`; v5: `exp(-exp(decay))`
/// and the bonus `u`, i.e. `exp(time_first)` for v5.0 or `time_faaaa`).
#[derive(Clone, Debug)]
pub struct AttV4V5 {
    pub mix_k: Vec<f32>,
    pub mix_v: Vec<f32>,
    pub mix_r: Vec<f32>,
    /// Empty before v5.1.
    pub mix_g: Vec<f32>,
    pub decay: Vec<f32>,
    pub bonus: Vec<f32>,
    pub receptance: Matrix,
    pub key: Matrix,
    pub value: Matrix,
    pub output: Matrix,
    /// v5.1 and later.
    pub gate: Option<Matrix>,
    /// v5.x: GroupNorm over heads.
    pub ln_x: Option<Norm>,
}

/// v6 time mixing ("Finch"): data-dependent token shift and decay.
#[derive(Clone, Debug)]
pub struct AttV6 {
    pub maa_x: Vec<f32>,
    /// w, k, v, r, g, each n_embd.
    pub maa: [Vec<f32>; 5],
    /// (5 * maa_rank) x n_embd.
    pub maa_w1: Matrix,
    /// Five n_embd x maa_rank matrices, in the order w, k, v, r, g.
    pub maa_w2: [Matrix; 5],
    /// Raw `time_decay` per channel (the step computes `exp(-exp(decay + lora))`).
    pub decay: Vec<f32>,
    pub decay_w1: Matrix,
    pub decay_w2: Matrix,
    pub bonus: Vec<f32>,
    pub receptance: Matrix,
    pub key: Matrix,
    pub value: Matrix,
    pub output: Matrix,
    pub gate: Matrix,
    pub ln_x: Norm,
}

/// v7 time mixing ("Goose"): generalized delta rule.
#[derive(Clone, Debug)]
pub struct AttV7 {
    /// r, w, k, v, a, g token-shift mixes.
    pub x_r: Vec<f32>,
    pub x_w: Vec<f32>,
    pub x_k: Vec<f32>,
    pub x_v: Vec<f32>,
    pub x_a: Vec<f32>,
    pub x_g: Vec<f32>,
    pub w0: Vec<f32>,
    /// Low-rank maps, stored as (out x in) matrices.
    pub w1: Matrix,
    pub w2: Matrix,
    pub a0: Vec<f32>,
    pub a1: Matrix,
    pub a2: Matrix,
    /// Value residual mix; absent in layer 0.
    pub v0: Vec<f32>,
    pub v1: Option<Matrix>,
    pub v2: Option<Matrix>,
    pub g1: Matrix,
    pub g2: Matrix,
    pub k_k: Vec<f32>,
    pub k_a: Vec<f32>,
    pub r_k: Vec<f32>,
    pub receptance: Matrix,
    pub key: Matrix,
    pub value: Matrix,
    pub output: Matrix,
    pub ln_x: Norm,
}

#[derive(Clone, Debug)]
pub enum TimeMix {
    V4V5(AttV4V5),
    V6(AttV6),
    V7(AttV7),
}

/// Channel mixing. v4..v6 have a receptance; v7 does not.
#[derive(Clone, Debug)]
pub struct ChannelMix {
    /// v4/v5 `time_mix_k`, v6 `time_maa_k`, v7 `x_k`.
    pub mix_k: Vec<f32>,
    /// Empty for v7.
    pub mix_r: Vec<f32>,
    pub key: Matrix,
    pub value: Matrix,
    pub receptance: Option<Matrix>,
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub ln1: Norm,
    pub ln2: Norm,
    pub att: TimeMix,
    pub ffn: ChannelMix,
}

/// A whole model. `emb` already has `blocks.0.ln0` applied, as the reference does at load.
#[derive(Clone, Debug)]
pub struct Model {
    pub version: Version,
    pub dims: Dims,
    pub emb: Vec<f32>,
    pub layers: Vec<Layer>,
    pub ln_out: Norm,
    pub head: Matrix,
    /// GroupNorm epsilon of `ln_x` (reference: 64e-5; rwkv.cpp's v5 uses 1e-5).
    pub ln_x_eps: f32,
    kernel: Kernel,
}

/// The recurrent state of one sequence: per layer the token-shift vectors and the WKV state.
/// Plain data: clone it to fork a sequence, `copy_from` to restore a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// n_layer x n_embd: last normalized input of each time mix.
    pub att_x: Vec<f32>,
    /// n_layer x n_embd: last normalized input of each channel mix.
    pub ffn_x: Vec<f32>,
    /// v4: n_layer x 3 x n_embd (aa, bb, pp); v5+: n_layer x n_head x head_size x head_size.
    pub wkv: Vec<f32>,
}

impl State {
    pub fn new(model: &Model) -> State {
        let d = model.dims;
        let wkv_len = State::wkv_len(model.version, &d);
        let mut s = State {
            att_x: vec![0.0; d.n_layer * d.n_embd],
            ffn_x: vec![0.0; d.n_layer * d.n_embd],
            wkv: vec![0.0; d.n_layer * wkv_len],
        };
        s.reset(model);
        s
    }

    fn wkv_len(version: Version, d: &Dims) -> usize {
        match version {
            Version::V4 => 3 * d.n_embd,
            _ => d.n_head * d.head_size * d.head_size,
        }
    }

    /// Back to the state before any token (v4's `pp` starts at -1e30 as in the reference).
    pub fn reset(&mut self, model: &Model) {
        self.att_x.fill(0.0);
        self.ffn_x.fill(0.0);
        self.wkv.fill(0.0);
        if model.version == Version::V4 {
            let c = model.dims.n_embd;
            for l in 0..model.dims.n_layer {
                self.wkv[l * 3 * c + 2 * c..l * 3 * c + 3 * c].fill(-1e30);
            }
        }
    }

    /// Restores a snapshot without allocating.
    pub fn copy_from(&mut self, other: &State) -> Result<(), RwkvError> {
        if self.att_x.len() != other.att_x.len()
            || self.ffn_x.len() != other.ffn_x.len()
            || self.wkv.len() != other.wkv.len()
        {
            return Err(RwkvError::StateMismatch);
        }
        self.att_x.copy_from_slice(&other.att_x);
        self.ffn_x.copy_from_slice(&other.ffn_x);
        self.wkv.copy_from_slice(&other.wkv);
        Ok(())
    }

    pub fn fits(&self, model: &Model) -> bool {
        let d = model.dims;
        self.att_x.len() == d.n_layer * d.n_embd
            && self.ffn_x.len() == d.n_layer * d.n_embd
            && self.wkv.len() == d.n_layer * State::wkv_len(model.version, &d)
    }
}

/// Working memory for up to `max_rows` tokens per call (prefill length or batch size).
/// Sized once; steps only write into it.
#[derive(Clone, Debug)]
pub struct Scratch {
    pub(crate) max_rows: usize,
    pub(crate) x: Vec<f32>,
    pub(crate) xx: Vec<f32>,
    pub(crate) sx: Vec<f32>,
    pub(crate) mix: [Vec<f32>; 6],
    pub(crate) r: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) g: Vec<f32>,
    pub(crate) w: Vec<f32>,
    pub(crate) a: Vec<f32>,
    pub(crate) v_first: Vec<f32>,
    pub(crate) out: Vec<f32>,
    pub(crate) lora_h: Vec<f32>,
    pub(crate) lora_o: Vec<f32>,
    pub(crate) lora_t: Vec<f32>,
    pub(crate) ffn_h: Vec<f32>,
    pub(crate) logits: Vec<f32>,
    pub(crate) quant: linear::QuantBuf,
}

impl Scratch {
    pub fn new(model: &Model, max_rows: usize) -> Scratch {
        let d = model.dims;
        let t = max_rows.max(1);
        let c = t * d.n_embd;
        let lora = model.max_lora_rank();
        let z = || vec![0.0f32; c];
        Scratch {
            max_rows: t,
            x: z(),
            xx: z(),
            sx: z(),
            mix: [z(), z(), z(), z(), z(), z()],
            r: z(),
            k: z(),
            v: z(),
            g: z(),
            w: z(),
            a: z(),
            v_first: z(),
            out: z(),
            lora_h: vec![0.0; t * lora],
            lora_o: z(),
            lora_t: vec![0.0; t * lora],
            ffn_h: vec![0.0; t * d.n_ffn],
            logits: vec![0.0; t * d.vocab],
            quant: linear::QuantBuf::new(t, d.n_embd.max(d.n_ffn)),
        }
    }

    /// True when this scratch was sized for `model`'s shapes.
    pub fn fits(&self, model: &Model) -> bool {
        let d = model.dims;
        let t = self.max_rows;
        self.x.len() == t * d.n_embd
            && self.ffn_h.len() == t * d.n_ffn
            && self.logits.len() == t * d.vocab
            && self.lora_h.len() >= t * model.max_lora_rank()
            && self.quant.q.len() >= t * d.n_embd.max(d.n_ffn)
    }

    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Logits of the rows computed by the last call (rows x vocab, row-major).
    pub fn logits(&self, rows: usize, vocab: usize) -> &[f32] {
        &self.logits[..rows * vocab]
    }
}

fn check_vec(what: &'static str, layer: usize, v: &[f32], n: usize) -> Result<(), RwkvError> {
    if v.len() != n {
        return Err(RwkvError::ShapeMismatch {
            what,
            layer,
            expected: (n, 1),
            found: (v.len(), 1),
        });
    }
    Ok(())
}

fn check_mat(
    what: &'static str,
    layer: usize,
    m: &Matrix,
    rows: usize,
    cols: usize,
) -> Result<(), RwkvError> {
    if m.rows() != rows || m.cols() != cols || !m.is_consistent() {
        return Err(RwkvError::ShapeMismatch {
            what,
            layer,
            expected: (rows, cols),
            found: (m.rows(), m.cols()),
        });
    }
    Ok(())
}

fn check_norm(what: &'static str, layer: usize, n: &Norm, c: usize) -> Result<(), RwkvError> {
    check_vec(what, layer, &n.weight, c)?;
    check_vec(what, layer, &n.bias, c)
}

impl Model {
    /// Assembles a model and checks every shape against `dims`, so the step never indexes out
    /// of bounds.
    pub fn new(
        version: Version,
        dims: Dims,
        emb: Vec<f32>,
        layers: Vec<Layer>,
        ln_out: Norm,
        head: Matrix,
    ) -> Result<Model, RwkvError> {
        let d = dims;
        if d.n_layer == 0 || d.n_embd == 0 || d.vocab == 0 || d.n_ffn == 0 {
            return Err(RwkvError::BadDims("a dimension is zero"));
        }
        if d.n_head == 0 || d.head_size == 0 || d.n_head * d.head_size != d.n_embd {
            return Err(RwkvError::BadDims("n_head * head_size must equal n_embd"));
        }
        if layers.len() != d.n_layer {
            return Err(RwkvError::BadDims("number of layers differs from n_layer"));
        }
        let c = d.n_embd;
        check_vec("emb.weight", 0, &emb, d.vocab * c)?;
        check_norm("ln_out", 0, &ln_out, c)?;
        check_mat("head.weight", 0, &head, d.vocab, c)?;
        for (l, layer) in layers.iter().enumerate() {
            check_norm("ln1", l, &layer.ln1, c)?;
            check_norm("ln2", l, &layer.ln2, c)?;
            let f = &layer.ffn;
            check_vec("ffn mix_k", l, &f.mix_k, c)?;
            check_mat("ffn.key.weight", l, &f.key, d.n_ffn, c)?;
            check_mat("ffn.value.weight", l, &f.value, c, d.n_ffn)?;
            match (&f.receptance, version) {
                (None, Version::V7) => {}
                (Some(r), v) if v != Version::V7 => {
                    check_vec("ffn mix_r", l, &f.mix_r, c)?;
                    check_mat("ffn.receptance.weight", l, r, c, c)?;
                }
                _ => return Err(RwkvError::WrongLayerKind { layer: l }),
            }
            match (&layer.att, version) {
                (TimeMix::V4V5(a), Version::V4 | Version::V5_0 | Version::V5_1 | Version::V5_2) => {
                    check_vec("att mix_k", l, &a.mix_k, c)?;
                    check_vec("att mix_v", l, &a.mix_v, c)?;
                    check_vec("att mix_r", l, &a.mix_r, c)?;
                    check_vec("att.time_decay", l, &a.decay, c)?;
                    check_vec("att.time_first", l, &a.bonus, c)?;
                    for (name, m) in [
                        ("att.receptance.weight", &a.receptance),
                        ("att.key.weight", &a.key),
                        ("att.value.weight", &a.value),
                        ("att.output.weight", &a.output),
                    ] {
                        check_mat(name, l, m, c, c)?;
                    }
                    let gated = matches!(version, Version::V5_1 | Version::V5_2);
                    match (&a.gate, gated) {
                        (Some(g), true) => {
                            check_mat("att.gate.weight", l, g, c, c)?;
                            check_vec("att mix_g", l, &a.mix_g, c)?;
                        }
                        (None, false) => {}
                        _ => return Err(RwkvError::WrongLayerKind { layer: l }),
                    }
                    match (&a.ln_x, version) {
                        (None, Version::V4) => {}
                        (Some(n), v) if v != Version::V4 => check_norm("att.ln_x", l, n, c)?,
                        _ => return Err(RwkvError::WrongLayerKind { layer: l }),
                    }
                    if version == Version::V4 && d.n_head != 1 {
                        return Err(RwkvError::BadDims("v4 has one head of size n_embd"));
                    }
                }
                (TimeMix::V6(a), Version::V6) => {
                    check_vec("att.time_maa_x", l, &a.maa_x, c)?;
                    for m in &a.maa {
                        check_vec("att.time_maa_*", l, m, c)?;
                    }
                    let rank5 = a.maa_w1.rows();
                    if rank5 == 0 || rank5 % 5 != 0 {
                        return Err(RwkvError::BadDims("time_maa_w1 must have 5 * rank outputs"));
                    }
                    check_mat("att.time_maa_w1", l, &a.maa_w1, rank5, c)?;
                    for m in &a.maa_w2 {
                        check_mat("att.time_maa_w2", l, m, c, rank5 / 5)?;
                    }
                    check_vec("att.time_decay", l, &a.decay, c)?;
                    let dr = a.decay_w1.rows();
                    check_mat("att.time_decay_w1", l, &a.decay_w1, dr, c)?;
                    check_mat("att.time_decay_w2", l, &a.decay_w2, c, dr)?;
                    check_vec("att.time_faaaa", l, &a.bonus, c)?;
                    for (name, m) in [
                        ("att.receptance.weight", &a.receptance),
                        ("att.key.weight", &a.key),
                        ("att.value.weight", &a.value),
                        ("att.output.weight", &a.output),
                        ("att.gate.weight", &a.gate),
                    ] {
                        check_mat(name, l, m, c, c)?;
                    }
                    check_norm("att.ln_x", l, &a.ln_x, c)?;
                }
                (TimeMix::V7(a), Version::V7) => {
                    for (name, v) in [
                        ("att.x_r", &a.x_r),
                        ("att.x_w", &a.x_w),
                        ("att.x_k", &a.x_k),
                        ("att.x_v", &a.x_v),
                        ("att.x_a", &a.x_a),
                        ("att.x_g", &a.x_g),
                        ("att.w0", &a.w0),
                        ("att.a0", &a.a0),
                        ("att.k_k", &a.k_k),
                        ("att.k_a", &a.k_a),
                        ("att.r_k", &a.r_k),
                    ] {
                        check_vec(name, l, v, c)?;
                    }
                    for (n1, n2, m1, m2) in [
                        ("att.w1", "att.w2", &a.w1, &a.w2),
                        ("att.a1", "att.a2", &a.a1, &a.a2),
                        ("att.g1", "att.g2", &a.g1, &a.g2),
                    ] {
                        check_mat(n1, l, m1, m1.rows(), c)?;
                        check_mat(n2, l, m2, c, m1.rows())?;
                    }
                    match (&a.v1, &a.v2, l) {
                        (None, None, 0) => {}
                        (Some(v1), Some(v2), l) if l > 0 => {
                            check_vec("att.v0", l, &a.v0, c)?;
                            check_mat("att.v1", l, v1, v1.rows(), c)?;
                            check_mat("att.v2", l, v2, c, v1.rows())?;
                        }
                        _ => return Err(RwkvError::WrongLayerKind { layer: l }),
                    }
                    for (name, m) in [
                        ("att.receptance.weight", &a.receptance),
                        ("att.key.weight", &a.key),
                        ("att.value.weight", &a.value),
                        ("att.output.weight", &a.output),
                    ] {
                        check_mat(name, l, m, c, c)?;
                    }
                    check_norm("att.ln_x", l, &a.ln_x, c)?;
                }
                _ => return Err(RwkvError::WrongLayerKind { layer: l }),
            }
        }
        Ok(Model {
            version,
            dims,
            emb,
            layers,
            ln_out,
            head,
            ln_x_eps: 64e-5,
            kernel: Kernel::scalar(),
        })
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Chooses the matrix kernel (see [`Kernel::detect`]); results are deterministic per kernel.
    pub fn set_kernel(&mut self, kernel: Kernel) {
        self.kernel = kernel;
    }

    pub(crate) fn max_lora_rank(&self) -> usize {
        let mut r = 0;
        for layer in &self.layers {
            match &layer.att {
                TimeMix::V4V5(_) => {}
                TimeMix::V6(a) => r = r.max(a.maa_w1.rows()).max(a.decay_w1.rows()),
                TimeMix::V7(a) => {
                    r = r.max(a.w1.rows()).max(a.a1.rows()).max(a.g1.rows());
                    if let Some(v1) = &a.v1 {
                        r = r.max(v1.rows());
                    }
                }
            }
        }
        r
    }

    /// Replaces every large matrix (time-mix and channel-mix projections and the head) by int8
    /// with one scale per row; the small low-rank maps stay f32.
    pub fn quantize_int8(&mut self) {
        fn q(m: &mut Matrix) {
            *m = m.to_int8();
        }
        q(&mut self.head);
        for layer in &mut self.layers {
            q(&mut layer.ffn.key);
            q(&mut layer.ffn.value);
            if let Some(r) = &mut layer.ffn.receptance {
                q(r);
            }
            match &mut layer.att {
                TimeMix::V4V5(a) => {
                    q(&mut a.receptance);
                    q(&mut a.key);
                    q(&mut a.value);
                    q(&mut a.output);
                    if let Some(g) = &mut a.gate {
                        q(g);
                    }
                }
                TimeMix::V6(a) => {
                    q(&mut a.receptance);
                    q(&mut a.key);
                    q(&mut a.value);
                    q(&mut a.output);
                    q(&mut a.gate);
                }
                TimeMix::V7(a) => {
                    q(&mut a.receptance);
                    q(&mut a.key);
                    q(&mut a.value);
                    q(&mut a.output);
                }
            }
        }
    }

    /// Bytes of weights read for one token in decode (every matrix once, one embedding row).
    pub fn weight_bytes_per_token(&self) -> usize {
        let mut b = self.head.bytes() + self.dims.n_embd * 4;
        for layer in &self.layers {
            b += layer.ffn.key.bytes() + layer.ffn.value.bytes();
            b += layer.ffn.receptance.as_ref().map_or(0, |m| m.bytes());
            b += match &layer.att {
                TimeMix::V4V5(a) => {
                    a.receptance.bytes()
                        + a.key.bytes()
                        + a.value.bytes()
                        + a.output.bytes()
                        + a.gate.as_ref().map_or(0, |m| m.bytes())
                }
                TimeMix::V6(a) => {
                    a.receptance.bytes()
                        + a.key.bytes()
                        + a.value.bytes()
                        + a.output.bytes()
                        + a.gate.bytes()
                        + a.maa_w1.bytes()
                        + a.maa_w2.iter().map(|m| m.bytes()).sum::<usize>()
                        + a.decay_w1.bytes()
                        + a.decay_w2.bytes()
                }
                TimeMix::V7(a) => {
                    a.receptance.bytes()
                        + a.key.bytes()
                        + a.value.bytes()
                        + a.output.bytes()
                        + a.w1.bytes()
                        + a.w2.bytes()
                        + a.a1.bytes()
                        + a.a2.bytes()
                        + a.g1.bytes()
                        + a.g2.bytes()
                        + a.v1.as_ref().map_or(0, |m| m.bytes())
                        + a.v2.as_ref().map_or(0, |m| m.bytes())
                }
            };
        }
        b
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<(), RwkvError> {
        if tokens.is_empty() {
            return Err(RwkvError::Empty);
        }
        for &t in tokens {
            if t as usize >= self.dims.vocab {
                return Err(RwkvError::TokenOutOfRange {
                    token: t,
                    vocab: self.dims.vocab,
                });
            }
        }
        Ok(())
    }

    /// One token: returns the logits (vocab).
    pub fn step<'s>(
        &self,
        state: &mut State,
        token: u32,
        scratch: &'s mut Scratch,
        par: &dyn Parallel,
    ) -> Result<&'s [f32], RwkvError> {
        self.prefill(state, &[token], scratch, par, false)
    }

    /// Feeds `tokens` of one sequence in one call, reading each weight matrix once per block of
    /// tokens. With `all_logits` the logits after every token are returned (tokens x vocab),
    /// otherwise only those after the last token.
    pub fn prefill<'s>(
        &self,
        state: &mut State,
        tokens: &[u32],
        scratch: &'s mut Scratch,
        par: &dyn Parallel,
        all_logits: bool,
    ) -> Result<&'s [f32], RwkvError> {
        self.check_tokens(tokens)?;
        if !state.fits(self) {
            return Err(RwkvError::StateMismatch);
        }
        if !scratch.fits(self) {
            return Err(RwkvError::ScratchMismatch);
        }
        let vocab = self.dims.vocab;
        let mut done = 0;
        let mut last_rows = 0;
        // Longer inputs than the scratch holds go through in blocks; logits of all tokens only
        // fit when the whole input is one block.
        if all_logits && tokens.len() > scratch.max_rows {
            return Err(RwkvError::TooManyRows {
                rows: tokens.len(),
                max_rows: scratch.max_rows,
            });
        }
        while done < tokens.len() {
            let n = (tokens.len() - done).min(scratch.max_rows);
            forward::forward(
                self,
                Rows::Sequence(state),
                &tokens[done..done + n],
                scratch,
                par,
                all_logits,
            );
            done += n;
            last_rows = n;
        }
        if all_logits {
            Ok(&scratch.logits[..last_rows * vocab])
        } else {
            Ok(&scratch.logits[..vocab])
        }
    }

    /// One token for each of several independent sequences, stepped together so each weight is
    /// read once for the batch. Returns logits (batch x vocab).
    pub fn step_batch<'s>(
        &self,
        states: &mut [State],
        tokens: &[u32],
        scratch: &'s mut Scratch,
        par: &dyn Parallel,
    ) -> Result<&'s [f32], RwkvError> {
        self.check_tokens(tokens)?;
        if states.len() != tokens.len() {
            return Err(RwkvError::BadDims(
                "one state per token is needed in a batch",
            ));
        }
        if tokens.len() > scratch.max_rows {
            return Err(RwkvError::TooManyRows {
                rows: tokens.len(),
                max_rows: scratch.max_rows,
            });
        }
        if states.iter().any(|s| !s.fits(self)) {
            return Err(RwkvError::StateMismatch);
        }
        if !scratch.fits(self) {
            return Err(RwkvError::ScratchMismatch);
        }
        forward::forward(self, Rows::Batch(states), tokens, scratch, par, true);
        Ok(&scratch.logits[..tokens.len() * self.dims.vocab])
    }
}

//! From named tensors to an engine [`Model`]: detect the version from the keys (as the
//! reference does), undo or apply the per-format transforms, check every shape.
//!
//! rwkv.cpp's converter stores, compared with the BlinkDL checkpoint: v4 `time_decay` as
//! `-exp(d)`; v5 `time_decay` as `exp(-exp(d))` and v5.0 `time_first` as `exp(u)`; v6
//! `time_maa_w1`, `time_decay_w1/w2` transposed and `time_maa_w2` permuted to (5, C, R); v7
//! the six token-shift mixes concatenated as `x_rwkvag` and the low-rank matrices transposed.
//! Our engine keeps large matrices as (out x in), which is PyTorch's `Linear` layout.

use std::collections::{BTreeMap, BTreeSet};

use echos_core::rwkv::{
    layer_norm, AttV4V5, AttV6, AttV7, ChannelMix, Dims, Layer, Matrix, Model, Norm, TimeMix,
    Version,
};

use crate::tensors::{Layout, RawTensor, TensorFile};
use crate::LoadError;

struct Keys<'a> {
    map: &'a BTreeMap<String, RawTensor>,
    used: BTreeSet<&'a str>,
    layout: Layout,
}

impl<'a> Keys<'a> {
    fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }

    fn get(&mut self, k: &str) -> Result<&'a RawTensor, LoadError> {
        let (key, t) = self
            .map
            .get_key_value(k)
            .ok_or_else(|| LoadError::MissingKey(k.to_string()))?;
        self.used.insert(key.as_str());
        Ok(t)
    }

    /// A vector of `n` values, whatever singleton dimensions surround it.
    fn vec(&mut self, k: &str, n: usize) -> Result<Vec<f32>, LoadError> {
        let t = self.get(k)?;
        if t.numel() != n {
            return Err(shape_err(k, format!("{n} values"), &t.shape));
        }
        Ok(t.data.clone())
    }

    fn norm(&mut self, k: &str, n: usize) -> Result<Norm, LoadError> {
        Ok(Norm {
            weight: self.vec(&format!("{k}.weight"), n)?,
            bias: self.vec(&format!("{k}.bias"), n)?,
        })
    }

    /// A matrix stored as (rows x cols) that the engine uses as (rows x cols).
    fn mat(&mut self, k: &str, rows: usize, cols: usize) -> Result<Matrix, LoadError> {
        let t = self.get(k)?;
        if t.shape != [rows, cols] {
            return Err(shape_err(k, format!("[{rows}, {cols}]"), &t.shape));
        }
        Ok(Matrix::f32(rows, cols, t.data.clone()))
    }

    /// A matrix stored as (cols x rows) (used as `x @ W` by the reference): transposed to the
    /// engine's (rows x cols). `rows == 0` takes the rank from the file.
    fn mat_t(&mut self, k: &str, rows: usize, cols: usize) -> Result<Matrix, LoadError> {
        let t = self.get(k)?;
        let rows = if rows == 0 && t.shape.len() == 2 {
            t.shape[1]
        } else {
            rows
        };
        if t.shape != [cols, rows] {
            return Err(shape_err(k, format!("[{cols}, {rows}]"), &t.shape));
        }
        Ok(transpose(&t.data, cols, rows))
    }

    /// A low-rank matrix: BlinkDL stores it (in x out), rwkv.cpp (out x in).
    fn lora(&mut self, k: &str, rows: usize, cols: usize) -> Result<Matrix, LoadError> {
        match self.layout {
            Layout::Blink => self.mat_t(k, rows, cols),
            Layout::RwkvCpp => {
                let rows = if rows == 0 {
                    self.get(k)?.shape.first().copied().unwrap_or(0)
                } else {
                    rows
                };
                self.mat(k, rows, cols)
            }
        }
    }
}

fn shape_err(k: &str, expected: String, found: &[usize]) -> LoadError {
    LoadError::Shape {
        key: k.to_string(),
        expected,
        found: format!("{found:?}"),
    }
}

fn transpose(data: &[f32], r: usize, c: usize) -> Matrix {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = data[i * c + j];
        }
    }
    Matrix::f32(c, r, out)
}

/// Repeats per-head values over the head's channels.
fn per_channel(v: Vec<f32>, n_head: usize, head_size: usize) -> Vec<f32> {
    if v.len() == n_head * head_size {
        return v;
    }
    v.iter()
        .flat_map(|&x| std::iter::repeat_n(x, head_size))
        .collect()
}

/// The version, as the reference's key rules decide it.
pub fn detect_version(map: &BTreeMap<String, RawTensor>, n_embd: usize) -> Version {
    let has = |k: &str| map.contains_key(k);
    if has("blocks.0.att.x_r") || has("blocks.0.att.x_rwkvag") || has("blocks.0.att.r_k") {
        Version::V7
    } else if has("blocks.0.att.time_maa_x") {
        Version::V6
    } else if has("blocks.0.att.ln_x.weight") {
        let per_channel_decay = map
            .get("blocks.0.att.time_decay")
            .is_some_and(|t| t.numel() == n_embd && n_embd > 1);
        if has("blocks.0.att.gate.weight") {
            if per_channel_decay {
                Version::V5_2
            } else {
                Version::V5_1
            }
        } else {
            Version::V5_0
        }
    } else {
        Version::V4
    }
}

pub fn build_model(file: &TensorFile) -> Result<Model, LoadError> {
    let map = &file.tensors;
    // The readers keep shape and data consistent; a TensorFile built by hand may not.
    for (k, t) in map {
        t.check(k)?;
    }
    let mut keys = Keys {
        map,
        used: BTreeSet::new(),
        layout: file.layout,
    };
    let emb = keys.get("emb.weight")?;
    if emb.shape.len() != 2 || emb.shape[0] == 0 || emb.shape[1] == 0 {
        return Err(shape_err(
            "emb.weight",
            "[vocab, n_embd]".into(),
            &emb.shape,
        ));
    }
    let (vocab, c) = (emb.shape[0], emb.shape[1]);
    let version = detect_version(map, c);
    let mut n_layer = 0;
    while keys.has(&format!("blocks.{n_layer}.ln1.weight")) {
        n_layer += 1;
    }
    if n_layer == 0 {
        return Err(LoadError::MissingKey("blocks.0.ln1.weight".into()));
    }
    let n_ffn = keys
        .get("blocks.0.ffn.key.weight")?
        .shape
        .first()
        .copied()
        .unwrap_or(0);
    let (n_head, head_size) = match version {
        Version::V4 => (1, c),
        Version::V5_0 | Version::V5_1 | Version::V5_2 | Version::V6 => {
            let k = if keys.has("blocks.0.att.time_faaaa") {
                "blocks.0.att.time_faaaa"
            } else {
                "blocks.0.att.time_first"
            };
            let t = keys.get(k)?;
            // Per head: (H,) or (H,1,1); per channel: (H, N) or (H, N, 1).
            let h = if version == Version::V6 || version == Version::V5_2 {
                // A scalar has no head dimension: refused below like a zero count.
                t.shape.first().copied().unwrap_or(0)
            } else {
                t.numel()
            };
            if h == 0 || c % h != 0 {
                return Err(shape_err(
                    k,
                    format!("a head count dividing n_embd {c}"),
                    &t.shape,
                ));
            }
            (h, c / h)
        }
        Version::V7 => {
            let t = keys.get("blocks.0.att.r_k")?;
            if t.shape.len() != 2 || t.shape[0].checked_mul(t.shape[1]) != Some(c) {
                return Err(shape_err(
                    "blocks.0.att.r_k",
                    format!("[n_head, head_size] with product {c}"),
                    &t.shape,
                ));
            }
            (t.shape[0], t.shape[1])
        }
    };
    let dims = Dims {
        n_layer,
        n_embd: c,
        n_head,
        head_size,
        n_ffn,
        vocab,
    };

    // The reference folds blocks.0.ln0 into the embedding at load time.
    let ln0 = keys.norm("blocks.0.ln0", c)?;
    let raw_emb = &keys.get("emb.weight")?.data;
    let mut emb_n = vec![0.0; vocab * c];
    for v in 0..vocab {
        layer_norm(
            &raw_emb[v * c..(v + 1) * c],
            &ln0,
            &mut emb_n[v * c..(v + 1) * c],
        );
    }

    let mut layers = Vec::with_capacity(n_layer);
    for l in 0..n_layer {
        let b = format!("blocks.{l}.");
        let att = format!("{b}att.");
        let ffn = format!("{b}ffn.");
        let ln1 = keys.norm(&format!("{b}ln1"), c)?;
        let ln2 = keys.norm(&format!("{b}ln2"), c)?;
        let time_mix = match version {
            Version::V4 | Version::V5_0 | Version::V5_1 | Version::V5_2 => {
                TimeMix::V4V5(att_v4v5(&mut keys, &att, version, &dims, file.layout)?)
            }
            Version::V6 => TimeMix::V6(att_v6(&mut keys, &att, &dims, file.layout)?),
            Version::V7 => TimeMix::V7(att_v7(&mut keys, &att, l, &dims, file.layout)?),
        };
        let channel_mix = match version {
            Version::V7 => {
                // rwkv.cpp keeps ffn.x_k as is.
                ChannelMix {
                    mix_k: keys.vec(&format!("{ffn}x_k"), c)?,
                    mix_r: Vec::new(),
                    key: keys.mat(&format!("{ffn}key.weight"), n_ffn, c)?,
                    value: keys.mat(&format!("{ffn}value.weight"), c, n_ffn)?,
                    receptance: None,
                }
            }
            _ => {
                let (mk, mr) = if version == Version::V6 {
                    ("time_maa_k", "time_maa_r")
                } else {
                    ("time_mix_k", "time_mix_r")
                };
                ChannelMix {
                    mix_k: keys.vec(&format!("{ffn}{mk}"), c)?,
                    mix_r: keys.vec(&format!("{ffn}{mr}"), c)?,
                    key: keys.mat(&format!("{ffn}key.weight"), n_ffn, c)?,
                    value: keys.mat(&format!("{ffn}value.weight"), c, n_ffn)?,
                    receptance: Some(keys.mat(&format!("{ffn}receptance.weight"), c, c)?),
                }
            }
        };
        layers.push(Layer {
            ln1,
            ln2,
            att: time_mix,
            ffn: channel_mix,
        });
    }
    let ln_out = keys.norm("ln_out", c)?;
    let head = keys.mat("head.weight", vocab, c)?;
    if let Some(unknown) = map
        .keys()
        .find(|k| !keys.used.contains(k.as_str()) && !ignored(k, version))
    {
        return Err(LoadError::UnknownKey {
            key: unknown.clone(),
            version: version.name(),
        });
    }
    let mut model =
        Model::new(version, dims, emb_n, layers, ln_out, head).map_err(LoadError::Model)?;
    model.set_kernel(echos_core::rwkv::Kernel::detect());
    Ok(model)
}

/// Keys the reference loads but does not use in RNN mode.
fn ignored(k: &str, version: Version) -> bool {
    // v7 layer 0 may carry v0/v1/v2, which the reference replaces by empty tensors.
    version == Version::V7
        && (k == "blocks.0.att.v0" || k == "blocks.0.att.v1" || k == "blocks.0.att.v2")
}

fn att_v4v5(
    keys: &mut Keys<'_>,
    att: &str,
    version: Version,
    d: &Dims,
    layout: Layout,
) -> Result<AttV4V5, LoadError> {
    let c = d.n_embd;
    let (h, n) = (d.n_head, d.head_size);
    let per_head = matches!(version, Version::V5_0 | Version::V5_1);
    let width = if version == Version::V4 || !per_head {
        c
    } else {
        h
    };
    let decay_raw = keys.vec(&format!("{att}time_decay"), width)?;
    let decay = match (version, layout) {
        (_, Layout::RwkvCpp) => decay_raw,
        (Version::V4, Layout::Blink) => decay_raw.iter().map(|&d| -libm::expf(d)).collect(),
        (_, Layout::Blink) => decay_raw
            .iter()
            .map(|&d| libm::expf(-libm::expf(d)))
            .collect(),
    };
    let faaaa = format!("{att}time_faaaa");
    let bonus = if keys.has(&faaaa) {
        keys.vec(&faaaa, width)?
    } else {
        let raw = keys.vec(&format!("{att}time_first"), width)?;
        match (version, layout) {
            (Version::V4, _) | (_, Layout::RwkvCpp) => raw,
            (_, Layout::Blink) => raw.iter().map(|&u| libm::expf(u)).collect(),
        }
    };
    let gated = matches!(version, Version::V5_1 | Version::V5_2);
    Ok(AttV4V5 {
        mix_k: keys.vec(&format!("{att}time_mix_k"), c)?,
        mix_v: keys.vec(&format!("{att}time_mix_v"), c)?,
        mix_r: keys.vec(&format!("{att}time_mix_r"), c)?,
        mix_g: if gated {
            keys.vec(&format!("{att}time_mix_g"), c)?
        } else {
            Vec::new()
        },
        decay: if version == Version::V4 {
            decay
        } else {
            per_channel(decay, h, n)
        },
        bonus: if version == Version::V4 {
            bonus
        } else {
            per_channel(bonus, h, n)
        },
        receptance: keys.mat(&format!("{att}receptance.weight"), c, c)?,
        key: keys.mat(&format!("{att}key.weight"), c, c)?,
        value: keys.mat(&format!("{att}value.weight"), c, c)?,
        output: keys.mat(&format!("{att}output.weight"), c, c)?,
        gate: if gated {
            Some(keys.mat(&format!("{att}gate.weight"), c, c)?)
        } else {
            None
        },
        ln_x: if version == Version::V4 {
            None
        } else {
            Some(keys.norm(&format!("{att}ln_x"), c)?)
        },
    })
}

fn att_v6(keys: &mut Keys<'_>, att: &str, d: &Dims, layout: Layout) -> Result<AttV6, LoadError> {
    let c = d.n_embd;
    let w1 = keys.lora(&format!("{att}time_maa_w1"), 0, c)?;
    let r5 = w1.rows();
    if r5 == 0 || !r5.is_multiple_of(5) {
        return Err(LoadError::Shape {
            key: format!("{att}time_maa_w1"),
            expected: "5 * rank outputs".into(),
            found: format!("{r5} outputs"),
        });
    }
    let rank = r5 / 5;
    let k2 = format!("{att}time_maa_w2");
    let t2 = keys.get(&k2)?;
    let maa_w2 = match layout {
        Layout::Blink => {
            if t2.shape != [5, rank, c] {
                return Err(shape_err(&k2, format!("[5, {rank}, {c}]"), &t2.shape));
            }
            let part = |i: usize| transpose(&t2.data[i * rank * c..(i + 1) * rank * c], rank, c);
            [part(0), part(1), part(2), part(3), part(4)]
        }
        Layout::RwkvCpp => {
            if t2.shape != [5, c, rank] {
                return Err(shape_err(&k2, format!("[5, {c}, {rank}]"), &t2.shape));
            }
            let part =
                |i: usize| Matrix::f32(c, rank, t2.data[i * rank * c..(i + 1) * rank * c].to_vec());
            [part(0), part(1), part(2), part(3), part(4)]
        }
    };
    let decay_w1 = keys.lora(&format!("{att}time_decay_w1"), 0, c)?;
    let dr = decay_w1.rows();
    Ok(AttV6 {
        maa_x: keys.vec(&format!("{att}time_maa_x"), c)?,
        maa: [
            keys.vec(&format!("{att}time_maa_w"), c)?,
            keys.vec(&format!("{att}time_maa_k"), c)?,
            keys.vec(&format!("{att}time_maa_v"), c)?,
            keys.vec(&format!("{att}time_maa_r"), c)?,
            keys.vec(&format!("{att}time_maa_g"), c)?,
        ],
        maa_w1: w1,
        maa_w2,
        decay: keys.vec(&format!("{att}time_decay"), c)?,
        decay_w1,
        decay_w2: keys.lora(&format!("{att}time_decay_w2"), c, dr)?,
        bonus: keys.vec(&format!("{att}time_faaaa"), c)?,
        receptance: keys.mat(&format!("{att}receptance.weight"), c, c)?,
        key: keys.mat(&format!("{att}key.weight"), c, c)?,
        value: keys.mat(&format!("{att}value.weight"), c, c)?,
        output: keys.mat(&format!("{att}output.weight"), c, c)?,
        gate: keys.mat(&format!("{att}gate.weight"), c, c)?,
        ln_x: keys.norm(&format!("{att}ln_x"), c)?,
    })
}

fn att_v7(
    keys: &mut Keys<'_>,
    att: &str,
    l: usize,
    d: &Dims,
    layout: Layout,
) -> Result<AttV7, LoadError> {
    let c = d.n_embd;
    let mixes: [Vec<f32>; 6] = match layout {
        Layout::Blink => [
            keys.vec(&format!("{att}x_r"), c)?,
            keys.vec(&format!("{att}x_w"), c)?,
            keys.vec(&format!("{att}x_k"), c)?,
            keys.vec(&format!("{att}x_v"), c)?,
            keys.vec(&format!("{att}x_a"), c)?,
            keys.vec(&format!("{att}x_g"), c)?,
        ],
        Layout::RwkvCpp => {
            let all = keys.vec(&format!("{att}x_rwkvag"), 6 * c)?;
            let part = |i: usize| all[i * c..(i + 1) * c].to_vec();
            [part(0), part(1), part(2), part(3), part(4), part(5)]
        }
    };
    let [x_r, x_w, x_k, x_v, x_a, x_g] = mixes;
    let w1 = keys.lora(&format!("{att}w1"), 0, c)?;
    let a1 = keys.lora(&format!("{att}a1"), 0, c)?;
    let g1 = keys.lora(&format!("{att}g1"), 0, c)?;
    let (v0, v1, v2) = if l == 0 {
        (Vec::new(), None, None)
    } else {
        let v1 = keys.lora(&format!("{att}v1"), 0, c)?;
        let v2 = keys.lora(&format!("{att}v2"), c, v1.rows())?;
        (keys.vec(&format!("{att}v0"), c)?, Some(v1), Some(v2))
    };
    Ok(AttV7 {
        x_r,
        x_w,
        x_k,
        x_v,
        x_a,
        x_g,
        w0: keys.vec(&format!("{att}w0"), c)?,
        w2: keys.lora(&format!("{att}w2"), c, w1.rows())?,
        w1,
        a0: keys.vec(&format!("{att}a0"), c)?,
        a2: keys.lora(&format!("{att}a2"), c, a1.rows())?,
        a1,
        v0,
        v1,
        v2,
        g2: keys.lora(&format!("{att}g2"), c, g1.rows())?,
        g1,
        k_k: keys.vec(&format!("{att}k_k"), c)?,
        k_a: keys.vec(&format!("{att}k_a"), c)?,
        r_k: keys.vec(&format!("{att}r_k"), c)?,
        receptance: keys.mat(&format!("{att}receptance.weight"), c, c)?,
        key: keys.mat(&format!("{att}key.weight"), c, c)?,
        value: keys.mat(&format!("{att}value.weight"), c, c)?,
        output: keys.mat(&format!("{att}output.weight"), c, c)?,
        ln_x: keys.norm(&format!("{att}ln_x"), c)?,
    })
}

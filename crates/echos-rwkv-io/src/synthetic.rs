//! Random-weight RWKV v7 models of any shape, for benchmarks at real sizes (e.g. the 0.1B
//! shapes: 12 layers, n_embd 768, head size 64, vocab 65536) without shipping weights.

use std::collections::BTreeMap;

use crate::tensors::{FileType, Layout, RawTensor, TensorFile};
use crate::LoadError;
use echos_core::rwkv::Model;

/// xorshift64*: a documented, seedable generator (the values only need to be plausible). The
/// workspace's one xorshift: it fixes the synthetic weights that benchmarks and tests are
/// pinned to, so it stays rather than moving onto `echos_core::rng`.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

pub struct SyntheticShape {
    pub n_layer: usize,
    pub n_embd: usize,
    pub head_size: usize,
    pub vocab: usize,
}

/// A v7 model with uniform random weights scaled by 1/sqrt(fan-in), built through the same
/// converter as real checkpoints.
pub fn synthetic_v7(shape: &SyntheticShape, seed: u64) -> Result<Model, LoadError> {
    let (c, l_n, v) = (shape.n_embd, shape.n_layer, shape.vocab);
    if shape.head_size == 0 || c % shape.head_size != 0 || l_n == 0 || v == 0 {
        return Err(LoadError::Shape {
            key: "synthetic".into(),
            expected: "n_embd divisible by head_size, at least one layer and one token".into(),
            found: format!(
                "n_embd {c}, head_size {}, n_layer {l_n}, vocab {v}",
                shape.head_size
            ),
        });
    }
    let mut rng = Rng(seed
        .wrapping_mul(2654435761)
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        | 1);
    let mut map = BTreeMap::new();
    let mut put = |name: String, dims: Vec<usize>, scale: f32, offset: f32, rng: &mut Rng| {
        let n: usize = dims.iter().product();
        let data = (0..n).map(|_| offset + scale * rng.next_f32()).collect();
        map.insert(name, RawTensor { shape: dims, data });
    };
    let lora = 64.max(c / 12);
    let s = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
    put("emb.weight".into(), vec![v, c], 0.1, 0.0, &mut rng);
    put("blocks.0.ln0.weight".into(), vec![c], 0.1, 1.0, &mut rng);
    put("blocks.0.ln0.bias".into(), vec![c], 0.1, 0.0, &mut rng);
    for l in 0..l_n {
        let b = format!("blocks.{l}.");
        for ln in ["ln1", "ln2"] {
            put(format!("{b}{ln}.weight"), vec![c], 0.1, 1.0, &mut rng);
            put(format!("{b}{ln}.bias"), vec![c], 0.1, 0.0, &mut rng);
        }
        for m in [
            "x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "k_k", "k_a",
        ] {
            put(format!("{b}att.{m}"), vec![1, 1, c], 0.5, 0.5, &mut rng);
        }
        put(
            format!("{b}att.r_k"),
            vec![c / shape.head_size, shape.head_size],
            0.5,
            0.0,
            &mut rng,
        );
        let mut pairs = vec!["w", "a", "g"];
        if l > 0 {
            pairs.push("v");
            put(format!("{b}att.v0"), vec![1, 1, c], 0.5, 0.5, &mut rng);
        }
        for p in pairs {
            put(format!("{b}att.{p}1"), vec![c, lora], s(c), 0.0, &mut rng);
            put(
                format!("{b}att.{p}2"),
                vec![lora, c],
                s(lora),
                0.0,
                &mut rng,
            );
        }
        for m in ["receptance", "key", "value", "output"] {
            put(
                format!("{b}att.{m}.weight"),
                vec![c, c],
                s(c),
                0.0,
                &mut rng,
            );
        }
        put(format!("{b}att.ln_x.weight"), vec![c], 0.1, 1.0, &mut rng);
        put(format!("{b}att.ln_x.bias"), vec![c], 0.1, 0.0, &mut rng);
        put(format!("{b}ffn.x_k"), vec![1, 1, c], 0.5, 0.5, &mut rng);
        put(
            format!("{b}ffn.key.weight"),
            vec![4 * c, c],
            s(c),
            0.0,
            &mut rng,
        );
        put(
            format!("{b}ffn.value.weight"),
            vec![c, 4 * c],
            s(4 * c),
            0.0,
            &mut rng,
        );
    }
    put("ln_out.weight".into(), vec![c], 0.1, 1.0, &mut rng);
    put("ln_out.bias".into(), vec![c], 0.1, 0.0, &mut rng);
    put("head.weight".into(), vec![v, c], s(c), 0.0, &mut rng);
    let file = TensorFile {
        tensors: map,
        layout: Layout::Blink,
        file_type: FileType::F32,
    };
    crate::convert::build_model(&file)
}

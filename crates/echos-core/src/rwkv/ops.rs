//! Element-wise pieces of the RWKV step (norms and activations) on `libm`, so results do not
//! depend on the platform's math library.

use super::Norm;

/// LayerNorm with eps 1e-5 (PyTorch's default, used by every RWKV `ln*`). The mean and
/// variance are summed in f64: cheap at n_embd elements and closer to PyTorch's pairwise sums.
pub fn layer_norm(x: &[f32], n: &Norm, out: &mut [f32]) {
    let len = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / len;
    let var = x
        .iter()
        .map(|&v| (v as f64 - mean) * (v as f64 - mean))
        .sum::<f64>()
        / len;
    let inv = 1.0 / libm::sqrt(var + 1e-5);
    for i in 0..x.len() {
        out[i] = ((x[i] as f64 - mean) * inv) as f32 * n.weight[i] + n.bias[i];
    }
}

/// GroupNorm with one group per head, in place.
pub fn group_norm(x: &mut [f32], n: &Norm, head_size: usize, eps: f32) {
    for (h, g) in x.chunks_exact_mut(head_size).enumerate() {
        let len = head_size as f64;
        let mean = g.iter().map(|&v| v as f64).sum::<f64>() / len;
        let var = g
            .iter()
            .map(|&v| (v as f64 - mean) * (v as f64 - mean))
            .sum::<f64>()
            / len;
        let inv = 1.0 / libm::sqrt(var + eps as f64);
        for (j, v) in g.iter_mut().enumerate() {
            let c = h * head_size + j;
            *v = ((*v as f64 - mean) * inv) as f32 * n.weight[c] + n.bias[c];
        }
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

pub fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

pub fn relu_sq(x: f32) -> f32 {
    let r = x.max(0.0);
    r * r
}

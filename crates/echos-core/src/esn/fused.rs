//! The fused step kernel bound to a reservoir: the f32 copy of an `Esn`'s weights in the
//! kernels' layouts (`kernels::reservoir::FusedReservoir`), built once, with the buffers the
//! step needs. W_fb's columns follow W_in's, so feedback enters as extra inputs.

use alloc::vec;
use alloc::vec::Vec;

use super::config::{ConfigError, EsnConfig};
use crate::kernels::reservoir::{FusedReservoir, OwnedWeights};
use crate::kernels::{Kernel, Variant};
use crate::matrix::Dense;
use crate::scalar::Scalar;
use crate::topology::ReservoirMatrix;

/// A fused step kernel bound to a reservoir's weights (built once from them).
#[derive(Clone, Debug)]
pub(super) struct Fused {
    pub kernel: Kernel,
    pub reservoir: FusedReservoir,
    /// The kernel's input [u(t), y(t−1)] in f32, sized once.
    pub drive: Vec<f32>,
    /// A state rounded to f32 by `set_state`, sized once (noisy training sets it every step).
    pub rounded: Vec<f32>,
}

impl Fused {
    /// Rounds the weights to f32 once and lays them out for the kernel: W_fb's columns follow
    /// W_in's, so the kernel's input sum Σ_j W_in[i,j]·u[j] also adds W_fb·y(t−1).
    pub(super) fn build<T: Scalar>(
        variant: Variant,
        config: &EsnConfig,
        w: &ReservoirMatrix<T>,
        w_in: &Dense<T>,
        w_fb: Option<&Dense<T>>,
        bias: &[T],
    ) -> Result<Self, ConfigError> {
        let kernel = Kernel::new(variant).map_err(|_| ConfigError::KernelUnsupported(variant))?;
        let units = config.units;
        let outputs = w_fb.map_or(0, |d| d.cols);
        let drive_len = config.inputs + outputs;
        let f32_of = |v: T| v.to_f64() as f32;
        let finite = |what, xs: &[f32]| {
            if xs.iter().all(|v| v.is_finite()) {
                Ok(())
            } else {
                Err(ConfigError::NonFinite { what })
            }
        };
        let mut w_drive = Vec::with_capacity(units * drive_len);
        for i in 0..units {
            let row_in = &w_in.data[i * config.inputs..(i + 1) * config.inputs];
            w_drive.extend(row_in.iter().map(|&v| f32_of(v)));
            if let Some(fb) = w_fb {
                w_drive.extend(
                    fb.data[i * outputs..(i + 1) * outputs]
                        .iter()
                        .map(|&v| f32_of(v)),
                );
            }
        }
        finite("W_in / W_fb rounded to f32", &w_drive)?;
        let bias: Vec<f32> = bias.iter().map(|&v| f32_of(v)).collect();
        finite("bias rounded to f32", &bias)?;
        let leak_rate = config.leak_rate as f32;
        let reservoir = if let ReservoirMatrix::Block(b) = w {
            // The gather-free block kernel, on the block layout itself (not a CSR copy).
            let values: Vec<f32> = b.values.iter().map(|&v| f32_of(v)).collect();
            finite("W rounded to f32", &values)?;
            FusedReservoir::new_block(
                units,
                drive_len,
                b.size,
                b.per_group,
                &b.indices,
                &values,
                w_drive,
                bias,
                leak_rate,
            )
        } else {
            let weights = fused_weights(w)?;
            let values = match &weights {
                OwnedWeights::Csr { values, .. } => values,
                OwnedWeights::Dense(d) => d,
            };
            finite("W rounded to f32", values)?;
            FusedReservoir::new(units, drive_len, weights, w_drive, bias, leak_rate)
        }
        .map_err(ConfigError::Kernel)?;
        Ok(Fused {
            kernel,
            reservoir,
            drive: vec![0.0; drive_len],
            rounded: vec![0.0; units],
        })
    }
}

/// The fused kernel's input [u(t), y(t−1)] in f32 (exact for f32; an f64 value beyond f32's
/// range becomes infinite, which callers check).
#[inline]
pub(super) fn fill_drive<T: Scalar>(drive: &mut [f32], u: &[T], feedback: Option<&[T]>) {
    for (d, v) in drive
        .iter_mut()
        .zip(u.iter().chain(feedback.unwrap_or(&[])))
    {
        *d = v.to_f64() as f32;
    }
}

/// W in the fused kernels' formats: dense stays dense; everything else goes to its CSR form
/// (`ReservoirMatrix::to_csr`: one entry per edge of a structured W), from which the kernel
/// builds SELL-16. (The builder gives block matrices their own kernel instead.)
fn fused_weights<T: Scalar>(w: &ReservoirMatrix<T>) -> Result<OwnedWeights, ConfigError> {
    Ok(match w {
        ReservoirMatrix::Dense(d) => {
            OwnedWeights::Dense(d.data.iter().map(|&v| v.to_f64() as f32).collect())
        }
        _ => {
            let c = w
                .to_csr()
                .map_err(|error| ConfigError::Matrix { what: "W", error })?
                .cast::<f32>();
            OwnedWeights::Csr {
                indptr: c.indptr,
                indices: c.indices,
                values: c.values,
            }
        }
    })
}

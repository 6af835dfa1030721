//! An owned f32 reservoir for the fused kernels: weights validated once at construction, state
//! double-buffered, so [`FusedReservoir::step`] checks nothing O(N) and allocates nothing.

use super::block::BlockLeaky;
use super::sell::SellLeaky;
use super::{
    check_dim, check_len, checked_size, CsrRef, DenseRef, Kernel, KernelError, LeakyUpdate,
    Variant, WeightsRef,
};
use alloc::vec;
use alloc::vec::Vec;

/// Recurrent weights in one of the kernel formats.
#[derive(Clone, Debug)]
pub enum OwnedWeights {
    /// CSR (`indptr` rows + 1, `indices`, `values`).
    Csr {
        indptr: Vec<u32>,
        indices: Vec<u32>,
        values: Vec<f32>,
    },
    /// Row-major dense.
    Dense(Vec<f32>),
}

/// x' = (1−a)·x + a·tanh(W·x + W_in·u + b) with everything owned and checked.
#[derive(Clone, Debug)]
pub struct FusedReservoir {
    units: usize,
    inputs: usize,
    weights: OwnedWeights,
    w_in: Vec<f32>,
    bias: Vec<f32>,
    leak_rate: f32,
    /// The CSR weights rearranged for the SIMD single-sequence step (sparse reservoirs only).
    sell: Option<SellLeaky>,
    /// The block-sparse layout, for reservoirs made by [`FusedReservoir::new_block`]: then
    /// every variant steps on it, and `weights` is its CSR form for the other paths.
    block: Option<BlockLeaky>,
    state: Vec<f32>,
    next: Vec<f32>,
}

impl FusedReservoir {
    /// Checks every shape, the row pointers and every column index, once.
    pub fn new(
        units: usize,
        inputs: usize,
        weights: OwnedWeights,
        w_in: Vec<f32>,
        bias: Vec<f32>,
        leak_rate: f32,
    ) -> Result<Self, KernelError> {
        check_dim("units", units)?;
        match &weights {
            OwnedWeights::Csr {
                indptr,
                indices,
                values,
            } => {
                CsrRef::new(units, units, indptr, indices, values)?;
            }
            OwnedWeights::Dense(d) => {
                DenseRef::new(units, units, d)?;
            }
        }
        let p = LeakyUpdate {
            w_in: &w_in,
            inputs,
            bias: &bias,
            leak_rate,
        };
        check_len(
            "w_in",
            checked_size("units × inputs", units, inputs)?,
            w_in.len(),
        )?;
        p.check(units)?;
        let sell = match &weights {
            OwnedWeights::Csr {
                indptr,
                indices,
                values,
            } => Some(SellLeaky::new(
                CsrRef {
                    rows: units,
                    cols: units,
                    indptr,
                    indices,
                    values,
                },
                p,
            )?),
            OwnedWeights::Dense(_) => None,
        };
        Ok(FusedReservoir {
            sell,
            block: None,
            units,
            inputs,
            weights,
            w_in,
            bias,
            leak_rate,
            state: vec![0.0; units],
            next: vec![0.0; units],
        })
    }

    /// A block-sparse reservoir (`Topology::Block`): groups of `size` consecutive units share
    /// `per_group` columns; `indices`/`values` are laid out as in
    /// [`crate::topology::BlockSparse`]. Checked once like [`FusedReservoir::new`]; the step
    /// uses the block kernel on every variant, batches use the CSR form of the same weights.
    #[allow(clippy::too_many_arguments)]
    pub fn new_block(
        units: usize,
        inputs: usize,
        size: usize,
        per_group: usize,
        indices: &[u32],
        values: &[f32],
        w_in: Vec<f32>,
        bias: Vec<f32>,
        leak_rate: f32,
    ) -> Result<Self, KernelError> {
        check_len(
            "w_in",
            checked_size("units × inputs", units, inputs)?,
            w_in.len(),
        )?;
        let p = LeakyUpdate {
            w_in: &w_in,
            inputs,
            bias: &bias,
            leak_rate,
        };
        let block = BlockLeaky::new(units, size, per_group, indices, values, p)?;
        let mut indptr = Vec::with_capacity(units + 1);
        let nnz = checked_size("units × columns per group", units, per_group)?;
        if nnz > u32::MAX as usize {
            return Err(KernelError::Dimension {
                what: "nonzeros",
                value: nnz,
            });
        }
        let (mut csr_idx, mut csr_val) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
        indptr.push(0u32);
        for i in 0..units {
            let (g, r) = (i / size, i % size);
            for c in 0..per_group {
                csr_idx.push(indices[g * per_group + c]);
                csr_val.push(values[(g * per_group + c) * size + r]);
            }
            indptr.push(csr_idx.len() as u32);
        }
        Ok(FusedReservoir {
            sell: None,
            block: Some(block),
            units,
            inputs,
            weights: OwnedWeights::Csr {
                indptr,
                indices: csr_idx,
                values: csr_val,
            },
            w_in,
            bias,
            leak_rate,
            state: vec![0.0; units],
            next: vec![0.0; units],
        })
    }

    /// The block-sparse layout (reservoirs from [`FusedReservoir::new_block`] only).
    pub fn block(&self) -> Option<&BlockLeaky> {
        self.block.as_ref()
    }

    /// Number of reservoir units.
    pub fn units(&self) -> usize {
        self.units
    }
    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.inputs
    }
    /// The current state.
    pub fn state(&self) -> &[f32] {
        &self.state
    }
    /// Sets the state (length must be `units`).
    pub fn set_state(&mut self, x: &[f32]) -> Result<(), KernelError> {
        check_len("state", self.units, x.len())?;
        self.state.copy_from_slice(x);
        Ok(())
    }
    /// Zeroes the state.
    pub fn reset(&mut self) {
        self.state.fill(0.0);
    }
    /// The owned weights.
    pub fn weights(&self) -> &OwnedWeights {
        &self.weights
    }

    /// The recurrent weights as a kernel view (already validated in `new`).
    pub fn weights_ref(&self) -> WeightsRef<'_> {
        match &self.weights {
            OwnedWeights::Csr {
                indptr,
                indices,
                values,
            } => WeightsRef::Csr(CsrRef {
                rows: self.units,
                cols: self.units,
                indptr,
                indices,
                values,
            }),
            OwnedWeights::Dense(d) => WeightsRef::Dense(DenseRef {
                rows: self.units,
                cols: self.units,
                data: d,
            }),
        }
    }

    /// The SELL-16 form of the weights (sparse reservoirs only).
    pub fn sell(&self) -> Option<&SellLeaky> {
        self.sell.as_ref()
    }

    /// Leak rate a.
    pub fn leak_rate(&self) -> f32 {
        self.leak_rate
    }

    /// The CSR view, if the weights are sparse.
    pub fn csr_ref(&self) -> Option<CsrRef<'_>> {
        match self.weights_ref() {
            WeightsRef::Csr(c) => Some(c),
            WeightsRef::Dense(_) => None,
        }
    }

    /// Input weights, bias and leak rate as a kernel view.
    pub fn update_ref(&self) -> LeakyUpdate<'_> {
        LeakyUpdate {
            w_in: &self.w_in,
            inputs: self.inputs,
            bias: &self.bias,
            leak_rate: self.leak_rate,
        }
    }

    /// Bytes of weights (recurrent, input, bias) plus state read per step.
    pub fn bytes_per_step(&self) -> usize {
        let w = match &self.weights {
            OwnedWeights::Csr {
                indptr,
                indices,
                values,
            } => indptr.len() * 4 + indices.len() * 4 + values.len() * 4,
            OwnedWeights::Dense(d) => d.len() * 4,
        };
        w + (self.w_in.len() + self.bias.len() + self.units) * 4
    }

    /// Bytes held: weights (CSR and its SELL or block copy), input weights, bias and both state
    /// buffers.
    pub fn bytes(&self) -> usize {
        self.bytes_per_step()
            + self.units * 4
            + self.sell.as_ref().map_or(0, SellLeaky::bytes)
            + self.block.as_ref().map_or(0, BlockLeaky::bytes)
    }

    /// Bytes the single-sequence step of `kernel` reads: the block layout for block-sparse
    /// reservoirs (every variant), the SELL arrays for SIMD variants on sparse weights, else the
    /// CSR/dense weights, input weights and bias; plus the state.
    pub fn bytes_read_per_step(&self, kernel: Kernel) -> usize {
        if let Some(b) = &self.block {
            return b.bytes() + self.units * 4;
        }
        match &self.sell {
            Some(m) if kernel.variant() != Variant::Scalar => m.bytes() + self.units * 4,
            _ => self.bytes_per_step(),
        }
    }

    /// Which step code runs for `kernel`: e.g. `avx512-sell16`, `scalar-csr`, `avx2-dense`.
    pub fn step_kernel_name(&self, kernel: Kernel) -> &'static str {
        if self.block.is_some() {
            return match kernel.variant() {
                Variant::Scalar => "scalar-block",
                Variant::Avx2Fma => "avx2-block",
                Variant::Avx512 => "avx512-block",
            };
        }
        match (kernel.variant(), &self.weights) {
            (Variant::Scalar, OwnedWeights::Csr { .. }) => "scalar-csr",
            (Variant::Scalar, OwnedWeights::Dense(_)) => "scalar-dense",
            (Variant::Avx2Fma, OwnedWeights::Csr { .. }) => "avx2-sell16",
            (Variant::Avx2Fma, OwnedWeights::Dense(_)) => "avx2-dense",
            (Variant::Avx512, OwnedWeights::Csr { .. }) => "avx512-sell16",
            (Variant::Avx512, OwnedWeights::Dense(_)) => "avx512-dense",
        }
    }

    /// One step with input `u`; returns the new state. Allocates nothing.
    pub fn step(&mut self, kernel: Kernel, u: &[f32]) -> Result<&[f32], KernelError> {
        let units = self.units;
        // Split borrows: the view borrows weights, the buffers are separate fields.
        let w = match &self.weights {
            OwnedWeights::Csr {
                indptr,
                indices,
                values,
            } => WeightsRef::Csr(CsrRef {
                rows: units,
                cols: units,
                indptr,
                indices,
                values,
            }),
            OwnedWeights::Dense(d) => WeightsRef::Dense(DenseRef {
                rows: units,
                cols: units,
                data: d,
            }),
        };
        let p = LeakyUpdate {
            w_in: &self.w_in,
            inputs: self.inputs,
            bias: &self.bias,
            leak_rate: self.leak_rate,
        };
        match (&self.block, &self.sell) {
            (Some(b), _) => {
                kernel.block_leaky_step(b, self.leak_rate, u, &self.state, &mut self.next)?
            }
            (None, Some(m)) if kernel.variant() != Variant::Scalar => {
                kernel.sell_leaky_step(m, self.leak_rate, u, &self.state, &mut self.next)?
            }
            _ => kernel.leaky_step(w, p, u, &self.state, &mut self.next)?,
        }
        core::mem::swap(&mut self.state, &mut self.next);
        Ok(&self.state)
    }
}

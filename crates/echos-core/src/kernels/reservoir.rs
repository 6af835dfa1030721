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

/// Validated CSR arrays (rows + 1 pointers, column indices below `units`, values).
#[derive(Clone, Debug)]
struct Csr32 {
    indptr: Vec<u32>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

/// The recurrent weights in the layouts the step and batch kernels read: one variant per kind
/// of reservoir, so no combination that never occurs can be built.
#[derive(Clone, Debug)]
enum Layout {
    /// Row-major dense W.
    Dense(Vec<f32>),
    /// Sparse W: CSR (scalar step, batches, quantization) and its SELL-16 form (SIMD step).
    Sparse { csr: Csr32, sell: SellLeaky },
    /// Block-sparse W: the block tiles (every variant's step) and the CSR of the same rows
    /// (batches, quantization).
    Block { block: BlockLeaky, csr: Csr32 },
}

/// x' = (1−a)·x + a·tanh(W·x + W_in·u + b) with everything owned and checked.
#[derive(Clone, Debug)]
pub struct FusedReservoir {
    units: usize,
    inputs: usize,
    layout: Layout,
    w_in: Vec<f32>,
    bias: Vec<f32>,
    leak_rate: f32,
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
        p.check(units)?;
        let layout = match weights {
            OwnedWeights::Csr {
                indptr,
                indices,
                values,
            } => {
                let view = CsrRef::new(units, units, &indptr, &indices, &values)?;
                let sell = SellLeaky::new(view, p)?;
                Layout::Sparse {
                    csr: Csr32 {
                        indptr,
                        indices,
                        values,
                    },
                    sell,
                }
            }
            OwnedWeights::Dense(d) => {
                DenseRef::new(units, units, &d)?;
                Layout::Dense(d)
            }
        };
        Ok(FusedReservoir {
            units,
            inputs,
            layout,
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
        // Checks shape and indices first, so the CSR form below is built from valid weights.
        let block = BlockLeaky::new(units, size, per_group, indices, values, p)?;
        let nnz = checked_size("units × columns per group", units, per_group)?;
        if nnz > u32::MAX as usize {
            return Err(KernelError::Dimension {
                what: "nonzeros",
                value: nnz,
            });
        }
        // The one block-to-CSR conversion.
        let (indptr, csr_indices, csr_values) =
            super::block::block_to_csr(units, size, per_group, indices, values);
        Ok(FusedReservoir {
            units,
            inputs,
            layout: Layout::Block {
                block,
                csr: Csr32 {
                    indptr,
                    indices: csr_indices,
                    values: csr_values,
                },
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
        match &self.layout {
            Layout::Block { block, .. } => Some(block),
            _ => None,
        }
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
    /// The recurrent weights as a kernel view (validated at construction): CSR for sparse
    /// and block reservoirs, dense otherwise.
    pub fn weights_ref(&self) -> WeightsRef<'_> {
        let units = self.units;
        match &self.layout {
            Layout::Sparse { csr, .. } | Layout::Block { csr, .. } => WeightsRef::Csr(CsrRef {
                rows: units,
                cols: units,
                indptr: &csr.indptr,
                indices: &csr.indices,
                values: &csr.values,
            }),
            Layout::Dense(d) => WeightsRef::Dense(DenseRef {
                rows: units,
                cols: units,
                data: d,
            }),
        }
    }

    /// The SELL-16 form of the weights (sparse reservoirs only).
    pub fn sell(&self) -> Option<&SellLeaky> {
        match &self.layout {
            Layout::Sparse { sell, .. } => Some(sell),
            _ => None,
        }
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
        let w = match &self.layout {
            Layout::Sparse { csr, .. } | Layout::Block { csr, .. } => {
                (csr.indptr.len() + csr.indices.len() + csr.values.len()) * 4
            }
            Layout::Dense(d) => d.len() * 4,
        };
        w + (self.w_in.len() + self.bias.len() + self.units) * 4
    }

    /// Bytes held: weights (CSR and its SELL or block copy), input weights, bias and both state
    /// buffers.
    pub fn bytes(&self) -> usize {
        self.bytes_per_step()
            + self.units * 4
            + match &self.layout {
                Layout::Sparse { sell, .. } => sell.bytes(),
                Layout::Block { block, .. } => block.bytes(),
                Layout::Dense(_) => 0,
            }
    }

    /// Bytes the single-sequence step of `kernel` reads: the block layout for block-sparse
    /// reservoirs (every variant), the SELL arrays for SIMD variants on sparse weights, else the
    /// CSR/dense weights, input weights and bias; plus the state.
    pub fn bytes_read_per_step(&self, kernel: Kernel) -> usize {
        match &self.layout {
            Layout::Block { block, .. } => block.bytes() + self.units * 4,
            Layout::Sparse { sell, .. } if kernel.variant() != Variant::Scalar => {
                sell.bytes() + self.units * 4
            }
            _ => self.bytes_per_step(),
        }
    }

    /// Which step code runs for `kernel`: e.g. `avx512-sell16`, `scalar-csr`, `avx2-dense`.
    pub fn step_kernel_name(&self, kernel: Kernel) -> &'static str {
        match (&self.layout, kernel.variant()) {
            (Layout::Block { .. }, Variant::Scalar) => "scalar-block",
            (Layout::Block { .. }, Variant::Avx2Fma) => "avx2-block",
            (Layout::Block { .. }, Variant::Avx512) => "avx512-block",
            (Layout::Sparse { .. }, Variant::Scalar) => "scalar-csr",
            (Layout::Sparse { .. }, Variant::Avx2Fma) => "avx2-sell16",
            (Layout::Sparse { .. }, Variant::Avx512) => "avx512-sell16",
            (Layout::Dense(_), Variant::Scalar) => "scalar-dense",
            (Layout::Dense(_), Variant::Avx2Fma) => "avx2-dense",
            (Layout::Dense(_), Variant::Avx512) => "avx512-dense",
        }
    }

    /// One step with input `u`; returns the new state. Allocates nothing.
    pub fn step(&mut self, kernel: Kernel, u: &[f32]) -> Result<&[f32], KernelError> {
        let units = self.units;
        let a = self.leak_rate;
        match &self.layout {
            Layout::Block { block, .. } => {
                kernel.block_leaky_step(block, a, u, &self.state, &mut self.next)?
            }
            Layout::Sparse { sell, .. } if kernel.variant() != Variant::Scalar => {
                kernel.sell_leaky_step(sell, a, u, &self.state, &mut self.next)?
            }
            layout => {
                let w = match layout {
                    Layout::Dense(d) => WeightsRef::Dense(DenseRef {
                        rows: units,
                        cols: units,
                        data: d,
                    }),
                    Layout::Sparse { csr, .. } | Layout::Block { csr, .. } => {
                        WeightsRef::Csr(CsrRef {
                            rows: units,
                            cols: units,
                            indptr: &csr.indptr,
                            indices: &csr.indices,
                            values: &csr.values,
                        })
                    }
                };
                let p = LeakyUpdate {
                    w_in: &self.w_in,
                    inputs: self.inputs,
                    bias: &self.bias,
                    leak_rate: a,
                };
                kernel.leaky_step(w, p, u, &self.state, &mut self.next)?
            }
        }
        core::mem::swap(&mut self.state, &mut self.next);
        Ok(&self.state)
    }
}

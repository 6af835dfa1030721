//! An owned f32 reservoir for the fused kernels: weights validated once at construction, state
//! double-buffered, so [`FusedReservoir::step`] checks nothing O(N) and allocates nothing.

use super::{
    check_dim, check_len, checked_size, CsrRef, DenseRef, Kernel, KernelError, LeakyUpdate,
    WeightsRef,
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
                CsrRef::new(units, units, indptr, indices, values)?.validate_indices()?;
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
        Ok(FusedReservoir {
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

    /// Bytes held: weights, input weights, bias and both state buffers.
    pub fn bytes(&self) -> usize {
        self.bytes_per_step() + self.units * 4
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
        kernel.leaky_step(w, p, u, &self.state, &mut self.next)?;
        core::mem::swap(&mut self.state, &mut self.next);
        Ok(&self.state)
    }
}

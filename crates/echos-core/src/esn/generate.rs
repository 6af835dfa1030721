//! Generation of an ESN's weights from its configuration and seed, in the documented draw
//! order (see the `esn` module docs): W, W_in, bias, W_fb, each generated and scaled in f64
//! and rounded once to the reservoir's scalar type.

use alloc::vec::Vec;

use super::config::{ConfigError, EsnConfig};
use crate::matrix::Dense;
use crate::rng::Rng;
use crate::scalar::Scalar;
use crate::spectral::{self, ScaleError};
use crate::topology::{self, MatrixFormat, ReservoirMatrix, Topology};

/// The weights of a new reservoir.
pub(super) struct Weights<T> {
    pub w: ReservoirMatrix<T>,
    pub w_in: Dense<T>,
    pub w_fb: Option<Dense<T>>,
    pub bias: Vec<T>,
}

/// Draws every weight of `config` (already validated) from one generator seeded with
/// `config.seed`.
pub(super) fn weights<T: Scalar>(config: &EsnConfig) -> Result<Weights<T>, ConfigError> {
    let n = config.units;
    let mut rng = Rng::new(config.seed);
    let w = generate_reservoir::<T>(config, &mut rng)?;

    let per_input = topology::nonzeros_per_row(config.inputs, config.input_connectivity);
    let mut w_in_sparse = topology::random_sparse(
        n,
        config.inputs,
        per_input,
        config.input_distribution,
        &mut rng,
    );
    w_in_sparse
        .values
        .iter_mut()
        .for_each(|v| *v *= config.input_scaling);
    let w_in = w_in_sparse.to_dense().cast::<T>();

    let bias = (0..n)
        .map(|_| T::from_f64(rng.uniform(-1.0, 1.0) * config.bias_scaling))
        .collect();

    let w_fb = if config.outputs > 0 {
        let data = (0..n * config.outputs)
            .map(|_| T::from_f64(rng.uniform(-1.0, 1.0) * config.feedback_scaling))
            .collect();
        Some(Dense {
            rows: n,
            cols: config.outputs,
            data,
        })
    } else {
        None
    };
    Ok(Weights {
        w,
        w_in,
        w_fb,
        bias,
    })
}

/// Builds W for the configured topology and scales it to the target spectral radius.
fn generate_reservoir<T: Scalar>(
    config: &EsnConfig,
    rng: &mut Rng,
) -> Result<ReservoirMatrix<T>, ConfigError> {
    let n = config.units;
    let sr = config.spectral_radius;
    match config.topology {
        Topology::Cycle => Ok(ReservoirMatrix::Cycle {
            units: n,
            weight: T::from_f64(sr),
        }),
        Topology::DelayLine => Ok(ReservoirMatrix::DelayLine {
            units: n,
            weight: T::from_f64(sr),
        }),
        Topology::CycleJumps { jump } => {
            let mut w = ReservoirMatrix::<f64>::CycleJumps {
                units: n,
                cycle_weight: 1.0,
                jump_weight: 1.0,
                jump,
            };
            scale_f64(&mut w, sr)?;
            let ReservoirMatrix::CycleJumps {
                cycle_weight,
                jump_weight,
                ..
            } = w
            else {
                unreachable!("built as CycleJumps above")
            };
            Ok(ReservoirMatrix::CycleJumps {
                units: n,
                cycle_weight: T::from_f64(cycle_weight),
                jump_weight: T::from_f64(jump_weight),
                jump,
            })
        }
        Topology::Block { size } => {
            let per_row = topology::nonzeros_per_row(n, config.connectivity);
            let block = topology::random_block(n, size, per_row, config.distribution, rng);
            let mut w = ReservoirMatrix::Block(block);
            scale_f64(&mut w, sr)?;
            let ReservoirMatrix::Block(block) = w else {
                unreachable!("built as block above")
            };
            Ok(ReservoirMatrix::Block(block.cast()))
        }
        Topology::Random => {
            let per_row = topology::nonzeros_per_row(n, config.connectivity);
            let csr = topology::random_sparse(n, n, per_row, config.distribution, rng);
            let mut w = ReservoirMatrix::Csr(csr);
            scale_f64(&mut w, sr)?;
            let ReservoirMatrix::Csr(csr) = w else {
                unreachable!("built as CSR above")
            };
            Ok(match config.format.resolve(n, config.connectivity) {
                MatrixFormat::Dense => ReservoirMatrix::Dense(csr.to_dense().cast()),
                _ => ReservoirMatrix::Csr(csr.cast()),
            })
        }
    }
}

fn scale_f64(w: &mut ReservoirMatrix<f64>, target: f64) -> Result<(), ConfigError> {
    match spectral::scale_to_spectral_radius(w, target) {
        Ok(_) => Ok(()),
        Err(ScaleError::ZeroRadius) => Err(ConfigError::DegenerateReservoir),
        Err(ScaleError::NotConverged { radius }) => {
            Err(ConfigError::SpectralRadiusNotConverged { estimate: radius })
        }
        Err(ScaleError::BadTarget) => Err(ConfigError::BadSpectralRadius(target)),
    }
}

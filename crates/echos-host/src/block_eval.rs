//! Accuracy of the block-sparse topology against the random one on the benchmark tasks, with
//! every other hyperparameter equal: NARMA10 in the setup of `tasks::Narma10Setup::for_units`
//! and linear memory capacity in `tasks::MemoryCapacitySetup`'s, only the topology changed.
//! This is what makes `Topology::Block` a legitimate substitute for speed.

use echos_core::esn::{Esn, EsnConfig};
use echos_core::metrics;
use echos_core::topology::Topology;

use crate::array::Array2;
use crate::datasets;
use crate::tasks::{MemoryCapacitySetup, Narma10Setup, TaskError};
use crate::training::{self, Generative, ReadoutSetup, Solver, TrainError};

/// Test NRMSE of one NARMA10 run with `topology`: the same data, seeds, sizes and
/// hyperparameters as `Narma10Setup::for_units(units).run(seed)` (which uses `Random`).
pub fn narma10_nrmse(units: usize, topology: Topology, seed: u64) -> Result<f64, TaskError> {
    let s = Narma10Setup::for_units(units);
    let total = s.washout + s.train + s.test;
    let (u, y) = datasets::narma10(total, seed)?;
    let config = EsnConfig {
        units: s.units,
        inputs: 1,
        spectral_radius: s.spectral_radius,
        leak_rate: s.leak_rate,
        input_scaling: s.input_scaling,
        bias_scaling: s.bias_scaling,
        connectivity: s.connectivity,
        topology,
        seed: seed ^ 0x5eed_0000_0000_0000,
        ..EsnConfig::default()
    };
    let esn = Esn::new(&config).map_err(TrainError::from)?;
    let n_fit = s.washout + s.train;
    let input = Array2::column(u[..n_fit].to_vec())?;
    let target = Array2::column(y[..n_fit].to_vec())?;
    let setup = ReadoutSetup {
        ridge: s.ridge,
        washout: s.washout,
        input_features: s.input_features,
        generative: Generative::None,
        solver: Solver::Qr,
    };
    let mut model = training::fit(esn, setup, &input, &target, 0.0, 0)?;
    let test_in = Array2::column(u[n_fit..].to_vec())?;
    let pred = model.run(&test_in)?;
    Ok(metrics::nrmse(pred.data(), &y[n_fit..]).map_err(TrainError::from)?)
}

/// Memory capacity of one run with `topology`, in `MemoryCapacitySetup`'s default setup
/// (whose own default topology is the cycle; here random and block are compared).
pub fn memory_capacity(units: usize, topology: Topology, seed: u64) -> Result<f64, TaskError> {
    MemoryCapacitySetup {
        units,
        topology,
        ..MemoryCapacitySetup::default()
    }
    .run(seed)
}

/// Mean of `f(seed)` over `seeds`.
pub fn mean_over(
    seeds: std::ops::Range<u64>,
    mut f: impl FnMut(u64) -> Result<f64, TaskError>,
) -> Result<(f64, Vec<f64>), TaskError> {
    let per_seed = seeds.map(&mut f).collect::<Result<Vec<_>, _>>()?;
    Ok((
        per_seed.iter().sum::<f64>() / per_seed.len() as f64,
        per_seed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_topology_reproduces_the_task_module_figure() {
        // The replicated run must be the task's own run when the topology is Random.
        let a = narma10_nrmse(50, Topology::Random, 4).unwrap();
        let b = Narma10Setup::for_units(50).run(4).unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
    }
}

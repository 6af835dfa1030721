//! Accuracy of the block-sparse topology against the random one on the benchmark tasks, with
//! every other hyperparameter equal: NARMA10 in the setup of
//! `echos_host::tasks::Narma10Setup::for_units` and linear memory capacity in
//! `tasks::MemoryCapacitySetup`'s, only the topology changed.
//! This is what makes `Topology::Block` a legitimate substitute for speed.

use echos_core::topology::Topology;

use echos_host::tasks::{MemoryCapacitySetup, Narma10Setup, TaskError};

/// Test NRMSE of one NARMA10 run with `topology`: the same data, seeds, sizes and
/// hyperparameters as `Narma10Setup::for_units(units).run(seed)` (which uses `Random`).
pub fn narma10_nrmse(units: usize, topology: Topology, seed: u64) -> Result<f64, TaskError> {
    Narma10Setup {
        topology,
        ..Narma10Setup::for_units(units)
    }
    .run(seed)
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
    fn the_topology_reaches_the_reservoir() {
        // Block must build (and score) another reservoir than the tuned task's Random one.
        let random = narma10_nrmse(50, Topology::Random, 4).unwrap();
        let block = narma10_nrmse(50, Topology::Block { size: 4 }, 4).unwrap();
        assert!(block.is_finite() && block != random, "{block} vs {random}");
    }
}

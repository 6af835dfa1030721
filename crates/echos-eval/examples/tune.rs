//! Hyperparameter search on validation seeds (1000 and up; the figure tests use seeds 0, 1, 2):
//! `SEEDS=4 cargo run --release -p echos-eval --example tune -- narma10 100` (tasks: narma10,
//! mc, mg). Prints one line per grid point with the mean figure over the validation seeds.
//! The grids are the last ones searched; earlier coarser grids are listed in docs/cli.md.

use echos_core::topology::{Topology, WeightDistribution};
use echos_host::tasks::{MackeyGlassSetup, MemoryCapacitySetup, Narma10Setup};

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("narma10");
    let units: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let n_seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seeds: Vec<u64> = (1000..1000 + n_seeds).collect();
    let score = |f: &dyn Fn(u64) -> f64| -> (f64, Vec<f64>) {
        let v: Vec<f64> = seeds.iter().map(|&s| f(s)).collect();
        (mean(&v), v)
    };
    match task {
        "narma10" => {
            for sr in [0.9, 0.95, 1.0] {
                for is in [0.02, 0.05, 0.1, 0.2] {
                    for bs in [0.5, 0.75] {
                        for ridge in [1e-12, 1e-10, 1e-8] {
                            let s = Narma10Setup {
                                spectral_radius: sr,
                                input_scaling: is,
                                bias_scaling: bs,
                                ridge,
                                ..Narma10Setup::for_units(units)
                            };
                            let (m, _) = score(&|sd| s.run(sd).unwrap_or(f64::NAN));
                            println!("sr {sr} is {is} bs {bs} ridge {ridge:e}: {m:.4}");
                        }
                    }
                }
            }
        }
        "mc" => {
            for topology in [Topology::Random, Topology::Cycle] {
                for dist in [WeightDistribution::Uniform, WeightDistribution::Bernoulli] {
                    for ridge in [1e-14, 1e-12, 1e-10] {
                        let s = MemoryCapacitySetup {
                            units,
                            topology,
                            input_distribution: dist,
                            ridge,
                            ..MemoryCapacitySetup::default()
                        };
                        let (m, v) = score(&|sd| s.run(sd).unwrap_or(f64::NAN));
                        println!("{topology:?} {dist:?} ridge {ridge:e}: {m:.3} {v:.3?}");
                    }
                }
            }
        }
        "mg" => {
            for sr in [0.85, 0.88, 0.9, 0.95] {
                for noise in [0.0, 1e-10, 1e-9] {
                    for ridge in [1e-16, 1e-15, 1e-14] {
                        let s = MackeyGlassSetup {
                            units,
                            spectral_radius: sr,
                            noise,
                            ridge,
                            ..MackeyGlassSetup::default()
                        };
                        let (m, v) = score(&|sd| s.run(sd).unwrap_or(f64::NAN));
                        println!(
                            "sr {sr} noise {noise:e} ridge {ridge:e}: {m:.3e} [{v}]",
                            v = v
                                .iter()
                                .map(|x| format!("{x:.2e}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        );
                    }
                }
            }
        }
        _ => eprintln!("tasks: narma10, mc, mg"),
    }
}

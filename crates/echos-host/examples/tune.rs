//! Hyperparameter search on validation seeds (1000 and up; the figure tests use seeds 0..):
//! `cargo run --release -p echos-host --example tune -- narma10 100`. Prints one line per grid
//! point, mean figure over the validation seeds.
use echos_host::tasks::{MackeyGlassSetup, MemoryCapacitySetup, Narma10Setup};

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("narma10");
    let units: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let seeds: Vec<u64> = (1000..1004).collect();
    match task {
        "narma10" => {
            for sr in [0.8, 0.9, 0.95, 1.0] {
                for is in [0.5, 1.0, 2.0] {
                    for bs in [0.0, 0.5, 1.0] {
                        for lr in [1.0, 0.7] {
                            let s = Narma10Setup {
                                spectral_radius: sr,
                                input_scaling: is,
                                bias_scaling: bs,
                                leak_rate: lr,
                                ..Narma10Setup::for_units(units)
                            };
                            let v: Vec<f64> = seeds
                                .iter()
                                .map(|&sd| s.run(sd).unwrap_or(f64::NAN))
                                .collect();
                            println!("sr {sr} is {is} bs {bs} lr {lr}: {:.4}", mean(&v));
                        }
                    }
                }
            }
        }
        "mc" => {
            for topo in [
                echos_core::topology::Topology::Random,
                echos_core::topology::Topology::Cycle,
            ] {
                for dist in [
                    echos_core::topology::WeightDistribution::Uniform,
                    echos_core::topology::WeightDistribution::Bernoulli,
                ] {
                    for ridge in [1e-14, 1e-12, 1e-10] {
                        let s = MemoryCapacitySetup {
                            units,
                            topology: topo,
                            input_distribution: dist,
                            ridge,
                            ..MemoryCapacitySetup::default()
                        };
                        let v: Vec<f64> = seeds
                            .iter()
                            .map(|&sd| s.run(sd).unwrap_or(f64::NAN))
                            .collect();
                        println!("{topo:?} {dist:?} ridge {ridge}: {:.3} {v:?}", mean(&v));
                    }
                }
            }
        }
        "mg" => {
            for sr in [1.0, 1.1, 1.2] {
                for noise in [0.0] {
                    for ridge in [1e-15, 1e-14, 1e-13, 1e-12] {
                        let s = MackeyGlassSetup {
                            units,
                            spectral_radius: sr,
                            noise,
                            ridge,
                            ..MackeyGlassSetup::default()
                        };
                        let t = std::time::Instant::now();
                        let v: Vec<f64> = seeds
                            .iter()
                            .map(|&sd| s.run(sd).unwrap_or(f64::NAN))
                            .collect();
                        println!(
                            "sr {sr} noise {noise} ridge {ridge}: {:.3e} {:?} ({:.2}s)",
                            mean(&v),
                            v.iter().map(|x| format!("{x:.2e}")).collect::<Vec<_>>(),
                            t.elapsed().as_secs_f64() / seeds.len() as f64
                        );
                    }
                }
            }
        }
        _ => eprintln!("tasks: narma10, mc, mg"),
    }
}

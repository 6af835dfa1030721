//! Per-step cost of the three ways to run a fused reservoir over a whole sequence: `Esn::step`
//! once per step, `Esn::run_into` (checked once), and the bare `FusedReservoir::step` (no state
//! copy-out). `cargo run --release -p echos-core --example run_into_overhead`; medians of 21
//! runs of 10,000 steps, wall clock, one thread. Figures: docs/python.md "Timing".

use echos_core::esn::{Esn, EsnConfig, StepKernel};
use echos_core::kernels::Kernel;
use echos_core::topology::{MatrixFormat, Topology};
use std::hint::black_box;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let steps = 10_000usize;
    let reps = 21;
    let u: Vec<f32> = (0..steps).map(|t| (t as f32 * 0.01).sin()).collect();
    for (topo, name) in [
        (Topology::Random, "random"),
        (Topology::Block { size: 16 }, "block16"),
    ] {
        for units in [100usize, 500, 1000] {
            let config = EsnConfig {
                units,
                connectivity: 0.1,
                topology: topo,
                format: MatrixFormat::Auto,
                leak_rate: 0.3,
                kernel: StepKernel::fast(),
                ..EsnConfig::default()
            };
            let mut esn = Esn::<f32>::new(&config).unwrap();
            let mut bare = esn.fused_reservoir().unwrap().clone();
            let kernel = Kernel::best();
            let mut out = vec![0.0f32; steps * units];
            let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
            for _ in 0..reps {
                esn.reset();
                let t0 = Instant::now();
                for x in &u {
                    black_box(esn.step(black_box(std::slice::from_ref(x)), None).unwrap()[0]);
                }
                a.push(t0.elapsed().as_secs_f64());
                esn.reset();
                let t0 = Instant::now();
                esn.run_into(black_box(&u), None, &mut out).unwrap();
                black_box(out[0]);
                b.push(t0.elapsed().as_secs_f64());
                bare.reset();
                let t0 = Instant::now();
                for x in &u {
                    black_box(
                        bare.step(kernel, black_box(std::slice::from_ref(x)))
                            .unwrap()[0],
                    );
                }
                c.push(t0.elapsed().as_secs_f64());
            }
            let ns = |v: Vec<f64>| median(v) / steps as f64 * 1e9;
            println!(
                "{name:8} N={units:5} {}: Esn::step {:8.1} ns/step   run_into {:8.1} ns/step   bare FusedReservoir::step {:8.1} ns/step",
                esn.fused_step_name().unwrap(), ns(a), ns(b), ns(c)
            );
        }
    }
}

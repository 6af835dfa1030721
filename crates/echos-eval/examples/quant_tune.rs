//! Per-format NARMA10 hyperparameter search for the quantized reservoirs, on the tuning seeds
//! (1000–1002) only: `cargo run --release -p echos-eval --example quant_tune -- 100 200`.
//! Every format, float32 included, searches the same grid with the same ridge rule; the last
//! lines print each format's optimum in the form `quant_eval::TUNED` records. `TOPOLOGIES=all`
//! also searches the structured layouts (none helped int8; see docs/performance.md).

use echos_core::topology::Topology;
use echos_eval::quant_eval::{select_ridge, Format, NarmaHyper, NARMA_RIDGES};

const SPECTRAL_RADII: [f64; 6] = [0.9, 0.95, 1.0, 1.1, 1.25, 1.4];
const INPUT_SCALINGS: [f64; 7] = [0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0];
const BIAS_SCALINGS: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![100] } else { sizes };
    // TOPOLOGIES=all adds the structured layouts (cycle, delay line, cycle with jumps of 5).
    let topologies: Vec<Topology> = if std::env::var("TOPOLOGIES").is_ok_and(|v| v == "all") {
        vec![
            Topology::Random,
            Topology::Cycle,
            Topology::DelayLine,
            Topology::CycleJumps { jump: 5 },
        ]
    } else {
        vec![Topology::Random]
    };
    let mut best = Vec::new();
    for &units in &sizes {
        for format in Format::ALL {
            let mut top: Option<(f64, NarmaHyper, f64)> = None;
            for topology in topologies.iter().copied() {
                for spectral_radius in SPECTRAL_RADII {
                    for input_scaling in INPUT_SCALINGS {
                        for bias_scaling in BIAS_SCALINGS {
                            let hyper = NarmaHyper {
                                spectral_radius,
                                input_scaling,
                                bias_scaling,
                                topology,
                            };
                            match select_ridge(format, units, hyper, &NARMA_RIDGES) {
                                Ok((ridge, nrmse)) => {
                                    println!(
                                    "N {units} {} {topology:?} sr {spectral_radius} is {input_scaling} bs {bias_scaling}: NRMSE {nrmse:.4} (ridge {ridge:e})",
                                    format.name()
                                );
                                    if top.is_none_or(|t| nrmse < t.0) {
                                        top = Some((nrmse, hyper, ridge));
                                    }
                                }
                                Err(e) => eprintln!("N {units} {} {hyper:?}: {e}", format.name()),
                            }
                        }
                    }
                }
            }
            if let Some(t) = top {
                best.push((format, units, t));
            }
        }
    }
    for (format, units, (nrmse, h, ridge)) in best {
        println!(
            "best (Format::{format:?}, {units}, {}, {}, {}), // {:?}, tuning NRMSE {nrmse:.4}, ridge {ridge:e}",
            h.spectral_radius, h.input_scaling, h.bias_scaling, h.topology
        );
    }
}

//! The ESN's tests: generation, the exact and fused steps, bad input, determinism.

use super::*;
use crate::kernels::reservoir::OwnedWeights;
use crate::kernels::{Kernel, Variant};
use crate::matrix::{Csr, MatrixError};
use crate::rng::Rng;
use crate::spectral;
use crate::topology::{BlockError, MatrixFormat, Topology};
use alloc::vec::Vec;

fn small_config(activation: Activation, leak_rate: f64, outputs: usize) -> EsnConfig {
    EsnConfig {
        units: 2,
        inputs: 1,
        outputs,
        leak_rate,
        activation,
        ..EsnConfig::default()
    }
}

/// W = [[0.5, 0], [0.1, 0.2]], W_in = [1, −1]ᵀ, b = [0.1, 0], x = [0.2, −0.4], u = 0.3.
fn hand_model(activation: Activation, leak_rate: f64, fb: Option<Dense<f64>>) -> Esn<f64> {
    let outputs = fb.as_ref().map_or(0, |d| d.cols);
    let w = ReservoirMatrix::Dense(Dense::new(2, 2, vec![0.5, 0.0, 0.1, 0.2]).unwrap());
    let w_in = Dense::new(2, 1, vec![1.0, -1.0]).unwrap();
    let mut esn = Esn::from_parts(
        small_config(activation, leak_rate, outputs),
        w,
        w_in,
        fb,
        vec![0.1, 0.0],
    )
    .unwrap();
    esn.set_state(&[0.2, -0.4]).unwrap();
    esn
}

#[test]
fn state_update_matches_hand_computation() {
    // Pre-activations: 0.1 + 0.5·0.2 + 0.3 = 0.5 and 0.1·0.2 + 0.2·(−0.4) − 0.3 = −0.36.
    let (p0, p1) = (0.5f64, -0.36f64);
    let a = 0.3;
    type Reference = fn(f64) -> f64;
    let cases: [(Activation, Reference); 4] = [
        (Activation::Tanh, f64::tanh),
        (Activation::Sigmoid, |x| 1.0 / (1.0 + (-x).exp())),
        (Activation::Relu, |x| x.max(0.0)),
        (Activation::Identity, |x| x),
    ];
    for (act, f) in cases {
        let mut esn = hand_model(act, a, None);
        let x = esn.step(&[0.3], None).unwrap().to_vec();
        let e0 = (1.0 - a) * 0.2 + a * f(p0);
        let e1 = (1.0 - a) * -0.4 + a * f(p1);
        assert!((x[0] - e0).abs() < 1e-15, "{act:?}: {} vs {e0}", x[0]);
        assert!((x[1] - e1).abs() < 1e-15, "{act:?}: {} vs {e1}", x[1]);
    }
    // Leak rate 1: the state is f(pre) and the old state is forgotten.
    let mut esn = hand_model(Activation::Tanh, 1.0, None);
    let x = esn.step(&[0.3], None).unwrap();
    assert!((x[0] - p0.tanh()).abs() < 1e-15);
    assert!((x[1] - p1.tanh()).abs() < 1e-15);
}

#[test]
fn feedback_enters_the_pre_activation() {
    let fb = Dense::new(2, 1, vec![0.5, 2.0]).unwrap();
    let mut esn = hand_model(Activation::Identity, 1.0, Some(fb));
    let x = esn.step(&[0.3], Some(&[0.1])).unwrap();
    assert!((x[0] - (0.5 + 0.05)).abs() < 1e-15);
    assert!((x[1] - (-0.36 + 0.2)).abs() < 1e-15);
    assert_eq!(esn.step(&[0.3], None), Err(StepError::FeedbackMissing));
    assert_eq!(
        esn.step(&[0.3], Some(&[0.1, 0.2])),
        Err(StepError::FeedbackLength {
            expected: 1,
            got: 2
        })
    );
}

#[test]
fn step_errors_leave_the_state_unchanged() {
    let mut esn = hand_model(Activation::Tanh, 0.5, None);
    let before = esn.state().to_vec();
    assert_eq!(
        esn.step(&[0.3, 0.1], None),
        Err(StepError::InputLength {
            expected: 1,
            got: 2
        })
    );
    assert_eq!(esn.step(&[f64::NAN], None), Err(StepError::NonFiniteInput));
    assert_eq!(
        esn.step(&[0.3], Some(&[1.0])),
        Err(StepError::UnexpectedFeedback)
    );
    assert_eq!(esn.state(), &before[..]);
    assert_eq!(
        esn.set_state(&[1.0]),
        Err(StepError::StateLength {
            expected: 2,
            got: 1
        })
    );
    esn.reset();
    assert_eq!(esn.state(), &[0.0, 0.0]);
}

#[test]
fn config_validation_gives_typed_errors() {
    let base = EsnConfig::default();
    assert_eq!(base.validate(), Ok(()));
    let check = |f: &dyn Fn(&mut EsnConfig), want: ConfigError| {
        let mut c = base.clone();
        f(&mut c);
        assert_eq!(c.validate(), Err(want.clone()));
        assert_eq!(Esn::<f32>::new(&c).unwrap_err(), want);
    };
    check(&|c| c.units = 0, ConfigError::ZeroUnits);
    check(&|c| c.inputs = 0, ConfigError::ZeroInputs);
    check(
        &|c| c.connectivity = 0.0,
        ConfigError::BadConnectivity {
            what: "connectivity",
            value: 0.0,
        },
    );
    check(
        &|c| c.connectivity = 1.5,
        ConfigError::BadConnectivity {
            what: "connectivity",
            value: 1.5,
        },
    );
    check(
        &|c| c.input_connectivity = -0.1,
        ConfigError::BadConnectivity {
            what: "input_connectivity",
            value: -0.1,
        },
    );
    check(&|c| c.leak_rate = 0.0, ConfigError::BadLeakRate(0.0));
    check(&|c| c.leak_rate = 1.01, ConfigError::BadLeakRate(1.01));
    check(
        &|c| c.spectral_radius = -1.0,
        ConfigError::BadSpectralRadius(-1.0),
    );
    check(
        &|c| c.spectral_radius = f64::INFINITY,
        ConfigError::BadSpectralRadius(f64::INFINITY),
    );
    check(
        &|c| c.bias_scaling = -1.0,
        ConfigError::BadScaling {
            what: "bias_scaling",
            value: -1.0,
        },
    );
    check(
        &|c| c.units = MAX_UNITS + 1,
        ConfigError::DimensionOverflow {
            what: "units",
            value: MAX_UNITS + 1,
        },
    );
    check(
        &|c| c.topology = Topology::CycleJumps { jump: 1 },
        ConfigError::BadJump {
            jump: 1,
            units: 100,
        },
    );
    // NaN compares unequal to itself, so check those variants by shape.
    let mut c = base.clone();
    c.spectral_radius = f64::NAN;
    assert!(matches!(c.validate(), Err(ConfigError::BadSpectralRadius(v)) if v.is_nan()));
    let mut c = base.clone();
    c.input_scaling = f64::NAN;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::BadScaling { what: "input_scaling", value }) if value.is_nan()
    ));
    // A dense W of MAX_UNITS² entries is refused before any allocation.
    let mut c = base.clone();
    c.units = MAX_UNITS;
    c.format = MatrixFormat::Dense;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::DimensionOverflow { .. })
    ));
    let mut c = base;
    c.units = MAX_UNITS;
    c.connectivity = 1.0;
    c.format = MatrixFormat::Csr;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::DimensionOverflow { .. })
    ));
}

#[test]
fn same_seed_same_weights_and_trajectory_in_process() {
    for topology in [
        Topology::Random,
        Topology::Cycle,
        Topology::DelayLine,
        Topology::CycleJumps { jump: 7 },
    ] {
        let config = EsnConfig {
            units: 150,
            inputs: 2,
            outputs: 1,
            topology,
            leak_rate: 0.7,
            seed: 99,
            ..EsnConfig::default()
        };
        let run = || {
            let mut esn = Esn::<f64>::new(&config).unwrap();
            let mut traj = Vec::new();
            for t in 0..300 {
                let u = [libm::sin(t as f64 * 0.1), libm::cos(t as f64 * 0.37)];
                let y = [libm::sin(t as f64 * 0.05)];
                traj.extend(esn.step(&u, Some(&y)).unwrap().iter().map(|v| v.to_bits()));
            }
            traj
        };
        assert_eq!(run(), run(), "{topology:?}");
        let other = EsnConfig {
            seed: 100,
            ..config.clone()
        };
        let a = Esn::<f64>::new(&config).unwrap();
        let b = Esn::<f64>::new(&other).unwrap();
        assert_ne!(a.w_in(), b.w_in());
    }
}

#[test]
fn dense_and_csr_storage_hold_the_same_reservoir() {
    let base = EsnConfig {
        units: 120,
        connectivity: 0.1,
        seed: 5,
        ..EsnConfig::default()
    };
    let dense = Esn::<f64>::new(&EsnConfig {
        format: MatrixFormat::Dense,
        ..base.clone()
    })
    .unwrap();
    let csr = Esn::<f64>::new(&EsnConfig {
        format: MatrixFormat::Csr,
        ..base.clone()
    })
    .unwrap();
    assert_eq!(dense.w().kind(), "dense");
    assert_eq!(csr.w().kind(), "csr");
    assert_eq!(Esn::<f64>::new(&base).unwrap().w().kind(), "csr");
    assert_eq!(dense.w().to_dense(), csr.w().to_dense());
    assert_eq!(csr.w().nnz(), 120 * 12);
    let (mut a, mut b) = (dense, csr);
    for t in 0..200 {
        let u = [libm::sin(t as f64 * 0.2)];
        let xa = a.step(&u, None).unwrap().to_vec();
        let xb = b.step(&u, None).unwrap();
        for (p, q) in xa.iter().zip(xb) {
            assert!((p - q).abs() < 1e-12);
        }
    }
}

#[test]
fn f32_reservoir_computes_in_f32_close_to_f64() {
    let config = EsnConfig {
        units: 80,
        seed: 3,
        ..EsnConfig::default()
    };
    let mut a = Esn::<f32>::new(&config).unwrap();
    let mut b = Esn::<f64>::new(&config).unwrap();
    assert_eq!(a.w_in(), &b.w_in().cast::<f32>());
    let mut max_diff = 0.0f64;
    for t in 0..100 {
        let u = libm::sin(t as f64 * 0.3);
        let xa = a.step(&[u as f32], None).unwrap().to_vec();
        let xb = b.step(&[u], None).unwrap();
        for (p, q) in xa.iter().zip(xb) {
            max_diff = max_diff.max((f64::from(*p) - q).abs());
        }
    }
    assert!(max_diff > 0.0, "f32 path must really round to f32");
    assert!(max_diff < 1e-4, "f32 drifted {max_diff}");
}

#[test]
fn from_parts_rejects_malformed_weights() {
    let config = small_config(Activation::Tanh, 1.0, 0);
    let w = || ReservoirMatrix::Dense(Dense::new(2, 2, vec![0.5, 0.0, 0.1, 0.2]).unwrap());
    let w_in = || Dense::new(2, 1, vec![1.0, -1.0]).unwrap();
    let ok = Esn::<f64>::from_parts(config.clone(), w(), w_in(), None, vec![0.0; 2]);
    assert!(ok.is_ok());
    let bad_len = Dense {
        rows: 2,
        cols: 1,
        data: vec![1.0],
    };
    assert!(matches!(
        Esn::<f64>::from_parts(config.clone(), w(), bad_len, None, vec![0.0; 2]),
        Err(ConfigError::Matrix {
            what: "W_in",
            error: MatrixError::DataLength { .. }
        })
    ));
    let nan_w = ReservoirMatrix::Dense(Dense {
        rows: 2,
        cols: 2,
        data: vec![0.5, f64::NAN, 0.1, 0.2],
    });
    assert!(matches!(
        Esn::<f64>::from_parts(config.clone(), nan_w, w_in(), None, vec![0.0; 2]),
        Err(ConfigError::Matrix {
            what: "W",
            error: MatrixError::NonFinite { row: 0, col: 1 }
        })
    ));
    let bad_csr = ReservoirMatrix::Csr(Csr {
        rows: 2,
        cols: 2,
        indptr: vec![0, 1, 2],
        indices: vec![0, 5],
        values: vec![1.0, 1.0],
    });
    assert!(matches!(
        Esn::<f64>::from_parts(config.clone(), bad_csr, w_in(), None, vec![0.0; 2]),
        Err(ConfigError::Matrix {
            what: "W",
            error: MatrixError::BadColumnIndex { row: 1, col: 5 }
        })
    ));
    assert!(matches!(
        Esn::<f64>::from_parts(config.clone(), w(), w_in(), None, vec![0.0; 3]),
        Err(ConfigError::ShapeMismatch { what: "bias", .. })
    ));
    let fb = Dense::new(2, 1, vec![1.0, 1.0]).unwrap();
    assert!(matches!(
        Esn::<f64>::from_parts(config, w(), w_in(), Some(fb), vec![0.0; 2]),
        Err(ConfigError::ShapeMismatch { what: "W_fb", .. })
    ));
}

#[test]
fn tiny_and_random_configs_never_panic() {
    for units in 1..=4 {
        for topology in [Topology::Random, Topology::Cycle, Topology::DelayLine] {
            let config = EsnConfig {
                units,
                topology,
                ..EsnConfig::default()
            };
            let mut esn = Esn::<f32>::new(&config).unwrap();
            assert!(esn
                .step(&[1.0], None)
                .unwrap()
                .iter()
                .all(|v| v.is_finite()));
        }
    }
    // Random (also invalid) configurations: either a typed error or a working reservoir.
    let mut rng = Rng::new(2024);
    let pick = |rng: &mut Rng, xs: &[f64]| xs[rng.below(xs.len() as u64) as usize];
    for _ in 0..300 {
        let config = EsnConfig {
            units: rng.below(40) as usize,
            inputs: rng.below(4) as usize,
            outputs: rng.below(3) as usize,
            spectral_radius: pick(&mut rng, &[-1.0, 0.0, 0.5, 1.5, f64::NAN, 1e300]),
            leak_rate: pick(&mut rng, &[0.0, 0.1, 1.0, 2.0, f64::NAN]),
            connectivity: pick(&mut rng, &[0.0, 0.01, 0.3, 1.0, 1.1]),
            input_connectivity: pick(&mut rng, &[0.0, 0.5, 1.0]),
            input_scaling: pick(&mut rng, &[0.0, 1.0, f64::INFINITY]),
            topology: match rng.below(4) {
                0 => Topology::Random,
                1 => Topology::Cycle,
                2 => Topology::DelayLine,
                _ => Topology::CycleJumps {
                    jump: rng.below(10) as usize,
                },
            },
            seed: rng.next_u64(),
            ..EsnConfig::default()
        };
        if let Ok(mut esn) = Esn::<f64>::new(&config) {
            let u = vec![0.5; config.inputs];
            let fb = vec![0.1; config.outputs];
            let fb = (config.outputs > 0).then_some(&fb[..]);
            for _ in 0..5 {
                esn.step(&u, fb).unwrap();
            }
        }
    }
}

#[test]
fn structured_topologies_get_their_radius() {
    let cfg = |topology| EsnConfig {
        units: 50,
        spectral_radius: 0.8,
        topology,
        ..EsnConfig::default()
    };
    let cyc = Esn::<f64>::new(&cfg(Topology::Cycle)).unwrap();
    assert_eq!(
        cyc.w(),
        &ReservoirMatrix::Cycle {
            units: 50,
            weight: 0.8
        }
    );
    let dl = Esn::<f64>::new(&cfg(Topology::DelayLine)).unwrap();
    assert_eq!(spectral::reservoir_spectral_radius(dl.w()).radius, 0.0);
    let cj = Esn::<f64>::new(&cfg(Topology::CycleJumps { jump: 5 })).unwrap();
    let est = spectral::spectral_radius(cj.w());
    assert!(est.converged);
    assert!((est.radius - 0.8).abs() < 1e-8, "{}", est.radius);
    assert_eq!(cj.w().bytes(), 16);
}

fn fused_config(units: usize, outputs: usize, kernel: StepKernel) -> EsnConfig {
    EsnConfig {
        units,
        inputs: 2,
        outputs,
        leak_rate: 0.3,
        connectivity: 0.1,
        format: MatrixFormat::Auto,
        seed: 11,
        kernel,
        ..EsnConfig::default()
    }
}

fn drive(t: usize) -> ([f32; 2], [f32; 1]) {
    let t = t as f64;
    (
        [libm::sin(t * 0.13) as f32, libm::cos(t * 0.071) as f32],
        [libm::sin(t * 0.05) as f32 * 0.5],
    )
}

#[test]
fn fused_esn_equals_fused_reservoir_stepped_directly() {
    for k in Kernel::available() {
        for (units, format, outputs) in [
            (150, MatrixFormat::Csr, 0),
            (150, MatrixFormat::Csr, 1),
            (40, MatrixFormat::Dense, 1),
        ] {
            let config = EsnConfig {
                format,
                ..fused_config(units, outputs, StepKernel::Fused(k.variant()))
            };
            let mut esn = Esn::<f32>::new(&config).unwrap();
            // The same reservoir built by hand from the exact model's weights.
            let exact = Esn::<f32>::new(&EsnConfig {
                kernel: StepKernel::Exact,
                ..config.clone()
            })
            .unwrap();
            let weights = match exact.w() {
                ReservoirMatrix::Csr(c) => OwnedWeights::Csr {
                    indptr: c.indptr.clone(),
                    indices: c.indices.clone(),
                    values: c.values.clone(),
                },
                ReservoirMatrix::Dense(d) => OwnedWeights::Dense(d.data.clone()),
                other => panic!("unexpected {}", other.kind()),
            };
            let mut w_drive = Vec::new();
            for i in 0..units {
                w_drive.extend_from_slice(&exact.w_in().data[i * 2..i * 2 + 2]);
                if let Some(fb) = exact.w_fb() {
                    w_drive.push(fb.data[i]);
                }
            }
            let mut direct = FusedReservoir::new(
                units,
                2 + outputs,
                weights,
                w_drive,
                exact.bias().to_vec(),
                0.3,
            )
            .unwrap();
            for t in 0..300 {
                let (u, y) = drive(t);
                let fb = (outputs > 0).then_some(&y[..]);
                let mut d = u.to_vec();
                if outputs > 0 {
                    d.push(y[0]);
                }
                let want = direct.step(k, &d).unwrap();
                let got = esn.step(&u, fb).unwrap();
                assert!(
                    got.iter()
                        .zip(want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{:?} {format:?} outputs {outputs}: differs at step {t}",
                    k.variant()
                );
            }
            assert_eq!(
                esn.fused_step_name(),
                Some(direct.step_kernel_name(k)),
                "{format:?}"
            );
        }
    }
}

/// Largest |fused − exact| over `steps` steps of the same config (f32 both).
fn fused_vs_exact(config: &EsnConfig, variant: Variant, steps: usize) -> f32 {
    let mut fused = Esn::<f32>::new(&EsnConfig {
        kernel: StepKernel::Fused(variant),
        ..config.clone()
    })
    .unwrap();
    let mut exact = Esn::<f32>::new(config).unwrap();
    let mut worst = 0.0f32;
    for t in 0..steps {
        let (u, y) = drive(t);
        let fb = (config.outputs > 0).then_some(&y[..]);
        let a = fused.step(&u[..config.inputs], fb).unwrap().to_vec();
        let b = exact.step(&u[..config.inputs], fb).unwrap();
        for (p, q) in a.iter().zip(b) {
            worst = worst.max((p - q).abs());
        }
    }
    worst
}

/// The fused kernel differs from the exact path only by its rational tanh (≤ 4.2e-7 from
/// libm's) and f32 summation order, and a contracting reservoir (radius 0.9) does not
/// amplify that: over 1,000 steps every state stays within 2e-6 of the exact one (measured
/// here: at most 3.0e-7, a few f32 ulps, on every variant and topology below).
#[test]
fn fused_stays_within_2e_6_of_exact_over_1000_steps() {
    for k in Kernel::available() {
        for (units, outputs, topology) in [
            (200, 0, Topology::Random),
            (200, 1, Topology::Random),
            (50, 1, Topology::Random),
            (100, 0, Topology::Cycle),
            (100, 1, Topology::DelayLine),
            (100, 0, Topology::CycleJumps { jump: 7 }),
            (96, 0, Topology::CycleJumps { jump: 8 }),
            (200, 0, Topology::Block { size: 16 }),
            (200, 1, Topology::Block { size: 8 }),
        ] {
            let config = EsnConfig {
                topology,
                ..fused_config(units, outputs, StepKernel::Exact)
            };
            let worst = fused_vs_exact(&config, k.variant(), 1000);
            eprintln!(
                "{:?} {topology:?} N={units} fb={outputs}: {worst:e}",
                k.variant()
            );
            assert!(
                worst < 2e-6,
                "{:?} {topology:?} N={units} fb={outputs}: {worst}",
                k.variant()
            );
            assert!(worst > 0.0, "the fused path must really run its own tanh");
        }
    }
}

#[test]
fn sparse_fused_kernels_agree_bit_for_bit_across_variants_and_scalar_types() {
    let run = |variant: Variant| {
        let config = fused_config(300, 1, StepKernel::Fused(variant));
        let mut a = Esn::<f32>::new(&config).unwrap();
        let mut b = Esn::<f64>::new(&config).unwrap();
        let mut bits = Vec::new();
        for t in 0..200 {
            let (u, y) = drive(t);
            let xa = a.step(&u, Some(&y)).unwrap();
            let ub = [f64::from(u[0]), f64::from(u[1])];
            let xb = b.step(&ub, Some(&[f64::from(y[0])])).unwrap();
            // An Esn<f64> with a fused kernel holds the f32 results, widened exactly.
            assert!(xa.iter().zip(xb).all(|(p, q)| f64::from(*p) == *q));
            bits.extend(xa.iter().map(|v| v.to_bits()));
        }
        bits
    };
    let reference = run(Variant::Scalar);
    for k in Kernel::available() {
        assert!(run(k.variant()) == reference, "{:?}", k.variant());
    }
}

/// A block reservoir's fused kernel is the gather-free block step (not a CSR copy), and that
/// step gives the same bits on every variant (its documented order).
#[test]
fn block_fused_kernel_runs_the_block_step_identically_on_every_variant() {
    let run = |variant: Variant| {
        let config = EsnConfig {
            topology: Topology::Block { size: 16 },
            ..fused_config(200, 1, StepKernel::Fused(variant))
        };
        let mut esn = Esn::<f32>::new(&config).unwrap();
        assert_eq!(
            esn.fused_step_name(),
            Some(match variant {
                Variant::Scalar => "scalar-block",
                Variant::Avx2Fma => "avx2-block",
                Variant::Avx512 => "avx512-block",
            })
        );
        let mut bits = Vec::new();
        for t in 0..200 {
            let (u, y) = drive(t);
            bits.extend(esn.step(&u, Some(&y)).unwrap().iter().map(|v| v.to_bits()));
        }
        bits
    };
    let reference = run(Variant::Scalar);
    for k in Kernel::available() {
        assert!(run(k.variant()) == reference, "{:?}", k.variant());
    }
}

/// `run_into` must give the bits of `step` called row by row, on every kernel (exact in f32
/// and f64, each fused variant), topology kind and with teacher-forced feedback, and leave
/// the same state behind.
fn run_into_matches_stepping<T: Scalar>() {
    let mut kernels = vec![StepKernel::Exact];
    kernels.extend(Kernel::available().map(|k| StepKernel::Fused(k.variant())));
    for kernel in kernels {
        for (units, outputs, topology, format) in [
            (120, 0, Topology::Random, MatrixFormat::Csr),
            (120, 1, Topology::Random, MatrixFormat::Csr),
            (40, 1, Topology::Random, MatrixFormat::Dense),
            (100, 0, Topology::Block { size: 16 }, MatrixFormat::Auto),
            (100, 1, Topology::Block { size: 7 }, MatrixFormat::Auto),
            (60, 0, Topology::CycleJumps { jump: 5 }, MatrixFormat::Auto),
        ] {
            let config = EsnConfig {
                topology,
                format,
                ..fused_config(units, outputs, kernel)
            };
            let steps = 57;
            let mut inputs = Vec::new();
            let mut feedback = Vec::new();
            for t in 0..steps {
                let (u, y) = drive(t);
                inputs.extend(u.iter().map(|&v| T::from_f64(f64::from(v))));
                feedback.extend(y.iter().map(|&v| T::from_f64(f64::from(v))));
            }
            let fb = (outputs > 0).then_some(&feedback[..]);
            let mut stepped = Esn::<T>::new(&config).unwrap();
            let mut run = stepped.clone();
            // Start both from a non-zero state so the run continues a trajectory.
            stepped.step(&inputs[..2], fb.map(|y| &y[..1])).unwrap();
            run.step(&inputs[..2], fb.map(|y| &y[..1])).unwrap();
            let mut want = Vec::new();
            for t in 0..steps {
                let y = fb.map(|y| &y[t..t + 1]);
                want.extend_from_slice(stepped.step(&inputs[t * 2..t * 2 + 2], y).unwrap());
            }
            let mut got = vec![T::zero(); steps * units];
            run.run_into(&inputs, fb, &mut got).unwrap();
            let what = alloc::format!("{kernel} {topology:?} {format:?} fb {outputs}");
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()),
                "{what}: states differ"
            );
            assert_eq!(run.state(), stepped.state(), "{what}: final state");
            // Both continue identically (the fused kernel's own state was advanced too).
            let next = stepped
                .step(&inputs[..2], fb.map(|y| &y[..1]))
                .unwrap()
                .to_vec();
            assert_eq!(
                run.step(&inputs[..2], fb.map(|y| &y[..1])).unwrap(),
                &next[..],
                "{what}"
            );
        }
    }
}

#[test]
fn run_into_is_bit_identical_to_stepping_f32() {
    run_into_matches_stepping::<f32>();
}

#[test]
fn run_into_is_bit_identical_to_stepping_f64() {
    run_into_matches_stepping::<f64>();
}

#[test]
fn run_into_checks_everything_before_running() {
    for kernel in [StepKernel::Exact, StepKernel::fast()] {
        let mut esn = Esn::<f64>::new(&fused_config(30, 0, kernel)).unwrap();
        esn.step(&[0.3, 0.1], None).unwrap();
        let before = esn.state().to_vec();
        let mut out = vec![7.0; 3 * 30];
        let inputs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        assert_eq!(
            esn.run_into(&inputs[..5], None, &mut out[..]),
            Err(StepError::RaggedInputs { len: 5, inputs: 2 })
        );
        assert_eq!(
            esn.run_into(&inputs, None, &mut out[..60]),
            Err(StepError::SequenceLength {
                what: "states",
                expected: 90,
                got: 60
            })
        );
        assert_eq!(
            esn.run_into(&inputs, Some(&[0.0; 3]), &mut out),
            Err(StepError::UnexpectedFeedback)
        );
        let mut bad = inputs;
        bad[5] = f64::NAN;
        let e = esn.run_into(&bad, None, &mut out).unwrap_err();
        assert_eq!(e, StepError::NonFiniteInputAt { step: 2 });
        assert!(e.to_string().contains("step 2"), "{e}");
        // Beyond f32: refused by a fused kernel, fine for the exact f64 path.
        bad[5] = 1e300;
        let got = esn.run_into(&bad, None, &mut out);
        if kernel.is_exact() {
            assert!(got.is_ok());
            esn.set_state(&before).unwrap();
            out.fill(7.0);
        } else {
            assert_eq!(got, Err(StepError::NonFiniteInputAt { step: 2 }));
        }
        // Nothing ran: the state and the output buffer are untouched.
        assert_eq!(esn.state(), &before[..]);
        assert!(out.iter().all(|&v| v == 7.0));
        // An empty run is a no-op.
        esn.run_into(&[], None, &mut []).unwrap();
        assert_eq!(esn.state(), &before[..]);
    }
    let mut fb = Esn::<f32>::new(&fused_config(30, 2, StepKernel::Exact)).unwrap();
    let mut out = vec![0.0; 60];
    assert_eq!(
        fb.run_into(&[0.0; 4], None, &mut out),
        Err(StepError::FeedbackMissing)
    );
    assert_eq!(
        fb.run_into(&[0.0; 4], Some(&[0.0; 3]), &mut out),
        Err(StepError::SequenceLength {
            what: "feedback",
            expected: 4,
            got: 3
        })
    );
}

#[test]
fn fused_state_set_and_reset_reach_the_kernel() {
    let config = fused_config(64, 0, StepKernel::fast());
    let mut a = Esn::<f32>::new(&config).unwrap();
    let mut b = Esn::<f32>::new(&config).unwrap();
    for t in 0..20 {
        a.step(&drive(t).0, None).unwrap();
    }
    let snapshot = a.state().to_vec();
    b.set_state(&snapshot).unwrap();
    for t in 20..40 {
        let xa = a.step(&drive(t).0, None).unwrap().to_vec();
        assert_eq!(xa, b.step(&drive(t).0, None).unwrap());
    }
    a.reset();
    assert!(a.state().iter().all(|&v| v == 0.0));
    let mut fresh = Esn::<f32>::new(&config).unwrap();
    assert_eq!(
        a.step(&drive(0).0, None).unwrap(),
        fresh.step(&drive(0).0, None).unwrap()
    );
    // Step errors are checked before the kernel runs and leave the state alone.
    let before = a.state().to_vec();
    assert_eq!(
        a.step(&[f32::NAN, 0.0], None),
        Err(StepError::NonFiniteInput)
    );
    assert_eq!(
        a.step(&[0.0], None),
        Err(StepError::InputLength {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(a.state(), &before[..]);
    // An f64 input beyond f32's range cannot reach the f32 kernel.
    let mut wide = Esn::<f64>::new(&config).unwrap();
    assert_eq!(
        wide.step(&[1e300, 0.0], None),
        Err(StepError::NonFiniteInput)
    );
    // An f64 state is rounded to the kernel's f32 once, and `state` says so.
    wide.set_state(&[0.1; 64]).unwrap();
    assert_eq!(wide.state()[0], f64::from(0.1f32));
}

#[test]
fn step_kernel_names_and_errors_are_typed() {
    assert_eq!(StepKernel::parse("exact"), Ok(StepKernel::Exact));
    assert_eq!(
        StepKernel::parse("avx2"),
        Ok(StepKernel::Fused(Variant::Avx2Fma))
    );
    assert_eq!(StepKernel::parse("fast"), Ok(StepKernel::fast()));
    assert_eq!(
        StepKernel::fast(),
        StepKernel::Fused(Kernel::best().variant())
    );
    let e = StepKernel::parse("avx9").unwrap_err();
    assert!(e.to_string().contains("\"avx9\""), "{e}");
    // Stored configs name a concrete variant; "fast" would mean different bits elsewhere.
    assert!(StepKernel::try_from(alloc::string::String::from("fast")).is_err());
    for v in Variant::ALL {
        let config = fused_config(30, 0, StepKernel::Fused(v));
        let got = Esn::<f32>::new(&config);
        if v.is_supported() {
            assert!(got.is_ok(), "{v}");
        } else {
            let e = got.unwrap_err();
            assert_eq!(e, ConfigError::KernelUnsupported(v));
            assert!(e.to_string().contains(v.name()));
        }
    }
    for act in [Activation::Sigmoid, Activation::Relu, Activation::Identity] {
        let config = EsnConfig {
            activation: act,
            ..fused_config(30, 0, StepKernel::Fused(Variant::Scalar))
        };
        let e = Esn::<f32>::new(&config).unwrap_err();
        assert!(matches!(e, ConfigError::FusedUnsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("kernel \"exact\""), "{e}");
        // The exact path keeps every activation.
        assert!(Esn::<f32>::new(&EsnConfig {
            kernel: StepKernel::Exact,
            ..config
        })
        .is_ok());
    }
}

#[test]
fn esn_block_topology_scales_and_rejects_bad_sizes() {
    let config = EsnConfig {
        units: 100,
        topology: Topology::Block { size: 16 },
        ..EsnConfig::default()
    };
    let esn = Esn::<f64>::new(&config).unwrap();
    assert_eq!(esn.w().kind(), "block");
    assert_eq!(esn.w().nnz(), 100 * 10);
    let radius = spectral::reservoir_spectral_radius(esn.w()).radius;
    assert!((radius - 0.9).abs() < 1e-6, "radius {radius}");
    for size in [0, 101] {
        let bad = EsnConfig {
            topology: Topology::Block { size },
            ..config.clone()
        };
        assert_eq!(
            Esn::<f32>::new(&bad).unwrap_err(),
            ConfigError::BadBlockSize { size, units: 100 }
        );
    }
    // A saved block W that breaks its invariants is refused by from_parts.
    let mut w = esn.w().clone();
    if let ReservoirMatrix::Block(b) = &mut w {
        b.values[0] = f64::INFINITY;
    }
    let err = Esn::<f64>::from_parts(
        config.clone(),
        w,
        esn.w_in().clone(),
        None,
        esn.bias().to_vec(),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::BlockMatrix(BlockError::NonFinite { .. })
    ));
}

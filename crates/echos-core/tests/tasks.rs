//! End-to-end engine behaviour on tasks with known answers: memory capacity of systems whose
//! capacity is known, and teacher-forced training followed by closed-loop generation.

use echos_core::esn::{Activation, Esn, EsnConfig};
use echos_core::matrix::Dense;
use echos_core::metrics::nrmse;
use echos_core::model::{memory_capacity, Trained};
use echos_core::rng::Rng;
use echos_core::topology::{ReservoirMatrix, Topology};

fn iid_input(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

#[test]
fn linear_delay_line_remembers_exactly_its_length() {
    // Identity units on a delay line fed only at unit 0: x_i(t) = u(t−i), so delays
    // 1..N−1 are recalled perfectly and longer ones not at all: MC over 1..=2N is N−1.
    let n = 20;
    let config = EsnConfig {
        units: n,
        topology: Topology::DelayLine,
        activation: Activation::Identity,
        bias_scaling: 0.0,
        ..EsnConfig::default()
    };
    let mut w_in = Dense::zeros(n, 1).unwrap();
    w_in.set(0, 0, 1.0);
    let w = ReservoirMatrix::DelayLine {
        units: n,
        weight: 1.0,
    };
    let mut esn = Esn::from_parts(config, w, w_in, None, vec![0.0; n]).unwrap();
    let u = iid_input(4000, 1);
    let mc = memory_capacity(&mut esn, &u, 2 * n, 2000, 1..=2 * n, 1e-9).unwrap();
    esn.reset();
    let mc0 = memory_capacity(&mut esn, &u, 2 * n, 2000, 0..=2 * n, 1e-9).unwrap();
    assert!((mc0 - n as f64).abs() < 0.05, "MC from delay 0: {mc0}");
    assert!((mc - (n as f64 - 1.0)).abs() < 0.05, "MC {mc}");
}

#[test]
fn linear_random_reservoir_approaches_n_and_tanh_stays_below() {
    // Jaeger (2002): a linear reservoir with generic weights has MC = N (in the limit of long
    // series and delays); any reservoir has MC ≤ N.
    let n = 10;
    let u = iid_input(6000, 2);
    let base = EsnConfig {
        units: n,
        spectral_radius: 0.8,
        connectivity: 1.0,
        input_scaling: 0.1,
        bias_scaling: 0.0,
        seed: 5,
        ..EsnConfig::default()
    };
    let mut linear = Esn::<f64>::new(&EsnConfig {
        activation: Activation::Identity,
        ..base.clone()
    })
    .unwrap();
    let mc_linear = memory_capacity(&mut linear, &u, 100, 3000, 0..=60, 1e-12).unwrap();
    linear.reset();
    let mc_linear_from_1 = memory_capacity(&mut linear, &u, 100, 3000, 1..=60, 1e-12).unwrap();
    let mut tanh = Esn::<f64>::new(&EsnConfig {
        input_scaling: 1.0,
        ..base
    })
    .unwrap();
    let mc_tanh = memory_capacity(&mut tanh, &u, 100, 3000, 0..=60, 1e-12).unwrap();
    eprintln!(
        "MC linear {mc_linear:.3} (delays 1..: {mc_linear_from_1:.3}), tanh {mc_tanh:.3} (N = {n})"
    );
    // Finite test sets bias each r² up by about 1/T_test per delay: 61/2900 ≈ 0.02 in total.
    assert!((mc_linear - n as f64).abs() < 0.2, "{mc_linear}");
    assert!(mc_linear_from_1 < mc_linear && mc_linear_from_1 > mc_linear - 1.05);
    assert!(mc_tanh < mc_linear - 1.0, "{mc_tanh} vs {mc_linear}");
}

#[test]
fn teacher_forced_training_then_closed_loop_generation() {
    // One-step-ahead prediction of a sine, then generation with the output fed back as input.
    let series: Vec<f64> = (0..1401).map(|t| (t as f64 * 0.2).sin()).collect();
    let config = EsnConfig {
        units: 100,
        spectral_radius: 0.9,
        leak_rate: 0.5,
        input_scaling: 0.5,
        seed: 7,
        ..EsnConfig::default()
    };
    let esn = Esn::<f64>::new(&config).unwrap();
    let (inputs, targets) = (&series[..1200], &series[1..1201]);
    let mut model = Trained::fit_ridge(esn, inputs, targets, 100, 1e-8).unwrap();
    assert_eq!(model.last_output(), &[series[1200]]);
    let mut generated = vec![0.0; 200];
    model.run_closed_loop(200, None, &mut generated).unwrap();
    let err = nrmse(&generated, &series[1201..1401]).unwrap();
    eprintln!("closed-loop NRMSE over 200 steps: {err:.2e}");
    assert!(err < 0.05, "closed-loop NRMSE {err}");

    // Teacher-forced run reproduces the training fit on fresh data.
    let esn = Esn::<f64>::new(&config).unwrap();
    let mut model = Trained::fit_ridge(esn, inputs, targets, 100, 1e-8).unwrap();
    model.esn.reset();
    let mut out = vec![0.0; 1200];
    model.run_teacher_forced(inputs, None, &mut out).unwrap();
    let err = nrmse(&out[100..], &targets[100..]).unwrap();
    assert!(err < 1e-3, "teacher-forced NRMSE {err}");
}

#[test]
fn output_feedback_generator() {
    // Jaeger's sine generator: no real input (a constant 0), the output fed back through W_fb.
    let series: Vec<f64> = (0..1300).map(|t| 0.5 * (t as f64 * 0.25).sin()).collect();
    let config = EsnConfig {
        units: 100,
        inputs: 1,
        outputs: 1,
        spectral_radius: 0.8,
        feedback_scaling: 1.0,
        input_scaling: 0.0,
        bias_scaling: 0.2,
        seed: 3,
        ..EsnConfig::default()
    };
    let esn = Esn::<f64>::new(&config).unwrap();
    let zeros = vec![0.0; 1100];
    let mut model = Trained::fit_ridge(esn, &zeros, &series[..1100], 100, 1e-9).unwrap();
    let mut generated = vec![0.0; 200];
    model
        .run_closed_loop(200, Some(&vec![0.0; 200]), &mut generated)
        .unwrap();
    let err = nrmse(&generated, &series[1100..1300]).unwrap();
    eprintln!("feedback generator NRMSE over 200 steps: {err:.2e}");
    assert!(err < 0.1, "generator NRMSE {err}");
}

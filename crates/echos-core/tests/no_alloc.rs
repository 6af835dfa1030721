//! The step path allocates nothing: a counting global allocator watches many steps of every
//! reservoir storage kind, with and without feedback, plus the online readouts and the ring.

use echos_core::esn::{Esn, EsnConfig, StepKernel};
use echos_core::history::StateRing;
use echos_core::kernels::Kernel;
use echos_core::model::{Generative, Trained};
use echos_core::readout::{Linear, Lms, Ridge, Rls};
use echos_core::scalar::Scalar;
use echos_core::topology::{MatrixFormat, Topology};

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

/// Allocations made by this thread while `f` runs.
fn count_allocations(f: impl FnOnce()) -> usize {
    echos_testalloc::count_allocations(f).0
}

fn check_kind<T: Scalar>(topology: Topology, format: MatrixFormat, outputs: usize, kind: &str) {
    check_kind_with::<T>(topology, format, outputs, kind, StepKernel::Exact);
}

fn check_kind_with<T: Scalar>(
    topology: Topology,
    format: MatrixFormat,
    outputs: usize,
    kind: &str,
    kernel: StepKernel,
) {
    let config = EsnConfig {
        kernel,
        units: 200,
        inputs: 3,
        outputs,
        topology,
        format,
        connectivity: 0.05,
        leak_rate: 0.5,
        ..EsnConfig::default()
    };
    let mut esn = Esn::<T>::new(&config).unwrap();
    assert_eq!(esn.w().kind(), kind);
    let mut ring = StateRing::<T>::new(16, 200).unwrap();
    let mut ridge = Ridge::new(200, 2, 1e-6).unwrap();
    let mut rls = Rls::new(200, 2, 0.999, 1.0).unwrap();
    let mut lms = Lms::new(200, 2, 1e-3).unwrap();
    let readout = Linear::zeros(200, 2).unwrap();
    let u = [T::from_f64(0.1), T::from_f64(-0.2), T::from_f64(0.3)];
    let fb_values = [T::from_f64(0.05), T::from_f64(0.02)];
    let fb = if outputs > 0 {
        Some(&fb_values[..outputs])
    } else {
        None
    };
    let target = [T::from_f64(0.5), T::from_f64(-0.5)];
    let mut y = [T::zero(); 2];
    // Whole-sequence runs and state restores (noisy training restores every step).
    let steps = 20;
    let seq: Vec<T> = (0..steps * 3)
        .map(|i| T::from_f64(0.01 * i as f64))
        .collect();
    let fb_seq: Vec<T> = (0..steps * outputs).map(|_| T::from_f64(0.02)).collect();
    let fb_seq = (outputs > 0).then_some(&fb_seq[..]);
    let mut states = vec![T::zero(); steps * 200];
    let snapshot = vec![T::from_f64(0.1); 200];
    let n = count_allocations(|| {
        for _ in 0..500 {
            let x = esn.step(&u, fb).unwrap();
            ring.push(x).unwrap();
            readout.predict(x, &mut y).unwrap();
            ridge.accumulate(x, &target).unwrap();
            rls.update(x, &target).unwrap();
            lms.update(x, &target).unwrap();
        }
        for _ in 0..10 {
            esn.set_state(&snapshot).unwrap();
            esn.run_into(&seq, fb_seq, &mut states).unwrap();
        }
    });
    assert_eq!(
        n, 0,
        "{kind} with {outputs} feedback dims, kernel {kernel}, allocated {n} times"
    );
}

#[test]
fn step_paths_do_not_allocate() {
    for outputs in [0, 2] {
        check_kind::<f32>(Topology::Random, MatrixFormat::Dense, outputs, "dense");
        check_kind::<f64>(Topology::Random, MatrixFormat::Csr, outputs, "csr");
        check_kind::<f32>(Topology::Cycle, MatrixFormat::Auto, outputs, "cycle");
        check_kind::<f64>(
            Topology::DelayLine,
            MatrixFormat::Auto,
            outputs,
            "delay_line",
        );
        check_kind::<f32>(
            Topology::CycleJumps { jump: 6 },
            MatrixFormat::Auto,
            outputs,
            "cycle_jumps",
        );
    }
    // The fused step kernels, every variant this CPU has, sparse, dense and structured.
    for k in Kernel::available() {
        let kernel = StepKernel::Fused(k.variant());
        for outputs in [0, 2] {
            check_kind_with::<f32>(Topology::Random, MatrixFormat::Csr, outputs, "csr", kernel);
            check_kind_with::<f32>(
                Topology::Random,
                MatrixFormat::Dense,
                outputs,
                "dense",
                kernel,
            );
            check_kind_with::<f64>(
                Topology::Cycle,
                MatrixFormat::Auto,
                outputs,
                "cycle",
                kernel,
            );
        }
    }
    // The trained model's step and closed-loop run, after their buffers exist.
    let config = EsnConfig {
        units: 100,
        inputs: 1,
        outputs: 1,
        ..EsnConfig::default()
    };
    let esn = Esn::<f64>::new(&config).unwrap();
    let mut model = Trained::new(
        esn,
        Linear::zeros(101, 1).unwrap(),
        true,
        Generative::Feedback,
    )
    .unwrap();
    let mut out = vec![0.0; 200];
    let mut y = [0.0];
    let (inputs, teacher) = (vec![0.1; 600], vec![0.2; 600]);
    let mut run_out = vec![0.0; 600];
    // The first chunked run sizes the driver's chunk buffers; after that nothing allocates.
    model.run(&inputs, Some(&teacher), &mut run_out).unwrap();
    let n = count_allocations(|| {
        for _ in 0..200 {
            model.step(&[0.1], Some(&[0.2]), &mut y).unwrap();
        }
        model.generate(&mut out).unwrap();
        model.run(&inputs, Some(&teacher), &mut run_out).unwrap();
        model.run(&inputs, None, &mut run_out).unwrap();
    });
    assert_eq!(n, 0, "trained model step allocated {n} times");
    // The counter itself works: a Vec allocates.
    echos_testalloc::assert_counter_works();
}

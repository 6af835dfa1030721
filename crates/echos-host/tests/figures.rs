//! The figures issue 2 requires of the benchmark tasks, checked with fixed seeds (0, 1, 2)
//! averaged over runs. The hyperparameters were chosen on other seeds (1000 and up; see
//! examples/tune.rs), never on these. References: ReservoirPy 0.4.2's best grid points reach
//! NARMA10 NRMSE 0.329 (100 units) and 0.259 (200 units) and memory capacity 37.8; Jaeger's
//! GMD Report 148 gives NRMSE84 2.8e-4 for Mackey-Glass with 400 units.

use echos_host::tasks::{self, Figure, TaskName, TaskOptions};

fn figure(task: TaskName, units: usize, runs: usize) -> (f64, Vec<f64>) {
    let opts = TaskOptions {
        units: Some(units),
        seed: 0,
        runs: Some(runs),
        shared_data: None,
    };
    let report = tasks::run(task, &opts, &mut |_| {}).expect("task runs");
    eprintln!(
        "{} units={units}: {} = {:.6} ± {:.6} over {runs} runs {:?} in {:.2} s",
        task.as_str(),
        report.figure.name(),
        report.figure.value(),
        report.std,
        report.per_run,
        report.seconds
    );
    (report.figure.value(), report.per_run)
}

#[test]
fn narma10_100_units_beats_0_33() {
    let (nrmse, _) = figure(TaskName::Narma10, 100, 3);
    assert!(nrmse <= 0.33, "NARMA10 NRMSE {nrmse} > 0.33 at 100 units");
}

/// The same figure with the reservoir on the fused kernel (SELL-16, rational tanh) of every
/// variant this CPU has: the fast path must not cost accuracy.
#[test]
fn narma10_100_units_beats_0_33_on_the_fused_kernels() {
    let setup = echos_host::tasks::Narma10Setup::for_units(100);
    for k in echos_core::kernels::Kernel::available() {
        let kernel = echos_core::esn::StepKernel::Fused(k.variant());
        let runs: Vec<f64> = (0..3)
            .map(|seed| setup.run_with_kernel(seed, kernel).expect("task runs"))
            .collect();
        let nrmse = runs.iter().sum::<f64>() / runs.len() as f64;
        eprintln!("narma10 units=100 kernel={kernel}: nrmse = {nrmse:.6} {runs:?}");
        assert!(nrmse <= 0.33, "{kernel}: NARMA10 NRMSE {nrmse} > 0.33");
    }
}

#[test]
fn narma10_200_units_beats_0_26() {
    let (nrmse, _) = figure(TaskName::Narma10, 200, 3);
    assert!(nrmse <= 0.26, "NARMA10 NRMSE {nrmse} > 0.26 at 200 units");
}

#[test]
fn memory_capacity_100_units_at_least_37() {
    let (mc, per_run) = figure(TaskName::MemoryCapacity, 100, 3);
    assert!(mc >= 37.0, "memory capacity {mc} < 37");
    // A capacity above the number of units would mean the test segment leaked into training.
    assert!(per_run.iter().all(|&m| m <= 100.0), "{per_run:?}");
}

#[test]
fn mackey_glass_nrmse84_400_units_within_3e_4() {
    let (nrmse84, _) = figure(TaskName::MackeyGlass, 400, 3);
    assert!(nrmse84 <= 3e-4, "Mackey-Glass NRMSE84 {nrmse84} > 3e-4");
}

#[test]
fn santafe_one_step_prediction_is_accurate() {
    if echos_host::shared_data_dir("santafe_one_step_prediction_is_accurate").is_none() {
        return;
    }
    let opts = TaskOptions {
        units: Some(200),
        seed: 0,
        runs: Some(2),
        shared_data: echos_host::shared_data_dir("santafe"),
    };
    let report = tasks::run(TaskName::Santafe, &opts, &mut |_| {}).expect("task runs");
    let Figure::Nrmse(nrmse) = report.figure else {
        panic!("santafe reports nrmse");
    };
    // Baseline: persistence, s(t+1) predicted as s(t), over the same test segment.
    let dir = echos_host::shared_data_dir("santafe").expect("checked above");
    let s = echos_host::datasets::santafe(&dir)
        .unwrap()
        .column_values(0);
    let setup = echos_host::tasks::SantaFeSetup::default();
    let start = setup.washout + setup.train;
    let truth = &s[start + 1..=start + setup.test];
    let persistence = echos_core::metrics::nrmse(&s[start..start + setup.test], truth).unwrap();
    eprintln!(
        "santafe units=200: nrmse = {nrmse:.4} {:?}; persistence {persistence:.4}",
        report.per_run
    );
    assert!(
        nrmse < persistence / 3.0,
        "Santa Fe NRMSE {nrmse} vs persistence {persistence}"
    );
}

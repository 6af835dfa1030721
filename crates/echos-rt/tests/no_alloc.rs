//! The loop path allocates nothing: a counting global allocator, armed on the loop's thread
//! only, sees no allocation, reallocation or free during 20,000 periods of a pipeline with
//! every loop-side stage in use (series source, fused-kernel reservoir, feedback model, shared
//! region snapshot + ring, file sink queue, memory sink).

use std::sync::atomic::AtomicBool;

use echos_core::model::Generative;
use echos_host::training::{train, Solver, TrainOptions};
use echos_host::Array2;
use echos_rt::config::Timing;
use echos_rt::shm::{Region, Shape};
use echos_rt::{End, FileSink, MemorySink, Pipeline, SeriesSource, Sink};

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

const PERIODS: u64 = 20_000;

fn timing() -> Timing {
    let mut t = Timing::from_us(20, None, None, Some(PERIODS)).unwrap();
    t.snapshot_every = 1;
    t.stats_every = 7;
    t
}

fn sine(rows: usize) -> Array2 {
    Array2::new(
        rows,
        1,
        (0..rows).map(|t| (t as f64 * 0.3).sin() * 0.5).collect(),
    )
    .unwrap()
}

fn run_armed(model: echos_core::model::Trained<f64>, tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let outputs = model.outputs();
    let shape = Shape {
        units: model.esn().units(),
        inputs: model.inputs(),
        outputs,
        ring_capacity: 256,
        period_ns: 20_000,
    };
    let region = Region::create(
        &format!("noalloc-{tag}-{}", std::process::id()),
        &shape,
        true,
    )
    .unwrap();
    let sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(MemorySink::new(outputs, PERIODS as usize)),
        Box::new(FileSink::create(&dir.path().join("y.npy"), outputs).unwrap()),
    ];
    let source = Box::new(SeriesSource::new(sine(777), true, "sine").unwrap());
    let mut p = Pipeline::new(model, source, sinks, Some(region), true, timing()).unwrap();
    let stop = AtomicBool::new(false);
    let (out, usage) = echos_testalloc::measure(|| p.run(&stop));
    let calls = usage.allocations + usage.frees;
    assert_eq!(out.end, End::Periods, "{tag}");
    assert_eq!(out.stats.periods, PERIODS);
    assert_eq!(out.stats.steps, PERIODS);
    assert_eq!(calls, 0, "{tag}: {calls} allocator calls on the loop path");
    let mut parts = p.into_parts();
    for s in &mut parts.sinks {
        // The file sink may drop if its writer thread was starved; what matters here is
        // that the loop side never allocated.
        let _ = s.finish();
    }
}

#[test]
fn the_loop_path_never_calls_the_allocator() {
    // Fused fast kernel, no feedback: the benchmark's model.
    run_armed(echos_rt::bench::bench_model(200, 7).unwrap(), "fused");
    // Exact kernel with output feedback: the y(t−1) path.
    let u = sine(600);
    let y = Array2::new(600, 1, u.data().iter().map(|v| v * 0.8).collect()).unwrap();
    let opts = TrainOptions {
        units: 60,
        spectral_radius: 0.9,
        leak_rate: 0.7,
        input_scaling: 0.5,
        bias_scaling: 0.1,
        connectivity: 0.2,
        topology: Default::default(),
        ridge: 1e-6,
        washout: 50,
        input_features: true,
        generative: Generative::Feedback,
        feedback_scaling: 0.3,
        noise: 0.0,
        solver: Solver::NormalEquations,
        seed: 5,
        kernel: Default::default(),
    };
    let model = train(&opts, &u, &y).unwrap();
    assert!(
        model.esn().outputs() > 0,
        "the feedback path must be exercised"
    );
    run_armed(model.driver().clone(), "feedback");
}

#[test]
fn the_counter_sees_an_allocation_when_armed() {
    // The instrument itself: an allocation on the measuring thread is counted.
    echos_testalloc::assert_counter_works();
}

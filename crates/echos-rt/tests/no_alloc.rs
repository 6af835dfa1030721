//! The loop path allocates nothing: a counting global allocator, armed on the loop's thread
//! only, sees no allocation, reallocation or free during 20,000 periods of a pipeline with
//! every loop-side stage in use (series source, fused-kernel reservoir, feedback model, shared
//! region snapshot + ring, file sink queue, memory sink).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use echos_core::model::Generative;
use echos_host::training::{train, Solver, TrainOptions};
use echos_host::Array2;
use echos_rt::config::Timing;
use echos_rt::shm::{Region, Shape};
use echos_rt::{End, FileSink, MemorySink, Pipeline, SeriesSource, Sink};

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}
static CALLS: AtomicU64 = AtomicU64::new(0);

fn count() {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; counting touches only an
// atomic and a const-initialised thread-local (no allocation, no re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let before = CALLS.load(Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    let out = p.run(&stop);
    ARMED.with(|a| a.set(false));
    let calls = CALLS.load(Ordering::Relaxed) - before;
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
    // The instrument itself: an allocation on an armed thread is counted.
    let before = CALLS.load(Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    let v = std::hint::black_box(vec![1u8; 64]);
    ARMED.with(|a| a.set(false));
    drop(v);
    assert!(CALLS.load(Ordering::Relaxed) - before >= 1);
}

//! Steps per second of the reservoir update, measured in thread CPU time so that other
//! processes competing for the cores do not inflate it (wall time is printed beside it):
//!
//!     cargo run --release -p echos-core --example step_rate
//!
//! Shapes follow the ReservoirPy comparison in shared/DESIGN.md ("Peers measured here": sparse
//! reservoir, connectivity 0.1, N = 100/500/1000, 10,000 steps, one input).

use std::hint::black_box;
use std::time::Instant;

use echos_core::esn::{Esn, EsnConfig};
use echos_core::scalar::Scalar;
use echos_core::topology::{MatrixFormat, Topology};

/// CPU time consumed by this thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_THREAD_CPUTIME_ID is supported on
    // Linux; the call writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn measure<T: Scalar>(label: &str, units: usize, topology: Topology, format: MatrixFormat) {
    let config = EsnConfig {
        units,
        connectivity: 0.1,
        topology,
        format,
        leak_rate: 0.3,
        ..EsnConfig::default()
    };
    let mut esn = Esn::<T>::new(&config).expect("benchmark configuration is valid");
    let inputs: Vec<T> = (0..10_000)
        .map(|t| T::from_f64(libm::sin(t as f64 * 0.01)))
        .collect();
    for u in inputs.iter().take(1000) {
        black_box(esn.step(std::slice::from_ref(u), None).unwrap());
    }
    // Best of five runs of 10,000 steps: the least disturbed one.
    let mut best_cpu = f64::INFINITY;
    let mut best_wall = f64::INFINITY;
    for _ in 0..5 {
        let (c0, w0) = (thread_cpu_seconds(), Instant::now());
        for u in &inputs {
            black_box(esn.step(std::slice::from_ref(u), None).unwrap());
        }
        best_cpu = best_cpu.min(thread_cpu_seconds() - c0);
        best_wall = best_wall.min(w0.elapsed().as_secs_f64());
    }
    println!(
        "{label:<28} N={units:<5} {:>10.0} steps/s (CPU)  {:>10.0} steps/s (wall)  [{} storage]",
        10_000.0 / best_cpu,
        10_000.0 / best_wall,
        esn.w().kind()
    );
}

fn main() {
    for units in [100, 500, 1000] {
        measure::<f32>(
            "f32 sparse c=0.1",
            units,
            Topology::Random,
            MatrixFormat::Csr,
        );
        measure::<f64>(
            "f64 sparse c=0.1",
            units,
            Topology::Random,
            MatrixFormat::Csr,
        );
        measure::<f32>("f32 dense", units, Topology::Random, MatrixFormat::Dense);
        measure::<f32>("f32 cycle", units, Topology::Cycle, MatrixFormat::Auto);
    }
}

//! Step rate of the reservoir update (`cargo bench -p echos-core --bench esn_step`), on the
//! shapes the project compares with ReservoirPy (sparse, connectivity 0.1, N = 100/500/1000;
//! see shared/DESIGN.md "Peers measured here"), plus the structured, block-sparse and dense
//! storage kinds and the online readouts, and the fused step kernels (`EsnConfig::kernel`)
//! through `Esn::step`. Throughput is reported in steps per second.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use echos_core::esn::{Esn, EsnConfig, StepKernel};
use echos_core::kernels::Kernel;
use echos_core::readout::{Ridge, Rls};
use echos_core::scalar::Scalar;
use echos_core::topology::{MatrixFormat, Topology};
use std::hint::black_box;

fn config(units: usize, topology: Topology, format: MatrixFormat) -> EsnConfig {
    EsnConfig {
        units,
        connectivity: 0.1,
        topology,
        format,
        leak_rate: 0.3,
        ..EsnConfig::default()
    }
}

fn bench_kind<T: Scalar>(c: &mut Criterion, group: &str, topology: Topology, format: MatrixFormat) {
    bench_kernel::<T>(c, group, topology, format, StepKernel::Exact);
}

fn bench_kernel<T: Scalar>(
    c: &mut Criterion,
    group: &str,
    topology: Topology,
    format: MatrixFormat,
    kernel: StepKernel,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for units in [100usize, 500, 1000] {
        let config = EsnConfig {
            kernel,
            ..config(units, topology, format)
        };
        let mut esn = Esn::<T>::new(&config).unwrap();
        let mut t = 0u64;
        g.bench_with_input(BenchmarkId::from_parameter(units), &units, |b, _| {
            b.iter(|| {
                t += 1;
                let u = [T::from_f64(libm::sin(t as f64 * 0.01))];
                black_box(esn.step(black_box(&u), None).unwrap()[0])
            })
        });
    }
    g.finish();
}

fn steps(c: &mut Criterion) {
    bench_kind::<f32>(c, "step_f32_csr_c0.1", Topology::Random, MatrixFormat::Csr);
    bench_kind::<f64>(c, "step_f64_csr_c0.1", Topology::Random, MatrixFormat::Csr);
    bench_kind::<f32>(c, "step_f32_dense", Topology::Random, MatrixFormat::Dense);
    bench_kind::<f32>(c, "step_f32_cycle", Topology::Cycle, MatrixFormat::Auto);
    for k in Kernel::available() {
        let group = format!("step_fused_{}_csr_c0.1", k.variant().name());
        let kernel = StepKernel::Fused(k.variant());
        bench_kernel::<f32>(c, &group, Topology::Random, MatrixFormat::Csr, kernel);
    }
    // The engine's exact (portable) path for the block topology; the fused kernel is `step`.
    bench_kind::<f32>(
        c,
        "step_f32_block16_c0.1",
        Topology::Block { size: 16 },
        MatrixFormat::Auto,
    );
}

fn readouts(c: &mut Criterion) {
    let mut g = c.benchmark_group("readout_update_units500");
    g.throughput(Throughput::Elements(1));
    let x: Vec<f64> = (0..500).map(|i| libm::sin(i as f64)).collect();
    let mut ridge = Ridge::new(500, 1, 1e-6).unwrap();
    g.bench_function("ridge_accumulate", |b| {
        b.iter(|| ridge.accumulate(black_box(&x), &[0.5]).unwrap())
    });
    let mut rls = Rls::new(500, 1, 0.999, 1.0).unwrap();
    g.bench_function("rls_update", |b| {
        b.iter(|| rls.update(black_box(&x), &[0.5]).unwrap())
    });
    g.finish();
}

criterion_group!(benches, steps, readouts);
criterion_main!(benches);

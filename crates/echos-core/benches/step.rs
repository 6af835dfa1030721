//! Criterion benchmarks of the reservoir step: each kernel variant, N = 100, 500, 1000, 2000 at
//! connectivity 0.1 (and dense for N ≤ 500), single sequence, a batch of 32 and an ensemble of
//! 64 (one thread here; the multi-core runners are measured by `echos esn bench`), and the
//! block-sparse topology's gather-free step (`step/block16/N`, `batch32/block16/N`) and its
//! opt-in bf16-products batch format (`batch32/block16bf16/N`).
//! Run: `cargo bench -p echos-core --bench step` (filter e.g. `-- 'step/csr/1000'`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use echos_core::esn::{Esn, EsnConfig, StepKernel};
use echos_core::kernels::block_bf16::BlockBf16;
use echos_core::kernels::reservoir::FusedReservoir;
use echos_core::kernels::{Kernel, WeightsRef};
use echos_core::topology::{MatrixFormat, Topology, WeightDistribution};
use std::hint::black_box;

/// The fused reservoir `Esn::new` builds (the one `Esn::step` runs), in the shape `echos esn
/// bench` times: one input, uniform weights scaled to spectral radius 0.9, leak rate 0.3, bias
/// in [−0.1, 0.1], CSR below connectivity 1 and dense at 1. Its weights and layout do not
/// depend on the variant, so one reservoir serves every kernel.
fn fused(n: usize, topology: Topology, connectivity: f64, seed: u64) -> FusedReservoir {
    let config = EsnConfig {
        units: n,
        inputs: 1,
        spectral_radius: 0.9,
        leak_rate: 0.3,
        input_scaling: 1.0,
        bias_scaling: 0.1,
        connectivity,
        distribution: WeightDistribution::Uniform,
        topology,
        format: if connectivity >= 1.0 {
            MatrixFormat::Dense
        } else {
            MatrixFormat::Csr
        },
        seed,
        kernel: StepKernel::fast(),
        ..EsnConfig::default()
    };
    Esn::<f32>::new(&config)
        .expect("valid reservoir")
        .fused_reservoir()
        .expect("a fused kernel was configured")
        .clone()
}

/// A random sparse (connectivity `p`) or, at `p` = 1, dense reservoir.
fn reservoir(n: usize, p: f64, seed: u64) -> FusedReservoir {
    fused(n, Topology::Random, p, seed)
}

/// A block-sparse reservoir (`Topology::Block { size }`, connectivity 0.1).
fn block_reservoir(n: usize, size: usize, seed: u64) -> FusedReservoir {
    fused(n, Topology::Block { size }, 0.1, seed)
}

fn bench_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("step");
    for &n in &[100usize, 500, 1000, 2000] {
        let base = block_reservoir(n, 16, 1);
        for k in Kernel::available() {
            let id = BenchmarkId::new(format!("block16/{n}"), k.variant().name());
            let mut r = base.clone();
            let mut t = 0u32;
            g.throughput(Throughput::Elements(1));
            g.bench_function(id, |b| {
                b.iter(|| {
                    t = t.wrapping_add(1);
                    let u = [(t as f32 * 0.01).sin()];
                    black_box(r.step(k, &u).unwrap()[0])
                })
            });
        }
    }
    for &n in &[100usize, 500, 1000, 2000] {
        let mut formats = vec![("csr", 0.1)];
        if n <= 500 {
            formats.push(("dense", 1.0));
        }
        for (format, p) in formats {
            let base = reservoir(n, p, 1);
            for k in Kernel::available() {
                let id = BenchmarkId::new(format!("{format}/{n}"), k.variant().name());
                let mut r = base.clone();
                let mut t = 0u32;
                g.throughput(Throughput::Elements(1));
                g.bench_function(id, |b| {
                    b.iter(|| {
                        t = t.wrapping_add(1);
                        let u = [(t as f32 * 0.01).sin()];
                        black_box(r.step(k, &u).unwrap()[0])
                    })
                });
            }
        }
    }
    g.finish();
}

fn bench_matvec(c: &mut Criterion) {
    let mut g = c.benchmark_group("matvec");
    for &n in &[100usize, 1000] {
        let r = reservoir(n, 0.1, 1);
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.1).sin()).collect();
        let mut y = vec![0.0f32; n];
        for k in Kernel::available() {
            let WeightsRef::Csr(a) = r.weights_ref() else {
                unreachable!()
            };
            g.bench_function(
                BenchmarkId::new(format!("csr/{n}"), k.variant().name()),
                |b| {
                    b.iter(|| {
                        k.csr_matvec(a, black_box(&x), &mut y).unwrap();
                        black_box(y[0])
                    })
                },
            );
        }
    }
    g.finish();
}

fn bench_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch32");
    let batch = 32;
    for &n in &[100usize, 500, 1000, 2000] {
        let r = reservoir(n, 0.1, 1);
        let (w, p) = (r.csr_ref().unwrap(), r.update_ref());
        let mut x: Vec<f32> = (0..n * batch)
            .map(|i| (i as f32 * 0.37).sin() * 0.5)
            .collect();
        let mut next = vec![0.0f32; n * batch];
        let u: Vec<f32> = (0..batch).map(|b| b as f32 * 0.01).collect();
        for k in Kernel::available() {
            // Throughput in sequence-steps: one iteration advances all 32 sequences.
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(
                BenchmarkId::new(format!("csr/{n}"), k.variant().name()),
                |b| {
                    b.iter(|| {
                        k.leaky_step_batch_rows(w, p, batch, 0..n, &u, &x, &mut next)
                            .unwrap();
                        std::mem::swap(&mut x, &mut next);
                    })
                },
            );
        }
        let rb = block_reservoir(n, 16, 1);
        let m = rb.block().expect("block reservoir");
        for k in Kernel::available() {
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(
                BenchmarkId::new(format!("block16/{n}"), k.variant().name()),
                |b| {
                    b.iter(|| {
                        k.block_leaky_step_batch(m, 0.3, batch, &u, &x, &mut next)
                            .unwrap();
                        std::mem::swap(&mut x, &mut next);
                    })
                },
            );
        }
        // The opt-in bf16-products format (centre zero; the centre does not change the work).
        // Only avx512 runs the instruction (where the CPU has AVX-512 BF16); the others the
        // portable form.
        let mb = BlockBf16::from_block(m).expect("bf16 form");
        let mut scratch = vec![0u16; n * batch];
        for k in Kernel::available() {
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(
                BenchmarkId::new(format!("block16bf16/{n}"), k.variant().name()),
                |b| {
                    b.iter(|| {
                        mb.step_batch(k, 0.3, batch, &u, &x, &mut scratch, &mut next)
                            .unwrap();
                        std::mem::swap(&mut x, &mut next);
                    })
                },
            );
        }
    }
    g.finish();
}

fn bench_ensemble(c: &mut Criterion) {
    let mut g = c.benchmark_group("ensemble64");
    g.sample_size(20);
    for &n in &[100usize, 500, 1000, 2000] {
        let mut members: Vec<FusedReservoir> = (0..64).map(|m| reservoir(n, 0.1, m)).collect();
        for k in Kernel::available() {
            g.throughput(Throughput::Elements(64));
            g.bench_function(
                BenchmarkId::new(format!("csr/{n}"), k.variant().name()),
                |b| {
                    b.iter(|| {
                        for r in members.iter_mut() {
                            black_box(r.step(k, &[0.5]).unwrap()[0]);
                        }
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_step,
    bench_matvec,
    bench_batch,
    bench_ensemble
);
criterion_main!(benches);

//! Criterion benchmarks of the reservoir step: each kernel variant, N = 100, 500, 1000, 2000 at
//! connectivity 0.1 (and dense for N ≤ 500), single sequence, a batch of 32 and an ensemble of
//! 64 (one thread here; the multi-core runners are measured by `echos esn bench`), and the
//! block-sparse topology's gather-free step (`step/block16/N`, `batch32/block16/N`) and its
//! opt-in bf16-products batch format (`batch32/block16bf16/N`).
//! Run: `cargo bench -p echos-core --bench step` (filter e.g. `-- 'step/csr/1000'`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use echos_core::kernels::block_bf16::BlockBf16;
use echos_core::kernels::reservoir::{FusedReservoir, OwnedWeights};
use echos_core::kernels::{Kernel, WeightsRef};
use std::hint::black_box;

struct SplitMix64(u64);
impl SplitMix64 {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Same construction as echos-host's `random_reservoir` (circular-law scaling to radius 0.9).
fn reservoir(n: usize, p: f64, seed: u64) -> FusedReservoir {
    let mut rng = SplitMix64(seed);
    let scale = 0.9 / ((1.0 / 3.0) * n as f64 * p).sqrt();
    let weights = if p >= 1.0 {
        OwnedWeights::Dense(
            (0..n * n)
                .map(|_| ((rng.uniform() * 2.0 - 1.0) * scale) as f32)
                .collect(),
        )
    } else {
        let (mut indptr, mut indices, mut values) = (vec![0u32], Vec::new(), Vec::new());
        for _ in 0..n {
            for c in 0..n {
                if rng.uniform() < p {
                    indices.push(c as u32);
                    values.push(((rng.uniform() * 2.0 - 1.0) * scale) as f32);
                }
            }
            indptr.push(indices.len() as u32);
        }
        OwnedWeights::Csr {
            indptr,
            indices,
            values,
        }
    };
    let w_in = (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
    let bias = (0..n)
        .map(|_| ((rng.uniform() * 2.0 - 1.0) * 0.1) as f32)
        .collect();
    FusedReservoir::new(n, 1, weights, w_in, bias, 0.3).expect("valid reservoir")
}

/// A block-sparse reservoir (`Topology::Block { size }`, connectivity 0.1) drawn by the engine,
/// weights scaled by the same circular-law estimate.
fn block_reservoir(n: usize, size: usize, seed: u64) -> FusedReservoir {
    use echos_core::topology::{nonzeros_per_row, random_block, WeightDistribution};
    let k = nonzeros_per_row(n, 0.1);
    let mut rng = echos_core::rng::Rng::new(seed);
    let b = random_block(n, size, k, WeightDistribution::Uniform, &mut rng);
    let scale = 0.9 / ((1.0 / 3.0) * k as f64).sqrt();
    let values: Vec<f32> = b.values.iter().map(|v| (v * scale) as f32).collect();
    let mut r = SplitMix64(seed);
    let w_in = (0..n).map(|_| (r.uniform() * 2.0 - 1.0) as f32).collect();
    let bias = (0..n)
        .map(|_| ((r.uniform() * 2.0 - 1.0) * 0.1) as f32)
        .collect();
    FusedReservoir::new_block(n, 1, size, k, &b.indices, &values, w_in, bias, 0.3)
        .expect("valid block reservoir")
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

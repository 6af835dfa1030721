//! Kernel tests: every variant this CPU has against the scalar reference and against itself.

use super::*;
use alloc::vec;
use alloc::vec::Vec;

/// Raw SplitMix64 output: enough randomness for test matrices, a stream apart from the
/// reservoirs' xoshiro draws (so these tests do not move when the engine's draw order does).
pub(crate) struct TestRng(crate::rng::SplitMix64);
impl TestRng {
    pub(crate) fn new(seed: u64) -> Self {
        TestRng(crate::rng::SplitMix64::new(seed))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    pub(crate) fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

pub(crate) struct TestCsr {
    pub(crate) n: usize,
    pub(crate) indptr: Vec<u32>,
    pub(crate) indices: Vec<u32>,
    pub(crate) values: Vec<f32>,
}

impl TestCsr {
    pub(crate) fn random(n: usize, p: f64, scale: f32, seed: u64) -> TestCsr {
        let mut rng = TestRng::new(seed);
        let mut indptr = vec![0u32];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for _ in 0..n {
            for c in 0..n {
                if (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p {
                    indices.push(c as u32);
                    values.push(rng.uniform() * scale);
                }
            }
            indptr.push(indices.len() as u32);
        }
        TestCsr {
            n,
            indptr,
            indices,
            values,
        }
    }
    pub(crate) fn view(&self) -> CsrRef<'_> {
        CsrRef::new(self.n, self.n, &self.indptr, &self.indices, &self.values).unwrap()
    }
}

fn vector(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = TestRng::new(seed);
    (0..n).map(|_| rng.uniform()).collect()
}

pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A block reservoir (`FusedReservoir::new_block`) with `k` distinct ascending columns per
/// group of `size` units, weights in ±1.2/√k, inputs in ±1, bias in ±0.1, leak 0.7.
pub(crate) fn block_reservoir(
    units: usize,
    size: usize,
    k: usize,
    inputs: usize,
    seed: u64,
) -> reservoir::FusedReservoir {
    let mut rng = TestRng::new(seed);
    let groups = units.div_ceil(size);
    let mut indices = Vec::new();
    for _ in 0..groups {
        let mut cols: Vec<u32> = (0..units as u32).collect();
        for c in 0..k {
            let j = c + (rng.next_u64() % (units - c) as u64) as usize;
            cols.swap(c, j);
        }
        let mut g = cols[..k].to_vec();
        g.sort_unstable();
        indices.extend(g);
    }
    let scale = 1.2 / (k as f32).sqrt();
    let values: Vec<f32> = (0..groups * k * size)
        .map(|_| rng.uniform() * scale)
        .collect();
    let w_in = (0..units * inputs).map(|_| rng.uniform()).collect();
    let bias = (0..units).map(|_| 0.1 * rng.uniform()).collect();
    reservoir::FusedReservoir::new_block(units, inputs, size, k, &indices, &values, w_in, bias, 0.7)
        .unwrap()
}

/// |a − b| ≤ rtol · Σ|terms| per element.
fn assert_close(a: &[f32], b: &[f32], scale: &[f32], what: &str) {
    for (i, ((x, y), s)) in a.iter().zip(b).zip(scale).enumerate() {
        let tol = CROSS_VARIANT_RTOL * s.max(1e-30);
        assert!(
            (x - y).abs() <= tol,
            "{what}: element {i}: {x} vs {y} (tol {tol})"
        );
    }
}

fn csr_abs_sums(a: &TestCsr, x: &[f32]) -> Vec<f32> {
    (0..a.n)
        .map(|r| {
            (a.indptr[r] as usize..a.indptr[r + 1] as usize)
                .map(|k| (a.values[k] * x[a.indices[k] as usize]).abs())
                .sum()
        })
        .collect()
}

#[test]
#[allow(clippy::needless_range_loop)]
fn csr_matvec_variants_agree_with_scalar_and_with_themselves() {
    // Sizes and densities chosen so row lengths hit empty rows, partial and full SIMD blocks.
    for &(n, p) in &[
        (1usize, 1.0f64),
        (7, 0.5),
        (33, 0.3),
        (100, 0.1),
        (257, 0.05),
        (300, 0.9),
    ] {
        let a = TestCsr::random(n, p, 1.0, n as u64);
        let x = vector(n, 99);
        let mut reference = vec![0.0f32; n];
        Kernel::scalar()
            .csr_matvec(a.view(), &x, &mut reference)
            .unwrap();
        // Scalar against an f64 reference.
        for r in 0..n {
            let exact: f64 = (a.indptr[r] as usize..a.indptr[r + 1] as usize)
                .map(|k| a.values[k] as f64 * x[a.indices[k] as usize] as f64)
                .sum();
            assert!(
                (reference[r] as f64 - exact).abs()
                    <= 1e-5 * (1.0 + exact.abs()) * (n as f64).sqrt()
            );
        }
        let scale = csr_abs_sums(&a, &x);
        for k in Kernel::available() {
            let mut y1 = vec![f32::NAN; n];
            let mut y2 = vec![f32::NAN; n];
            k.csr_matvec(a.view(), &x, &mut y1).unwrap();
            k.csr_matvec(a.view(), &x, &mut y2).unwrap();
            assert_eq!(bits(&y1), bits(&y2), "{:?} not reproducible", k.variant());
            assert_close(&y1, &reference, &scale, k.variant().name());
        }
    }
}

#[test]
fn dense_matvec_variants_agree_with_scalar() {
    for &(rows, cols) in &[(1usize, 1usize), (5, 17), (64, 64), (33, 100)] {
        let a = vector(rows * cols, 5);
        let x = vector(cols, 6);
        let d = DenseRef::new(rows, cols, &a).unwrap();
        let mut reference = vec![0.0f32; rows];
        Kernel::scalar()
            .dense_matvec(d, &x, &mut reference)
            .unwrap();
        let scale: Vec<f32> = (0..rows)
            .map(|r| (0..cols).map(|c| (a[r * cols + c] * x[c]).abs()).sum())
            .collect();
        for k in Kernel::available() {
            let mut y1 = vec![0.0f32; rows];
            let mut y2 = vec![0.0f32; rows];
            k.dense_matvec(d, &x, &mut y1).unwrap();
            k.dense_matvec(d, &x, &mut y2).unwrap();
            assert_eq!(bits(&y1), bits(&y2));
            assert_close(&y1, &reference, &scale, k.variant().name());
        }
    }
}

struct Inputs {
    w_in: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
}
impl Inputs {
    fn new(n: usize, inputs: usize) -> Inputs {
        Inputs {
            w_in: vector(n * inputs, 11),
            bias: vector(n, 12),
            inputs,
        }
    }
    fn update(&self, leak_rate: f32) -> LeakyUpdate<'_> {
        LeakyUpdate {
            w_in: &self.w_in,
            inputs: self.inputs,
            bias: &self.bias,
            leak_rate,
        }
    }
}

#[test]
fn fused_step_variants_agree_with_scalar_over_many_steps() {
    let n = 203;
    let a = TestCsr::random(n, 0.1, 0.35, 3);
    let dense_data: Vec<f32> = {
        let mut d = vec![0.0f32; n * n];
        for r in 0..n {
            for k in a.indptr[r] as usize..a.indptr[r + 1] as usize {
                d[r * n + a.indices[k] as usize] = a.values[k];
            }
        }
        d
    };
    let inp = Inputs::new(n, 2);
    let p = inp.update(0.3);
    let weights = [
        WeightsRef::Csr(a.view()),
        WeightsRef::Dense(DenseRef::new(n, n, &dense_data).unwrap()),
    ];
    for w in weights {
        let run = |k: Kernel| {
            let (mut x, mut next) = (vec![0.0f32; n], vec![0.0f32; n]);
            for t in 0..50 {
                let u = [libm::sinf(t as f32 * 0.3), 0.5];
                k.leaky_step(w, p, &u, &x, &mut next).unwrap();
                core::mem::swap(&mut x, &mut next);
            }
            x
        };
        let reference = run(Kernel::scalar());
        for k in Kernel::available() {
            let x1 = run(k);
            assert_eq!(
                bits(&x1),
                bits(&run(k)),
                "{:?} not reproducible",
                k.variant()
            );
            // After 50 contracting steps the per-step rounding differences stay at float noise.
            for (i, (p, q)) in x1.iter().zip(&reference).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-5,
                    "{:?} unit {i}: {p} vs {q}",
                    k.variant()
                );
            }
        }
    }
}

#[test]
fn batched_step_equals_scalar_one_by_one_for_every_variant_and_batch_size() {
    let n = 97;
    let a = TestCsr::random(n, 0.15, 0.3, 8);
    let inp = Inputs::new(n, 3);
    let p = inp.update(0.5);
    for batch in [1usize, 3, 8, 16, 17, 32, 33, 64, 70] {
        // One-by-one scalar reference, two steps deep so the batch state feeds back.
        let seq_u = |b: usize, t: usize, j: usize| libm::sinf((b * 7 + t * 3 + j) as f32 * 0.1);
        let mut reference = vec![0.0f32; n * batch];
        for b in 0..batch {
            let (mut x, mut next) = (vec![0.0f32; n], vec![0.0f32; n]);
            for t in 0..2 {
                let u: Vec<f32> = (0..3).map(|j| seq_u(b, t, j)).collect();
                Kernel::scalar()
                    .leaky_step(WeightsRef::Csr(a.view()), p, &u, &x, &mut next)
                    .unwrap();
                core::mem::swap(&mut x, &mut next);
            }
            for i in 0..n {
                reference[i * batch + b] = x[i];
            }
        }
        let view = a.view();
        for k in Kernel::available() {
            let (mut x, mut next) = (vec![0.0f32; n * batch], vec![0.0f32; n * batch]);
            for t in 0..2 {
                let mut u = vec![0.0f32; 3 * batch];
                for j in 0..3 {
                    for b in 0..batch {
                        u[j * batch + b] = seq_u(b, t, j);
                    }
                }
                // Two row ranges, as the multi-core runner splits them.
                let mid = n / 3;
                let (lo, hi) = next.split_at_mut(mid * batch);
                k.leaky_step_batch_rows(view, p, batch, 0..mid, &u, &x, lo)
                    .unwrap();
                k.leaky_step_batch_rows(view, p, batch, mid..n, &u, &x, hi)
                    .unwrap();
                core::mem::swap(&mut x, &mut next);
            }
            assert_eq!(
                bits(&x),
                bits(&reference),
                "{:?} batch {batch}",
                k.variant()
            );
        }
    }
}

#[test]
fn bad_input_is_an_error_not_a_crash() {
    let a = TestCsr::random(10, 0.5, 1.0, 1);
    let x = vec![0.5f32; 10];
    let mut y = vec![0.0f32; 10];
    assert!(matches!(
        CsrRef::new(0, 10, &[0], &[], &[]),
        Err(KernelError::Dimension { .. })
    ));
    assert!(matches!(
        CsrRef::new(10, 10, &a.indptr[..10], &a.indices, &a.values),
        Err(KernelError::Length { .. })
    ));
    let mut bad_ptr = a.indptr.clone();
    bad_ptr[4] = bad_ptr[5] + 1;
    assert!(matches!(
        CsrRef::new(10, 10, &bad_ptr, &a.indices, &a.values),
        Err(KernelError::RowPointers { .. })
    ));
    // A corrupt column index never reaches a kernel: the view, the SELL-16 layout and the
    // owned reservoir all refuse it with a typed error (the SELL step gathers unclamped).
    let mut bad_idx = a.indices.clone();
    bad_idx[3] = 1_000_000;
    assert!(matches!(
        CsrRef::new(10, 10, &a.indptr, &bad_idx, &a.values),
        Err(KernelError::ColumnIndex {
            position: 3,
            index: 1_000_000,
            cols: 10
        })
    ));
    bad_idx[3] = 10; // one past the last column
    assert!(matches!(
        CsrRef::new(10, 10, &a.indptr, &bad_idx, &a.values),
        Err(KernelError::ColumnIndex { index: 10, .. })
    ));
    let owned = reservoir::FusedReservoir::new(
        10,
        1,
        reservoir::OwnedWeights::Csr {
            indptr: a.indptr.clone(),
            indices: bad_idx.clone(),
            values: a.values.clone(),
        },
        vec![0.1; 10],
        vec![0.0; 10],
        0.5,
    );
    assert!(matches!(
        owned,
        Err(KernelError::ColumnIndex { index: 10, .. })
    ));
    let short_bias = [0.0f32; 9];
    let w_in = [0.1f32; 10];
    let p = LeakyUpdate {
        w_in: &w_in,
        inputs: 1,
        bias: &short_bias,
        leak_rate: 0.5,
    };
    assert!(matches!(
        sell::SellLeaky::new(a.view(), p),
        Err(KernelError::Length { what: "bias", .. })
    ));
    for k in Kernel::available() {
        assert!(k.csr_matvec(a.view(), &x[..9], &mut y).is_err());
        assert!(k.csr_matvec(a.view(), &x, &mut y[..9]).is_err());
    }
    assert!(DenseRef::new(usize::MAX, 3, &[]).is_err());
    assert!(DenseRef::new(1 << 40, 1 << 40, &[]).is_err());
    let inp = Inputs::new(10, 1);
    let k = Kernel::scalar();
    let mut next = vec![0.0f32; 10];
    let w = WeightsRef::Csr(a.view());
    assert_eq!(
        k.leaky_step(w, inp.update(0.0), &[1.0], &x, &mut next),
        Err(KernelError::LeakRate)
    );
    assert_eq!(
        k.leaky_step(w, inp.update(f32::NAN), &[1.0], &x, &mut next),
        Err(KernelError::LeakRate)
    );
    assert!(k
        .leaky_step(w, inp.update(0.5), &[1.0, 2.0], &x, &mut next)
        .is_err());
    assert!(k
        .leaky_step_rows(w, inp.update(0.5), 5..11, &[1.0], &x, &mut next[..6])
        .is_err());
    assert!(k
        .leaky_step_batch_rows(a.view(), inp.update(0.5), 0, 0..10, &[], &[], &mut [])
        .is_err());
    assert!(k
        .leaky_step_batch_rows(
            a.view(),
            inp.update(0.5),
            usize::MAX,
            0..10,
            &[],
            &x,
            &mut next
        )
        .is_err());
}

#[test]
fn forced_variants_are_refused_exactly_when_the_cpu_lacks_them() {
    for v in Variant::ALL {
        assert_eq!(Kernel::new(v).is_ok(), v.is_supported());
        if let Err(e) = Kernel::new(v) {
            assert_eq!(e, KernelError::Unsupported(v));
        }
        assert_eq!(Variant::from_name(v.name()), Some(v));
    }
    assert!(Kernel::new(Variant::Scalar).is_ok());
    assert!(Kernel::best().variant().is_supported());
    assert_eq!(Variant::from_name("neon"), None);
}

#[test]
fn report_available_variants_and_tanh_error() {
    extern crate std;
    let names: Vec<&str> = Kernel::available().map(|k| k.variant().name()).collect();
    let mut worst = 0.0f32;
    for i in 0..2_000_000 {
        let x = -10.0 + i as f32 * 1e-5;
        worst = worst.max((tanh::fast_tanh(x) - libm::tanhf(x)).abs());
    }
    std::eprintln!("kernel variants on this CPU: {names:?}; fast_tanh max abs error {worst:e}");
    assert!(worst <= tanh::MAX_ABS_ERROR);
}

#[test]
fn sell_step_is_bit_identical_to_scalar_csr_on_every_variant() {
    use reservoir::{FusedReservoir, OwnedWeights};
    // Sizes around the 16-row slice (remainders 0, 1, 15) and rows with no non-zeros.
    for &(n, p, inputs) in &[
        (1usize, 1.0f64, 1usize),
        (16, 0.2, 2),
        (17, 0.05, 0),
        (31, 0.3, 1),
        (100, 0.1, 1),
        (203, 0.1, 3),
    ] {
        let a = TestCsr::random(n, p, 0.4, n as u64 + 5);
        let inp = Inputs::new(n, inputs);
        let r = FusedReservoir::new(
            n,
            inputs,
            OwnedWeights::Csr {
                indptr: a.indptr.clone(),
                indices: a.indices.clone(),
                values: a.values.clone(),
            },
            inp.w_in.clone(),
            inp.bias.clone(),
            0.4,
        )
        .unwrap();
        let run = |k: Kernel| {
            let mut r = r.clone();
            for t in 0..40 {
                let u: Vec<f32> = (0..inputs)
                    .map(|j| libm::sinf((t * 3 + j) as f32 * 0.2))
                    .collect();
                r.step(k, &u).unwrap();
            }
            bits(r.state())
        };
        let reference = run(Kernel::scalar());
        for k in Kernel::available() {
            assert_eq!(run(k), reference, "{:?} n {n}", k.variant());
        }
        // The portable SELL path too.
        let m = sell::SellLeaky::new(a.view(), inp.update(0.4)).unwrap();
        let x = vector(n, 3);
        let u: Vec<f32> = (0..inputs).map(|j| j as f32 * 0.3).collect();
        let (mut y1, mut y2) = (vec![0.0f32; n], vec![0.0f32; n]);
        sell::leaky_step_scalar(&m, 0.4, &u, &x, &mut y1);
        Kernel::scalar()
            .leaky_step(WeightsRef::Csr(a.view()), inp.update(0.4), &u, &x, &mut y2)
            .unwrap();
        assert_eq!(bits(&y1), bits(&y2));
        // Slice ranges in slot order, put back by slot_rows, equal the whole step.
        let slices = m.slices();
        for k in Kernel::available() {
            for mid in [0, slices / 2, slices] {
                let mut slots = vec![0.0f32; slices * sell::SLICE];
                let (lo, hi) = slots.split_at_mut(mid * sell::SLICE);
                k.sell_leaky_step_slots(&m, 0.4, &u, &x, 0..mid, lo)
                    .unwrap();
                k.sell_leaky_step_slots(&m, 0.4, &u, &x, mid..slices, hi)
                    .unwrap();
                let mut y3 = vec![0.0f32; n];
                for (slot, &row) in m.slot_rows()[..n].iter().enumerate() {
                    y3[row as usize] = slots[slot];
                }
                assert_eq!(bits(&y3), bits(&y2), "{:?} n {n} mid {mid}", k.variant());
            }
            let mut out = vec![0.0f32; 16];
            assert!(k
                .sell_leaky_step_slots(&m, 0.4, &u, &x, slices..slices + 1, &mut out)
                .is_err());
            assert!(k
                .sell_leaky_step_slots(&m, 0.4, &u, &x, 0..1, &mut out[..15])
                .is_err());
        }
    }
}

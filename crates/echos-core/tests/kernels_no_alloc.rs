//! The kernels allocate nothing: a counting global allocator watches every kernel step path
//! (single sequence on each variant, CSR/SELL and dense, batched, quantized, and the structured reservoirs' matvecs).

use echos_core::kernels::quant::QuantReservoir;
use echos_core::kernels::reservoir::{FusedReservoir, OwnedWeights};
use echos_core::kernels::Kernel;
use echos_core::topology::ReservoirMatrix;

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

/// Allocations made by this thread while `f` runs.
fn count(f: impl FnOnce()) -> usize {
    echos_testalloc::count_allocations(f).0
}

fn reservoir(n: usize, dense: bool) -> FusedReservoir {
    let mut indptr = vec![0u32];
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    let mut d = vec![0.0f32; n * n];
    for r in 0..n {
        for c in (r % 7..n).step_by(7) {
            let v = ((r * 31 + c * 17) % 13) as f32 / 13.0 - 0.5;
            indices.push(c as u32);
            values.push(v * 0.3);
            d[r * n + c] = v * 0.3;
        }
        indptr.push(indices.len() as u32);
    }
    let weights = if dense {
        OwnedWeights::Dense(d)
    } else {
        OwnedWeights::Csr {
            indptr,
            indices,
            values,
        }
    };
    FusedReservoir::new(n, 2, weights, vec![0.2; 2 * n], vec![0.05; n], 0.5).unwrap()
}

#[test]
fn every_step_path_allocates_nothing() {
    echos_testalloc::assert_counter_works();
    for dense in [false, true] {
        let mut r = reservoir(97, dense);
        for k in Kernel::available() {
            r.step(k, &[0.1, 0.2]).unwrap(); // first call outside the count (CPU detection)
            let n = count(|| {
                for t in 0..100 {
                    r.step(k, &[t as f32 * 0.01, 0.3]).unwrap();
                }
            });
            assert_eq!(n, 0, "{:?} dense {dense}", k.variant());
        }
    }
    let r = reservoir(97, false);
    let (w, p) = (r.csr_ref().unwrap(), r.update_ref());
    let batch = 33;
    let (mut x, mut next) = (vec![0.0f32; 97 * batch], vec![0.0f32; 97 * batch]);
    let u = vec![0.5f32; 2 * batch];
    for k in Kernel::available() {
        let n = count(|| {
            for _ in 0..10 {
                k.leaky_step_batch_rows(w, p, batch, 0..97, &u, &x, &mut next)
                    .unwrap();
                std::mem::swap(&mut x, &mut next);
            }
        });
        assert_eq!(n, 0, "batched {:?}", k.variant());
    }
    // The slot-ordered part-step that two threads share (SplitStep in the host).
    let m = r.sell().unwrap();
    let x1 = vec![0.2f32; 97];
    let mut slots = vec![0.0f32; m.slices() * 16];
    for k in Kernel::available() {
        let n = count(|| {
            let (lo, hi) = slots.split_at_mut(16);
            k.sell_leaky_step_slots(m, r.leak_rate(), &[0.1, 0.2], &x1, 0..1, lo)
                .unwrap();
            k.sell_leaky_step_slots(m, r.leak_rate(), &[0.1, 0.2], &x1, 1..m.slices(), hi)
                .unwrap();
        });
        assert_eq!(n, 0, "sell slots {:?}", k.variant());
    }
    let mut q8 = QuantReservoir::<i8>::from_fused(&r).unwrap();
    let mut q16 = QuantReservoir::<i16>::from_fused(&r).unwrap();
    assert_eq!(
        count(|| {
            for _ in 0..50 {
                q8.step(&[0.1, 0.2]).unwrap();
                q16.step(&[0.1, 0.2]).unwrap();
            }
        }),
        0
    );
    let xs = vec![0.3f32; 64];
    let mut ys = vec![0.0f32; 64];
    let structured = [
        ReservoirMatrix::Cycle {
            units: 64,
            weight: 0.9f32,
        },
        ReservoirMatrix::DelayLine {
            units: 64,
            weight: 0.9,
        },
        ReservoirMatrix::CycleJumps {
            units: 64,
            cycle_weight: 0.9,
            jump_weight: 0.2,
            jump: 5,
        },
    ];
    assert_eq!(
        count(|| {
            for w in &structured {
                w.matvec_add(&xs, &mut ys);
            }
        }),
        0
    );
}

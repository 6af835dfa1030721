//! The block-sparse step allocates nothing: a counting global allocator watches it on every
//! variant, its batched form, and the engine's `Esn<f32>` step on a block reservoir.

use echos_core::esn::{Esn, EsnConfig};
use echos_core::kernels::reservoir::FusedReservoir;
use echos_core::kernels::Kernel;
use echos_core::topology::Topology;

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

/// Allocations made by this thread while `f` runs.
fn count(f: impl FnOnce()) -> usize {
    echos_testalloc::count_allocations(f).0
}

#[test]
fn block_steps_allocate_nothing() {
    echos_testalloc::assert_counter_works();
    let config = EsnConfig {
        units: 101,
        inputs: 2,
        topology: Topology::Block { size: 16 },
        ..EsnConfig::default()
    };
    let mut esn = Esn::<f32>::new(&config).unwrap();
    let echos_core::topology::ReservoirMatrix::Block(b) = esn.w().clone() else {
        panic!("block topology must give a block matrix");
    };
    let w_in = esn.w_in().data.clone();
    let mut r = FusedReservoir::new_block(
        101,
        2,
        b.size,
        b.per_group,
        &b.indices,
        &b.values,
        w_in,
        esn.bias().to_vec(),
        0.5,
    )
    .unwrap();
    for k in Kernel::available() {
        r.step(k, &[0.1, 0.2]).unwrap(); // first call outside the count (CPU detection)
        let n = count(|| {
            for t in 0..100 {
                r.step(k, &[t as f32 * 0.01, 0.3]).unwrap();
            }
        });
        assert_eq!(n, 0, "{:?}", k.variant());
    }
    let m = r.block().unwrap();
    let batch = 33;
    let (mut x, mut next) = (vec![0.0f32; 101 * batch], vec![0.0f32; 101 * batch]);
    let u = vec![0.5f32; 2 * batch];
    for k in Kernel::available() {
        let n = count(|| {
            for _ in 0..10 {
                k.block_leaky_step_batch(m, 0.5, batch, &u, &x, &mut next)
                    .unwrap();
                std::mem::swap(&mut x, &mut next);
            }
        });
        assert_eq!(n, 0, "batched {:?}", k.variant());
    }
    esn.step(&[0.1, 0.2], None).unwrap();
    let n = count(|| {
        for t in 0..100 {
            esn.step(&[t as f32 * 0.01, 0.3], None).unwrap();
        }
    });
    assert_eq!(n, 0, "Esn<f32> block step");
}

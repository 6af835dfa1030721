//! The bf16-products batch step allocates nothing: a counting global allocator watches it on
//! every variant (the instruction where the CPU has it, else the portable form).

use echos_core::esn::{Esn, EsnConfig};
use echos_core::kernels::block_bf16::BlockBf16;
use echos_core::kernels::Kernel;
use echos_core::topology::{ReservoirMatrix, Topology};

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

/// Allocations made by this thread while `f` runs.
fn count(f: impl FnOnce()) -> usize {
    echos_testalloc::count_allocations(f).0
}

#[test]
fn bf16_batch_step_allocates_nothing() {
    echos_testalloc::assert_counter_works();
    let esn = Esn::<f32>::new(&EsnConfig {
        units: 101,
        inputs: 2,
        topology: Topology::Block { size: 16 },
        connectivity: 0.2,
        ..EsnConfig::default()
    })
    .unwrap();
    let ReservoirMatrix::Block(b) = esn.w() else {
        panic!("block topology gave another matrix");
    };
    let fused = echos_core::kernels::reservoir::FusedReservoir::new_block(
        101,
        2,
        b.size,
        b.per_group,
        &b.indices,
        &b.values,
        esn.w_in().data.clone(),
        esn.bias().to_vec(),
        0.5,
    )
    .unwrap();
    let centre = vec![0.1f32; 101];
    let m = BlockBf16::with_centre(fused.block().unwrap(), &centre).unwrap();
    let batch = 33;
    let (mut x, mut next) = (vec![0.0f32; 101 * batch], vec![0.0f32; 101 * batch]);
    let mut scratch = vec![0u16; 101 * batch];
    let u = vec![0.5f32; 2 * batch];
    for k in Kernel::available() {
        // First call outside the count (CPU detection).
        m.step_batch(k, 0.5, batch, &u, &x, &mut scratch, &mut next)
            .unwrap();
        let n = count(|| {
            for _ in 0..20 {
                m.step_batch(k, 0.5, batch, &u, &x, &mut scratch, &mut next)
                    .unwrap();
                std::mem::swap(&mut x, &mut next);
            }
        });
        assert_eq!(n, 0, "{}", m.step_kernel_name(k));
    }
    assert!(x.iter().any(|&v| v != 0.0));
}

//! The bf16-products batch step allocates nothing: a counting global allocator watches it on
//! every variant (the instruction where the CPU has it, else the portable form).

use echos_core::esn::{Esn, EsnConfig};
use echos_core::kernels::block_bf16::BlockBf16;
use echos_core::kernels::Kernel;
use echos_core::topology::{ReservoirMatrix, Topology};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Thread id of the measuring thread (0: none). Only it counts: the test harness allocates on
/// its own threads. gettid is a plain syscall, safe inside the allocator.
static COUNTING_TID: AtomicI64 = AtomicI64::new(0);

fn tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    i64::from(unsafe { libc::gettid() })
}

fn note_allocation() {
    if COUNTING_TID.load(Ordering::SeqCst) == tid() {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(mut f: impl FnMut()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING_TID.store(tid(), Ordering::SeqCst);
    f();
    COUNTING_TID.store(0, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn bf16_batch_step_allocates_nothing() {
    // The counter sees this thread's allocations (else the zeros below would prove nothing).
    assert_eq!(count(|| drop(std::hint::black_box(vec![1u8; 8]))), 1);
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

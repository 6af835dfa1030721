//! The block-sparse step allocates nothing: a counting global allocator watches it on every
//! variant, its batched form, and the engine's `Esn<f32>` step on a block reservoir.

use echos_core::esn::{Esn, EsnConfig};
use echos_core::kernels::reservoir::FusedReservoir;
use echos_core::kernels::Kernel;
use echos_core::topology::Topology;
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
fn block_steps_allocate_nothing() {
    // The counter sees this thread's allocations (else the zeros below would prove nothing).
    assert!(count(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(64)))) >= 1);
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

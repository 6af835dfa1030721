//! The instrument itself: counts, frees and peaks are what the closures did, per thread.

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

use echos_testalloc::{assert_counter_works, measure};
use std::hint::black_box;

#[test]
fn counts_calls_frees_and_peak_of_this_thread() {
    assert_counter_works();
    let ((), u) = measure(|| {
        let a = black_box(vec![0u8; 10_000]);
        let b = black_box(vec![0u8; 5_000]);
        drop(a);
        drop(b);
    });
    assert_eq!(u.allocations, 2, "{u:?}");
    assert_eq!(u.frees, 2, "{u:?}");
    assert!((15_000..16_000).contains(&u.peak_bytes), "{u:?}");
    let (n, u) = measure(|| black_box(3 + 4));
    assert_eq!(n, 7);
    assert_eq!((u.allocations, u.frees, u.peak_bytes), (0, 0, 0));
}

#[test]
fn other_threads_do_not_count() {
    let ((), u) = measure(|| {
        std::thread::scope(|s| {
            // Spawning allocates on this thread; the 1 MB below is the other thread's.
            s.spawn(|| drop(black_box(vec![0u8; 1 << 20])));
        });
    });
    assert!(u.peak_bytes < 1 << 20, "{u:?}");
}

#[test]
fn a_nested_measurement_keeps_the_outer_peak() {
    let ((), outer) = measure(|| {
        drop(black_box(vec![0u8; 100_000]));
        let ((), inner) = measure(|| drop(black_box(vec![0u8; 1_000])));
        assert!(inner.peak_bytes < 2_000, "{inner:?}");
    });
    assert!(outer.peak_bytes >= 100_000, "{outer:?}");
    assert_eq!(outer.allocations, 2, "{outer:?}");
}

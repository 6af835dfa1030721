//! The workspace's one counting global allocator, for tests only (a dev-dependency; no library
//! links it). It forwards every call to the system allocator and, per thread, counts the calls
//! made while a measurement runs and tracks the peak of live bytes. Counting is per thread, so
//! the test harness's other threads (and tests running in parallel in the same binary) can
//! neither add to a count nor reset it.
//!
//! A test binary installs it with
//! `#[global_allocator] static A: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;`
//! and then asks [`measure`] (or [`count_allocations`] / [`peak_of`]) about a closure. Call
//! [`assert_counter_works`] once per binary, so a counter that sees nothing cannot make a
//! "0 allocations" test pass.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The counting allocator (install with `#[global_allocator]`).
pub struct TestAlloc;

thread_local! {
    // Const-initialised and without destructors, so touching them never allocates (which,
    // inside the allocator, would recurse) and works during thread teardown.
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(grow: isize, call: bool, free: bool) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + grow;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
    if WATCHING.try_with(Cell::get).unwrap_or(false) {
        if call {
            let _ = CALLS.try_with(|c| c.set(c.get() + 1));
        }
        if free {
            let _ = FREES.try_with(|c| c.set(c.get() + 1));
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator with the caller's
// arguments; the bookkeeping touches only const-initialised thread-locals, which neither
// allocate nor re-enter the allocator.
unsafe impl GlobalAlloc for TestAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize, true, false);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize, true, false);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize), false, true);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize, true, false);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What one measurement saw on this thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// `alloc`, `alloc_zeroed` and `realloc` calls.
    pub allocations: u64,
    /// `dealloc` calls.
    pub frees: u64,
    /// Peak of live bytes above the level at the start (0 if it never rose).
    pub peak_bytes: usize,
}

/// Runs `f` on this thread and reports its allocator use.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    let calls = CALLS.with(Cell::get);
    let frees = FREES.with(Cell::get);
    let base = LIVE.with(Cell::get);
    let outer_peak = PEAK.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let was = WATCHING.with(|w| w.replace(true));
    let value = f();
    WATCHING.with(|w| w.set(was));
    let peak = PEAK.with(Cell::get);
    // An enclosing measurement keeps its own, higher peak.
    PEAK.with(|p| p.set(outer_peak.max(peak)));
    let usage = Usage {
        allocations: CALLS.with(Cell::get) - calls,
        frees: FREES.with(Cell::get) - frees,
        peak_bytes: (peak - base).max(0) as usize,
    };
    (value, usage)
}

/// Allocations (`alloc`, `alloc_zeroed`, `realloc`) made by this thread while `f` runs.
pub fn count_allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let (value, usage) = measure(f);
    (usage.allocations as usize, value)
}

/// Peak live bytes above the starting level while `f` runs on this thread.
pub fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (value, usage) = measure(f);
    (value, usage.peak_bytes)
}

/// The counter must see an allocation made under it, or every "0 allocations" proves nothing.
/// Panics if this binary's global allocator is not [`TestAlloc`].
pub fn assert_counter_works() {
    let (v, usage) = measure(|| std::hint::black_box(vec![1u8; 4096]));
    drop(v);
    assert!(
        usage.allocations >= 1 && usage.peak_bytes >= 4096,
        "the counting allocator missed an allocation ({usage:?}): is `echos_testalloc::TestAlloc` \
         this test binary's #[global_allocator]?"
    );
}

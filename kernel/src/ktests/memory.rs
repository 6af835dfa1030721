//! Memory tests: the memory map rejects bad input, the frame allocator catches misuse and runs
//! out cleanly, the heap works, and the reservoir pools hold what they are sized for, refuse
//! politely when full, and allocate in bounded time at any occupancy.

use alloc::string::String;
use alloc::vec::Vec;

use echos_kpolicy::frames::FrameError;
use echos_kpolicy::memmap::{MemMapError, PhysRange, Region, RegionKind};
use echos_kpolicy::pool::{reservoir_footprint, PoolBlock, PoolError};
use echos_kpolicy::stress::{self, StressConfig, TARGETS_PERCENT};

use super::Kernel;
use crate::memory::{self, POOL_CONNECTIVITY_PERMILLE, POOL_INPUTS, POOL_RESERVOIRS, POOL_UNITS};
use crate::{arch, ensure, kernel_test, kprintln};

const MIB: u64 = 1 << 20;

fn usable(map: &echos_kpolicy::memmap::MemoryMap<80>) -> Vec<PhysRange> {
    map.usable_ranges().map(|r| r.collect()).unwrap_or_default()
}

fn memory_map_rejects_empty_and_overflowing_regions(_: &mut Kernel) -> Result<(), String> {
    let zero = memory::build_map(&[Region::new(MIB, 0, RegionKind::Usable)], &[]);
    ensure!(
        matches!(zero, Err(MemMapError::ZeroLength { index: 0, .. })),
        "zero-length region gave {:?}",
        zero.err()
    );
    let wrap = memory::build_map(
        &[
            Region::new(0, MIB, RegionKind::Usable),
            Region::new(u64::MAX - 10, 4096, RegionKind::Usable),
        ],
        &[],
    );
    ensure!(
        matches!(wrap, Err(MemMapError::Overflow { index: 1, .. })),
        "overflowing region gave {:?}",
        wrap.err()
    );
    Ok(())
}
kernel_test!(memory_map_rejects_empty_and_overflowing_regions);

fn memory_map_resolves_overlaps_and_keeps_holes(_: &mut Kernel) -> Result<(), String> {
    // 1–9 MiB usable with 4–5 MiB also reported reserved; a hole at 9–16 MiB; 16–32 MiB usable.
    let map = memory::build_map(
        &[
            Region::new(MIB, 8 * MIB, RegionKind::Usable),
            Region::new(4 * MIB, MIB, RegionKind::Reserved),
            Region::new(16 * MIB, 16 * MIB, RegionKind::Usable),
        ],
        &[],
    )
    .map_err(|e| alloc::format!("{e}"))?;
    let r = usable(&map);
    let expect = [
        PhysRange {
            start: MIB,
            end: 4 * MIB,
        },
        PhysRange {
            start: 5 * MIB,
            end: 9 * MIB,
        },
        PhysRange {
            start: 16 * MIB,
            end: 32 * MIB,
        },
    ];
    ensure!(r == expect, "usable ranges {r:x?}");
    Ok(())
}
kernel_test!(memory_map_resolves_overlaps_and_keeps_holes);

fn this_boots_memory_map_is_sane(k: &mut Kernel) -> Result<(), String> {
    let ranges = usable(&k.memory.map);
    ensure!(!ranges.is_empty(), "no usable ranges");
    let image = arch::phys::kernel_layout();
    for w in ranges.windows(2) {
        ensure!(
            w[0].end <= w[1].start,
            "ranges {:x?} overlap or are unsorted",
            w
        );
    }
    for r in &ranges {
        ensure!(r.start % 4096 == 0 && r.end % 4096 == 0, "unaligned {r:x?}");
        ensure!(
            r.end <= image.start || r.start >= image.end,
            "usable {r:x?} overlaps the kernel image"
        );
        ensure!(r.start >= MIB, "usable {r:x?} below 1 MiB");
        let l = k.memory.layout;
        for carved in [
            l.heap,
            l.reservoir_pool,
            l.stress_pool,
            l.frame_stack,
            l.frame_bitmap,
        ] {
            ensure!(
                r.end <= carved.start || r.start >= carved.end,
                "usable {r:x?} overlaps carve-out {carved:x?}"
            );
        }
    }
    Ok(())
}
kernel_test!(this_boots_memory_map_is_sane);

fn frame_allocator_catches_double_and_foreign_frees(k: &mut Kernel) -> Result<(), String> {
    let frames = &mut k.memory.frames;
    let before = frames.free_frames();
    let f = frames.alloc().map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        f % 4096 == 0 && frames.is_usable(f) && frames.is_allocated(f),
        "frame {f:#x}"
    );
    let image = arch::phys::kernel_layout();
    ensure!(
        f >= image.end || f + 4096 <= image.start,
        "frame {f:#x} inside the kernel image"
    );
    ensure!(
        frames.free_frames() == before - 1,
        "free count did not drop"
    );
    frames.free(f).map_err(|e| alloc::format!("{e}"))?;
    let again = frames.free(f);
    ensure!(
        again == Err(FrameError::DoubleFree { addr: f }),
        "double free gave {again:?}"
    );
    let foreign = frames.free(image.start);
    ensure!(
        foreign == Err(FrameError::Foreign { addr: image.start }),
        "freeing a kernel-image frame gave {foreign:?}"
    );
    let odd = frames.free(f + 8);
    ensure!(
        matches!(odd, Err(FrameError::Misaligned { .. })),
        "misaligned free gave {odd:?}"
    );
    ensure!(
        frames.free_frames() == before,
        "free count {} after, {before} before",
        frames.free_frames()
    );
    Ok(())
}
kernel_test!(frame_allocator_catches_double_and_foreign_frees);

fn frame_allocator_runs_out_cleanly(k: &mut Kernel) -> Result<(), String> {
    let frames = &mut k.memory.frames;
    let free = frames.free_frames();
    let mut taken: Vec<u64> = Vec::with_capacity(free);
    let end = loop {
        match frames.alloc() {
            Ok(f) => taken.push(f),
            Err(e) => break e,
        }
        if taken.len() > free {
            break FrameError::OutOfFrames;
        }
    };
    let count = taken.len();
    let mut sorted = taken.clone();
    sorted.sort_unstable();
    sorted.dedup();
    for f in taken {
        frames
            .free(f)
            .map_err(|e| alloc::format!("returning {f:#x}: {e}"))?;
    }
    ensure!(end == FrameError::OutOfFrames, "exhaustion gave {end:?}");
    ensure!(count == free, "{count} frames handed out, {free} were free");
    ensure!(sorted.len() == count, "a frame was handed out twice");
    ensure!(frames.free_frames() == free, "frames lost");
    Ok(())
}
kernel_test!(frame_allocator_runs_out_cleanly);

fn kernel_heap_allocates_and_frees(_: &mut Kernel) -> Result<(), String> {
    let (used0, _) = memory::heap_usage();
    let v: Vec<u64> = (0..100_000).collect();
    let sum: u64 = v.iter().sum();
    let (used1, _) = memory::heap_usage();
    drop(v);
    let (used2, _) = memory::heap_usage();
    ensure!(sum == 4_999_950_000, "sum {sum}");
    ensure!(
        used1 >= used0 + 800_000,
        "heap use grew by {} bytes only",
        used1 - used0
    );
    ensure!(
        used2 == used0,
        "heap use {used2} after free, {used0} before"
    );
    Ok(())
}
kernel_test!(kernel_heap_allocates_and_frees);

/// The arrays of one integer sparse reservoir, in the order `reservoir_footprint` counts them.
fn reservoir_blocks(units: usize, permille: usize, inputs: usize) -> [usize; 7] {
    let per_row = (units * permille + 500) / 1000;
    let nnz = units * per_row;
    [
        nnz * 2,
        nnz * 2,
        (units + 1) * 4,
        units * inputs * 2,
        units * 2,
        units * 2,
        units * 2,
    ]
}

fn reservoir_pool_holds_its_sized_reservoirs(k: &mut Kernel) -> Result<(), String> {
    let pool = &mut k.memory.reservoir_pool;
    let blocks = reservoir_blocks(POOL_UNITS, POOL_CONNECTIVITY_PERMILLE, POOL_INPUTS);
    ensure!(
        blocks.iter().sum::<usize>()
            == reservoir_footprint(POOL_UNITS, POOL_CONNECTIVITY_PERMILLE, POOL_INPUTS),
        "block list disagrees with reservoir_footprint"
    );
    let mut live: Vec<PoolBlock<'static>> = Vec::new();
    let mut failure = None;
    'outer: for _ in 0..POOL_RESERVOIRS {
        for &b in &blocks {
            match pool.alloc(b, 16) {
                Ok(block) => live.push(block),
                Err(e) => {
                    failure = Some(e);
                    break 'outer;
                }
            }
        }
    }
    let used = pool.stats().used;
    for b in live.drain(..) {
        pool.free(b).map_err(|e| alloc::format!("{e}"))?;
    }
    ensure!(
        failure.is_none(),
        "pool refused reservoir arrays: {}",
        failure.map(|e| alloc::format!("{e}")).unwrap_or_default()
    );
    ensure!(
        used == POOL_RESERVOIRS * blocks.iter().sum::<usize>(),
        "used {used}"
    );
    ensure!(
        pool.stats().used == 0 && pool.stats().live_blocks == 0,
        "pool not empty after freeing: {:?}",
        pool.stats()
    );
    // And a hundred-unit reservoir is small enough to fit many times over.
    let small = reservoir_footprint(100, 100, 1);
    ensure!(
        small * 100 < pool.stats().capacity,
        "a 100-unit reservoir takes {small} bytes"
    );
    Ok(())
}
kernel_test!(reservoir_pool_holds_its_sized_reservoirs);

fn exhausted_pool_returns_an_error_and_recovers(k: &mut Kernel) -> Result<(), String> {
    let pool = &mut k.memory.stress_pool;
    let mut live = Vec::new();
    let err = loop {
        match pool.alloc(64 * 1024, 64) {
            Ok(b) => live.push(b),
            Err(e) => break e,
        }
        if live.len() > 10_000 {
            break PoolError::ZeroSize;
        }
    };
    let stats = pool.stats();
    let n = live.len();
    for b in live {
        pool.free(b).map_err(|e| alloc::format!("{e}"))?;
    }
    ensure!(
        matches!(
            err,
            PoolError::Exhausted {
                requested: 65536,
                ..
            }
        ),
        "exhaustion gave {err:?}"
    );
    ensure!(
        stats.failed_allocations >= 1,
        "failed allocation not counted"
    );
    ensure!(
        n * 65536 * 100 >= stats.capacity * 90,
        "only {n} blocks of 64 KiB fit in {} bytes",
        stats.capacity
    );
    let again = pool
        .alloc(64 * 1024, 64)
        .map_err(|e| alloc::format!("after freeing: {e}"))?;
    pool.free(again).map_err(|e| alloc::format!("{e}"))?;
    let zero = pool.alloc(0, 8);
    ensure!(zero.is_err(), "a zero-byte allocation succeeded");
    let huge = pool.alloc(usize::MAX / 2, 8);
    ensure!(huge.is_err(), "an impossible allocation succeeded");
    Ok(())
}
kernel_test!(exhausted_pool_returns_an_error_and_recovers);

/// Operations per occupancy bucket: three buckets, 102,000 operations in all.
pub const STRESS_OPS_PER_BUCKET: u32 = 34_000;

fn run_pool_stress(k: &mut Kernel) -> Result<stress::StressReport, String> {
    let cfg = StressConfig {
        ops_per_bucket: STRESS_OPS_PER_BUCKET,
        min_size: 32,
        max_size: 8192,
        align: 16,
        seed: 0x5eed_0f57_4e55,
    };
    let pool = &mut k.memory.stress_pool;
    let mut slots: Vec<Option<PoolBlock<'static>>> = Vec::new();
    slots.resize_with(
        stress::slots_needed(pool.stats().capacity, &cfg) + 16,
        || None,
    );
    // Interrupts off: the figures are the allocator's, not the timer's.
    let report = x86_64::instructions::interrupts::without_interrupts(|| {
        stress::run(pool, &mut slots, &cfg, arch::tsc::read)
    })
    .map_err(|e| alloc::format!("{e}"))?;
    let ns = |ticks: u64| k.time.clock.ticks_to_ns(ticks);
    for b in &report.buckets {
        let t = b.target_percent;
        kprintln!("metric pool_alloc_worst_ns_{t}pct {} ns", ns(b.alloc.max));
        kprintln!("metric pool_free_worst_ns_{t}pct {} ns", ns(b.free.max));
        kprintln!("metric pool_alloc_mean_ns_{t}pct {} ns", ns(b.alloc.mean()));
        kprintln!("metric pool_free_mean_ns_{t}pct {} ns", ns(b.free.mean()));
        kprintln!(
            "metric pool_ops_{t}pct {} ops",
            b.alloc.count + b.free.count + b.failed.count
        );
        kprintln!("metric pool_allocs_{t}pct {} ops", b.alloc.count);
        kprintln!("metric pool_frees_{t}pct {} ops", b.free.count);
        kprintln!("metric pool_refused_{t}pct {} ops", b.failed.count);
        kprintln!(
            "metric pool_occupancy_min_{t}pct {} %",
            b.min_occupancy_percent
        );
        kprintln!(
            "metric pool_occupancy_max_{t}pct {} %",
            b.max_occupancy_percent
        );
    }
    Ok(report)
}

fn pool_alloc_and_free_are_bounded_at_any_occupancy(k: &mut Kernel) -> Result<(), String> {
    let report = run_pool_stress(k)?;
    let total: u64 = report
        .buckets
        .iter()
        .map(|b| b.alloc.count + b.free.count + b.failed.count)
        .sum();
    ensure!(total >= 100_000, "only {total} operations measured");
    for (b, target) in report.buckets.iter().zip(TARGETS_PERCENT) {
        ensure!(
            b.alloc.count > 1000 && b.free.count > 1000,
            "{target}% bucket: {} allocs, {} frees",
            b.alloc.count,
            b.free.count
        );
        ensure!(
            b.min_occupancy_percent + 10 >= target && b.max_occupancy_percent <= target + 10,
            "{target}% bucket visited {}-{}%",
            b.min_occupancy_percent,
            b.max_occupancy_percent
        );
    }
    if !crate::ktests::virtual_time(k) {
        return Ok(());
    }
    // Bounded: the worst case at 90 % full is no more than twice the worst case at 10 %. Only
    // checked in virtual time: under wall time a host stall lands in some bucket's maximum.
    let worst = |f: fn(&stress::Bucket) -> u64| report.buckets.map(|b| f(&b));
    let alloc = worst(|b| b.alloc.max);
    let free = worst(|b| b.free.max);
    ensure!(
        alloc[2] <= 2 * alloc[0].max(1),
        "alloc worst case grew with occupancy: {alloc:?} ticks"
    );
    ensure!(
        free[2] <= 2 * free[0].max(1),
        "free worst case grew with occupancy: {free:?} ticks"
    );
    Ok(())
}
kernel_test!(pool_alloc_and_free_are_bounded_at_any_occupancy);

/// The pool figures for the default (non-test) boot.
pub fn pool_stress_report(k: &mut Kernel) -> Result<(), String> {
    run_pool_stress(k).map(|_| ())
}

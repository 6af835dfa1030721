//! Bench command for the reservoir pool: runs the stress driver on the host with the TSC as its
//! clock and prints per-occupancy alloc/free costs in TSC ticks (the kernel runs the same driver
//! in ring 0). `cargo run --release -p echos-kpolicy --example pool_stress [ops_per_bucket]`
//! Maxima on a shared host include preemption and interrupts; read p50/p99 for the allocator.

use std::mem::MaybeUninit;

use echos_kpolicy::pool::{Pool, PoolBlock};
use echos_kpolicy::stress::{self, CostStats, StressConfig};

#[cfg(target_arch = "x86_64")]
fn ticks() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86_64 (it reads a counter; user mode may execute it
    // unless CR4.TSD is set, which Linux does not do).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

fn line(name: &str, c: &CostStats) {
    println!(
        "  {name:<6} n={:<7} min={:<5} mean={:<5} p50<={:<5} p99<={:<6} max={}",
        c.count,
        c.min,
        c.mean(),
        c.quantile_upper_bound(500),
        c.quantile_upper_bound(990),
        c.max
    );
}

fn main() {
    let ops: u32 = std::env::args()
        .nth(1)
        .map(|a| {
            a.parse()
                .expect("ops_per_bucket must be a positive integer")
        })
        .unwrap_or(200_000);
    // Two pools: 100-unit reservoir arrays (64 B–4 KiB) and 1000-unit ones (4 KiB–200 KiB).
    for (name, pool_bytes, min_size, max_size) in [
        ("small blocks (64 B - 4 KiB), 4 MiB pool", 4 << 20, 64, 4096),
        (
            "large blocks (4 KiB - 200 KiB), 64 MiB pool",
            64 << 20,
            4096,
            200_000,
        ),
    ] {
        // Initialised so every page is faulted in before timing: first-touch faults are the
        // host's cost, not the allocator's.
        let mut mem = vec![MaybeUninit::new(0u8); pool_bytes];
        let mut pool = Pool::new(&mut mem).expect("pool");
        let cfg = StressConfig {
            ops_per_bucket: ops,
            min_size,
            max_size,
            align: 16,
            seed: 2026,
        };
        let mut slots: Vec<Option<PoolBlock<'_>>> = (0..stress::slots_needed(pool_bytes, &cfg))
            .map(|_| None)
            .collect();
        // The cost of the two clock reads themselves (median), included in every figure below.
        let mut pairs: Vec<u64> = (0..10_001)
            .map(|_| {
                let t = ticks();
                ticks() - t
            })
            .collect();
        pairs.sort_unstable();
        let overhead = pairs[pairs.len() / 2];
        let report = stress::run(&mut pool, &mut slots, &cfg, ticks).expect("stress run");
        println!(
            "{name}: {ops} ops per bucket; TSC ticks including a {overhead}-tick clock read pair"
        );
        for b in &report.buckets {
            println!(
                " target {}% (visited {}-{}%), {} exhausted",
                b.target_percent, b.min_occupancy_percent, b.max_occupancy_percent, b.failed.count
            );
            line("alloc", &b.alloc);
            line("free", &b.free);
        }
        println!(" high-water {} of {} bytes", report.high_water, pool_bytes);
    }
}

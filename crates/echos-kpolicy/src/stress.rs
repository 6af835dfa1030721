//! Pool stress driver: seeded random alloc/free operations against a [`Pool`], each timed by a
//! caller-supplied clock (the kernel passes `rdtsc`, a host test a counter), costs bucketed by
//! the pool's occupancy (about 10 %, 50 % and 90 % full). Allocation-free: live blocks are kept
//! in a slot array the caller provides.
#![forbid(unsafe_code)]

use crate::pool::{Pool, PoolBlock, PoolError};

/// Occupancy targets of the three buckets, in percent.
pub const TARGETS_PERCENT: [usize; 3] = [10, 50, 90];

/// The workspace's one SplitMix64 picks the operations.
pub use echos_rng::SplitMix64;

/// Cost figures of one kind of operation, in the clock's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostStats {
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub sum: u64,
    /// `log2_hist[i]` counts costs `c` with `floor(log2(c)) == i` (`c = 0` counts in 0).
    pub log2_hist: [u32; 64],
}

impl Default for CostStats {
    fn default() -> Self {
        Self {
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
            log2_hist: [0; 64],
        }
    }
}

impl CostStats {
    fn record(&mut self, cost: u64) {
        self.count += 1;
        self.min = self.min.min(cost);
        self.max = self.max.max(cost);
        self.sum = self.sum.saturating_add(cost);
        self.log2_hist[cost.checked_ilog2().unwrap_or(0) as usize] += 1;
    }

    pub fn mean(&self) -> u64 {
        self.sum.checked_div(self.count).unwrap_or(0)
    }

    /// Upper bound of the histogram bucket holding the `q`-quantile (`q` in per mille), i.e. the
    /// quantile to within a factor of two.
    pub fn quantile_upper_bound(&self, q_permille: u64) -> u64 {
        let want = self
            .count
            .saturating_mul(q_permille.min(1000))
            .div_ceil(1000)
            .max(1);
        let mut seen = 0u64;
        for (i, &n) in self.log2_hist.iter().enumerate() {
            seen += n as u64;
            if seen >= want {
                return if i >= 63 { u64::MAX } else { (2u64 << i) - 1 };
            }
        }
        0
    }
}

/// Costs measured while the pool sat near one occupancy target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub target_percent: usize,
    pub alloc: CostStats,
    pub free: CostStats,
    /// Allocations refused as exhausted (their cost is in `failed`, not `alloc`).
    pub failed: CostStats,
    /// Occupancy range actually visited during the measured operations.
    pub min_occupancy_percent: usize,
    pub max_occupancy_percent: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StressReport {
    pub buckets: [Bucket; 3],
    /// Pool high-water mark over the run, in bytes.
    pub high_water: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StressConfig {
    /// Measured operations per occupancy bucket.
    pub ops_per_bucket: u32,
    /// Block sizes are uniform in `min_size..=max_size` bytes.
    pub min_size: usize,
    pub max_size: usize,
    pub align: usize,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StressError {
    /// `min_size` is zero or above `max_size`.
    BadSizes { min_size: usize, max_size: usize },
    /// The slot array cannot hold enough blocks to reach 90 % occupancy with the mean block size.
    TooFewSlots { needed: usize, given: usize },
    /// The pool refused a request for a reason other than exhaustion.
    Pool(PoolError),
    /// The pool was not empty at the start: stress needs the whole pool.
    PoolNotEmpty { used: usize },
}

impl core::fmt::Display for StressError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::BadSizes { min_size, max_size } => {
                write!(
                    f,
                    "block sizes {min_size}..={max_size} are not a valid range"
                )
            }
            Self::TooFewSlots { needed, given } => write!(
                f,
                "{given} block slots cannot reach 90 % occupancy; at least {needed} are needed"
            ),
            Self::Pool(e) => write!(f, "pool error during stress: {e}"),
            Self::PoolNotEmpty { used } => {
                write!(
                    f,
                    "pool has {used} bytes in use; stress needs an empty pool"
                )
            }
        }
    }
}

/// Slots needed to hold 95 % of the pool in blocks of the configured mean size.
pub fn slots_needed(pool_capacity: usize, cfg: &StressConfig) -> usize {
    let mean = cfg.min_size / 2 + cfg.max_size / 2;
    (pool_capacity / 100 * 95).div_ceil(mean.max(1))
}

/// Runs the three buckets in order (10 %, 50 %, 90 %). For each: allocate untimed up to the
/// target, then `ops_per_bucket` timed operations that allocate with probability 3/4 below the
/// target and free a random live block with probability 3/4 above it, so occupancy hovers at the
/// target while both operations are exercised. Every block is freed at the end.
pub fn run<'p>(
    pool: &mut Pool<'p>,
    slots: &mut [Option<PoolBlock<'p>>],
    cfg: &StressConfig,
    mut clock: impl FnMut() -> u64,
) -> Result<StressReport, StressError> {
    if cfg.min_size == 0 || cfg.min_size > cfg.max_size {
        return Err(StressError::BadSizes {
            min_size: cfg.min_size,
            max_size: cfg.max_size,
        });
    }
    if pool.stats().used != 0 {
        return Err(StressError::PoolNotEmpty {
            used: pool.stats().used,
        });
    }
    // At least one slot, so an allocation always has somewhere to go.
    let needed = slots_needed(pool.stats().capacity, cfg).max(1);
    if slots.len() < needed {
        return Err(StressError::TooFewSlots {
            needed,
            given: slots.len(),
        });
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let mut live = 0usize;
    let mut report = StressReport::default();
    let span = (cfg.max_size - cfg.min_size) as u64 + 1;
    let result = (|| {
        for (b, &target) in report.buckets.iter_mut().zip(TARGETS_PERCENT.iter()) {
            b.target_percent = target;
            b.min_occupancy_percent = usize::MAX;
            // Untimed fill to the target.
            while pool.occupancy_percent() < target && live < slots.len() {
                let size = cfg.min_size + rng.below(span) as usize;
                match pool.alloc(size, cfg.align) {
                    Ok(block) => {
                        slots[live] = Some(block);
                        live += 1;
                    }
                    Err(PoolError::Exhausted { .. }) => break,
                    Err(e) => return Err(StressError::Pool(e)),
                }
            }
            for _ in 0..cfg.ops_per_bucket {
                let occ = pool.occupancy_percent();
                b.min_occupancy_percent = b.min_occupancy_percent.min(occ);
                b.max_occupancy_percent = b.max_occupancy_percent.max(occ);
                let below = occ < target;
                let mut do_alloc = (rng.below(4) < 3) == below;
                if live == 0 {
                    do_alloc = true;
                } else if live == slots.len() {
                    do_alloc = false;
                }
                if do_alloc {
                    let size = cfg.min_size + rng.below(span) as usize;
                    let t0 = clock();
                    let r = pool.alloc(size, cfg.align);
                    let cost = clock().wrapping_sub(t0);
                    match r {
                        Ok(block) => {
                            b.alloc.record(cost);
                            slots[live] = Some(block);
                            live += 1;
                        }
                        Err(PoolError::Exhausted { .. }) => b.failed.record(cost),
                        Err(e) => return Err(StressError::Pool(e)),
                    }
                } else {
                    let victim = rng.below(live as u64) as usize;
                    // Swap-remove keeps live blocks dense, so picking one is O(1).
                    live -= 1;
                    slots.swap(victim, live);
                    if let Some(block) = slots[live].take() {
                        let t0 = clock();
                        let r = pool.free(block);
                        let cost = clock().wrapping_sub(t0);
                        r.map_err(StressError::Pool)?;
                        b.free.record(cost);
                    }
                }
            }
            if b.min_occupancy_percent == usize::MAX {
                b.min_occupancy_percent = 0;
            }
        }
        Ok(())
    })();
    report.high_water = pool.stats().high_water;
    for slot in slots[..live].iter_mut() {
        if let Some(block) = slot.take() {
            pool.free(block).map_err(StressError::Pool)?;
        }
    }
    result.map(|()| report)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::mem::MaybeUninit;
    use std::vec;

    fn config() -> StressConfig {
        StressConfig {
            ops_per_bucket: 2000,
            min_size: 64,
            max_size: 4096,
            align: 8,
            seed: 1,
        }
    }

    #[test]
    fn buckets_sit_at_their_targets_and_pool_ends_empty() {
        let mut mem = vec![MaybeUninit::<u8>::uninit(); 1 << 20];
        let mut pool = Pool::new(&mut mem).unwrap();
        let cfg = config();
        let mut slots: std::vec::Vec<Option<PoolBlock<'_>>> =
            (0..slots_needed(1 << 20, &cfg)).map(|_| None).collect();
        let mut ticks = 0u64;
        let report = run(&mut pool, &mut slots, &cfg, || {
            ticks += 1;
            ticks
        })
        .unwrap();
        for b in &report.buckets {
            let ops = b.alloc.count + b.free.count + b.failed.count;
            assert_eq!(ops, 2000);
            assert!(b.alloc.count > 500 && b.free.count > 500, "{b:?}");
            // The counter clock advances once per reading: each operation costs exactly 1.
            assert_eq!((b.alloc.min, b.alloc.max), (1, 1));
            assert!(
                b.min_occupancy_percent + 5 >= b.target_percent
                    && b.max_occupancy_percent <= b.target_percent + 5,
                "{b:?}"
            );
        }
        assert!(report.high_water >= (1 << 20) * 85 / 100);
        assert_eq!(pool.stats().used, 0);
        assert_eq!(pool.stats().live_blocks, 0);
        assert!(slots.iter().all(Option::is_none));
    }

    #[test]
    fn same_seed_same_operations() {
        let run_once = || {
            let mut mem = vec![MaybeUninit::<u8>::uninit(); 256 * 1024];
            let mut pool = Pool::new(&mut mem).unwrap();
            let cfg = config();
            let mut slots: std::vec::Vec<Option<PoolBlock<'_>>> =
                (0..slots_needed(256 * 1024, &cfg)).map(|_| None).collect();
            let r = run(&mut pool, &mut slots, &cfg, || 0).unwrap();
            (
                r.buckets.map(|b| (b.alloc.count, b.free.count)),
                r.high_water,
            )
        };
        assert_eq!(run_once(), run_once());
    }

    #[test]
    fn bad_configuration_is_refused() {
        let mut mem = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
        let mut pool = Pool::new(&mut mem).unwrap();
        let mut none: [Option<PoolBlock<'_>>; 0] = [];
        let tiny = StressConfig {
            min_size: 1 << 20,
            max_size: 1 << 20,
            ..config()
        };
        assert!(matches!(
            run(&mut pool, &mut none, &tiny, || 0),
            Err(StressError::TooFewSlots {
                needed: 1,
                given: 0
            })
        ));
        let mut slots: [Option<PoolBlock<'_>>; 4] = Default::default();
        let mut cfg = config();
        assert!(matches!(
            run(&mut pool, &mut slots, &cfg, || 0),
            Err(StressError::TooFewSlots { given: 4, .. })
        ));
        cfg.min_size = 0;
        assert!(matches!(
            run(&mut pool, &mut slots, &cfg, || 0),
            Err(StressError::BadSizes { .. })
        ));
    }

    #[test]
    fn quantile_bound_from_histogram() {
        let mut c = CostStats::default();
        for x in 1..=100u64 {
            c.record(x);
        }
        assert_eq!(c.quantile_upper_bound(500), 63);
        assert_eq!(c.quantile_upper_bound(1000), 127);
        assert_eq!((c.min, c.max, c.mean()), (1, 100, 50));
    }
}

//! Hardware counters of the loop thread through `perf_event_open`: cycles, instructions, cache
//! references and cache misses, one counter group read with one `read(2)`, user space only (so
//! the sleep between periods is not counted: what is counted is the jobs' own work). Where the
//! machine refuses — no PMU exposed to a VM, `perf_event_paranoid` too high for the process —
//! the reason is kept and reported as "not available here: …", never as zeros.

use std::os::fd::{AsFd, OwnedFd};

use serde::Serialize;

use crate::sys;

/// The group's counters in order (`PERF_COUNT_HW_*` 0, 1, 2, 3).
const EVENTS: [(u64, &str); 4] = [
    (0, "cycles"),
    (1, "instructions"),
    (2, "cache references"),
    (3, "cache misses"),
];

/// An open, running counter group of the calling thread.
pub struct HwCounters {
    leader: OwnedFd,
    _members: Vec<OwnedFd>,
}

/// Counts since the group was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HwCounts {
    pub cycles: u64,
    pub instructions: u64,
    pub cache_references: u64,
    pub cache_misses: u64,
}

/// What a run reports: per-step figures, or why there are none.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HwReport {
    Counted {
        steps: u64,
        totals: HwCounts,
        cycles_per_step: f64,
        instructions_per_step: f64,
        cache_references_per_step: f64,
        cache_misses_per_step: f64,
        /// 1 − misses / references (null without references).
        cache_hit_rate: Option<f64>,
    },
    NotAvailable(String),
}

fn errno_reason(e: &std::io::Error) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let why = match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => {
            "no hardware PMU is exposed to this machine (a VM without a virtual PMU?)"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "the kernel refuses this process (perf_event_paranoid; needs CAP_PERFMON)"
        }
        Some(libc::ENOSYS) => "the kernel has no perf_event_open",
        _ => "perf_event_open failed",
    };
    format!("not available here: {e} — {why}; perf_event_paranoid = {paranoid}")
}

impl std::fmt::Display for HwReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAvailable(why) => f.write_str(why),
            Self::Counted {
                cycles_per_step,
                instructions_per_step,
                cache_references_per_step,
                cache_misses_per_step,
                cache_hit_rate,
                ..
            } => {
                write!(
                    f,
                    "per step {cycles_per_step:.0} cycles, {instructions_per_step:.0} instructions, {cache_references_per_step:.1} cache references, {cache_misses_per_step:.1} misses"
                )?;
                match cache_hit_rate {
                    Some(h) => write!(f, " (cache hit rate {:.2} %)", h * 100.0),
                    None => Ok(()),
                }
            }
        }
    }
}

impl HwCounters {
    /// Opens and starts the group for the calling thread.
    pub fn start() -> Result<Self, String> {
        Self::start_typed(sys::PERF_TYPE_HARDWARE, [0, 1, 2, 3])
    }

    /// The same group read of four counters of another type (tests use software counters,
    /// which every Linux has, to check the group and read path where no PMU is exposed).
    fn start_typed(type_: u32, configs: [u64; 4]) -> Result<Self, String> {
        let open = |i: usize, group| {
            let config = configs[i];
            sys::perf_counter_open(type_, config, group)
                .map_err(|e| format!("{}: {}", EVENTS[i].1, errno_reason(&e)))
        };
        let leader = open(0, -1)?;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&leader);
        let mut members = Vec::new();
        for i in 1..EVENTS.len() {
            members.push(open(i, raw)?);
        }
        sys::perf_group_enable(leader.as_fd(), true).map_err(|e| errno_reason(&e))?;
        Ok(Self {
            leader,
            _members: members,
        })
    }

    /// The counts so far: one `read(2)` of the group (nr, then one value per counter); no
    /// allocation, so the loop may call it. `None` if the read fails or is short.
    pub fn read_raw(&self) -> Option<HwCounts> {
        let mut buf = [0u8; 8 * (1 + EVENTS.len())];
        let n = rustix::io::read(&self.leader, &mut buf).ok()?;
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[8 * i..8 * i + 8]);
            u64::from_ne_bytes(b)
        };
        if n != buf.len() || w(0) != EVENTS.len() as u64 {
            return None;
        }
        Some(HwCounts {
            cycles: w(1),
            instructions: w(2),
            cache_references: w(3),
            cache_misses: w(4),
        })
    }

    /// As [`read_raw`](Self::read_raw), with a reason on failure.
    pub fn read(&self) -> Result<HwCounts, String> {
        self.read_raw()
            .ok_or_else(|| "reading the counter group failed or returned a short record".into())
    }

    /// The figures per step after `steps` steps.
    pub fn report(&self, steps: u64) -> HwReport {
        match self.read() {
            Err(e) => HwReport::NotAvailable(e),
            Ok(c) => {
                let per = |v: u64| v as f64 / steps.max(1) as f64;
                HwReport::Counted {
                    steps,
                    totals: c,
                    cycles_per_step: per(c.cycles),
                    instructions_per_step: per(c.instructions),
                    cache_references_per_step: per(c.cache_references),
                    cache_misses_per_step: per(c.cache_misses),
                    cache_hit_rate: (c.cache_references > 0).then(|| {
                        1.0 - c.cache_misses.min(c.cache_references) as f64
                            / c.cache_references as f64
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_or_say_why_not() {
        match HwCounters::start() {
            Ok(c) => {
                let mut x = 0u64;
                for i in 0..1_000_000u64 {
                    x = x.wrapping_add(i * i);
                }
                std::hint::black_box(x);
                let HwReport::Counted { totals, .. } = c.report(1) else {
                    panic!("opened but unreadable");
                };
                assert!(totals.instructions > 1_000_000, "{totals:?}");
            }
            Err(why) => {
                assert!(why.contains("not available here: "), "{why}");
                eprintln!("hardware counters: {why}");
            }
        }
    }

    #[test]
    fn the_group_read_path_works_on_software_counters() {
        // task-clock (ns), page faults, context switches, cpu-clock: every Linux has them.
        let c = HwCounters::start_typed(sys::PERF_TYPE_SOFTWARE, [1, 2, 3, 0]).unwrap();
        let v: Vec<u8> = vec![1; 8 << 20]; // touch 8 MiB: page faults
        std::hint::black_box(&v);
        let a = c.read().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(5) {}
        let b = c.read().unwrap();
        // Here "cycles" = task-clock ns, "instructions" = page faults, "cache misses" =
        // cpu-clock ns: the two clocks count the same on-CPU time, whatever the load.
        assert!(
            b.cycles > a.cycles && b.cache_misses > a.cache_misses,
            "{a:?} {b:?}"
        );
        let (task, cpu) = (b.cycles as f64, b.cache_misses as f64);
        assert!((task - cpu).abs() < 0.05 * cpu, "{b:?}");
        assert!(
            a.instructions > 1000,
            "8 MiB touched without page faults: {a:?}"
        );
    }
}

//! Time partitions (the vision's `reservoir_time_slot`): a major frame repeats forever and is cut
//! into windows, each admitting one partition. Only the active partition's tasks may run, so an
//! overloaded partition can only use up its own windows: the others' time is fixed by the table.
//!
//! The table is validated once (windows inside the frame, non-empty, disjoint, partition ids in
//! range); lookups then scan at most `W` windows (fixed), so they are bounded-time.
#![forbid(unsafe_code)]

pub type PartitionId = u8;

/// Partition ids must be below this.
pub const MAX_PARTITIONS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Offset from the start of the major frame.
    pub start_ns: u64,
    pub duration_ns: u64,
    pub partition: PartitionId,
}

impl Window {
    fn end_ns(&self) -> u64 {
        // Validated not to overflow before any window is stored.
        self.start_ns + self.duration_ns
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionError {
    ZeroMajorFrame,
    NoWindows,
    TooManyWindows {
        given: usize,
        capacity: usize,
    },
    /// Window `index` (in the order given) has zero duration.
    EmptyWindow {
        index: usize,
    },
    /// Window `index` ends after the major frame (or its end overflows).
    OutsideFrame {
        index: usize,
        end_ns: u64,
        major_frame_ns: u64,
    },
    /// Windows `first` and `second` (order given) share time.
    Overlap {
        first: usize,
        second: usize,
    },
    /// Window `index` names a partition not below [`MAX_PARTITIONS`].
    UnknownPartition {
        index: usize,
        partition: PartitionId,
    },
}

impl core::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::ZeroMajorFrame => write!(f, "the major frame must be longer than zero"),
            Self::NoWindows => write!(f, "a partition table needs at least one window"),
            Self::TooManyWindows { given, capacity } => {
                write!(f, "{given} windows given, the table holds {capacity}")
            }
            Self::EmptyWindow { index } => write!(f, "window {index} has zero duration"),
            Self::OutsideFrame {
                index,
                end_ns,
                major_frame_ns,
            } => write!(
                f,
                "window {index} ends at {end_ns} ns, after the {major_frame_ns} ns major frame"
            ),
            Self::Overlap { first, second } => write!(f, "windows {first} and {second} overlap"),
            Self::UnknownPartition { index, partition } => write!(
                f,
                "window {index} names partition {partition}, ids must be below {MAX_PARTITIONS}"
            ),
        }
    }
}

/// Which partition may run at a given time, and until when that answer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// `None` in a gap between windows (only the idle task runs).
    pub partition: Option<PartitionId>,
    /// Absolute time of the next window boundary (program the partition timer with it).
    pub until_ns: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct PartitionTable<const W: usize> {
    major_frame_ns: u64,
    /// Sorted by start.
    windows: [Window; W],
    len: usize,
}

impl<const W: usize> PartitionTable<W> {
    pub fn new(major_frame_ns: u64, windows: &[Window]) -> Result<Self, PartitionError> {
        if major_frame_ns == 0 {
            return Err(PartitionError::ZeroMajorFrame);
        }
        if windows.is_empty() {
            return Err(PartitionError::NoWindows);
        }
        if windows.len() > W {
            return Err(PartitionError::TooManyWindows {
                given: windows.len(),
                capacity: W,
            });
        }
        for (index, w) in windows.iter().enumerate() {
            if w.duration_ns == 0 {
                return Err(PartitionError::EmptyWindow { index });
            }
            if w.partition as usize >= MAX_PARTITIONS {
                return Err(PartitionError::UnknownPartition {
                    index,
                    partition: w.partition,
                });
            }
            let end = w.start_ns.checked_add(w.duration_ns);
            if end.is_none_or(|end_ns| end_ns > major_frame_ns) {
                let end_ns = end.unwrap_or(u64::MAX);
                return Err(PartitionError::OutsideFrame {
                    index,
                    end_ns,
                    major_frame_ns,
                });
            }
        }
        for (first, a) in windows.iter().enumerate() {
            for (second, b) in windows.iter().enumerate().skip(first + 1) {
                if a.start_ns < b.end_ns() && b.start_ns < a.end_ns() {
                    return Err(PartitionError::Overlap { first, second });
                }
            }
        }
        let mut sorted = [windows[0]; W];
        sorted[..windows.len()].copy_from_slice(windows);
        sorted[..windows.len()].sort_unstable_by_key(|w| w.start_ns);
        Ok(Self {
            major_frame_ns,
            windows: sorted,
            len: windows.len(),
        })
    }

    pub fn major_frame_ns(&self) -> u64 {
        self.major_frame_ns
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows[..self.len]
    }

    /// Time per major frame a partition is given.
    pub fn share_ns(&self, partition: PartitionId) -> u64 {
        self.windows()
            .iter()
            .filter(|w| w.partition == partition)
            .map(|w| w.duration_ns)
            .sum()
    }

    /// The active partition at absolute time `now_ns` (frames start at 0) and the next boundary.
    pub fn slot_at(&self, now_ns: u64) -> Slot {
        let offset = now_ns % self.major_frame_ns;
        let frame_start = now_ns - offset;
        let at = |o: u64| frame_start.saturating_add(o);
        for w in self.windows() {
            if offset < w.start_ns {
                return Slot {
                    partition: None,
                    until_ns: at(w.start_ns),
                };
            }
            if offset < w.end_ns() {
                return Slot {
                    partition: Some(w.partition),
                    until_ns: at(w.end_ns()),
                };
            }
        }
        // After the last window: a gap until the next frame.
        let first = self.windows()[0];
        let next_frame = at(self.major_frame_ns);
        if first.start_ns == 0 {
            // Only reachable when the last window ends before the frame does.
            Slot {
                partition: None,
                until_ns: next_frame,
            }
        } else {
            Slot {
                partition: None,
                until_ns: next_frame.saturating_add(first.start_ns),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periodic::{BudgetVerdict, JobState, PeriodicParams, PeriodicTask};

    const MS: u64 = 1_000_000;

    fn w(start_ms: u64, dur_ms: u64, partition: PartitionId) -> Window {
        Window {
            start_ns: start_ms * MS,
            duration_ns: dur_ms * MS,
            partition,
        }
    }

    #[test]
    fn validation_names_the_bad_window() {
        type T = PartitionTable<4>;
        assert_eq!(
            T::new(0, &[w(0, 1, 0)]).unwrap_err(),
            PartitionError::ZeroMajorFrame
        );
        assert_eq!(T::new(10 * MS, &[]).unwrap_err(), PartitionError::NoWindows);
        assert_eq!(
            T::new(10 * MS, &[w(0, 1, 0), w(1, 0, 1)]).unwrap_err(),
            PartitionError::EmptyWindow { index: 1 }
        );
        assert_eq!(
            T::new(10 * MS, &[w(8, 3, 0)]).unwrap_err(),
            PartitionError::OutsideFrame {
                index: 0,
                end_ns: 11 * MS,
                major_frame_ns: 10 * MS
            }
        );
        assert!(matches!(
            T::new(
                10 * MS,
                &[Window {
                    start_ns: u64::MAX,
                    duration_ns: 2,
                    partition: 0
                }]
            ),
            Err(PartitionError::OutsideFrame { .. })
        ));
        assert!(matches!(
            T::new(
                u64::MAX,
                &[Window {
                    start_ns: u64::MAX - 1,
                    duration_ns: 2,
                    partition: 0
                }]
            ),
            Err(PartitionError::OutsideFrame {
                end_ns: u64::MAX,
                ..
            })
        ));
        assert_eq!(
            T::new(10 * MS, &[w(0, 5, 0), w(6, 2, 1), w(4, 2, 2)]).unwrap_err(),
            PartitionError::Overlap {
                first: 0,
                second: 2
            }
        );
        assert_eq!(
            T::new(10 * MS, &[w(0, 5, 16)]).unwrap_err(),
            PartitionError::UnknownPartition {
                index: 0,
                partition: 16
            }
        );
        assert_eq!(
            T::new(10 * MS, &[w(0, 1, 0); 5]).unwrap_err(),
            PartitionError::TooManyWindows {
                given: 5,
                capacity: 4
            }
        );
    }

    #[test]
    fn lookup_gives_partition_and_next_boundary() {
        // Given out of order on purpose; gaps at 4..5 ms and 9..10 ms... and 0..1 ms.
        let t = PartitionTable::<4>::new(10 * MS, &[w(5, 4, 1), w(1, 3, 0)]).unwrap();
        let at = |ns| t.slot_at(ns);
        assert_eq!(
            at(0),
            Slot {
                partition: None,
                until_ns: MS
            }
        );
        assert_eq!(
            at(MS),
            Slot {
                partition: Some(0),
                until_ns: 4 * MS
            }
        );
        assert_eq!(
            at(4 * MS + 1),
            Slot {
                partition: None,
                until_ns: 5 * MS
            }
        );
        assert_eq!(
            at(8 * MS),
            Slot {
                partition: Some(1),
                until_ns: 9 * MS
            }
        );
        assert_eq!(
            at(9 * MS),
            Slot {
                partition: None,
                until_ns: 11 * MS
            }
        );
        assert_eq!(
            at(122 * MS),
            Slot {
                partition: Some(0),
                until_ns: 124 * MS
            }
        );
        assert_eq!(t.share_ns(0), 3 * MS);
    }

    /// One simulated task: a periodic accounting record plus the work it still has to do.
    struct SimTask {
        partition: PartitionId,
        priority: u8,
        acct: PeriodicTask,
        /// Work requested per job, cycled (ns).
        demand_ns: &'static [u64],
        backlog_ns: u64,
    }

    /// Runs the tasks under the table, in `tick_ns` steps, for `frames` major frames.
    fn run(table: &PartitionTable<4>, tasks: &mut [SimTask], tick_ns: u64, frames: u64) {
        let end = frames * table.major_frame_ns();
        let mut now = 0;
        while now < end {
            for t in tasks.iter_mut() {
                while t.acct.next_release_ns().unwrap() <= now {
                    t.acct.release(now).unwrap();
                    let k = t.acct.job().unwrap() as usize;
                    t.backlog_ns += t.demand_ns[k % t.demand_ns.len()];
                }
                t.acct.check_deadline(now);
            }
            let active = table.slot_at(now).partition;
            // Fixed priority among the runnable tasks of the active partition only.
            let pick = tasks
                .iter_mut()
                .filter(|t| Some(t.partition) == active)
                .filter(|t| t.acct.state() == JobState::Runnable && t.backlog_ns > 0)
                .max_by_key(|t| t.priority);
            if let Some(t) = pick {
                t.backlog_ns -= tick_ns;
                if t.backlog_ns == 0 {
                    t.acct.complete(now + tick_ns, tick_ns).unwrap();
                } else if let BudgetVerdict::Exhausted { .. } = t.acct.charge(tick_ns).unwrap() {
                    // Throttled until its next release; the backlog waits.
                }
            }
            now += tick_ns;
        }
        for t in tasks.iter_mut() {
            t.acct.check_deadline(now);
        }
    }

    fn periodic(period_ms: u64, budget_ms: u64) -> PeriodicTask {
        PeriodicTask::new(
            PeriodicParams {
                start_ns: 0,
                period_ns: period_ms * MS,
                deadline_ns: period_ms * MS,
                budget_ns: budget_ms * MS,
            },
            MS / 10,
        )
        .unwrap()
    }

    #[test]
    fn an_overloaded_partition_cannot_take_time_from_another() {
        // 10 ms frame: partition 0 gets 0..5 ms, partition 1 gets 5..10 ms.
        let table = PartitionTable::<4>::new(10 * MS, &[w(0, 5, 0), w(5, 5, 1)]).unwrap();
        const FRAMES: u64 = 1_000;
        // Partition 0: the "hog" asks for 6 ms in even periods and 2 ms in odd ones, with a 4 ms
        // budget, plus a 1 ms task below it. Partition 1: two tasks using 4 of its 5 ms.
        const HOG: &[u64] = &[6 * MS, 2 * MS];
        const ONE_MS: &[u64] = &[MS];
        const THREE_MS: &[u64] = &[3 * MS];
        let mut tasks = [
            SimTask {
                partition: 0,
                priority: 9,
                acct: periodic(10, 4),
                demand_ns: HOG,
                backlog_ns: 0,
            },
            SimTask {
                partition: 0,
                priority: 1,
                acct: periodic(10, 1),
                demand_ns: ONE_MS,
                backlog_ns: 0,
            },
            SimTask {
                partition: 1,
                priority: 5,
                acct: periodic(10, 3),
                demand_ns: THREE_MS,
                backlog_ns: 0,
            },
            SimTask {
                partition: 1,
                priority: 4,
                acct: periodic(10, 1),
                demand_ns: ONE_MS,
                backlog_ns: 0,
            },
        ];
        run(&table, &mut tasks, MS / 10, FRAMES);
        // The other partition misses nothing and never overruns.
        for t in &tasks[2..] {
            assert_eq!((t.acct.deadline_misses, t.acct.overruns), (0, 0));
        }
        assert_eq!(tasks[2].acct.completed_jobs, FRAMES);
        assert_eq!(tasks[3].acct.completed_jobs, FRAMES);
        // The overload is counted exactly: each even period the hog wants 6 ms against a 4 ms
        // budget → one overrun and one miss; the 2 ms left over plus the odd period's 2 ms fit
        // its budget. Budget enforcement also leaves the 1 ms task its millisecond.
        let hog = &tasks[0].acct;
        assert_eq!(hog.overruns, FRAMES / 2);
        assert_eq!(hog.deadline_misses, FRAMES / 2);
        assert_eq!(tasks[1].acct.deadline_misses, 0);
        assert_eq!(tasks[1].acct.completed_jobs, FRAMES);
    }
}

//! Periodic task accounting: releases at `start + k·period` (computed by multiplication, so they
//! never drift), absolute deadlines, a CPU budget per period with enforcement, deadline-miss and
//! overrun counters, and release-jitter statistics from a fixed histogram.
//!
//! Rules, in the order the kernel applies them:
//! - A job is released at `r_k`; the kernel calls [`PeriodicTask::release`] when the release
//!   timer fires (late by the release jitter). Releases that passed while the task was still busy
//!   are skipped and each counts as a deadline miss, so a task that falls behind catches up to the
//!   current period instead of lagging forever.
//! - Running time is charged with [`PeriodicTask::charge`]. When the job's budget is used up the
//!   job is *throttled* (preempted, not runnable) until the next release, and counted as one
//!   overrun. This is what keeps an overloaded task from taking time from others.
//! - A job completes when the task calls `sleep_until_next_period`
//!   ([`PeriodicTask::complete`]); completing after `r_k + deadline` is a deadline miss, and
//!   having used more than the budget (possible only if the budget timer fired late) an overrun.
//! - A job still unfinished at the next release is counted as one deadline miss; the task keeps
//!   running under the new job's budget (its code cannot be abandoned half-way).
#![forbid(unsafe_code)]

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodicError {
    ZeroPeriod,
    /// The relative deadline must be in (0, period].
    DeadlineOutOfRange {
        deadline_ns: u64,
        period_ns: u64,
    },
    /// The budget must be in (0, deadline].
    BudgetOutOfRange {
        budget_ns: u64,
        deadline_ns: u64,
    },
    /// Release `k` would overflow 64-bit nanoseconds.
    ClockOverflow,
    /// `release` was called before the next release time.
    EarlyRelease {
        now_ns: u64,
        release_ns: u64,
    },
    /// `charge`/`complete` while the task is throttled or waiting: it cannot have run.
    NotRunnable,
}

impl core::fmt::Display for PeriodicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::ZeroPeriod => write!(f, "a periodic task needs a period above zero"),
            Self::DeadlineOutOfRange {
                deadline_ns,
                period_ns,
            } => write!(
                f,
                "deadline {deadline_ns} ns must be above zero and at most the period {period_ns} ns"
            ),
            Self::BudgetOutOfRange {
                budget_ns,
                deadline_ns,
            } => write!(
                f,
                "budget {budget_ns} ns must be above zero and at most the deadline {deadline_ns} ns"
            ),
            Self::ClockOverflow => write!(f, "the next release overflows the 64-bit clock"),
            Self::EarlyRelease { now_ns, release_ns } => write!(
                f,
                "release at {now_ns} ns is before the release time {release_ns} ns"
            ),
            Self::NotRunnable => write!(f, "the task is throttled or waiting, so it did not run"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodicParams {
    pub start_ns: u64,
    pub period_ns: u64,
    /// Relative deadline, at most the period.
    pub deadline_ns: u64,
    /// CPU time per job, at most the deadline.
    pub budget_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Job done (or none released yet); waiting for the next release.
    Waiting,
    /// Released with budget left: may run.
    Runnable,
    /// Budget used up: not runnable until the next release.
    Throttled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetVerdict {
    /// Budget left; the value is what remains (program the budget timer with it).
    Continue { remaining_ns: u64 },
    /// Budget used up: preempt the task now; it is throttled until `until_ns`.
    Exhausted { until_ns: u64 },
}

/// Release-latency histogram: fixed buckets of `bucket_ns`, exact min/max, median to bucket
/// resolution (the upper edge of the bucket holding the median sample).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterHistogram<const B: usize> {
    bucket_ns: u64,
    counts: [u64; B],
    /// Samples at or above `B · bucket_ns`.
    beyond: u64,
    samples: u64,
    min_ns: u64,
    max_ns: u64,
}

impl<const B: usize> JitterHistogram<B> {
    pub const fn new(bucket_ns: u64) -> Self {
        Self {
            bucket_ns: if bucket_ns == 0 { 1 } else { bucket_ns },
            counts: [0; B],
            beyond: 0,
            samples: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }

    pub fn record(&mut self, latency_ns: u64) {
        let bucket = latency_ns / self.bucket_ns;
        match self.counts.get_mut(bucket as usize) {
            Some(c) => *c += 1,
            None => self.beyond += 1,
        }
        self.samples += 1;
        self.min_ns = self.min_ns.min(latency_ns);
        self.max_ns = self.max_ns.max(latency_ns);
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn min_ns(&self) -> Option<u64> {
        (self.samples > 0).then_some(self.min_ns)
    }

    pub fn max_ns(&self) -> Option<u64> {
        (self.samples > 0).then_some(self.max_ns)
    }

    /// Upper edge of the bucket holding the median (lower median for an even count); the exact
    /// maximum if the median falls beyond the last bucket.
    pub fn median_upper_ns(&self) -> Option<u64> {
        if self.samples == 0 {
            return None;
        }
        let rank = self.samples.div_ceil(2);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some((i as u64 + 1) * self.bucket_ns);
            }
        }
        Some(self.max_ns)
    }
}

/// Number of jitter buckets each task keeps.
pub const JITTER_BUCKETS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodicTask {
    params: PeriodicParams,
    /// Index of the current (or last) job; `None` before the first release.
    job: Option<u64>,
    state: JobState,
    consumed_ns: u64,
    miss_counted: bool,
    overrun_counted: bool,
    pub deadline_misses: u64,
    pub overruns: u64,
    pub skipped_jobs: u64,
    pub completed_jobs: u64,
    pub jitter: JitterHistogram<JITTER_BUCKETS>,
}

impl PeriodicTask {
    /// `jitter_bucket_ns` sets the histogram resolution.
    pub fn new(params: PeriodicParams, jitter_bucket_ns: u64) -> Result<Self, PeriodicError> {
        let PeriodicParams {
            period_ns,
            deadline_ns,
            budget_ns,
            start_ns,
        } = params;
        if period_ns == 0 {
            return Err(PeriodicError::ZeroPeriod);
        }
        if deadline_ns == 0 || deadline_ns > period_ns {
            return Err(PeriodicError::DeadlineOutOfRange {
                deadline_ns,
                period_ns,
            });
        }
        if budget_ns == 0 || budget_ns > deadline_ns {
            return Err(PeriodicError::BudgetOutOfRange {
                budget_ns,
                deadline_ns,
            });
        }
        start_ns
            .checked_add(period_ns)
            .ok_or(PeriodicError::ClockOverflow)?;
        Ok(Self {
            params,
            job: None,
            state: JobState::Waiting,
            consumed_ns: 0,
            miss_counted: false,
            overrun_counted: false,
            deadline_misses: 0,
            overruns: 0,
            skipped_jobs: 0,
            completed_jobs: 0,
            jitter: JitterHistogram::new(jitter_bucket_ns),
        })
    }

    pub fn params(&self) -> PeriodicParams {
        self.params
    }

    pub fn state(&self) -> JobState {
        self.state
    }

    pub fn job(&self) -> Option<u64> {
        self.job
    }

    /// `r_k = start + k · period`, or `None` if it overflows.
    pub fn release_time(&self, k: u64) -> Option<u64> {
        k.checked_mul(self.params.period_ns)?
            .checked_add(self.params.start_ns)
    }

    pub fn deadline_time(&self, k: u64) -> Option<u64> {
        self.release_time(k)?.checked_add(self.params.deadline_ns)
    }

    /// When the release timer should next fire.
    pub fn next_release_ns(&self) -> Result<u64, PeriodicError> {
        let next = self.job.map_or(Some(0), |k| k.checked_add(1));
        next.and_then(|k| self.release_time(k))
            .ok_or(PeriodicError::ClockOverflow)
    }

    /// The release timer fired at `now_ns`: starts the latest job released by now.
    pub fn release(&mut self, now_ns: u64) -> Result<(), PeriodicError> {
        let next = self.next_release_ns()?;
        if now_ns < next {
            return Err(PeriodicError::EarlyRelease {
                now_ns,
                release_ns: next,
            });
        }
        let latest = (now_ns - self.params.start_ns) / self.params.period_ns;
        let first_new = self.job.map_or(0, |k| k + 1);
        if self.state != JobState::Waiting && !self.miss_counted {
            self.deadline_misses += 1;
        }
        let skipped = latest - first_new;
        self.skipped_jobs += skipped;
        self.deadline_misses += skipped;
        self.job = Some(latest);
        self.state = JobState::Runnable;
        self.consumed_ns = 0;
        self.miss_counted = false;
        self.overrun_counted = false;
        // `latest` was derived from now_ns, so its release time cannot overflow.
        let released = self.release_time(latest).unwrap_or(now_ns);
        self.jitter.record(now_ns - released);
        Ok(())
    }

    /// Charges `ran_ns` of CPU time to the current job.
    pub fn charge(&mut self, ran_ns: u64) -> Result<BudgetVerdict, PeriodicError> {
        if self.state != JobState::Runnable {
            return Err(PeriodicError::NotRunnable);
        }
        self.consumed_ns = self.consumed_ns.saturating_add(ran_ns);
        if self.consumed_ns < self.params.budget_ns {
            return Ok(BudgetVerdict::Continue {
                remaining_ns: self.params.budget_ns - self.consumed_ns,
            });
        }
        self.state = JobState::Throttled;
        if !self.overrun_counted {
            self.overrun_counted = true;
            self.overruns += 1;
        }
        Ok(BudgetVerdict::Exhausted {
            until_ns: self.next_release_ns()?,
        })
    }

    /// Budget left in the current job (0 unless runnable).
    pub fn remaining_budget_ns(&self) -> u64 {
        match self.state {
            JobState::Runnable => self.params.budget_ns - self.consumed_ns,
            _ => 0,
        }
    }

    /// The task finished this job at `now_ns` (it called `sleep_until_next_period`) after running
    /// `ran_ns` since it was last charged; returns when it runs again. Finishing with exactly the
    /// budget used is not an overrun; going past it (a late budget timer) is.
    pub fn complete(&mut self, now_ns: u64, ran_ns: u64) -> Result<u64, PeriodicError> {
        if self.state != JobState::Runnable {
            return Err(PeriodicError::NotRunnable);
        }
        let k = self.job.ok_or(PeriodicError::NotRunnable)?;
        let deadline = self.deadline_time(k).ok_or(PeriodicError::ClockOverflow)?;
        self.consumed_ns = self.consumed_ns.saturating_add(ran_ns);
        if self.consumed_ns > self.params.budget_ns && !self.overrun_counted {
            self.overrun_counted = true;
            self.overruns += 1;
        }
        if now_ns > deadline && !self.miss_counted {
            self.deadline_misses += 1;
            self.miss_counted = true;
        }
        self.state = JobState::Waiting;
        self.completed_jobs += 1;
        self.next_release_ns()
    }

    /// Deadline timer: counts the miss as soon as the deadline passes with the job unfinished,
    /// so the counter is current without waiting for the next release.
    pub fn check_deadline(&mut self, now_ns: u64) {
        let Some(k) = self.job else { return };
        let passed = self.deadline_time(k).is_some_and(|d| now_ns > d);
        if passed && self.state != JobState::Waiting && !self.miss_counted {
            self.miss_counted = true;
            self.deadline_misses += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;

    fn task(budget_ns: u64) -> PeriodicTask {
        PeriodicTask::new(
            PeriodicParams {
                start_ns: 1_000 * US,
                period_ns: 100 * US,
                deadline_ns: 80 * US,
                budget_ns,
            },
            US,
        )
        .unwrap()
    }

    #[test]
    fn parameters_are_validated() {
        let p = PeriodicParams {
            start_ns: 0,
            period_ns: 100,
            deadline_ns: 100,
            budget_ns: 50,
        };
        assert!(PeriodicTask::new(p, 1).is_ok());
        let e = |p| PeriodicTask::new(p, 1).unwrap_err();
        assert_eq!(
            e(PeriodicParams { period_ns: 0, ..p }),
            PeriodicError::ZeroPeriod
        );
        assert!(matches!(
            e(PeriodicParams {
                deadline_ns: 101,
                ..p
            }),
            PeriodicError::DeadlineOutOfRange { .. }
        ));
        assert!(matches!(
            e(PeriodicParams { budget_ns: 0, ..p }),
            PeriodicError::BudgetOutOfRange { .. }
        ));
        assert_eq!(
            e(PeriodicParams {
                start_ns: u64::MAX,
                ..p
            }),
            PeriodicError::ClockOverflow
        );
    }

    #[test]
    fn releases_do_not_drift_and_jitter_is_measured() {
        let mut t = task(50 * US);
        for k in 0..10_000u64 {
            let release = t.next_release_ns().unwrap();
            assert_eq!(release, 1_000 * US + k * 100 * US);
            // The timer fires late by k mod 7 µs; the late firing must not shift later releases.
            t.release(release + (k % 7) * US).unwrap();
            assert_eq!(
                t.charge(30 * US),
                Ok(BudgetVerdict::Continue {
                    remaining_ns: 20 * US
                })
            );
            t.complete(release + 40 * US, 0).unwrap();
        }
        assert_eq!(t.deadline_misses, 0);
        assert_eq!(t.overruns, 0);
        assert_eq!(t.completed_jobs, 10_000);
        assert_eq!(t.jitter.min_ns(), Some(0));
        assert_eq!(t.jitter.max_ns(), Some(6 * US));
        // Latencies 0..6 µs, equally often (10 000 = 7·1428 + 4): the median sample is 3 µs,
        // in the bucket [3, 4) µs.
        assert_eq!(t.jitter.median_upper_ns(), Some(4 * US));
    }

    #[test]
    fn exhausted_budget_throttles_and_counts_one_overrun_per_job() {
        let mut t = task(50 * US);
        let r0 = t.next_release_ns().unwrap();
        t.release(r0).unwrap();
        assert!(matches!(
            t.charge(30 * US),
            Ok(BudgetVerdict::Continue { .. })
        ));
        assert_eq!(
            t.charge(25 * US),
            Ok(BudgetVerdict::Exhausted {
                until_ns: r0 + 100 * US
            })
        );
        assert_eq!(t.state(), JobState::Throttled);
        assert_eq!(t.charge(1), Err(PeriodicError::NotRunnable));
        assert_eq!(t.complete(r0 + 60 * US, 0), Err(PeriodicError::NotRunnable));
        assert_eq!(t.overruns, 1);
        t.check_deadline(r0 + 81 * US);
        assert_eq!(t.deadline_misses, 1);
        // The next release restores the budget and does not count the miss twice.
        t.release(r0 + 100 * US).unwrap();
        assert_eq!(t.deadline_misses, 1);
        assert_eq!(t.remaining_budget_ns(), 50 * US);
        t.complete(r0 + 150 * US, 50 * US).unwrap();
        assert_eq!((t.deadline_misses, t.overruns, t.completed_jobs), (1, 1, 1));
    }

    #[test]
    fn late_completion_and_skipped_releases_are_misses() {
        let mut t = task(80 * US);
        let r0 = t.next_release_ns().unwrap();
        t.release(r0).unwrap();
        t.complete(r0 + 81 * US, 81 * US).unwrap();
        assert_eq!(
            (t.deadline_misses, t.overruns),
            (1, 1),
            "81 µs of an 80 µs budget"
        );
        // The task wakes 3.5 periods late: jobs 1 and 2 were never started.
        t.release(r0 + 350 * US).unwrap();
        assert_eq!(t.job(), Some(3));
        assert_eq!(t.skipped_jobs, 2);
        assert_eq!(t.deadline_misses, 3);
        assert_eq!(t.jitter.max_ns(), Some(50 * US));
        assert_eq!(
            t.release(r0 + 350 * US),
            Err(PeriodicError::EarlyRelease {
                now_ns: r0 + 350 * US,
                release_ns: r0 + 400 * US
            })
        );
    }
}

//! The scheduler as the kernel runs it: fixed-priority ready queues per time partition, periodic
//! accounting with budget enforcement, and the partition table, composed into one state machine.
//! The kernel calls it on every timer interrupt and scheduling syscall; it answers which task
//! runs and when the next timer must fire (the earliest of: partition boundary, a release, the
//! running task's budget running out).
//!
//! Cost per call: O(T) over the fixed task table (charging, releases, deadline checks) plus the
//! O(1) selection; no allocation.
#![forbid(unsafe_code)]

use crate::partition::{PartitionId, PartitionTable, MAX_PARTITIONS};
use crate::periodic::{BudgetVerdict, PeriodicError, PeriodicParams, PeriodicTask};
use crate::pipeline::{Pipeline, PipelineError};
use crate::sched::{Priority, ReadyQueues, SchedError, TaskId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    pub priority: Priority,
    pub partition: PartitionId,
    /// `None`: an ordinary task, runnable until it blocks or stops.
    pub periodic: Option<PeriodicParams>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchError {
    UnknownTask {
        task: TaskId,
    },
    SlotTaken {
        task: TaskId,
    },
    UnknownPartition {
        partition: PartitionId,
    },
    /// The call needs the task to be the running one.
    NotRunning {
        task: TaskId,
    },
    Periodic(PeriodicError),
    Sched(SchedError),
    Pipeline(PipelineError),
    /// A pipeline stage must be a periodic task not yet released, in at most one pipeline.
    BadStage {
        task: TaskId,
    },
}

impl From<PipelineError> for DispatchError {
    fn from(e: PipelineError) -> Self {
        Self::Pipeline(e)
    }
}

impl From<PeriodicError> for DispatchError {
    fn from(e: PeriodicError) -> Self {
        Self::Periodic(e)
    }
}

impl From<SchedError> for DispatchError {
    fn from(e: SchedError) -> Self {
        Self::Sched(e)
    }
}

impl core::fmt::Display for DispatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownTask { task } => write!(f, "task {task} is not in the task table"),
            Self::SlotTaken { task } => write!(f, "task slot {task} is already in use"),
            Self::UnknownPartition { partition } => {
                write!(f, "partition {partition} is not below {MAX_PARTITIONS}")
            }
            Self::NotRunning { task } => write!(f, "task {task} is not the running task"),
            Self::Periodic(e) => write!(f, "{e}"),
            Self::Sched(e) => write!(f, "{e}"),
            Self::Pipeline(e) => write!(f, "{e}"),
            Self::BadStage { task } => write!(
                f,
                "task {task} cannot be a pipeline stage (not periodic, already released or already a stage)"
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Free,
    Ready,
    /// Waiting on a mutex or another kernel object.
    Blocked,
    /// Periodic, between jobs.
    Waiting,
    /// Periodic, budget used up until the next release.
    Throttled,
    /// A pipeline stage whose job is released but whose input is not ready yet (or whose output
    /// page the next stage has not consumed).
    Gated,
    Stopped,
}

/// What to do after a scheduler call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Task to run (`None`: idle).
    pub run: Option<TaskId>,
    /// Absolute time at which the scheduler must be called again at the latest.
    pub next_event_ns: u64,
}

pub struct Dispatcher<const T: usize, const W: usize> {
    table: PartitionTable<W>,
    queues: [ReadyQueues<T>; MAX_PARTITIONS],
    spec: [Option<TaskSpec>; T],
    acct: [Option<PeriodicTask>; T],
    life: [Life; T],
    running: Option<TaskId>,
    since_ns: u64,
    jitter_bucket_ns: u64,
    pipeline: Option<Pipeline<MAX_STAGES>>,
    stage_of: [Option<usize>; T],
    stage_task: [TaskId; MAX_STAGES],
}

/// Stages of the (one) pipeline a dispatcher orders.
pub const MAX_STAGES: usize = 8;

impl<const T: usize, const W: usize> Dispatcher<T, W> {
    pub fn new(table: PartitionTable<W>, jitter_bucket_ns: u64) -> Self {
        Self {
            table,
            queues: [const { ReadyQueues::new() }; MAX_PARTITIONS],
            spec: [None; T],
            acct: [None; T],
            life: [Life::Free; T],
            running: None,
            since_ns: 0,
            jitter_bucket_ns,
            pipeline: None,
            stage_of: [None; T],
            stage_task: [0; MAX_STAGES],
        }
    }

    /// Makes `stages` (in order) a pipeline: stage k+1 runs a period only after stage k finished
    /// it, stage k starts a period only after stage k+1 finished the previous one
    /// ([`Pipeline`]). Each stage must be a periodic task that has not been released yet; give
    /// them the same period. Stage 0's releases number the pipeline's periods.
    pub fn set_pipeline(&mut self, stages: &[TaskId]) -> Result<(), DispatchError> {
        let pipeline = Pipeline::new(stages.len())?;
        if self.pipeline.is_some() {
            // One pipeline per dispatcher.
            return Err(DispatchError::BadStage { task: stages[0] });
        }
        // Check every stage before recording any, so a refused call leaves no trace.
        for (k, &task) in stages.iter().enumerate() {
            let t = self.slot(task)?;
            let unreleased = self.acct[t].as_ref().is_some_and(|a| a.job().is_none());
            let repeated = stages[..k].contains(&task);
            if !unreleased
                || self.life[t] != Life::Waiting
                || self.stage_of[t].is_some()
                || repeated
            {
                return Err(DispatchError::BadStage { task });
            }
        }
        for (k, &task) in stages.iter().enumerate() {
            self.stage_of[task as usize] = Some(k);
            self.stage_task[k] = task;
        }
        self.pipeline = Some(pipeline);
        Ok(())
    }

    /// A released job of `t` becomes ready, unless the pipeline holds it back.
    fn release_ready(&mut self, t: usize) {
        match (self.stage_of[t], self.pipeline.as_ref()) {
            (Some(stage), Some(p)) if p.runnable(stage).is_none() => self.life[t] = Life::Gated,
            _ => self.make_ready(t),
        }
    }

    fn slot(&self, task: TaskId) -> Result<usize, DispatchError> {
        ((task as usize) < T)
            .then_some(task as usize)
            .ok_or(DispatchError::UnknownTask { task })
    }

    pub fn add_task(&mut self, task: TaskId, spec: TaskSpec) -> Result<(), DispatchError> {
        let t = self.slot(task)?;
        if self.life[t] != Life::Free {
            return Err(DispatchError::SlotTaken { task });
        }
        if spec.partition as usize >= MAX_PARTITIONS {
            return Err(DispatchError::UnknownPartition {
                partition: spec.partition,
            });
        }
        match spec.periodic {
            Some(p) => {
                self.acct[t] = Some(PeriodicTask::new(p, self.jitter_bucket_ns)?);
                self.life[t] = Life::Waiting;
            }
            None => {
                self.queues[spec.partition as usize].enqueue(task, spec.priority)?;
                self.life[t] = Life::Ready;
            }
        }
        self.spec[t] = Some(spec);
        Ok(())
    }

    /// Periodic accounting of a task (misses, overruns, jitter).
    pub fn periodic(&self, task: TaskId) -> Option<&PeriodicTask> {
        self.acct.get(task as usize)?.as_ref()
    }

    fn make_ready(&mut self, t: usize) {
        if let Some(spec) = self.spec[t] {
            // Cannot fail: the task is known and not queued (its life was not Ready).
            let _ = self.queues[spec.partition as usize].enqueue(t as TaskId, spec.priority);
            self.life[t] = Life::Ready;
        }
    }

    fn unready(&mut self, t: usize, life: Life) {
        if let (Life::Ready, Some(spec)) = (self.life[t], self.spec[t]) {
            let _ = self.queues[spec.partition as usize].remove(t as TaskId);
        }
        self.life[t] = life;
        if self.running == Some(t as TaskId) {
            self.running = None;
        }
    }

    /// Charges the running task for the time since it was dispatched.
    fn charge_running(&mut self, now_ns: u64) -> Result<(), DispatchError> {
        let Some(task) = self.running else {
            return Ok(());
        };
        let t = task as usize;
        let ran = now_ns.saturating_sub(self.since_ns);
        self.since_ns = now_ns;
        if let Some(acct) = self.acct[t].as_mut() {
            if let BudgetVerdict::Exhausted { .. } = acct.charge(ran)? {
                self.unready(t, Life::Throttled);
            }
        }
        Ok(())
    }

    /// Timer interrupt (or any scheduling point) at `now_ns`.
    pub fn tick(&mut self, now_ns: u64) -> Result<Decision, DispatchError> {
        self.charge_running(now_ns)?;
        for t in 0..T {
            let Some(acct) = self.acct[t].as_mut() else {
                continue;
            };
            if self.life[t] == Life::Stopped {
                continue;
            }
            if acct.next_release_ns()? <= now_ns {
                acct.release(now_ns)?;
                if let (Some(0), Some(p)) = (self.stage_of[t], self.pipeline.as_mut()) {
                    p.release_period();
                }
                if matches!(self.life[t], Life::Waiting | Life::Throttled) {
                    self.release_ready(t);
                }
            }
            if let Some(acct) = self.acct[t].as_mut() {
                acct.check_deadline(now_ns);
            }
        }
        self.decide(now_ns)
    }

    fn decide(&mut self, now_ns: u64) -> Result<Decision, DispatchError> {
        let slot = self.table.slot_at(now_ns);
        let run = slot
            .partition
            .and_then(|p| self.queues[p as usize].peek())
            .map(|(task, _)| task);
        self.running = run;
        self.since_ns = now_ns;
        let mut next = slot.until_ns;
        for (t, acct) in self.acct.iter().enumerate() {
            if let (Some(acct), false) = (acct, self.life[t] == Life::Stopped) {
                next = next.min(acct.next_release_ns()?);
            }
        }
        if let Some(acct) = run.and_then(|t| self.acct[t as usize].as_ref()) {
            next = next.min(now_ns.saturating_add(acct.remaining_budget_ns()));
        }
        Ok(Decision {
            run,
            next_event_ns: next,
        })
    }

    fn running_slot(&self, task: TaskId) -> Result<usize, DispatchError> {
        let t = self.slot(task)?;
        if self.running != Some(task) {
            return Err(DispatchError::NotRunning { task });
        }
        Ok(t)
    }

    /// `sleep_until_next_period` from the running periodic task.
    pub fn complete(&mut self, task: TaskId, now_ns: u64) -> Result<Decision, DispatchError> {
        let t = self.running_slot(task)?;
        let ran = now_ns.saturating_sub(self.since_ns);
        let acct = self.acct[t]
            .as_mut()
            .ok_or(DispatchError::Periodic(PeriodicError::NotRunnable))?;
        acct.complete(now_ns, ran)?;
        self.unready(t, Life::Waiting);
        if let (Some(stage), Some(p)) = (self.stage_of[t], self.pipeline.as_mut()) {
            let period = p
                .runnable(stage)
                .ok_or(PipelineError::OutOfOrder { stage, period: 0 })?;
            let (next, prev) = p.complete(stage, period)?;
            for s in [next, prev].into_iter().flatten() {
                let other = self.stage_task[s] as usize;
                if self.life[other] == Life::Gated {
                    self.make_ready(other);
                }
            }
        }
        self.tick(now_ns)
    }

    /// `yield` from the running task: it goes to the back of its priority's queue, so the next
    /// ready task of the same priority runs (a higher one would already be running).
    pub fn yield_now(&mut self, task: TaskId, now_ns: u64) -> Result<Decision, DispatchError> {
        let t = self.running_slot(task)?;
        self.charge_running(now_ns)?;
        if let (Life::Ready, Some(spec)) = (self.life[t], self.spec[t]) {
            let queue = &mut self.queues[spec.partition as usize];
            queue.remove(task)?;
            queue.enqueue(task, spec.priority)?;
        }
        self.tick(now_ns)
    }

    /// The running task blocks (e.g. on a mutex held by another task).
    pub fn block(&mut self, task: TaskId, now_ns: u64) -> Result<Decision, DispatchError> {
        self.running_slot(task)?;
        self.charge_running(now_ns)?;
        self.unready(task as usize, Life::Blocked);
        self.tick(now_ns)
    }

    /// A blocked task becomes runnable (it was given the mutex it waited for).
    pub fn wake(&mut self, task: TaskId) -> Result<(), DispatchError> {
        let t = self.slot(task)?;
        if self.life[t] == Life::Blocked {
            let throttled = self.acct[t]
                .as_ref()
                .is_some_and(|a| a.remaining_budget_ns() == 0);
            if throttled {
                self.life[t] = Life::Throttled;
            } else {
                self.make_ready(t);
            }
        }
        Ok(())
    }

    /// Priority inheritance changed a task's effective priority.
    pub fn set_priority(&mut self, task: TaskId, priority: Priority) -> Result<(), DispatchError> {
        let t = self.slot(task)?;
        let spec = self.spec[t]
            .as_mut()
            .ok_or(DispatchError::UnknownTask { task })?;
        spec.priority = priority;
        let partition = spec.partition as usize;
        if self.life[t] == Life::Ready {
            self.queues[partition].change_priority(task, priority)?;
        }
        Ok(())
    }

    /// The task exited or faulted: it never runs again; the others go on.
    pub fn stop(&mut self, task: TaskId, now_ns: u64) -> Result<Decision, DispatchError> {
        let t = self.slot(task)?;
        if self.running == Some(task) {
            self.charge_running(now_ns)?;
        }
        self.unready(t, Life::Stopped);
        if self.stage_of[t].is_some() {
            // A stopped stage ends its pipeline: the other stages would wait for it forever, so
            // they run by priority from now on.
            self.pipeline = None;
            self.stage_of = [None; T];
            for other in 0..T {
                if self.life[other] == Life::Gated {
                    self.make_ready(other);
                }
            }
        }
        self.tick(now_ns)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::partition::Window;

    const US: u64 = 1_000;

    /// Event-driven simulation: each task has `work_ns` to do per job (aperiodic tasks: work
    /// forever). Returns the time each task was given.
    fn run<const T: usize, const W: usize>(
        d: &mut Dispatcher<T, W>,
        work_ns: [u64; T],
        end_ns: u64,
    ) -> [u64; T] {
        let mut given = [0u64; T];
        let mut left = [0u64; T];
        let mut job = [u64::MAX; T];
        let mut now = 0;
        let mut decision = d.tick(0).unwrap();
        while now < end_ns {
            assert!(
                decision.next_event_ns > now,
                "the next event must be in the future"
            );
            let Some(task) = decision.run else {
                now = decision.next_event_ns;
                decision = d.tick(now).unwrap();
                continue;
            };
            let t = task as usize;
            let Some(acct) = d.periodic(task) else {
                given[t] += decision.next_event_ns - now;
                now = decision.next_event_ns;
                decision = d.tick(now).unwrap();
                continue;
            };
            // A new job adds its work to whatever the last one left (late work carries over).
            if acct.job() != Some(job[t]) {
                job[t] = acct.job().unwrap();
                left[t] += work_ns[t];
            }
            let slice = left[t].min(decision.next_event_ns - now);
            given[t] += slice;
            left[t] -= slice;
            now += slice;
            decision = if left[t] == 0 {
                d.complete(task, now).unwrap()
            } else {
                d.tick(now).unwrap()
            };
        }
        given
    }

    fn periodic(period_ns: u64, budget_ns: u64) -> Option<PeriodicParams> {
        Some(PeriodicParams {
            start_ns: 0,
            period_ns,
            deadline_ns: period_ns,
            budget_ns,
        })
    }

    #[test]
    fn a_pipeline_runs_stage_1_after_stage_0_whatever_their_priorities() {
        let table = PartitionTable::<2>::new(
            1_000 * US,
            &[Window {
                start_ns: 0,
                duration_ns: 1_000 * US,
                partition: 0,
            }],
        )
        .unwrap();
        let spec = |priority| TaskSpec {
            priority,
            partition: 0,
            periodic: periodic(1_000 * US, 500 * US),
        };
        for with_pipeline in [true, false] {
            let mut d = Dispatcher::<2, 2>::new(table, US);
            // Stage 1 is the more urgent task: priorities alone would run it first.
            d.add_task(0, spec(1)).unwrap();
            d.add_task(1, spec(9)).unwrap();
            if with_pipeline {
                d.set_pipeline(&[0, 1]).unwrap();
                assert_eq!(
                    d.set_pipeline(&[1]),
                    Err(DispatchError::BadStage { task: 1 }),
                    "a task is a stage of one pipeline at most"
                );
            }
            let mut order = std::vec::Vec::new();
            let mut now = 0;
            for period in 0..5u64 {
                now = now.max(period * 1_000 * US);
                let mut decision = d.tick(now).unwrap();
                while let Some(task) = decision.run {
                    order.push(task);
                    now += 10 * US;
                    decision = d.complete(task, now).unwrap();
                }
            }
            let expected: std::vec::Vec<u16> = if with_pipeline {
                [0, 1].repeat(5)
            } else {
                [1, 0].repeat(5)
            };
            assert_eq!(order, expected, "pipeline {with_pipeline}");
            if with_pipeline {
                // Stage 1 completes period 4 and is gated at period 5 until stage 0 runs it;
                // stage 0 stopping ends the pipeline instead of leaving stage 1 stuck.
                now = 5_000 * US;
                assert_eq!(d.tick(now).unwrap().run, Some(0));
                let after_stop = d.stop(0, now + US).unwrap();
                assert_eq!(after_stop.run, Some(1));
            }
            assert_eq!(d.periodic(0).unwrap().deadline_misses, 0);
            assert_eq!(d.periodic(1).unwrap().deadline_misses, 0);
        }
    }

    #[test]
    fn pipeline_stages_must_be_unreleased_periodic_tasks() {
        let table = PartitionTable::<2>::new(
            1_000 * US,
            &[Window {
                start_ns: 0,
                duration_ns: 1_000 * US,
                partition: 0,
            }],
        )
        .unwrap();
        let mut d = Dispatcher::<3, 2>::new(table, US);
        d.add_task(
            0,
            TaskSpec {
                priority: 1,
                partition: 0,
                periodic: None,
            },
        )
        .unwrap();
        d.add_task(
            1,
            TaskSpec {
                priority: 1,
                partition: 0,
                periodic: periodic(1_000 * US, 500 * US),
            },
        )
        .unwrap();
        assert_eq!(
            d.set_pipeline(&[1, 0]),
            Err(DispatchError::BadStage { task: 0 })
        );
        assert_eq!(
            d.set_pipeline(&[7]),
            Err(DispatchError::UnknownTask { task: 7 })
        );
        assert!(matches!(
            d.set_pipeline(&[]),
            Err(DispatchError::Pipeline(PipelineError::BadStageCount { .. }))
        ));
        d.tick(0).unwrap();
        assert_eq!(
            d.set_pipeline(&[1]),
            Err(DispatchError::BadStage { task: 1 }),
            "already released"
        );
    }

    #[test]
    fn yield_alternates_equal_priorities_and_never_passes_a_higher_one() {
        let table = PartitionTable::<2>::new(
            1_000 * US,
            &[Window {
                start_ns: 0,
                duration_ns: 1_000 * US,
                partition: 0,
            }],
        )
        .unwrap();
        let mut d = Dispatcher::<3, 2>::new(table, US);
        let plain = |priority| TaskSpec {
            priority,
            partition: 0,
            periodic: None,
        };
        d.add_task(0, plain(5)).unwrap();
        d.add_task(1, plain(5)).unwrap();
        let mut now = 0;
        let mut running = d.tick(now).unwrap().run.unwrap();
        for _ in 0..6 {
            now += US;
            let next = d.yield_now(running, now).unwrap().run.unwrap();
            assert_ne!(
                next, running,
                "yield must hand over to the other equal task"
            );
            running = next;
        }
        assert_eq!(
            d.yield_now(1 - running, now),
            Err(DispatchError::NotRunning { task: 1 - running })
        );
        // A lone higher task keeps the processor through its own yields.
        d.add_task(2, plain(9)).unwrap();
        assert_eq!(d.tick(now).unwrap().run, Some(2));
        assert_eq!(d.yield_now(2, now + US).unwrap().run, Some(2));
    }

    #[test]
    fn a_10khz_task_meets_every_deadline_for_10000_periods() {
        // One partition owning the whole frame; a 10 kHz reservoir task whose step takes 25 µs
        // (an assumed cost, the kernel measures the real one) above a background task that
        // always wants the processor.
        let table = PartitionTable::<2>::new(
            1_000 * US,
            &[Window {
                start_ns: 0,
                duration_ns: 1_000 * US,
                partition: 0,
            }],
        )
        .unwrap();
        let mut d = Dispatcher::<2, 2>::new(table, US);
        let spec = |priority, periodic| TaskSpec {
            priority,
            partition: 0,
            periodic,
        };
        d.add_task(0, spec(10, periodic(100 * US, 40 * US)))
            .unwrap();
        d.add_task(1, spec(1, None)).unwrap();
        let end = 10_000 * 100 * US;
        let given = run(&mut d, [25 * US, 0], end);
        let acct = d.periodic(0).unwrap();
        assert_eq!(acct.completed_jobs, 10_000);
        assert_eq!((acct.deadline_misses, acct.overruns), (0, 0));
        assert_eq!(
            acct.jitter.max_ns(),
            Some(0),
            "exact timer events: no release latency"
        );
        assert_eq!(given[0], 10_000 * 25 * US);
        assert_eq!(
            given[1],
            end - given[0],
            "the background task gets all the rest"
        );
    }

    #[test]
    fn an_overloaded_partition_is_contained_and_counted() {
        // 100 µs frame: partition 0 for 0–50 µs, partition 1 for 50–100 µs.
        let table = PartitionTable::<2>::new(
            100 * US,
            &[
                Window {
                    start_ns: 0,
                    duration_ns: 50 * US,
                    partition: 0,
                },
                Window {
                    start_ns: 50 * US,
                    duration_ns: 50 * US,
                    partition: 1,
                },
            ],
        )
        .unwrap();
        let mut d = Dispatcher::<3, 2>::new(table, US);
        d.add_task(
            0,
            TaskSpec {
                priority: 5,
                partition: 0,
                periodic: periodic(100 * US, 40 * US),
            },
        )
        .unwrap();
        // Partition 1's task asks for 60 µs per period against a 40 µs budget: an overrun and a
        // deadline miss every period, and its backlog grows.
        d.add_task(
            1,
            TaskSpec {
                priority: 9,
                partition: 1,
                periodic: periodic(100 * US, 40 * US),
            },
        )
        .unwrap();
        d.add_task(
            2,
            TaskSpec {
                priority: 1,
                partition: 1,
                periodic: None,
            },
        )
        .unwrap();
        let periods = 10_000;
        let given = run(&mut d, [25 * US, 60 * US, 0], periods * 100 * US);
        let good = d.periodic(0).unwrap();
        assert_eq!((good.deadline_misses, good.overruns), (0, 0));
        assert_eq!(good.completed_jobs, periods);
        let hog = d.periodic(1).unwrap();
        assert_eq!(
            hog.overruns, periods,
            "one overrun per period, counted exactly"
        );
        // Every job is still unfinished at its deadline; the last one's miss is counted by the
        // release at the end of the run, which equals its deadline.
        assert_eq!(hog.deadline_misses, periods);
        assert_eq!(
            given[1],
            periods * 40 * US,
            "budget enforced to the nanosecond"
        );
        assert_eq!(
            given[2],
            periods * 10 * US,
            "its partition's background gets the rest"
        );
    }

    #[test]
    fn blocking_stopping_and_errors() {
        let table = PartitionTable::<1>::new(
            1_000 * US,
            &[Window {
                start_ns: 0,
                duration_ns: 1_000 * US,
                partition: 0,
            }],
        )
        .unwrap();
        let mut d = Dispatcher::<3, 1>::new(table, US);
        let spec = |priority| TaskSpec {
            priority,
            partition: 0,
            periodic: None,
        };
        d.add_task(0, spec(9)).unwrap();
        d.add_task(1, spec(3)).unwrap();
        assert_eq!(
            d.add_task(1, spec(3)),
            Err(DispatchError::SlotTaken { task: 1 })
        );
        assert_eq!(
            d.add_task(7, spec(3)),
            Err(DispatchError::UnknownTask { task: 7 })
        );
        assert!(matches!(
            d.add_task(
                2,
                TaskSpec {
                    priority: 1,
                    partition: 16,
                    periodic: None
                }
            ),
            Err(DispatchError::UnknownPartition { .. })
        ));
        assert_eq!(d.tick(0).unwrap().run, Some(0));
        assert_eq!(d.block(1, 10), Err(DispatchError::NotRunning { task: 1 }));
        assert_eq!(d.block(0, 10).unwrap().run, Some(1));
        // Inheritance lifts task 1 while task 0 waits; then task 0 gets its mutex back.
        d.set_priority(1, 9).unwrap();
        d.wake(0).unwrap();
        assert_eq!(
            d.tick(20).unwrap().run,
            Some(1),
            "equal priority: task 1 keeps its turn"
        );
        d.set_priority(1, 3).unwrap();
        assert_eq!(d.tick(30).unwrap().run, Some(0));
        // A faulting task is stopped; the other goes on.
        assert_eq!(d.stop(0, 40).unwrap().run, Some(1));
        assert_eq!(d.stop(1, 50).unwrap().run, None);
    }
}

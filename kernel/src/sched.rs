//! Kernel threads under the `echos_kpolicy::dispatch` scheduler: fixed-priority preemptive with
//! O(1) selection, periodic budgets, time partitions and priority-inheritance mutexes, driven by
//! one scheduler timer on the APIC. The calling (boot) context becomes the idle thread while a
//! [`run`] lasts, and gets the report when every thread has stopped.
//!
//! Preemption happens at the end of the outermost timer interrupt (the `traps` preemption hook),
//! after the EOI, by switching stacks; threads give up the processor themselves through
//! [`complete_job`], [`lock`] (when blocked), [`unlock`] and [`exit`]. Threads must not print
//! or allocate while a run lasts: a thread preempted inside the console or heap lock would stall
//! the next one that takes it.
//!
//! The scheduler knows threads, not tasks: what a user task owns (capabilities, address space)
//! is released by `task` before it asks for the thread to stop.

use spin::Mutex;

use echos_abi::Errno;
use echos_kpolicy::dispatch::{Decision, DispatchError, Dispatcher, TaskSpec};
use echos_kpolicy::mutex::{LockOutcome, MutexId, Mutexes, PriorityChange};
use echos_kpolicy::partition::PartitionTable;
use echos_kpolicy::periodic::PeriodicTask;
use echos_kpolicy::sched::TaskId;
use echos_kpolicy::time::{Instant, TimerHandle};

use crate::arch::stacks::THREAD_STACKS;
use crate::arch::switch::{self, Context, ThreadEntry};
use crate::config::{MAX_MUTEXES, MAX_THREADS, MAX_WINDOWS};
use crate::time;

/// Release-latency histogram bucket of the periodic accounting.
pub const JITTER_BUCKET_NS: u64 = 1_000;
const IDLE: usize = MAX_THREADS;

static CONTEXTS: [Context; MAX_THREADS + 1] = [const { Context::new() }; MAX_THREADS + 1];

/// TSC at the entry of the most recent timer interrupt that ran the scheduler, so a task can
/// measure interrupt-to-task latency from its first instruction.
static SCHED_IRQ_TSC: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub fn last_sched_irq_tsc() -> u64 {
    SCHED_IRQ_TSC.load(core::sync::atomic::Ordering::Acquire)
}

pub struct ThreadSpec {
    pub spec: TaskSpec,
    pub entry: ThreadEntry,
    pub arg: u64,
    /// Page-table root of the thread's own address space (a user task); `None`: the kernel's.
    pub address_space: Option<u64>,
}

/// An exception a user task raised, which stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFault {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cr2: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedFault {
    TooManyThreads {
        threads: usize,
    },
    Dispatch(DispatchError),
    Mutex(Errno),
    /// The run was still going at its time limit (ns since boot).
    Timeout {
        at_ns: u64,
    },
    AlreadyRunning,
    Timer,
}

impl From<DispatchError> for SchedFault {
    fn from(e: DispatchError) -> Self {
        Self::Dispatch(e)
    }
}

impl From<Errno> for SchedFault {
    fn from(e: Errno) -> Self {
        Self::Mutex(e)
    }
}

impl core::fmt::Display for SchedFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooManyThreads { threads } => {
                write!(f, "{threads} threads asked for, at most {MAX_THREADS}")
            }
            Self::Dispatch(e) => write!(f, "scheduler: {e}"),
            Self::Mutex(e) => write!(f, "mutex: {e:?}"),
            Self::Timeout { at_ns } => write!(f, "threads still running at {at_ns} ns"),
            Self::AlreadyRunning => write!(f, "a scheduler run is already in progress"),
            Self::Timer => write!(f, "the scheduler timer could not be armed"),
        }
    }
}

/// What a finished run leaves: each thread's periodic accounting and the switch count.
pub struct Report {
    pub periodic: [Option<PeriodicTask>; MAX_THREADS],
    /// The code each thread passed to [`exit_with`] (`None`: plain [`exit`] or a fault).
    pub exit_codes: [Option<i64>; MAX_THREADS],
    pub faults: [Option<UserFault>; MAX_THREADS],
    pub switches: u64,
    pub scheduler_calls: u64,
}

struct Run {
    roots: [u64; MAX_THREADS + 1],
    /// Threads whose FPU/SIMD state is saved on switch (user tasks).
    fpu: [bool; MAX_THREADS + 1],
    exit_codes: [Option<i64>; MAX_THREADS],
    faults: [Option<UserFault>; MAX_THREADS],
    dispatch: Dispatcher<MAX_THREADS, MAX_WINDOWS>,
    mutexes: Mutexes<MAX_THREADS, MAX_MUTEXES>,
    current: usize,
    live: usize,
    timer: Option<TimerHandle>,
    deadline_ns: u64,
    fault: Option<SchedFault>,
    switches: u64,
    scheduler_calls: u64,
}

static RUN: Mutex<Option<Run>> = Mutex::new(None);

fn apply(
    dispatch: &mut Dispatcher<MAX_THREADS, MAX_WINDOWS>,
    changes: &[PriorityChange],
) -> Result<(), SchedFault> {
    for c in changes {
        dispatch.set_priority(c.task, c.to)?;
    }
    Ok(())
}

/// Runs `op` on the scheduler state, re-arms the scheduler timer for the decision and switches
/// to the thread it picked. Interrupts must be off.
fn reschedule(op: impl FnOnce(&mut Run, u64) -> Result<Decision, SchedFault>) {
    let now = time::now().0;
    let (from, to) = {
        let mut guard = RUN.lock();
        let Some(run) = guard.as_mut() else { return };
        run.scheduler_calls += 1;
        let decision = if run.fault.is_some() {
            None
        } else if now > run.deadline_ns {
            run.fault = Some(SchedFault::Timeout { at_ns: now });
            None
        } else {
            match op(run, now) {
                Ok(d) => Some(d),
                Err(e) => {
                    run.fault = Some(e);
                    None
                }
            }
        };
        if let Some(h) = run.timer.take() {
            // Fails only when the timer already fired, which is why we are here: nothing to do.
            let _ = time::cancel(h);
        }
        let next = match decision {
            Some(d) => {
                match time::arm_oneshot(Instant(d.next_event_ns), time::SCHED_TIMER_TAG) {
                    Ok(h) => run.timer = Some(h),
                    Err(_) => run.fault = Some(SchedFault::Timer),
                }
                d.run.map_or(IDLE, usize::from)
            }
            None => IDLE,
        };
        if next == run.current {
            return;
        }
        let from = run.current;
        run.current = next;
        run.switches += 1;
        if run.fpu[from] {
            crate::arch::fpu::save(from);
        }
        if run.fpu[next] {
            crate::arch::fpu::restore(next);
        }
        crate::arch::uspace::activate(run.roots[next]);
        if next != IDLE {
            crate::arch::gdt::set_kernel_stack(THREAD_STACKS[next].top());
        }
        (from, next)
    };
    switch::switch(&CONTEXTS[from], &CONTEXTS[to]);
}

fn preempt_hook() {
    if time::take_sched_due() {
        SCHED_IRQ_TSC.store(
            crate::arch::traps::LAST_ENTRY_TSC.load(core::sync::atomic::Ordering::Relaxed),
            core::sync::atomic::Ordering::Release,
        );
        reschedule(|run, now| Ok(run.dispatch.tick(now)?));
    }
}

fn current_task(run: &Run) -> Result<TaskId, SchedFault> {
    if run.current == IDLE {
        return Err(SchedFault::Dispatch(DispatchError::NotRunning {
            task: IDLE as TaskId,
        }));
    }
    Ok(run.current as TaskId)
}

/// The running periodic task finished its job; returns at the start of its next job.
pub fn complete_job() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        reschedule(|run, now| {
            let task = current_task(run)?;
            Ok(run.dispatch.complete(task, now)?)
        })
    })
}

/// Takes `mutex`, blocking (with priority inheritance when the run has it) while another
/// thread holds it. A refused lock (unknown mutex, already held by the caller, a deadlock or too
/// long a chain) is returned to the caller and changes nothing; the run goes on.
pub fn lock(mutex: MutexId) -> Result<(), Errno> {
    let mut refused = None;
    x86_64::instructions::interrupts::without_interrupts(|| {
        reschedule(|run, now| {
            let task = current_task(run)?;
            match run.mutexes.lock(task, mutex) {
                Err(e) => {
                    refused = Some(e);
                    Ok(run.dispatch.tick(now)?)
                }
                Ok((outcome, changes)) => {
                    apply(&mut run.dispatch, changes.as_slice())?;
                    match outcome {
                        // Nothing changed for anyone else: keep running.
                        LockOutcome::Acquired => Ok(run.dispatch.tick(now)?),
                        LockOutcome::Blocked { .. } => Ok(run.dispatch.block(task, now)?),
                    }
                }
            }
        })
    });
    refused.map_or(Ok(()), Err)
}

/// Releases `mutex`; the most urgent waiter owns it next and may preempt the caller. Unlocking a
/// mutex the caller does not hold is refused and changes nothing.
pub fn unlock(mutex: MutexId) -> Result<(), Errno> {
    let mut refused = None;
    x86_64::instructions::interrupts::without_interrupts(|| {
        reschedule(|run, now| {
            let task = current_task(run)?;
            match run.mutexes.unlock(task, mutex) {
                Err(e) => {
                    refused = Some(e);
                    Ok(run.dispatch.tick(now)?)
                }
                Ok(unlocked) => {
                    apply(&mut run.dispatch, unlocked.changes.as_slice())?;
                    if let Some(w) = unlocked.woken {
                        run.dispatch.wake(w)?;
                    }
                    Ok(run.dispatch.tick(now)?)
                }
            }
        })
    });
    refused.map_or(Ok(()), Err)
}

/// `sleep_until_next_period` for the running thread: `NotPeriodic` for a thread without a
/// period (refused before the scheduler sees it), else returns the number of the job (period)
/// it wakes in.
pub fn sleep_until_next_period() -> Result<u64, Errno> {
    let periodic = x86_64::instructions::interrupts::without_interrupts(|| {
        RUN.lock().as_ref().is_some_and(|r| {
            r.current != IDLE && r.dispatch.periodic(r.current as TaskId).is_some()
        })
    });
    if !periodic {
        return Err(Errno::NotPeriodic);
    }
    complete_job();
    x86_64::instructions::interrupts::without_interrupts(|| {
        RUN.lock()
            .as_ref()
            .and_then(|r| r.dispatch.periodic(r.current as TaskId))
            .and_then(|p| p.job())
            .ok_or(Errno::NotPeriodic)
    })
}

/// Gives the processor to the next ready thread of the same priority.
pub fn yield_now() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        reschedule(|run, now| {
            let task = current_task(run)?;
            Ok(run.dispatch.yield_now(task, now)?)
        })
    })
}

/// The running thread's slot (`None` outside a run or in the idle thread).
pub fn current() -> Option<usize> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        RUN.lock()
            .as_ref()
            .map(|r| r.current)
            .filter(|&c| c != IDLE)
    })
}

/// Threads of the current run that have not stopped yet (0 outside a run).
pub fn live_threads() -> usize {
    x86_64::instructions::interrupts::without_interrupts(|| {
        RUN.lock().as_ref().map_or(0, |r| r.live)
    })
}

/// Stops the calling thread for good, recording `code` for the report.
pub fn exit_with(code: i64) -> ! {
    stop_current(Some(code), None)
}

/// Stops the calling thread for good; the others go on.
pub fn exit() -> ! {
    stop_current(None, None)
}

/// Stops the calling thread for good, recording the exception that ended it (a user task's
/// fault, reported by `task::user_fault`); the others go on.
pub fn stop_faulted(fault: UserFault) -> ! {
    stop_current(None, Some(fault))
}

fn stop_current(code: Option<i64>, fault: Option<UserFault>) -> ! {
    x86_64::instructions::interrupts::disable();
    reschedule(|run, now| {
        let task = current_task(run)?;
        run.exit_codes[task as usize] = code;
        run.faults[task as usize] = fault;
        let mut woken: [Option<TaskId>; MAX_THREADS] = [None; MAX_THREADS];
        let mut n = 0;
        let mut changes: [Option<PriorityChange>; MAX_THREADS] = [None; MAX_THREADS];
        let mut c = 0;
        run.mutexes.stop_task(
            task,
            |w| {
                if n < MAX_THREADS {
                    woken[n] = Some(w);
                    n += 1;
                }
            },
            |ch| {
                if c < MAX_THREADS {
                    changes[c] = Some(ch);
                    c += 1;
                }
            },
        )?;
        for ch in changes.iter().flatten() {
            run.dispatch.set_priority(ch.task, ch.to)?;
        }
        for w in woken.iter().flatten() {
            run.dispatch.wake(*w)?;
        }
        run.live -= 1;
        Ok(run.dispatch.stop(task, now)?)
    });
    // Nothing switches back to a stopped thread.
    loop {
        x86_64::instructions::hlt();
    }
}

/// Runs `threads` under `table` until each has called [`exit`] (or `limit_ns` passes, which
/// abandons them). The caller idles meanwhile. `inheritance: false` gives plain mutexes, so a
/// test can show what inheritance prevents.
pub fn run(
    table: PartitionTable<MAX_WINDOWS>,
    threads: &[ThreadSpec],
    inheritance: bool,
    limit_ns: u64,
) -> Result<Report, SchedFault> {
    run_with_pipeline(table, threads, inheritance, limit_ns, &[])
}

/// As [`run`], with the threads in `pipeline` (periodic, in stage order) run as a pipeline:
/// stage k+1 runs a period only after stage k finished it.
pub fn run_with_pipeline(
    table: PartitionTable<MAX_WINDOWS>,
    threads: &[ThreadSpec],
    inheritance: bool,
    limit_ns: u64,
    pipeline: &[TaskId],
) -> Result<Report, SchedFault> {
    if threads.len() > MAX_THREADS {
        return Err(SchedFault::TooManyThreads {
            threads: threads.len(),
        });
    }
    let setup = x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guard = RUN.lock();
        if guard.is_some() {
            return Err(SchedFault::AlreadyRunning);
        }
        let kernel_root = crate::arch::uspace::kernel_root();
        let mut run = Run {
            roots: [kernel_root; MAX_THREADS + 1],
            fpu: [false; MAX_THREADS + 1],
            exit_codes: [None; MAX_THREADS],
            faults: [None; MAX_THREADS],
            dispatch: Dispatcher::new(table, JITTER_BUCKET_NS),
            mutexes: Mutexes::new(inheritance),
            current: IDLE,
            live: threads.len(),
            timer: None,
            deadline_ns: time::now().0.saturating_add(limit_ns),
            fault: None,
            switches: 0,
            scheduler_calls: 0,
        };
        for (i, t) in threads.iter().enumerate() {
            run.dispatch.add_task(i as TaskId, t.spec)?;
            run.mutexes
                .set_base_priority(i as TaskId, t.spec.priority)?;
            if let Some(root) = t.address_space {
                run.roots[i] = root;
                run.fpu[i] = true;
                crate::arch::fpu::init_area(i);
            }
            let stack = &THREAD_STACKS[i];
            CONTEXTS[i].prepare(stack.bottom(), stack.top(), t.entry, t.arg);
        }
        if !pipeline.is_empty() {
            run.dispatch.set_pipeline(pipeline)?;
        }
        *guard = Some(run);
        Ok(())
    });
    setup?;
    crate::arch::traps::set_preempt_hook(Some(preempt_hook));
    x86_64::instructions::interrupts::without_interrupts(|| {
        reschedule(|run, now| Ok(run.dispatch.tick(now)?))
    });
    // The idle thread: sleep until every thread stopped or the run failed.
    loop {
        x86_64::instructions::interrupts::disable();
        let finished = RUN
            .lock()
            .as_ref()
            .is_none_or(|r| r.live == 0 || r.fault.is_some());
        if finished {
            break;
        }
        // Sleeps until the next interrupt with no window for a lost wakeup.
        x86_64::instructions::interrupts::enable_and_hlt();
        // A timeout must be noticed even when every thread sleeps past it.
        x86_64::instructions::interrupts::disable();
        if let Some(r) = RUN.lock().as_mut() {
            let now = time::now().0;
            if now > r.deadline_ns && r.live > 0 && r.fault.is_none() {
                r.fault = Some(SchedFault::Timeout { at_ns: now });
            }
        }
    }
    crate::arch::traps::set_preempt_hook(None);
    let run = RUN.lock().take();
    x86_64::instructions::interrupts::enable();
    let run = run.ok_or(SchedFault::AlreadyRunning)?;
    if let Some(h) = run.timer {
        let _ = time::cancel(h);
    }
    // A stale expiry must not make the next run reschedule before it starts.
    time::take_sched_due();
    if let Some(f) = run.fault {
        return Err(f);
    }
    let mut periodic = [None; MAX_THREADS];
    for (i, p) in periodic.iter_mut().enumerate().take(threads.len()) {
        *p = run.dispatch.periodic(i as TaskId).copied();
    }
    Ok(Report {
        periodic,
        exit_codes: run.exit_codes,
        faults: run.faults,
        switches: run.switches,
        scheduler_calls: run.scheduler_calls,
    })
}

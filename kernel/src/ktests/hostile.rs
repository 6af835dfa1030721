//! A hostile ring-3 task (issue 16): `hostile` (user/echos-user) issues random syscalls against
//! its model of the right answers, in a time partition of its own, while the 10 kHz reservoir
//! task of the scheduler tests runs in the other. The kernel must take no exception, the
//! reservoir task must miss no deadline and compute the same states as an unscheduled run, the
//! task's tally of results must equal the kernel's, and every answer must fit the task's model.
//! Then the defects it found, each pinned by a test of its own.
//!
//! The suite runs [`DEFAULT_CALLS`]; `hostile_calls=N` on the command line (`cargo xtask
//! run-kernel --hostile N`) runs N, `hostile_seed=S` another stream.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use echos_abi::{Errno, ReservoirCreateArgs, Rights, Topology};
use echos_core::integer::{self, FixedEsn, Fnv1a, Q16_ONE};
use echos_core::rng::Rng;
use echos_kpolicy::dispatch::TaskSpec;
use echos_kpolicy::partition::{PartitionTable, Window};
use echos_kpolicy::periodic::{PeriodicParams, PeriodicTask};
use spin::Mutex;

use super::sched::{buffers, Storage100, L100, RESERVOIR_100};
use super::Kernel;
use crate::config::{CAPS_PER_TASK, MAX_OBJECTS};
use crate::sched::{self, Report, ThreadSpec};
use crate::syscalls::{self, LogLine, Tally, TALLY_CLASSES};
use crate::task::{self, programs};
use crate::{arch, ensure, kernel_test, kprintln, reservoir, time};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// Calls in the suite's run (a few seconds of TCG per boot); the million is the long
/// command.
pub const DEFAULT_CALLS: u64 = 100_000;
const DEFAULT_SEED: u64 = 0xEC40_0016;

/// The reservoir task's period is the major frame: its partition owns the first half, the
/// ring-3 task's the second.
const PERIOD_NS: u64 = 100 * US;
const WINDOW_NS: u64 = 50 * US;
const BUDGET_NS: u64 = 45 * US;
/// Thread slots: the reservoir task is a kernel thread, the other a user task.
const RESERVOIR_SLOT: usize = 0;
const USER_SLOT: usize = 1;

static STORAGE: Mutex<Option<Box<Storage100>>> = Mutex::new(None);
static DIGEST: Mutex<Option<Result<u64, integer::IntegerError>>> = Mutex::new(None);
static JOBS: AtomicU64 = AtomicU64::new(0);

/// The 10 kHz task's jobs (the scheduler test's input stream and state hash), one step per
/// period, for as long as the other task runs.
fn reservoir_jobs(storage: &mut Storage100) -> Result<u64, integer::IntegerError> {
    let mut esn = FixedEsn::from_parts(RESERVOIR_100, L100.nnz, buffers(storage))?;
    let mut rng = Rng::new(integer::DIGEST_INPUT_SEED);
    let mut hash = Fnv1a::new();
    let mut input = [0i32; 2];
    while sched::live_threads() > 1 {
        for u in input.iter_mut() {
            *u = (rng.next_u64() >> 47) as i32 - Q16_ONE;
        }
        esn.step(&input)?;
        for &x in esn.state() {
            hash.write(&x.to_le_bytes());
        }
        JOBS.fetch_add(1, Ordering::AcqRel);
        sched::complete_job();
    }
    Ok(hash.finish())
}

extern "C" fn reservoir_task(_: u64) -> ! {
    let storage = x86_64::instructions::interrupts::without_interrupts(|| STORAGE.lock().take());
    if let Some(mut storage) = storage {
        let result = reservoir_jobs(&mut storage);
        x86_64::instructions::interrupts::without_interrupts(|| {
            *DIGEST.lock() = Some(result);
            *STORAGE.lock() = Some(storage);
        });
    }
    sched::exit()
}

/// What a ring-3 task run beside the reservoir task left.
struct Beside {
    report: Report,
    tally: Tally,
    /// Exceptions in ring 0 during the run.
    kernel_faults: u64,
    reservoir: PeriodicTask,
    periods: u64,
    run_ns: u64,
}

/// Runs `image` (argument `arg`) as a user task in partition 1 while the 10 kHz reservoir task
/// runs in partition 0, with the task's syscall results tallied. Checks that every frame came
/// back and that the reservoir computed what an unscheduled run of as many steps computes.
fn beside_reservoir(
    k: &mut Kernel,
    image: &[u8],
    arg: u64,
    limit_ns: u64,
) -> Result<Beside, String> {
    let free_before = k.memory.frames.free_frames();
    let user = task::load(&mut k.memory.frames, image)
        .map_err(|e| alloc::format!("loading the program: {e}"))?;
    reservoir::reset();
    let mut storage = Box::new(Storage100::new());
    storage
        .esn(RESERVOIR_100)
        .map_err(|e| alloc::format!("building the reservoir: {e}"))?;
    *STORAGE.lock() = Some(storage);
    *DIGEST.lock() = None;
    JOBS.store(0, Ordering::Release);
    let table = PartitionTable::new(
        PERIOD_NS,
        &[
            Window {
                start_ns: 0,
                duration_ns: WINDOW_NS,
                partition: 0,
            },
            Window {
                start_ns: WINDOW_NS,
                duration_ns: PERIOD_NS - WINDOW_NS,
                partition: 1,
            },
        ],
    )
    .map_err(|e| alloc::format!("{e:?}"))?;
    let start = (time::now().0 / MS + 2) * MS;
    let threads = [
        ThreadSpec {
            spec: TaskSpec {
                priority: 10,
                partition: 0,
                periodic: Some(PeriodicParams {
                    start_ns: start,
                    period_ns: PERIOD_NS,
                    deadline_ns: PERIOD_NS,
                    budget_ns: BUDGET_NS,
                }),
            },
            entry: reservoir_task,
            arg: 0,
            address_space: None,
        },
        ThreadSpec {
            spec: TaskSpec {
                priority: 5,
                partition: 1,
                periodic: None,
            },
            entry: task::user_thread,
            arg: USER_SLOT as u64,
            address_space: Some(user.root),
        },
    ];
    task::prepare(USER_SLOT, &user, arg);
    syscalls::tally_start(USER_SLOT);
    let exceptions_before = arch::traps::kernel_exceptions();
    let t0 = time::now().0;
    let report = sched::run(table, &threads, true, limit_ns);
    let run_ns = time::now().0 - t0;
    let kernel_faults = arch::traps::kernel_exceptions() - exceptions_before;
    let tally = syscalls::tally_take();
    task::clear_slots();
    task::unload(&mut k.memory.frames, user)?;
    reservoir::reset();
    let report = report.map_err(|e| alloc::format!("scheduler run: {e}"))?;
    let tally = tally.ok_or("no tally of the task's calls")?;
    ensure!(
        k.memory.frames.free_frames() == free_before,
        "{} frames free after the run, {free_before} before",
        k.memory.frames.free_frames()
    );
    let periods = JOBS.load(Ordering::Acquire);
    let digest = DIGEST
        .lock()
        .take()
        .ok_or("the reservoir task left no result")?
        .map_err(|e| alloc::format!("reservoir task: {e}"))?;
    let mut reference = STORAGE
        .lock()
        .take()
        .ok_or("the reservoir storage is gone")?;
    let mut input = [0i32; 2];
    let expected = reference
        .esn(RESERVOIR_100)
        .and_then(|mut esn| esn.digest(periods as u32, integer::DIGEST_INPUT_SEED, &mut input))
        .map_err(|e| alloc::format!("reference run: {e}"))?;
    ensure!(periods > 0, "the reservoir task never ran");
    ensure!(
        digest == expected,
        "after {periods} periods beside the ring-3 task the reservoir's digest is {digest:#018x}, \
         unscheduled {expected:#018x}"
    );
    let reservoir =
        report.periodic[RESERVOIR_SLOT].ok_or("no accounting for the reservoir task")?;
    Ok(Beside {
        report,
        tally,
        kernel_faults,
        reservoir,
        periods,
        run_ns,
    })
}

/// The reservoir partition's figures, under `prefix`.
fn print_reservoir(prefix: &str, b: &Beside) {
    kprintln!("metric {prefix}_reservoir_periods {} periods", b.periods);
    kprintln!(
        "metric {prefix}_reservoir_deadline_misses {} misses",
        b.reservoir.deadline_misses
    );
    kprintln!(
        "metric {prefix}_reservoir_budget_overruns {} overruns",
        b.reservoir.overruns
    );
    kprintln!(
        "metric {prefix}_reservoir_release_latency_max_ns {} ns",
        b.reservoir.jitter.max_ns().unwrap_or(0)
    );
}

/// The digest the task's tally gives (the program's `digest`: FNV-1a of the little-endian
/// counts).
fn tally_digest(results: &[u64; TALLY_CLASSES]) -> u64 {
    let mut h = Fnv1a::new();
    for w in results {
        h.write(&w.to_le_bytes());
    }
    h.finish()
}

fn number_arg(k: &Kernel, key: &str, default: u64) -> Result<u64, String> {
    match k.boot.arg(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| alloc::format!("{key}={v} is not a number")),
    }
}

fn hostile_ring_3_task_leaves_the_kernel_and_the_other_partition_unharmed(
    k: &mut Kernel,
) -> Result<(), String> {
    let calls = number_arg(k, "hostile_calls", DEFAULT_CALLS)?;
    let seed = number_arg(k, "hostile_seed", DEFAULT_SEED)?;
    ensure!(
        calls <= u64::from(u32::MAX) && seed <= u64::from(u32::MAX),
        "hostile_calls and hostile_seed take 32 bits"
    );
    // Generous: a call costs a few microseconds and the task has half the processor.
    let limit = 2_000 * MS + calls * 100 * US;
    let b = beside_reservoir(k, programs::HOSTILE, calls | seed << 32, limit)?;
    let t = &b.tally;
    let user_faults = u64::from(b.report.faults[USER_SLOT].is_some());
    kprintln!("metric hostile_syscalls {} calls", t.calls());
    kprintln!("metric hostile_kernel_faults {} faults", b.kernel_faults);
    kprintln!("metric hostile_user_faults {user_faults} faults");
    kprintln!("metric hostile_ok {} calls", t.results[0]);
    for e in Errno::ALL {
        kprintln!(
            "metric hostile_errno_{e:?} {} calls",
            t.results[e.code().unsigned_abs() as usize]
        );
    }
    kprintln!(
        "metric hostile_errno_unknown {} calls",
        t.results[TALLY_CLASSES - 1]
    );
    kprintln!(
        "metric hostile_longest_call_ns {} ns (syscall {}, preemptions included)",
        t.longest_ns,
        t.longest_number
    );
    kprintln!("metric hostile_run_ns {} ns", b.run_ns);
    print_reservoir("hostile", &b);

    ensure!(
        b.kernel_faults == 0,
        "{} exceptions in ring 0",
        b.kernel_faults
    );
    ensure!(
        b.report.faults[USER_SLOT].is_none(),
        "the hostile task was stopped by {:?}: it never faults by itself, so the kernel wrote \
         where it must not",
        b.report.faults[USER_SLOT]
    );
    let code = b.report.exit_codes[USER_SLOT].ok_or("the hostile task did not exit")?;
    ensure!(
        code >= 0,
        "{} answers did not fit the hostile task's model (its log lines name the first)",
        -1 - code
    );
    kprintln!(
        "metric hostile_exact_predictions {} calls",
        code as u64 >> 32
    );
    ensure!(
        t.calls() == calls,
        "the kernel counted {} calls, the task made {calls}",
        t.calls()
    );
    ensure!(
        t.results[TALLY_CLASSES - 1] == 0,
        "{} calls returned a code that is no Errno",
        t.results[TALLY_CLASSES - 1]
    );
    ensure!(
        tally_digest(&t.results) & 0xffff_ffff == code as u64 & 0xffff_ffff,
        "the task's tally differs from the kernel's (digest {:#x} vs {:#x})",
        code as u64 & 0xffff_ffff,
        tally_digest(&t.results) & 0xffff_ffff
    );
    if crate::ktests::virtual_time(k) {
        ensure!(
            b.reservoir.deadline_misses == 0,
            "the reservoir task missed {} deadlines beside the hostile task",
            b.reservoir.deadline_misses
        );
    }
    Ok(())
}
kernel_test!(hostile_ring_3_task_leaves_the_kernel_and_the_other_partition_unharmed);

// ---------------------------------------------------------------------------------------------
// What the hostile task found

/// Found first: a create of a large reservoir ran 8.8 ms with interrupts off, and the reservoir
/// task in the other partition missed 89 deadlines in 2,000 hostile calls.
fn long_kernel_calls_give_way_to_the_other_partition(k: &mut Kernel) -> Result<(), String> {
    let b = beside_reservoir(k, programs::HEAVY, 0, 5_000 * MS)?;
    kprintln!(
        "metric heavy_longest_call_ns {} ns (syscall {}, preemptions included)",
        b.tally.longest_ns,
        b.tally.longest_number
    );
    print_reservoir("heavy", &b);
    ensure!(
        b.kernel_faults == 0,
        "{} exceptions in ring 0",
        b.kernel_faults
    );
    ensure!(
        b.report.faults[USER_SLOT].is_none() && b.report.exit_codes[USER_SLOT] == Some(0),
        "the heavy task: fault {:?}, exit {:?} (calls that failed; 1000+: the create)",
        b.report.faults[USER_SLOT],
        b.report.exit_codes[USER_SLOT]
    );
    // Calls that outlast the window: run with interrupts off they would delay the next one.
    ensure!(
        b.tally.longest_ns > 2 * PERIOD_NS,
        "the longest call took {} ns: too short to show anything",
        b.tally.longest_ns
    );
    if crate::ktests::virtual_time(k) {
        ensure!(
            b.reservoir.deadline_misses == 0,
            "the reservoir task missed {} deadlines beside long kernel calls",
            b.reservoir.deadline_misses
        );
    }
    Ok(())
}
kernel_test!(long_kernel_calls_give_way_to_the_other_partition);

/// The largest reservoir a task may create (the `heavy` program's): 1024 units, 59 connections
/// a row, 64 outputs.
const LARGEST: ReservoirCreateArgs = ReservoirCreateArgs {
    seed: 16,
    units: 1024,
    inputs: 1,
    outputs: 64,
    topology: Topology::SparseRandom,
    spectral_radius_q16: Q16_ONE as u32 * 9 / 10,
    leak_rate_q16: Q16_ONE as u32 / 2,
    input_scaling_q16: Q16_ONE as u32 / 2,
    density_q16: 3802,
};

const SMALL: ReservoirCreateArgs = ReservoirCreateArgs {
    units: 20,
    density_q16: Q16_ONE as u32 / 4,
    outputs: 0,
    ..LARGEST
};

/// Found by the hostile task: a create into a full table allocated and generated the reservoir
/// before it looked for room (milliseconds for a large one, every time it was asked).
fn a_full_table_refuses_a_create_before_any_work(k: &mut Kernel) -> Result<(), String> {
    let timed_create = || {
        let t0 = time::now().0;
        let r = reservoir::create_for(0, &LARGEST);
        (r, time::now().0 - t0)
    };
    let mut took = [0u64; 2];
    // A full capability table: one object and every other slot a derived capability.
    reservoir::reset();
    let h = reservoir::create_for(0, &SMALL).map_err(|e| alloc::format!("small create: {e:?}"))?;
    for _ in 1..CAPS_PER_TASK {
        reservoir::grant(0, h, 0, Rights::READ).map_err(|e| alloc::format!("derive: {e:?}"))?;
    }
    let (r, ns) = timed_create();
    took[0] = ns;
    ensure!(r == Err(Errno::NoMemory), "full capability table: {r:?}");
    // A full object table.
    reservoir::reset();
    for _ in 0..MAX_OBJECTS {
        reservoir::create_for(0, &SMALL).map_err(|e| alloc::format!("small create: {e:?}"))?;
    }
    let (r, ns) = timed_create();
    took[1] = ns;
    ensure!(r == Err(Errno::NoMemory), "full object table: {r:?}");
    reservoir::reset();
    // The same create with room: the work a refusal must not do.
    let (r, work_ns) = timed_create();
    reservoir::reset();
    ensure!(
        r.is_ok(),
        "the largest reservoir was refused with room: {r:?}"
    );
    kprintln!(
        "metric full_table_refusal_ns {} ns (caps) / {} ns (objects); the create itself {work_ns} ns",
        took[0],
        took[1]
    );
    if crate::ktests::virtual_time(k) {
        for ns in took {
            ensure!(
                ns < 50 * US,
                "a refused create took {ns} ns (the create itself {work_ns} ns)"
            );
        }
    }
    Ok(())
}
kernel_test!(a_full_table_refuses_a_create_before_any_work);

/// Found while making creates preemptible: the arrays were allocated infallibly, so a heap too
/// full for a large reservoir stopped the kernel (allocation failure is a panic).
fn a_full_heap_refuses_a_create_instead_of_stopping_the_kernel(
    _: &mut Kernel,
) -> Result<(), String> {
    reservoir::reset();
    // Take every free block of 16 KiB or more: no array of the largest reservoir fits then.
    let mut fillers: Vec<Vec<u8>> = Vec::with_capacity(256);
    let mut size = 1 << 20;
    while size >= 16 * 1024 && fillers.len() < fillers.capacity() {
        let mut v = Vec::new();
        if v.try_reserve_exact(size).is_ok() {
            fillers.push(v);
        } else {
            size /= 2;
        }
    }
    let full = reservoir::create_for(0, &LARGEST);
    let taken: usize = fillers.iter().map(|v| v.capacity()).sum();
    drop(fillers);
    reservoir::reset();
    let roomy = reservoir::create_for(0, &LARGEST);
    reservoir::reset();
    kprintln!("heap: {taken} bytes taken by fillers; create with the heap full: {full:?}");
    ensure!(
        full == Err(Errno::NoMemory),
        "with the heap full the create gave {full:?}"
    );
    ensure!(roomy.is_ok(), "with the heap free again: {roomy:?}");
    Ok(())
}
kernel_test!(a_full_heap_refuses_a_create_instead_of_stopping_the_kernel);

/// Found by the hostile task: a log line's line break started a console line of the task's own,
/// so a task could print `test ... ok` or `metric` lines that `cargo xtask` counts.
fn user_log_lines_cannot_start_console_lines(_: &mut Kernel) -> Result<(), String> {
    let line = |text: &str| alloc::format!("{}", LogLine { slot: 3, text });
    let forged = line("fine\ntest forged ... ok\r\nmetric x 0\u{1b}[2J\u{85}\\u{a}");
    ensure!(
        !forged.contains(|c: char| c.is_control()),
        "a control character reached the console: {forged:?}"
    );
    ensure!(
        forged
            == "user[3]: fine\\u{a}test forged ... ok\\u{d}\\u{a}metric x 0\\u{1b}[2J\\u{85}\\\\u{a}",
        "escaped as {forged:?}"
    );
    ensure!(
        line("plain text, ünïcode") == "user[3]: plain text, ünïcode",
        "plain text changed"
    );
    Ok(())
}
kernel_test!(user_log_lines_cannot_start_console_lines);

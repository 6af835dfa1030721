//! A hostile ring-3 task (issue 16): `hostile` (user/echos-user) issues random syscalls against
//! its model of the right answers, in a time partition of its own, while the 10 kHz reservoir
//! task of the scheduler tests runs in the other. The kernel must take no exception, the
//! reservoir task must miss no deadline and compute the same states as an unscheduled run, the
//! task's tally of results must equal the kernel's, and every answer must fit the task's model.
//!
//! The suite runs [`DEFAULT_CALLS`]; `hostile_calls=N` on the command line (`cargo xtask
//! run-kernel --hostile N`) runs N, `hostile_seed=S` another stream.

use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use echos_abi::Errno;
use echos_core::integer::{self, FixedEsn, Fnv1a, Q16_ONE};
use echos_core::rng::Rng;
use echos_kpolicy::dispatch::TaskSpec;
use echos_kpolicy::partition::{PartitionTable, Window};
use echos_kpolicy::periodic::PeriodicParams;
use spin::Mutex;

use super::sched::{buffers, Storage100, L100, RESERVOIR_100};
use super::Kernel;
use crate::sched::{self, ThreadSpec};
use crate::syscalls::{self, LogLine, TALLY_CLASSES};
use crate::task::{self, programs};
use crate::{arch, ensure, kernel_test, kprintln, time};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// Calls in the suite's run (a few seconds of TCG); the million is the long command.
pub const DEFAULT_CALLS: u64 = 50_000;
const DEFAULT_SEED: u64 = 0xEC40_0016;

/// The reservoir task's period is the major frame: its partition owns the first half, the
/// hostile task's the second.
const PERIOD_NS: u64 = 100 * US;
const WINDOW_NS: u64 = 50 * US;
const BUDGET_NS: u64 = 45 * US;
/// Thread slots: the reservoir task is a kernel thread, the hostile one a user task.
const RESERVOIR_SLOT: usize = 0;
const HOSTILE_SLOT: usize = 1;

static STORAGE: Mutex<Option<alloc::boxed::Box<Storage100>>> = Mutex::new(None);
static DIGEST: Mutex<Option<Result<u64, integer::IntegerError>>> = Mutex::new(None);
static JOBS: AtomicU64 = AtomicU64::new(0);

/// The 10 kHz task's jobs (the scheduler test's input stream and state hash), one step per
/// period, for as long as the hostile task runs.
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
    let free_before = k.memory.frames.free_frames();
    let hostile = task::load(&mut k.memory.frames, programs::HOSTILE)
        .map_err(|e| alloc::format!("loading the hostile program: {e}"))?;
    crate::reservoir::reset();
    *STORAGE.lock() = Some(alloc::boxed::Box::new(Storage100::new()));
    {
        // Generate the reservoir the task steps (the storage starts zeroed).
        let mut guard = STORAGE.lock();
        let s = guard.as_mut().ok_or("no reservoir storage")?;
        s.esn(RESERVOIR_100)
            .map_err(|e| alloc::format!("building the reservoir: {e}"))?;
    }
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
            arg: HOSTILE_SLOT as u64,
            address_space: Some(hostile.root),
        },
    ];
    task::prepare(HOSTILE_SLOT, &hostile, calls | seed << 32);
    syscalls::tally_start(HOSTILE_SLOT);
    let exceptions_before = arch::traps::kernel_exceptions();
    // Generous: a call costs a few microseconds and the task has half the processor.
    let limit = 2_000 * MS + calls * 100 * US;
    let t0 = time::now().0;
    let report = sched::run(table, &threads, true, limit);
    let run_ns = time::now().0 - t0;
    let kernel_faults = arch::traps::kernel_exceptions() - exceptions_before;
    let tally = syscalls::tally_take();
    task::clear_slots();
    task::unload(&mut k.memory.frames, hostile)?;
    crate::reservoir::reset();
    let report = report.map_err(|e| alloc::format!("scheduler run: {e}"))?;
    let tally = tally.ok_or("no tally of the task's calls")?;
    ensure!(
        k.memory.frames.free_frames() == free_before,
        "{} frames free after the run, {free_before} before",
        k.memory.frames.free_frames()
    );

    let user_faults = u64::from(report.faults[HOSTILE_SLOT].is_some());
    kprintln!("metric hostile_syscalls {} calls", tally.calls());
    kprintln!("metric hostile_kernel_faults {kernel_faults} faults");
    kprintln!("metric hostile_user_faults {user_faults} faults");
    kprintln!("metric hostile_ok {} calls", tally.results[0]);
    for e in Errno::ALL {
        kprintln!(
            "metric hostile_errno_{e:?} {} calls",
            tally.results[e.code().unsigned_abs() as usize]
        );
    }
    kprintln!(
        "metric hostile_errno_unknown {} calls",
        tally.results[TALLY_CLASSES - 1]
    );
    kprintln!(
        "metric hostile_longest_call_ns {} ns (syscall {})",
        tally.longest_ns,
        tally.longest_number
    );
    kprintln!("metric hostile_run_ns {run_ns} ns");

    let jobs = JOBS.load(Ordering::Acquire);
    let acct = report.periodic[RESERVOIR_SLOT].ok_or("no accounting for the reservoir task")?;
    kprintln!("metric hostile_reservoir_periods {jobs} periods");
    kprintln!(
        "metric hostile_reservoir_deadline_misses {} misses",
        acct.deadline_misses
    );
    kprintln!(
        "metric hostile_reservoir_budget_overruns {} overruns",
        acct.overruns
    );

    ensure!(kernel_faults == 0, "{kernel_faults} exceptions in ring 0");
    ensure!(
        report.faults[HOSTILE_SLOT].is_none(),
        "the hostile task was stopped by {:?}: it never faults by itself, so the kernel wrote \
         where it must not",
        report.faults[HOSTILE_SLOT]
    );
    let code = report.exit_codes[HOSTILE_SLOT].ok_or("the hostile task did not exit")?;
    ensure!(
        code >= 0,
        "{} answers did not fit the hostile task's model (its log lines name the first)",
        -1 - code
    );
    let exact = code as u64 >> 32;
    kprintln!("metric hostile_exact_predictions {exact} calls");
    ensure!(
        tally.calls() == calls,
        "the kernel counted {} calls, the task made {calls}",
        tally.calls()
    );
    ensure!(
        tally.results[TALLY_CLASSES - 1] == 0,
        "{} calls returned a code that is no Errno",
        tally.results[TALLY_CLASSES - 1]
    );
    ensure!(
        tally_digest(&tally.results) & 0xffff_ffff == code as u64 & 0xffff_ffff,
        "the task's tally differs from the kernel's (digest {:#x} vs {:#x})",
        code as u64 & 0xffff_ffff,
        tally_digest(&tally.results) & 0xffff_ffff
    );

    // The other partition: every period on time, and the same states as with no scheduler.
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
        .and_then(|mut esn| esn.digest(jobs as u32, integer::DIGEST_INPUT_SEED, &mut input))
        .map_err(|e| alloc::format!("reference run: {e}"))?;
    ensure!(
        digest == expected,
        "after {jobs} periods next to the hostile task the reservoir's digest is {digest:#018x}, \
         unscheduled {expected:#018x}"
    );
    ensure!(jobs > 0, "the reservoir task never ran");
    if crate::ktests::virtual_time(k) {
        ensure!(
            acct.deadline_misses == 0,
            "the reservoir task missed {} deadlines next to the hostile task",
            acct.deadline_misses
        );
    }
    Ok(())
}
kernel_test!(hostile_ring_3_task_leaves_the_kernel_and_the_other_partition_unharmed);

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

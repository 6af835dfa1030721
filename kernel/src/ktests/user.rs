//! Ring-3 tasks: user programs (user/echos-user, embedded ELF files) run in their own address
//! spaces; faults stop only the faulting task; bad syscalls, pointers and program images are
//! refused with error codes; the user-to-user context switch is measured.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use echos_kpolicy::dispatch::TaskSpec;
use echos_kpolicy::elf::ElfError;
use echos_kpolicy::partition::{PartitionTable, Window};
use echos_kpolicy::periodic::PeriodicParams;

use super::Kernel;
use crate::config::{MAX_WINDOWS, STACK_TOP, WEIGHTS_BASE, WEIGHTS_WINDOW};
use crate::sched::{self, Report, ThreadSpec};
use crate::task::{self, programs, LoadError, UserTask};
use crate::{ensure, kernel_test, kprintln, time};

const MS: u64 = 1_000_000;

fn table() -> Result<PartitionTable<MAX_WINDOWS>, String> {
    PartitionTable::new(
        MS,
        &[Window {
            start_ns: 0,
            duration_ns: MS,
            partition: 0,
        }],
    )
    .map_err(|e| alloc::format!("{e:?}"))
}

/// Loads each (program, argument, priority), runs them all, unloads them and checks that every
/// frame came back.
fn run_programs(k: &mut Kernel, tasks: &[(&[u8], u64, u8)]) -> Result<Report, String> {
    run_programs_timed(k, tasks).map(|(r, _)| r)
}

/// As [`run_programs`], also returning how long the scheduler run took (ns).
fn run_programs_timed(k: &mut Kernel, tasks: &[(&[u8], u64, u8)]) -> Result<(Report, u64), String> {
    let mut specs = Vec::new();
    for &(image, arg, priority) in tasks {
        let spec = TaskSpec {
            priority,
            partition: 0,
            periodic: None,
        };
        specs.push((image, arg, spec));
    }
    run_specs(k, &specs)
}

/// Loads each (program, argument, scheduling spec), runs them all, unloads them, checks that
/// every frame came back, and returns the report and the run's duration (ns).
fn run_specs(k: &mut Kernel, tasks: &[(&[u8], u64, TaskSpec)]) -> Result<(Report, u64), String> {
    run_specs_with(k, tasks, &[], &mut |_| Ok(()))
}

/// As [`run_specs`], with `pipeline` (thread slots in stage order) and `setup`, which runs
/// after the reservoir table is cleared and before the threads start; it may replace each
/// task's argument (e.g. with a handle it created for it).
fn run_specs_with(
    k: &mut Kernel,
    tasks: &[(&[u8], u64, TaskSpec)],
    pipeline: &[u16],
    setup: &mut dyn FnMut(&mut [u64]) -> Result<(), String>,
) -> Result<(Report, u64), String> {
    let free_before = k.memory.frames.free_frames();
    let mut loaded: Vec<UserTask> = Vec::new();
    for &(image, _, _) in tasks {
        match task::load(&mut k.memory.frames, image) {
            Ok(t) => loaded.push(t),
            Err(e) => {
                for t in loaded {
                    task::unload(&mut k.memory.frames, t)?;
                }
                return Err(alloc::format!("loading: {e}"));
            }
        }
    }
    crate::reservoir::reset();
    let mut args: Vec<u64> = tasks.iter().map(|t| t.1).collect();
    if let Err(e) = setup(&mut args) {
        for t in loaded {
            task::unload(&mut k.memory.frames, t)?;
        }
        return Err(e);
    }
    let mut threads = Vec::new();
    for (slot, (task, (&(_, _, spec), &arg))) in
        loaded.iter().zip(tasks.iter().zip(&args)).enumerate()
    {
        task::prepare(slot, task, arg);
        threads.push(ThreadSpec {
            spec,
            entry: task::user_thread,
            arg: slot as u64,
            address_space: Some(task.root),
        });
    }
    let table = table()?;
    let t0 = time::now().0;
    let report = sched::run_with_pipeline(table, &threads, true, 5_000 * MS, pipeline);
    let run_ns = time::now().0 - t0;
    task::clear_slots();
    for t in loaded {
        task::unload(&mut k.memory.frames, t)?;
    }
    let report = report.map_err(|e| alloc::format!("scheduler run: {e}"))?;
    ensure!(
        k.memory.frames.free_frames() == free_before,
        "{} frames free after the run, {free_before} before",
        k.memory.frames.free_frames()
    );
    Ok((report, run_ns))
}

fn user_program_logs_and_exits_with_its_code(k: &mut Kernel) -> Result<(), String> {
    let r = run_programs(k, &[(programs::HELLO, 7, 5)])?;
    ensure!(r.faults[0].is_none(), "hello faulted: {:?}", r.faults[0]);
    ensure!(
        r.exit_codes[0] == Some(7),
        "exit code {:?}",
        r.exit_codes[0]
    );
    Ok(())
}
kernel_test!(user_program_logs_and_exits_with_its_code);

fn user_faults_stop_only_the_faulting_task(k: &mut Kernel) -> Result<(), String> {
    // The faulting tasks run first (higher priority); hello must still run after them.
    let r = run_programs(
        k,
        &[
            (programs::FAULT, 0, 9),
            (programs::FAULT, 1, 9),
            (programs::FAULT, 2, 9),
            (programs::HELLO, 3, 1),
        ],
    )?;
    for (slot, (vector, name)) in [(14, "#PF"), (0, "#DE"), (13, "#GP")].iter().enumerate() {
        let f = r.faults[slot].ok_or(alloc::format!("task {slot} did not fault ({name})"))?;
        ensure!(
            f.vector == *vector,
            "task {slot}: vector {} instead of {name}",
            f.vector
        );
        ensure!(
            f.rip >= 0x80_0000_0000 && f.rip < STACK_TOP,
            "task {slot}: fault rip {:#x} is not in the program",
            f.rip
        );
        kprintln!(
            "user task {slot} stopped by {name}: rip {:#x} error code {:#x}",
            f.rip,
            f.error_code
        );
    }
    let pf = r.faults[0].ok_or("no #PF")?;
    ensure!(
        pf.cr2 == 0x10_0000,
        "#PF at {:#x}, expected 0x100000",
        pf.cr2
    );
    // Error code: present page (the kernel's), read, from user mode.
    ensure!(
        pf.error_code & 0b111 == 0b101,
        "#PF error code {:#x}",
        pf.error_code
    );
    ensure!(
        r.exit_codes[3] == Some(3) && r.faults[3].is_none(),
        "the healthy task: exit {:?}, fault {:?}",
        r.exit_codes[3],
        r.faults[3]
    );
    Ok(())
}
kernel_test!(user_faults_stop_only_the_faulting_task);

fn bad_syscalls_and_pointers_are_refused(k: &mut Kernel) -> Result<(), String> {
    let r = run_programs(k, &[(programs::BAD_CALLS, 0, 5)])?;
    ensure!(
        r.faults[0].is_none(),
        "bad_calls faulted: {:?}",
        r.faults[0]
    );
    ensure!(
        r.exit_codes[0] == Some(0),
        "{:?} bad calls were not refused with the expected error code",
        r.exit_codes[0]
    );
    Ok(())
}
kernel_test!(bad_syscalls_and_pointers_are_refused);

fn patched(image: &[u8], at: usize, value: u64) -> Vec<u8> {
    let mut v = image.to_vec();
    v[at..at + 8].copy_from_slice(&value.to_le_bytes());
    v
}

fn bad_program_images_are_refused(k: &mut Kernel) -> Result<(), String> {
    let free_before = k.memory.frames.free_frames();
    let image = programs::HELLO;
    let phoff = u64::from_le_bytes(image[32..40].try_into().map_err(|_| "short header")?) as usize;
    let cases: [(&str, Vec<u8>); 4] = [
        ("truncated", image[..100].to_vec()),
        (
            "segment in the kernel half",
            patched(image, phoff + 16, 0xffff_8000_0000_0000),
        ),
        (
            "segment over the kernel's identity map",
            patched(&patched(image, phoff + 16, 0x10_0000), 24, 0x10_0000),
        ),
        (
            "entry point in the kernel",
            patched(image, 24, 0xffff_ffff_8000_0000),
        ),
    ];
    for (what, bytes) in cases {
        match task::load(&mut k.memory.frames, &bytes) {
            Ok(t) => {
                task::unload(&mut k.memory.frames, t)?;
                return Err(alloc::format!("{what}: the image was accepted"));
            }
            Err(e) => {
                kprintln!("bad image ({what}) refused: {e}");
                if what == "truncated" {
                    ensure!(
                        matches!(e, LoadError::Elf(ElfError::Truncated { .. })),
                        "truncated image refused as {e}"
                    );
                }
                // The ELF rules allow low addresses; the kernel's own map must refuse them.
                if what.starts_with("segment over") {
                    ensure!(
                        e == LoadError::Map { vaddr: 0x10_0000 },
                        "identity-map overlap refused as {e}"
                    );
                }
            }
        }
    }
    ensure!(
        k.memory.frames.free_frames() == free_before,
        "refused loads leaked {} frames",
        free_before - k.memory.frames.free_frames()
    );
    Ok(())
}
kernel_test!(bad_program_images_are_refused);

const YIELDS: u64 = 2_000;

fn context_switch_between_two_user_tasks(k: &mut Kernel) -> Result<(), String> {
    // The same two tasks with no yields give the fixed cost (first entry, exits, the run's
    // setup); the difference over 2·YIELDS yields is the cost of one yield: syscall entry,
    // scheduler decision, CR3 and stack switch to the other task, sysret.
    let (base, base_ns) =
        run_programs_timed(k, &[(programs::YIELDER, 0, 5), (programs::YIELDER, 0, 5)])?;
    let (r, run_ns) = run_programs_timed(
        k,
        &[
            (programs::YIELDER, YIELDS, 5),
            (programs::YIELDER, YIELDS, 5),
        ],
    )?;
    ensure!(
        r.exit_codes[0] == Some(0) && r.exit_codes[1] == Some(0),
        "yielders exited with {:?} / {:?}",
        r.exit_codes[0],
        r.exit_codes[1]
    );
    let extra_switches = r.switches.saturating_sub(base.switches);
    // Each yield hands over to the other task (the last one of each may find it gone).
    ensure!(
        extra_switches + 2 >= 2 * YIELDS,
        "{extra_switches} switches for {} yields: the tasks did not alternate",
        2 * YIELDS
    );
    let per_switch = run_ns.saturating_sub(base_ns) / extra_switches.max(1);
    kprintln!("metric context_switch_ns {per_switch} ns");
    kprintln!("metric context_switches_measured {extra_switches} switches");
    if crate::ktests::virtual_time(k) {
        ensure!(
            per_switch < 20_000,
            "a user-to-user switch costs {per_switch} ns"
        );
    }
    Ok(())
}
kernel_test!(context_switch_between_two_user_tasks);

/// Mirrors user/echos-user/src/bin/reservoir.rs: its creation arguments and input stream.
const RESERVOIR_UNITS: usize = 50;
const RESERVOIR_STEPS: usize = 21;

fn reservoir_input(k: usize) -> i32 {
    ((k as i64 * 7919) % 131_072 - 65_536) as i32
}

fn reservoir_through_capabilities_from_ring_3(k: &mut Kernel) -> Result<(), String> {
    use echos_abi::{ReservoirCreateArgs, Topology, Q16_ONE};
    use echos_core::integer::{FixedEsn, FixedEsnBuffers, FixedEsnLayout};

    let r = run_programs(k, &[(programs::RESERVOIR, 0, 5)])?;
    ensure!(
        r.faults[0].is_none(),
        "the reservoir program faulted: {:?}",
        r.faults[0]
    );
    ensure!(
        r.exit_codes[0] == Some(0),
        "{:?} answers of the reservoir syscalls were wrong",
        r.exit_codes[0]
    );
    // The object the program stepped must hold what the engine computes for the same inputs:
    // the syscall path neither skipped nor repeated a step, nor corrupted the state.
    let (steps, state) =
        crate::reservoir::object_state(0).ok_or("the program's reservoir object is gone")?;
    let cfg = crate::reservoir::config_of(&ReservoirCreateArgs {
        seed: 42,
        units: RESERVOIR_UNITS as u32,
        inputs: 1,
        outputs: 1,
        topology: Topology::SparseRandom,
        spectral_radius_q16: Q16_ONE * 9 / 10,
        leak_rate_q16: Q16_ONE * 3 / 10,
        input_scaling_q16: Q16_ONE / 2,
        density_q16: Q16_ONE / 10,
    })
    .map_err(|e| alloc::format!("{e:?}"))?;
    let l = FixedEsnLayout::of(&cfg);
    let (mut ro, mut co, mut va) = (
        alloc::vec![0u32; l.units + 1],
        alloc::vec![0u16; l.nnz],
        alloc::vec![0i16; l.nnz],
    );
    let (mut wi, mut bi) = (
        alloc::vec![0i16; l.units * l.inputs],
        alloc::vec![0i16; l.units],
    );
    let (mut st, mut sc) = (alloc::vec![0i16; l.units], alloc::vec![0i16; l.units]);
    let mut esn = FixedEsn::new(
        cfg,
        FixedEsnBuffers {
            row_offsets: &mut ro,
            columns: &mut co,
            values: &mut va,
            w_in: &mut wi,
            bias: &mut bi,
            state: &mut st,
            scratch: &mut sc,
        },
    )
    .map_err(|e| alloc::format!("{e}"))?;
    for i in 0..RESERVOIR_STEPS {
        esn.step(&[reservoir_input(i)])
            .map_err(|e| alloc::format!("{e}"))?;
    }
    ensure!(
        steps == RESERVOIR_STEPS as u64,
        "the object took {steps} steps"
    );
    ensure!(
        state.as_slice() == esn.state(),
        "the object's state differs from the engine's for the same inputs"
    );
    crate::reservoir::reset();
    Ok(())
}
kernel_test!(reservoir_through_capabilities_from_ring_3);

/// Found by the hostile task: `read_state` wrote the first 256 bytes of a buffer it then
/// refused, and `modify_weights` refused a range running past mapped memory with
/// `InvalidArgument` when the part it read first held an out-of-range value.
fn reservoir_calls_are_refused_as_a_whole(k: &mut Kernel) -> Result<(), String> {
    let r = run_programs(k, &[(programs::REFUSALS, 0, 5)])?;
    ensure!(
        r.faults[0].is_none(),
        "the refusals program faulted: {:?}",
        r.faults[0]
    );
    ensure!(
        r.exit_codes[0] == Some(0),
        "refusals: exit {:?} (wrong answers; 100+: the kernel wrote into the refused buffer; \
         1000+: setup failed)",
        r.exit_codes[0]
    );
    crate::reservoir::reset();
    Ok(())
}
kernel_test!(reservoir_calls_are_refused_as_a_whole);

pub const PREDICTOR_PERIODS: u64 = 2_000;
const PREDICTOR_PERIOD_NS: u64 = MS;
/// The predictor program's washout and readout shift (user/echos-user/src/bin/predictor.rs); the
/// host-trained model must have been made for the same.
const PREDICTOR_WASHOUT: u32 = 100;
const PREDICTOR_READOUT_SHIFT: u32 = 4;

/// The predictor's argument: its reservoir handle (52 bits) and, above, its period count.
fn predictor_arg(handle: echos_abi::CapHandle, periods: u64) -> u64 {
    handle.to_raw() | periods << 52
}

/// Creates the demo's reservoir for the task in slot 0 with the host-trained readout and returns
/// the predictor's argument for `periods` periods.
fn predictor_setup(model: &crate::demo_model::DemoModel, periods: u64) -> Result<u64, String> {
    let h = crate::reservoir::create_for(0, &model.args)
        .map_err(|e| alloc::format!("creating the demo reservoir: {e:?}"))?;
    crate::reservoir::set_trained(0, h, &model.readout, model.memory_capacity_q16)
        .map_err(|e| alloc::format!("setting the trained readout: {e:?}"))?;
    Ok(predictor_arg(h, periods))
}

/// The digest the host computed, recomputed in ring 0: the engine stepped directly on the demo
/// signal with the same readout arithmetic as the step syscall.
fn ring_0_prediction_digest(model: &crate::demo_model::DemoModel) -> Result<u64, String> {
    use echos_core::integer::{FixedEsn, FixedEsnBuffers, FixedEsnLayout, Fnv1a};
    let cfg = crate::reservoir::config_of(&model.args).map_err(|e| alloc::format!("{e:?}"))?;
    let l = FixedEsnLayout::of(&cfg);
    let (mut ro, mut co, mut va) = (
        vec![0u32; l.units + 1],
        vec![0u16; l.nnz],
        vec![0i16; l.nnz],
    );
    let (mut wi, mut bi, mut st, mut sc) = (
        vec![0i16; l.units * l.inputs],
        vec![0i16; l.units],
        vec![0i16; l.units],
        vec![0i16; l.units],
    );
    let mut esn = FixedEsn::new(
        cfg,
        FixedEsnBuffers {
            row_offsets: &mut ro,
            columns: &mut co,
            values: &mut va,
            w_in: &mut wi,
            bias: &mut bi,
            state: &mut st,
            scratch: &mut sc,
        },
    )
    .map_err(|e| alloc::format!("ring-0 demo reservoir: {e}"))?;
    let mut fnv = Fnv1a::new();
    for k in 0..u64::from(model.periods) {
        esn.step(&[demo_signal(k) as i32])
            .map_err(|e| alloc::format!("ring-0 step: {e}"))?;
        let acc: i64 = model
            .readout
            .iter()
            .zip(esn.state())
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        let out = (acc >> 14).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        fnv.write(&out.to_le_bytes());
    }
    Ok(fnv.finish())
}

/// The demo signal (a copy of the predictor program's), Q16.16.
fn demo_signal(k: u64) -> i64 {
    let tri = |k: u64, p: u64| -> i64 {
        let ph = (k % p) as i64 * 4 * 65_536 / p as i64;
        if ph < 2 * 65_536 {
            ph - 65_536
        } else {
            3 * 65_536 - ph
        }
    };
    (tri(k, 40) * 6 + tri(k, 14) * 2) / 10
}

/// The demo: a periodic (1 kHz) ring-3 task steps a kernel reservoir through its capability and
/// predicts its input signal's next sample with the readout trained on the host (xtask), logs
/// prediction, target and error, and the kernel's introspection; the kernel prints the task's
/// timing figures and checks its predictions against the host's, bit for bit.
/// Returns the task's deadline misses.
pub fn predictor_demo(k: &mut Kernel) -> Result<u64, String> {
    let model = crate::demo_model::embedded().map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        u64::from(model.periods) == PREDICTOR_PERIODS
            && model.washout == PREDICTOR_WASHOUT
            && model.readout_shift == PREDICTOR_READOUT_SHIFT,
        "the demo model was made for {} periods, washout {}, shift {}",
        model.periods,
        model.washout,
        model.readout_shift
    );
    let start = (time::now().0 / MS + 5) * MS;
    let spec = TaskSpec {
        priority: 10,
        partition: 0,
        periodic: Some(PeriodicParams {
            start_ns: start,
            period_ns: PREDICTOR_PERIOD_NS,
            deadline_ns: PREDICTOR_PERIOD_NS,
            budget_ns: PREDICTOR_PERIOD_NS / 2,
        }),
    };
    kprintln!(
        "demo: periodic ring-3 reservoir task, {} periods of {} us, reservoir of {} units behind a capability, readout trained on the host",
        PREDICTOR_PERIODS,
        PREDICTOR_PERIOD_NS / 1_000,
        model.args.units
    );
    let (r, _) = run_specs_with(k, &[(programs::PREDICTOR, 0, spec)], &[], &mut |args| {
        args[0] = predictor_setup(&model, PREDICTOR_PERIODS)?;
        Ok(())
    })?;
    let acct = r.periodic[0].ok_or("no periodic accounting for the demo task")?;
    kprintln!(
        "metric demo_periods_completed {} periods",
        acct.completed_jobs
    );
    kprintln!(
        "metric demo_deadline_misses {} misses",
        acct.deadline_misses
    );
    kprintln!("metric demo_budget_overruns {} overruns", acct.overruns);
    kprintln!(
        "metric demo_release_latency_max_ns {} ns",
        acct.jitter.max_ns().unwrap_or(0)
    );
    kprintln!(
        "metric demo_prediction_mse_q16 {} /65536 (host, equal to ring 3's when the digests match)",
        model.mse_q16
    );
    kprintln!(
        "metric demo_memory_capacity_q16 {} /65536 (host, Q1.15 reservoir)",
        model.memory_capacity_q16
    );
    ensure!(
        r.faults[0].is_none(),
        "the demo task faulted: {:?}",
        r.faults[0]
    );
    let ring_0 = ring_0_prediction_digest(&model)?;
    ensure!(
        ring_0 == model.digest,
        "ring 0 predicts with digest {ring_0:#018x}, the host {:#018x}",
        model.digest
    );
    // The task exits with its digest of the kernel's outputs (shifted to stay non-negative).
    ensure!(
        r.exit_codes[0] == Some((model.digest >> 1) as i64),
        "the demo task exited with {:?}, the host's digest gives {}",
        r.exit_codes[0],
        (model.digest >> 1) as i64
    );
    kprintln!(
        "demo: ring-3 predictions match the host's bit for bit (digest {:#018x})",
        model.digest
    );
    ensure!(
        acct.completed_jobs >= PREDICTOR_PERIODS,
        "{} periods completed",
        acct.completed_jobs
    );
    crate::reservoir::reset();
    Ok(acct.deadline_misses)
}

fn periodic_ring_3_reservoir_task_predicts_like_the_host_and_meets_its_deadlines(
    k: &mut Kernel,
) -> Result<(), String> {
    let misses = predictor_demo(k)?;
    if crate::ktests::virtual_time(k) {
        ensure!(misses == 0, "the demo task missed {misses} deadlines");
    }
    Ok(())
}
kernel_test!(periodic_ring_3_reservoir_task_predicts_like_the_host_and_meets_its_deadlines);

fn simd_state_is_kept_per_user_task(k: &mut Kernel) -> Result<(), String> {
    if crate::arch::fpu::mode() == crate::arch::fpu::FpuMode::None {
        return Err(alloc::format!(
            "{}user SIMD state is not saved here (nested KVM: ring-0 XSAVE aborts the VM)",
            crate::ktests::SKIPPED
        ));
    }
    kprintln!("fpu: user state saved with {:?}", crate::arch::fpu::mode());
    let r = run_programs(k, &[(programs::FPU, 1, 5), (programs::FPU, 2, 5)])?;
    for t in 0..2 {
        ensure!(
            r.faults[t].is_none(),
            "fpu task {t} faulted: {:?}",
            r.faults[t]
        );
        ensure!(
            r.exit_codes[t] == Some(0),
            "fpu task {t}: {:?} mismatches (registers or MXCSR changed across a switch, or the \
             float result differed with yields)",
            r.exit_codes[t]
        );
    }
    ensure!(
        r.switches >= 200,
        "only {} switches: the tasks did not interleave",
        r.switches
    );
    Ok(())
}
kernel_test!(simd_state_is_kept_per_user_task);

fn kernel_mutexes_from_ring_3_block_and_refuse(k: &mut Kernel) -> Result<(), String> {
    // Twin tasks take mutex 0 in turn and yield while holding it, so each blocks in the kernel
    // on every round until the other unlocks; a lost wakeup would end the run by its time limit.
    let r = run_programs(k, &[(programs::MUTEXER, 0, 5), (programs::MUTEXER, 1, 5)])?;
    for t in 0..2 {
        ensure!(
            r.faults[t].is_none(),
            "mutex task {t} faulted: {:?}",
            r.faults[t]
        );
        ensure!(
            r.exit_codes[t] == Some(0),
            "mutex task {t}: {:?} wrong answers",
            r.exit_codes[t]
        );
    }
    Ok(())
}
kernel_test!(kernel_mutexes_from_ring_3_block_and_refuse);

fn ring_3_tasks_are_preempted_by_releases_without_harm(k: &mut Kernel) -> Result<(), String> {
    // A 1 kHz periodic task above a ring-3 spinner that never yields: every release preempts the
    // spinner in user mode (timer interrupt through the TSS stack, XSAVE of its state).
    const PERIODS: u64 = 100;
    let start = (time::now().0 / MS + 5) * MS;
    let periodic = TaskSpec {
        priority: 10,
        partition: 0,
        periodic: Some(PeriodicParams {
            start_ns: start,
            period_ns: MS,
            deadline_ns: MS,
            budget_ns: MS / 2,
        }),
    };
    let background = TaskSpec {
        priority: 1,
        partition: 0,
        periodic: None,
    };
    let user_irqs_before = crate::arch::traps::user_mode_interrupts();
    let model = crate::demo_model::embedded().map_err(|e| alloc::format!("{e}"))?;
    let (r, _) = run_specs_with(
        k,
        &[
            (programs::PREDICTOR, 0, periodic),
            (programs::SPINNER, 20_000, background),
        ],
        &[],
        &mut |args| {
            args[0] = predictor_setup(&model, PERIODS)?;
            Ok(())
        },
    )?;
    let user_irqs = crate::arch::traps::user_mode_interrupts() - user_irqs_before;
    let acct = r.periodic[0].ok_or("no accounting for the periodic task")?;
    for t in 0..2 {
        ensure!(r.faults[t].is_none(), "task {t} faulted: {:?}", r.faults[t]);
    }
    ensure!(
        r.exit_codes[1] == Some(0),
        "the spinner saw {:?} wrong results after preemptions",
        r.exit_codes[1]
    );
    // Its digest covers fewer periods than the host's; here it must finish without an error.
    ensure!(
        r.exit_codes[0].is_some_and(|c| c >= 0),
        "the periodic task exited with {:?}",
        r.exit_codes[0]
    );
    ensure!(
        acct.completed_jobs >= PERIODS,
        "{} periods completed",
        acct.completed_jobs
    );
    // The spinner runs tens of milliseconds: many releases must have found it in ring 3.
    ensure!(
        user_irqs >= 10,
        "only {user_irqs} timer interrupts arrived in ring 3: the spinner was not preempted"
    );
    kprintln!("metric ring3_preemptions {user_irqs} interrupts");
    kprintln!(
        "metric ring3_preemption_periodic_misses {} misses",
        acct.deadline_misses
    );
    if crate::ktests::virtual_time(k) {
        ensure!(
            acct.deadline_misses == 0,
            "{} misses with a ring-3 spinner below",
            acct.deadline_misses
        );
    }
    crate::reservoir::reset();
    Ok(())
}
kernel_test!(ring_3_tasks_are_preempted_by_releases_without_harm);

fn reservoir_weights_are_mapped_read_only_and_zero_copy(k: &mut Kernel) -> Result<(), String> {
    let r = run_programs(k, &[(programs::WEIGHTS, 0, 5)])?;
    ensure!(
        r.faults[0].is_none(),
        "weights task faulted: {:?}",
        r.faults[0]
    );
    ensure!(
        r.exit_codes[0] == Some(0),
        "weights task: exit {:?} (wrong answers, or 1000+/2000: setup failed)",
        r.exit_codes[0]
    );
    // Writing to the mapped weights must fault: read-only, user, present page.
    let r = run_programs(k, &[(programs::WEIGHTS, 1, 5)])?;
    let f = r.faults[0].ok_or(alloc::format!(
        "the write to mapped weights did not fault (exit {:?})",
        r.exit_codes[0]
    ))?;
    ensure!(f.vector == 14, "vector {} instead of #PF", f.vector);
    ensure!(
        f.error_code & 0b111 == 0b111,
        "error code {:#x}: expected a user write to a present page",
        f.error_code
    );
    ensure!(
        (WEIGHTS_BASE..WEIGHTS_BASE + WEIGHTS_WINDOW).contains(&f.cr2),
        "fault address {:#x} outside the weights window",
        f.cr2
    );
    Ok(())
}
kernel_test!(reservoir_weights_are_mapped_read_only_and_zero_copy);

/// Stage 0 steps a kernel-created reservoir each period; stage 1 (read and map rights only)
/// reads its state through a shared read-only page. Returns stage 1's exit code.
fn shared_state_pipeline(
    k: &mut Kernel,
    as_pipeline: bool,
) -> Result<(Report, Option<i64>), String> {
    use echos_abi::{ReservoirCreateArgs, Rights, Topology, Q16_ONE};
    let start = (time::now().0 / MS + 5) * MS;
    let spec = |priority| TaskSpec {
        priority,
        partition: 0,
        periodic: Some(PeriodicParams {
            start_ns: start,
            period_ns: MS,
            deadline_ns: MS,
            budget_ns: MS / 2,
        }),
    };
    let stages: &[u16] = if as_pipeline { &[0, 1] } else { &[] };
    let (r, _) = run_specs_with(
        k,
        // Stage 1 is the more urgent: only the pipeline makes it wait for stage 0.
        &[
            (programs::STAGE0, 0, spec(1)),
            (programs::STAGE1, 0, spec(9)),
        ],
        stages,
        &mut |args| {
            let h = crate::reservoir::create_for(
                0,
                &ReservoirCreateArgs {
                    seed: 11,
                    units: 50,
                    inputs: 1,
                    outputs: 0,
                    topology: Topology::SparseRandom,
                    spectral_radius_q16: Q16_ONE * 9 / 10,
                    leak_rate_q16: Q16_ONE / 2,
                    input_scaling_q16: Q16_ONE / 2,
                    density_q16: Q16_ONE / 10,
                },
            )
            .map_err(|e| alloc::format!("creating the shared reservoir: {e:?}"))?;
            let reader = crate::reservoir::grant(0, h, 1, Rights::READ | Rights::MAP)
                .map_err(|e| alloc::format!("granting it to stage 1: {e:?}"))?;
            args[0] = h.to_raw();
            args[1] = reader.to_raw();
            Ok(())
        },
    )?;
    for t in 0..2 {
        ensure!(
            r.faults[t].is_none(),
            "stage {t} faulted: {:?}",
            r.faults[t]
        );
    }
    ensure!(
        r.exit_codes[0] == Some(0),
        "stage 0 exited with {:?}",
        r.exit_codes[0]
    );
    let code = r.exit_codes[1];
    crate::reservoir::reset();
    Ok((r, code))
}

fn pipeline_stages_share_a_state_page_in_order(k: &mut Kernel) -> Result<(), String> {
    let (r, code) = shared_state_pipeline(k, true)?;
    ensure!(
        code == Some(0),
        "stage 1 found {code:?} periods stale or inconsistent (negative: setup failed)"
    );
    for t in 0..2 {
        let acct = r.periodic[t].ok_or("no accounting")?;
        ensure!(
            acct.deadline_misses == 0,
            "stage {t} missed {} deadlines",
            acct.deadline_misses
        );
    }
    // Without the pipeline the urgent stage 1 runs first and finds every period stale.
    let (_, code) = shared_state_pipeline(k, false)?;
    ensure!(
        code.is_some_and(|c| c > 0),
        "without the pipeline stage 1 should see stale state, exit {code:?}"
    );
    Ok(())
}
kernel_test!(pipeline_stages_share_a_state_page_in_order);

fn demo_model_blobs_are_validated(_k: &mut Kernel) -> Result<(), String> {
    use crate::demo_model::{embedded, parse, DemoModelError};
    let good = embedded().map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        good.readout.len() == good.args.units as usize,
        "readout of {} for {} units",
        good.readout.len(),
        good.args.units
    );
    ensure!(parse(&[]).err() == Some(DemoModelError::Missing), "empty");
    ensure!(
        parse(&[0; 10]).err() == Some(DemoModelError::Truncated { len: 10 }),
        "short"
    );
    let mut blob = Vec::from(&b"ECHOSDM1"[..]);
    blob.resize(68, 0);
    blob[16] = 2; // two units, one readout byte
    blob.push(0);
    ensure!(
        parse(&blob).err() == Some(DemoModelError::ReadoutLength { units: 2, len: 1 }),
        "readout length"
    );
    blob.push(0);
    blob.extend_from_slice(&[0, 0]);
    ensure!(parse(&blob).is_ok(), "a well-formed blob was refused");
    blob[0] = b'X';
    ensure!(
        parse(&blob).err() == Some(DemoModelError::BadMagic),
        "magic"
    );
    Ok(())
}
kernel_test!(demo_model_blobs_are_validated);

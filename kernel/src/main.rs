//! echo-os kernel: boots on x86_64 (PVH or multiboot2), sets up interrupts, memory and time, and
//! runs integer/fixed-point reservoirs in ring 0. `unsafe` lives only in `arch`.
//!
//! The command line picks what the boot does: `test` runs the kernel test suite; `panic`, `fault`
//! and `hang` panic, take an unhandled page fault and hang on purpose (to check that each is
//! reported and caught); anything else prints the boot report and the measured figures and stops.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

// The modules in layers, bottom first: each uses only modules of earlier layers (the graph is
// in docs/kernel.md; xtask's layering test fails on any import cycle).
// The hardware (all the `unsafe`), and modules that use no other.
mod arch;
mod bootinfo;
mod demo_model;

// The console, the build-time sizes, memory and time.
mod config;
mod console;
mod memory;
mod time;

// Kernel threads; user memory (checked copies into a task's address space).
mod sched;
mod umem;

// Kernel objects: reservoirs behind capabilities.
mod reservoir;

// Task lifecycle: load, enter ring 3, exit or fault.
mod task;

// Syscall dispatch.
mod syscalls;

// The test suite and the default boot's figures.
mod ktests;

use core::panic::PanicInfo;

use bootinfo::{BootInfo, BootInfoError};

kernel_entry!(kernel_main);

/// Stops the boot with a message: a controlled stop, never a silent hang.
fn fatal(what: &str, err: &dyn core::fmt::Display) -> ! {
    kprintln!("FATAL: {what}: {err}");
    kprintln!("echo-os: boot stopped");
    arch::qemu::exit(arch::qemu::EXIT_FAILURE)
}

fn read_boot_info(protocol: u32, info_paddr: u32) -> Result<BootInfo, BootInfoError> {
    let paddr = u64::from(info_paddr);
    match protocol {
        bootinfo::PVH_MAGIC => {
            let bytes = arch::phys::firmware_bytes(paddr, bootinfo::PVH_START_INFO_SIZE)
                .ok_or(BootInfoError::Missing { paddr })?;
            bootinfo::parse_pvh(bytes, arch::phys::firmware_bytes)
        }
        bootinfo::MULTIBOOT2_MAGIC => {
            let head =
                arch::phys::firmware_bytes(paddr, 8).ok_or(BootInfoError::Missing { paddr })?;
            let total = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if !(16..=bootinfo::MAX_MULTIBOOT2_SIZE as u32).contains(&total) {
                return Err(BootInfoError::BadTotalSize { size: total });
            }
            let bytes = arch::phys::firmware_bytes(paddr, total as usize)
                .ok_or(BootInfoError::Missing { paddr })?;
            bootinfo::parse_multiboot2(bytes)
        }
        magic => Err(BootInfoError::UnknownLoader { magic }),
    }
}

fn kernel_main(protocol: u32, info_paddr: u32) -> ! {
    let boot_tsc = arch::tsc::read();
    arch::serial::init();
    kprintln!("echo-os: kernel entered");
    let first_line_tsc = arch::tsc::read();
    arch::gdt::init();
    arch::syscall::init();
    arch::traps::init();
    arch::tsc::mask_legacy_pic();

    let boot =
        read_boot_info(protocol, info_paddr).unwrap_or_else(|e| fatal("boot information", &e));
    kprintln!(
        "boot: {:?}, {} memory map entries, command line \"{}\"",
        boot.protocol,
        boot.regions().len(),
        boot.cmdline()
    );
    let features = arch::cpu::features();
    let memory = memory::init(boot.regions(), features.nx).unwrap_or_else(|e| fatal("memory", &e));
    kprintln!(
        "memory: {} MiB usable, {} free frames, {} page-table frames, {} guard pages",
        memory.usable_bytes >> 20,
        memory.frames.free_frames(),
        memory.paging.table_frames,
        memory.paging.guard_pages
    );
    kprintln!(
        "pools: reservoir pool {} KiB (for {} reservoirs of {} units, {}% connectivity, {} inputs), stress pool {} KiB",
        memory.reservoir_pool.stats().capacity >> 10,
        memory::POOL_RESERVOIRS,
        memory::POOL_UNITS,
        memory::POOL_CONNECTIVITY_PERMILLE / 10,
        memory::POOL_INPUTS,
        memory.stress_pool.stats().capacity >> 10
    );
    if !features.apic {
        fatal("cpu", &"this CPU has no local APIC");
    }
    let apic_mode = arch::apic::init(features.x2apic);
    let time = time::init(boot_tsc, features.tsc_deadline).unwrap_or_else(|e| fatal("time", &e));
    kprintln!(
        "cpu: apic {:?}, timer {:?}, tsc {} Hz from {:?}",
        apic_mode,
        time.hardware,
        time.clock.hz(),
        time.source
    );
    let fpu = arch::fpu::init();
    kprintln!(
        "fpu: user state saved with {:?}, xcr0 {:#x}, {} bytes per task",
        fpu.mode,
        fpu.xcr0,
        fpu.save_bytes
    );
    x86_64::instructions::interrupts::enable();
    // Under -icount the TSC counts instructions from machine reset, so this includes the firmware
    // and the loader; elsewhere (KVM) the TSC's origin is the host's and the figure means nothing.
    if boot.arg("icount").is_some() {
        kprintln!(
            "metric power_on_to_first_line_ns {} ns",
            time.clock.ticks_to_ns(first_line_tsc)
        );
    }
    kprintln!("metric kernel_entry_to_ready_ns {} ns", time::now().0);

    // The trap layer's calls up into the kernel: syscalls to their dispatch, ring-3 exceptions
    // to the task lifecycle (after the boot figures, which count the boot alone).
    arch::syscall::set_handler(syscalls::dispatch);
    arch::traps::set_user_fault_hook(task::user_fault);

    let mut kernel = ktests::Kernel {
        boot,
        memory,
        features,
        time,
    };
    if kernel.boot.arg("panic").is_some() {
        panic!("deliberate panic requested on the command line");
    }
    if kernel.boot.arg("fault").is_some() {
        // For the runner: an unhandled page fault must print the faulting state and fail.
        kprintln!("echo-os: reading unmapped address 0x10 on purpose (fault on the command line)");
        let v = arch::traps::read_without_fixup(0x10);
        kprintln!("echo-os: the read of 0x10 returned {v:#x} instead of faulting");
        arch::qemu::exit(arch::qemu::EXIT_FAILURE);
    }
    if kernel.boot.arg("hang").is_some() {
        // For the runner's hang detection: say so, then never finish.
        kprintln!("running 1 kernel tests");
        kprintln!("echo-os: hanging on purpose (hang on the command line)");
        arch::qemu::halt_forever();
    }
    let ok = if kernel.boot.arg("test").is_some() {
        ktests::run_all(&mut kernel)
    } else {
        ktests::report(&mut kernel)
    };
    kprintln!("echo-os: done");
    arch::qemu::exit(if ok {
        arch::qemu::EXIT_SUCCESS
    } else {
        arch::qemu::EXIT_FAILURE
    })
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    arch::serial::write_panic(format_args!("\nKERNEL PANIC: {info}\n"));
    arch::qemu::exit(arch::qemu::EXIT_FAILURE)
}

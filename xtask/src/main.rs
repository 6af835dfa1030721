//! `cargo xtask`: one command each to set up, run and test echo-os (the convention of Rust
//! kernels: Hermit, Hubris). Subcommands:
//!   run   — the main job: train and evaluate a reservoir on a built-in task on the host, then
//!           build and boot the kernel under QEMU and show its report
//!   run-host — only the host part of `run` (extra args go to `echos esn task narma10`)
//!   run-kernel — only the kernel part of `run` (`--kvm`, `--iso`; see docs/kernel.md)
//!   test  — every test suite (host crates, then the others as they exist), closing with one
//!           `N passed, M failed` line summed over all suites
#![forbid(unsafe_code)]

mod demo_model;
mod kernel;
mod python;
mod suite;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <run|run-host|run-kernel|test> [args]
  \
         run         the main job: a reservoir task on the host, then the kernel booted under QEMU
  \
         run-host    only the host reservoir task (args go to `echos esn task narma10`)
  \
         run-kernel  only the kernel (--kvm, --iso; see docs/kernel.md)
  \
         test        run every test suite"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "run" => run(rest),
        "run-host" => run_host(rest),
        "run-kernel" => kernel::run(rest),
        "test" => test(rest),
        _ => return usage(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The main job on its embedded default: the host task, then the kernel.
fn run(rest: &[String]) -> Result<bool, String> {
    if !rest.is_empty() {
        return Err(format!(
            "`run` takes no arguments (got {rest:?}); use run-host or run-kernel to pass them"
        ));
    }
    println!("xtask: 1/2 host: train and evaluate a reservoir on NARMA10 (echos esn task narma10)");
    if !run_host(&[])? {
        return Ok(false);
    }
    println!("xtask: 2/2 kernel: build echo-os and boot it under QEMU (TCG)");
    kernel::run(&[])
}

/// Train and evaluate a reservoir on a built-in task on the host.
fn run_host(rest: &[String]) -> Result<bool, String> {
    let mut args = vec![
        "run",
        "--release",
        "--quiet",
        "-p",
        "echos-cli",
        "--",
        "esn",
        "task",
        "narma10",
    ];
    args.extend(rest.iter().map(String::as_str));
    suite::status("cargo", &args)
}

fn test(_rest: &[String]) -> Result<bool, String> {
    let mut total = suite::Tally::default();
    total.add(suite::cargo_tests(
        "host",
        &[
            "test",
            "--workspace",
            "--exclude",
            "echos-py",
            "--all-targets",
            "--",
            "--show-output",
        ],
    )?);
    total.add(kernel::suite_kernel()?);
    total.add(kernel::suite_iso()?);
    total.add(python::python_tests()?);
    total.add(suite::lint()?);
    total.print_summary();
    Ok(total.failed == 0 && total.suites_ok)
}

//! `cargo xtask`: one command each to set up, run and test echo-os (the convention of Rust
//! kernels: Hermit, Hubris). Subcommands:
//!   run   — build and boot the kernel under QEMU (`--kvm`, `--iso`; see docs/kernel.md)
//!   run-host — the host main job (train and evaluate a reservoir on a built-in task)
//!   test  — every test suite (host crates, then the others as they exist), closing with one
//!           `N passed, M failed` line summed over all suites
#![forbid(unsafe_code)]

mod demo_model;
mod kernel;
mod suite;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask <run|run-host|test> [args]\n  run   build and boot the kernel (--kvm, --iso)\n  run-host  run the host main job\n  test  run every test suite");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "run" => kernel::run(rest),
        "run-host" => run(rest),
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

/// The main job on its embedded default: train and evaluate a reservoir on a built-in task.
fn run(rest: &[String]) -> Result<bool, String> {
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
        &["test", "--workspace", "--all-targets"],
    )?);
    total.add(kernel::suite_kernel()?);
    total.add(kernel::suite_iso()?);
    total.print_summary();
    Ok(total.failed == 0 && total.suites_ok)
}

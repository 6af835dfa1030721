//! `cargo xtask`: one command each to set up, run and test echo-os (the convention of Rust
//! kernels: Hermit, Hubris). Subcommands:
//!   run   — the main job: train and evaluate a reservoir on a built-in task on the host, then
//!           build and boot the kernel under QEMU and show its report
//!   run-host — only the host part of `run` (extra args go to `echos esn task narma10`)
//!   run-kernel — only the kernel part of `run` (`--kvm`, `--iso`; see docs/kernel.md)
//!   test  — every test suite (host crates, kernel, ISO boot, Python, a fuzz smoke run,
//!           dashboard, lint), or the named ones (`cargo xtask test kernel lint`), closing with
//!           one `N passed, M failed` line
#![forbid(unsafe_code)]

mod dashboard;
mod demo_model;
mod fuzz;
mod kernel;
#[cfg(test)]
mod layering;
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
         test [SUITE...]  run every test suite, or the named ones (host, kernel, iso, python, dashboard, fuzz, lint)"
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

/// The suites of `cargo xtask test`, in the order they run.
const SUITES: [&str; 7] = [
    "host",
    "kernel",
    "iso",
    "python",
    "dashboard",
    "fuzz",
    "lint",
];

/// Suites that run only when named. None: the fuzz smoke run costs about 3.7 CPU-minutes from
/// a cold target directory (docs/fuzzing.md has the measurements), small beside the whole run.
const OPT_IN: [&str; 0] = [];

/// `test` with no arguments runs every suite; `test SUITE...` runs the named ones (any order,
/// each once, in the order of [`SUITES`]). Anything else is refused, so a typo cannot turn
/// into a green run of nothing.
fn test(rest: &[String]) -> Result<bool, String> {
    for arg in rest {
        if !SUITES.contains(&arg.as_str()) {
            return Err(format!(
                "`test` takes suite names ({}), got {arg:?}",
                SUITES.join(", ")
            ));
        }
    }
    let wanted = |s: &str| (rest.is_empty() && !OPT_IN.contains(&s)) || rest.iter().any(|a| a == s);
    let mut total = suite::Tally::default();
    if wanted("host") {
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
    }
    if wanted("kernel") {
        total.add(kernel::suite_kernel()?);
    }
    if wanted("iso") {
        total.add(kernel::suite_iso()?);
    }
    if wanted("python") {
        total.add(python::python_tests()?);
    }
    if wanted("dashboard") {
        total.add(dashboard::dashboard_tests()?);
    }
    if wanted("fuzz") {
        total.add(fuzz::fuzz_tests()?);
    }
    if wanted("lint") {
        total.add(suite::lint()?);
    }
    total.print_summary();
    Ok(total.failed == 0 && total.suites_ok)
}

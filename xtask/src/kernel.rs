//! The kernel side of `cargo xtask`: build the kernel (its own cargo workspace in `kernel/`),
//! boot it under QEMU, make the GRUB ISO, and run the in-kernel suite as a test suite.
//!
//! QEMU runs TCG by default (`--kvm` opts in to the nested KVM, see DESIGN.md "Acceleration"),
//! with `-icount shift=0,sleep=off` so the kernel's clock is virtual time (1 instruction = 1 ns)
//! and every figure and test is repeatable run to run. The kernel reports through the serial
//! console: `test <name> ... ok|FAILED: why`, a closing `N passed, M failed`, and figures as
//! `metric <name> <value> <unit>`; it exits QEMU through isa-debug-exit with status 33 (pass) or
//! 35 (failure). A boot that prints nothing more for the timeout is killed and counts as failed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::suite::Tally;

/// QEMU exit status for `(0x10 << 1) | 1`: the kernel says everything passed.
const QEMU_PASS: i32 = 33;
/// `(0x11 << 1) | 1`: a test failed, the kernel panicked or stopped on a fatal error.
const QEMU_FAIL: i32 = 35;
const QEMU: &str = "qemu-system-x86_64";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn kernel_dir() -> PathBuf {
    workspace_root().join("kernel")
}

/// Builds the kernel ELF (release) and returns its path.
pub fn build() -> Result<PathBuf, String> {
    let dir = kernel_dir();
    let target_dir = dir.join("target");
    let model = crate::demo_model::write(&target_dir)?;
    println!("xtask: building the kernel (kernel/, x86_64-unknown-none)");
    // Run from kernel/ so its .cargo/config.toml (target, rustflags) applies.
    let st = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .args(["build", "--release", "--quiet", "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("ECHOS_DEMO_MODEL", &model)
        .status()
        .map_err(|e| format!("cannot start cargo for the kernel: {e}"))?;
    if !st.success() {
        return Err("the kernel failed to build (see above)".into());
    }
    Ok(target_dir.join("x86_64-unknown-none/release/echos-kernel"))
}

/// How to run QEMU.
#[derive(Clone, Copy, Debug)]
pub struct Machine {
    pub kvm: bool,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            kvm: false,
            memory_mib: 128,
        }
    }
}

impl Machine {
    /// `-icount` only exists under TCG; under KVM the clock is the host's.
    fn icount(&self) -> bool {
        !self.kvm
    }

    fn accel_args(&self) -> Vec<String> {
        let mut a: Vec<String> = if self.kvm {
            ["-enable-kvm", "-cpu", "host,-arch-capabilities"]
                .map(String::from)
                .to_vec()
        } else {
            ["-accel", "tcg", "-cpu", "max"].map(String::from).to_vec()
        };
        if self.icount() {
            a.extend(["-icount", "shift=0,sleep=off"].map(String::from));
        }
        a
    }

    /// Arguments for a PVH boot of `elf` (QEMU `-kernel`) on the microvm machine.
    pub fn pvh_args(&self, elf: &Path, cmdline: &str) -> Vec<String> {
        let mut a: Vec<String> = [
            "-M",
            "microvm",
            "-nodefaults",
            "-no-reboot",
            "-serial",
            "stdio",
            "-display",
            "none",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]
        .map(String::from)
        .to_vec();
        a.extend(["-m".to_string(), format!("{}M", self.memory_mib)]);
        a.extend(self.accel_args());
        a.push("-kernel".into());
        a.push(elf.display().to_string());
        a.push("-append".into());
        a.push(self.cmdline(cmdline));
        a
    }

    /// Arguments for booting a GRUB ISO on a PC (q35): BIOS, GRUB, multiboot2.
    pub fn iso_args(&self, iso: &Path) -> Vec<String> {
        let mut a: Vec<String> = [
            "-M",
            "q35",
            "-nodefaults",
            "-no-reboot",
            "-serial",
            "stdio",
            "-display",
            "none",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]
        .map(String::from)
        .to_vec();
        a.extend(["-m".to_string(), format!("{}M", self.memory_mib)]);
        a.extend(self.accel_args());
        a.push("-cdrom".into());
        a.push(iso.display().to_string());
        a
    }

    /// The kernel learns it runs in virtual time from `icount` on its command line.
    fn cmdline(&self, base: &str) -> String {
        if self.icount() {
            format!("{base} icount").trim().to_string()
        } else {
            base.to_string()
        }
    }
}

fn check_qemu() -> Result<(), String> {
    match Command::new(QEMU).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(format!(
            "{QEMU} not found: install it with `bash scripts/install-deps.sh` (Debian package qemu-system-x86)"
        )),
    }
}

/// The host's digests of the canonical integer reservoirs, for the kernel to match.
fn host_digests() -> Result<String, String> {
    use echos_core::integer;
    let mut i = Box::new(integer::CanonicalIntEsnStorage::new());
    let mut f = Box::new(integer::CanonicalFixedEsnStorage::new());
    let int_esn =
        integer::canonical_int_esn_digest(&mut i).map_err(|e| format!("host intESN: {e}"))?;
    let fixed_esn =
        integer::canonical_fixed_esn_digest(&mut f).map_err(|e| format!("host fixed ESN: {e}"))?;
    Ok(format!(
        "int_esn_digest={int_esn:#018x} fixed_esn_digest={fixed_esn:#018x}"
    ))
}

/// The kernel command line that runs only the hostile-task test with `calls` random syscalls.
fn hostile_cmdline(calls: &str) -> Result<String, String> {
    let n: u32 = calls.parse().map_err(|_| {
        format!(
            "--hostile takes a number of calls up to {}, not `{calls}`",
            u32::MAX
        )
    })?;
    Ok(format!("test=hostile_ring_3 hostile_calls={n}"))
}

/// `cargo xtask run [--kvm] [--iso] [--hostile N] [-- extra kernel command line]`: boots the
/// kernel with its console on this terminal. `--hostile N` runs only the hostile ring-3 task's
/// test, with N random syscalls (the suite runs 50,000).
pub fn run(rest: &[String]) -> Result<bool, String> {
    let mut machine = Machine::default();
    let mut iso = false;
    let mut extra = Vec::new();
    let mut args = rest.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kvm" => machine.kvm = true,
            "--iso" => iso = true,
            "--hostile" => {
                let n = args.next().ok_or("--hostile needs a number of calls")?;
                extra.push(hostile_cmdline(n)?);
            }
            "--" => {}
            other => extra.push(other.to_string()),
        }
    }
    check_qemu()?;
    let elf = build()?;
    let cmdline = format!("{} {}", host_digests()?, extra.join(" "));
    let args = if iso {
        machine.iso_args(&make_iso(&elf, &machine.cmdline(&cmdline))?)
    } else {
        machine.pvh_args(&elf, &cmdline)
    };
    println!("xtask: {QEMU} {}", args.join(" "));
    let st = Command::new(QEMU)
        .args(&args)
        .status()
        .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    Ok(st.code() == Some(QEMU_PASS))
}

/// Builds `kernel/target/echos.iso`: GRUB (BIOS) booting the kernel by multiboot2 with `cmdline`.
pub fn make_iso(elf: &Path, cmdline: &str) -> Result<PathBuf, String> {
    let target = kernel_dir().join("target");
    let root = target.join("iso-root");
    let grub_dir = root.join("boot/grub");
    std::fs::create_dir_all(&grub_dir)
        .map_err(|e| format!("creating {}: {e}", grub_dir.display()))?;
    std::fs::copy(elf, root.join("boot/echos-kernel"))
        .map_err(|e| format!("copying the kernel into the ISO tree: {e}"))?;
    let cfg = format!(
        "set timeout=0\nset default=0\nmenuentry \"echo-os\" {{\n    multiboot2 /boot/echos-kernel {cmdline}\n    boot\n}}\n"
    );
    std::fs::write(grub_dir.join("grub.cfg"), cfg).map_err(|e| format!("writing grub.cfg: {e}"))?;
    let iso = target.join("echos.iso");
    let out = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&iso)
        .arg(&root)
        .output()
        .map_err(|e| format!("cannot start grub-mkrescue (install grub-pc-bin grub-common xorriso mtools with scripts/install-deps.sh): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "grub-mkrescue failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(iso)
}

/// What one boot printed and how it ended.
pub struct Boot {
    pub lines: Vec<String>,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub first_line: Option<Duration>,
    pub wall: Duration,
}

/// Boots QEMU with `args`, echoing the console with `prefix`, killing it after `timeout`.
pub fn boot(args: &[String], timeout: Duration, echo: bool) -> Result<Boot, String> {
    let start = Instant::now();
    let mut child: Child = Command::new(QEMU)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut first_line = None;
    let mut timed_out = false;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                // GRUB's screen control sequences precede our first line on the ISO boot.
                let line: String = line.chars().filter(|c| !c.is_control()).collect();
                if first_line.is_none() && line.starts_with("echo-os:") {
                    first_line = Some(start.elapsed());
                }
                if echo {
                    println!("  | {line}");
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {QEMU}: {e}"))?;
    let _ = reader.join();
    Ok(Boot {
        lines,
        status: if timed_out { None } else { Some(status) },
        timed_out,
        first_line,
        wall: start.elapsed(),
    })
}

/// Counts of a kernel suite's output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SuiteResult {
    pub announced: Option<u64>,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub summary: Option<(u64, u64)>,
}

/// Parses `running N kernel tests`, `test x ... ok`, `test x ... FAILED: why` and
/// `N passed, M failed`.
pub fn parse_suite(lines: &[String]) -> SuiteResult {
    let mut r = SuiteResult::default();
    for l in lines {
        if let Some(n) = l
            .strip_prefix("running ")
            .and_then(|s| s.strip_suffix(" kernel tests"))
        {
            r.announced = n.parse().ok();
        } else if l.starts_with("test ") && l.ends_with(" ... ok") {
            r.passed += 1;
        } else if l.starts_with("test ") && l.contains(" ... FAILED") {
            r.failed += 1;
        } else if l.starts_with("test ") && l.contains(" ... skipped: ") {
            r.skipped += 1;
        } else if let Some((p, f)) = l.split_once(" passed, ") {
            // `N passed, M failed` or `N passed, M failed, K skipped`
            let f = f.split_once(" failed").map(|(n, _)| n);
            if let (Ok(p), Some(Ok(f))) = (p.parse::<u64>(), f.map(str::parse::<u64>)) {
                r.summary = Some((p, f));
            }
        }
    }
    r
}

/// Turns one boot of the suite into counts. A boot without the closing line (hang, crash, panic)
/// fails every test it did not report, and at least one.
pub fn tally_boot(name: &str, b: &Boot) -> Tally {
    let r = parse_suite(&b.lines);
    let mut t = started_tally();
    t.passed = r.passed;
    t.failed = r.failed;
    t.skipped = r.skipped;
    let clean_exit = b.status.and_then(|s| s.code()) == Some(QEMU_PASS);
    match r.summary {
        Some((p, f)) if p == r.passed && f == r.failed => {
            if f == 0 && !clean_exit {
                println!(
                    "xtask: {name}: all tests passed but QEMU exited with {:?}",
                    b.status
                );
                t.failed += 1;
            }
        }
        _ => {
            let unreported = r
                .announced
                .map_or(0, |n| n.saturating_sub(r.passed + r.failed + r.skipped));
            let why = if b.timed_out {
                "timed out (hang)".to_string()
            } else {
                format!("ended without its summary line (status {:?})", b.status)
            };
            println!(
                "xtask: {name}: {why}; counting {} unreported test(s) as failed",
                unreported.max(1)
            );
            t.failed += unreported.max(1);
        }
    }
    t
}

fn metrics(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with("metric ")).collect()
}

/// An empty tally of a suite that ran (a build failure is reported as an `Err` instead).
fn started_tally() -> Tally {
    let mut t = Tally::default();
    t.suites_ok = true;
    t
}

/// A check that is not a kernel test line but counts as one test of the suite.
fn check(t: &mut Tally, name: &str, ok: bool, detail: &str) {
    if ok {
        t.passed += 1;
        println!("test xtask::{name} ... ok");
    } else {
        t.failed += 1;
        println!("test xtask::{name} ... FAILED: {detail}");
    }
}

/// Seconds a kernel boot may take before it counts as a hang (the suite needs about 5 s).
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);
/// For the deliberate hang: long enough to boot (≈ 0.1 s), short enough to keep CI fast.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// The "kernel" suite: the in-kernel tests (twice, to check the run is deterministic under
/// -icount), the panic path, and the boot-time figure.
pub fn suite_kernel() -> Result<Tally, String> {
    Ok(kernel_suite().unwrap_or_else(|e| suite_error("kernel", &e)))
}

/// The "iso" suite: the same kernel in a GRUB rescue ISO, booted once by BIOS + GRUB +
/// multiboot2 (the path to real hardware), running the kernel tests.
pub fn suite_iso() -> Result<Tally, String> {
    Ok(iso_suite().unwrap_or_else(|e| suite_error("iso", &e)))
}

/// A suite that could not run (no QEMU, a build error) fails, and says why.
fn suite_error(name: &str, e: &str) -> Tally {
    println!("xtask: suite {name}: {e}");
    let mut t = started_tally();
    t.failed = 1;
    t.suites_ok = false;
    t
}

fn kernel_suite() -> Result<Tally, String> {
    println!("xtask: suite kernel: in-kernel tests under QEMU TCG -icount shift=0,sleep=off");
    check_qemu()?;
    let elf = build()?;
    let machine = Machine::default();
    let cmdline = format!("test {}", host_digests()?);
    let args = machine.pvh_args(&elf, &cmdline);
    println!("xtask: {QEMU} {}", args.join(" "));
    let first = boot(&args, SUITE_TIMEOUT, true)?;
    let mut t = tally_boot("kernel", &first);

    let second = boot(&args, SUITE_TIMEOUT, false)?;
    let same = first.lines == second.lines;
    let diff = first
        .lines
        .iter()
        .zip(&second.lines)
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("first difference: `{a}` vs `{b}`"))
        .unwrap_or_else(|| format!("{} vs {} lines", first.lines.len(), second.lines.len()));
    check(&mut t, "suite_is_deterministic_under_icount", same, &diff);

    let boot_ms = first.first_line.map(|d| d.as_secs_f64() * 1000.0);
    check(
        &mut t,
        "first_console_line_within_1s_of_qemu_start",
        boot_ms.is_some_and(|ms| ms < 1000.0),
        &format!("{boot_ms:?} ms"),
    );

    let panic = boot(&machine.pvh_args(&elf, "panic"), SHORT_TIMEOUT, false)?;
    let code = panic.status.and_then(|s| s.code());
    let located = panic.lines.iter().any(|l| {
        l.contains("KERNEL PANIC: panicked at src/main.rs:")
            || l.contains("panicked at src/main.rs:")
    });
    let message = panic
        .lines
        .iter()
        .any(|l| l.contains("deliberate panic requested on the command line"));
    check(
        &mut t,
        "panic_prints_location_and_message_and_fails_qemu",
        code == Some(QEMU_FAIL) && located && message,
        &format!("exit {code:?}, location printed {located}, message printed {message}"),
    );

    let fault = boot(&machine.pvh_args(&elf, "fault"), SHORT_TIMEOUT, false)?;
    let code = fault.status.and_then(|s| s.code());
    let has = |s: &str| fault.lines.iter().any(|l| l.contains(s));
    let reported = has("FATAL EXCEPTION: page fault (#PF), vector 14, error code 0x0")
        && has("cr2 (fault address) 0x0000000000000010")
        && has("  rip 0x")
        && has("page fault: not-present page, read, supervisor mode");
    check(
        &mut t,
        "unhandled_page_fault_prints_address_error_code_and_rip",
        code == Some(QEMU_FAIL) && reported,
        &format!("exit {code:?}, report complete {reported}"),
    );

    // A kernel that stops printing is killed at the timeout and its tests count as failed.
    let hung = boot(&machine.pvh_args(&elf, "hang"), HANG_TIMEOUT, false)?;
    let hung_tally = tally_boot("hang check", &hung);
    check(
        &mut t,
        "a_hanging_kernel_is_killed_and_counted_as_failed",
        hung.timed_out && hung_tally.failed == 1 && hung_tally.passed == 0,
        &format!(
            "timed out {}, counted {} failed, status {:?}",
            hung.timed_out, hung_tally.failed, hung.status
        ),
    );

    // Too little RAM for the boot-time carve-outs: a clear message and a controlled stop.
    let small = Machine {
        memory_mib: 16,
        ..machine
    };
    let starved = boot(&small.pvh_args(&elf, "test"), SHORT_TIMEOUT, false)?;
    let code = starved.status.and_then(|s| s.code());
    let said = starved
        .lines
        .iter()
        .any(|l| l.starts_with("FATAL: memory: not enough RAM"));
    check(
        &mut t,
        "too_little_ram_stops_the_boot_with_a_message",
        code == Some(QEMU_FAIL) && said && !starved.timed_out,
        &format!(
            "exit {code:?}, message printed {said}, timed out {}",
            starved.timed_out
        ),
    );

    for m in metrics(&first.lines) {
        println!("{m}");
    }
    if let Some(ms) = boot_ms {
        println!("metric boot_to_first_line_wall_ms {ms:.1} ms");
    }
    println!(
        "metric kernel_suite_wall_s {:.2} s",
        first.wall.as_secs_f64()
    );
    println!(
        "xtask: suite kernel: {} passed, {} failed",
        t.passed, t.failed
    );
    Ok(t)
}

fn iso_suite() -> Result<Tally, String> {
    println!("xtask: suite iso: GRUB multiboot2 boot from an ISO (q35, TCG -icount)");
    check_qemu()?;
    let elf = build()?;
    let machine = Machine::default();
    let cmdline = machine.cmdline(&format!("test {}", host_digests()?));
    let iso = make_iso(&elf, &cmdline)?;
    let args = machine.iso_args(&iso);
    println!("xtask: {QEMU} {}", args.join(" "));
    let b = boot(&args, SUITE_TIMEOUT, false)?;
    let r = parse_suite(&b.lines);
    let multiboot = b.lines.iter().any(|l| l.starts_with("boot: Multiboot2"));
    let mut t = started_tally();
    let inner = tally_boot("iso", &b);
    let ok = inner.failed == 0 && inner.passed > 0 && multiboot;
    check(
        &mut t,
        "iso_boots_by_grub_multiboot2_and_passes_kernel_tests",
        ok,
        &format!(
            "multiboot2 boot seen: {multiboot}, {} passed, {} failed, status {:?}{}",
            r.passed,
            r.failed,
            b.status,
            if b.timed_out { " (timed out)" } else { "" }
        ),
    );
    if !ok {
        for l in b
            .lines
            .iter()
            .filter(|l| l.contains("FAILED") || l.contains("FATAL") || l.contains("PANIC"))
        {
            println!("  | {l}");
        }
    }
    println!(
        "metric iso_boot_and_suite_wall_s {:.2} s",
        b.wall.as_secs_f64()
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn parses_kernel_suite_output() {
        let r = parse_suite(&lines(
            "running 3 kernel tests\ntest a ... ok\nmetric x 1 ns\ntest b ... FAILED: no (line 3)\ntest c ... ok\n2 passed, 1 failed\n",
        ));
        assert_eq!(
            r,
            SuiteResult {
                announced: Some(3),
                passed: 2,
                failed: 1,
                skipped: 0,
                summary: Some((2, 1))
            }
        );
    }

    fn fake_boot(out: &str, code: Option<i32>, timed_out: bool) -> Boot {
        use std::os::unix::process::ExitStatusExt;
        Boot {
            lines: lines(out),
            status: code.map(|c| ExitStatus::from_raw(c << 8)),
            timed_out,
            first_line: None,
            wall: Duration::ZERO,
        }
    }

    #[test]
    fn counts_skipped_tests_and_the_longer_summary() {
        let r = parse_suite(&lines(
            "running 2 kernel tests\ntest a ... ok\ntest b ... skipped: no KVM here\n1 passed, 0 failed, 1 skipped\n",
        ));
        assert_eq!(
            (r.passed, r.failed, r.skipped, r.summary),
            (1, 0, 1, Some((1, 0)))
        );
    }

    #[test]
    fn a_hang_fails_every_unreported_test() {
        let b = fake_boot(
            "running 5 kernel tests\ntest a ... ok\ntest b ... ok\n",
            None,
            true,
        );
        let t = tally_boot("k", &b);
        assert_eq!((t.passed, t.failed), (2, 3));
    }

    #[test]
    fn a_panic_mid_suite_is_a_failure() {
        let b = fake_boot(
            "running 2 kernel tests\ntest a ... ok\nKERNEL PANIC: panicked at src/x.rs:1:1\n",
            Some(QEMU_FAIL),
            false,
        );
        let t = tally_boot("k", &b);
        assert_eq!((t.passed, t.failed), (1, 1));
    }

    #[test]
    fn a_clean_summary_with_a_bad_exit_status_is_a_failure() {
        let b = fake_boot(
            "running 1 kernel tests\ntest a ... ok\n1 passed, 0 failed\n",
            Some(1),
            false,
        );
        let t = tally_boot("k", &b);
        assert_eq!((t.passed, t.failed), (1, 1));
        let ok = fake_boot(
            "running 1 kernel tests\ntest a ... ok\n1 passed, 0 failed\n",
            Some(QEMU_PASS),
            false,
        );
        assert_eq!(tally_boot("k", &ok).failed, 0);
    }

    #[test]
    fn hostile_flag_selects_the_test_and_its_call_count() {
        assert_eq!(
            hostile_cmdline("1000000").as_deref(),
            Ok("test=hostile_ring_3 hostile_calls=1000000")
        );
        assert!(hostile_cmdline("lots").is_err());
        assert!(hostile_cmdline("4294967296").is_err());
    }

    #[test]
    fn qemu_arguments_select_acceleration_and_virtual_time() {
        let tcg = Machine::default().pvh_args(Path::new("k"), "test");
        assert!(tcg
            .windows(2)
            .any(|w| w[0] == "-icount" && w[1] == "shift=0,sleep=off"));
        assert_eq!(tcg.last().map(String::as_str), Some("test icount"));
        let kvm = Machine {
            kvm: true,
            ..Machine::default()
        }
        .pvh_args(Path::new("k"), "test");
        assert!(kvm.iter().any(|a| a == "-enable-kvm"));
        assert!(!kvm.iter().any(|a| a == "-icount"));
        assert_eq!(kvm.last().map(String::as_str), Some("test"));
    }
}

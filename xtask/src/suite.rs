//! Running a test suite as a child process, streaming its output and counting its results.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Passed/failed counts summed over suites.
#[derive(Default, Debug)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// False when a suite's process failed without a failing test to show for it (a build error).
    pub suites_ok: bool,
    started: bool,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.suites_ok = (self.suites_ok || !self.started) && other.suites_ok;
        self.started = true;
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    pub fn print_summary(&self) {
        if !self.suites_ok && self.failed == 0 {
            println!("xtask: a suite failed to build or run (see above)");
        }
        println!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        );
    }
}

/// Runs a command with inherited stdio and reports whether it succeeded.
pub fn status(program: &str, args: &[&str]) -> Result<bool, String> {
    let st = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    Ok(st.success())
}

/// What a test prints to stderr when it skips for lack of the shared reference data.
pub const SKIP_MARKER: &str = "SKIPPED (no shared data):";

/// Runs `cargo <args>` (a libtest suite), echoing its output and summing the
/// `test result: ... N passed; M failed; K ignored` lines.
pub fn cargo_tests(name: &str, args: &[&str]) -> Result<Tally, String> {
    println!("xtask: suite {name}: cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    // Tests that lack the shared data print SKIP_MARKER and return, which libtest counts as
    // passed; count those lines (stdout under `--show-output`, or stderr under
    // `--nocapture`) so the summary reports them as skipped.
    let stderr = child.stderr.take().expect("piped stderr");
    let skips = std::thread::spawn(move || {
        let mut n = 0u64;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.starts_with(SKIP_MARKER) {
                n += 1;
            }
        }
        n
    });
    let mut tally = Tally {
        suites_ok: true,
        started: true,
        ..Tally::default()
    };
    let stdout = child.stdout.take().expect("piped stdout");
    // With `--show-output`, libtest prints the captured output of passing tests on stdout.
    let mut skipped_in_stdout = 0u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo output: {e}"))?;
        println!("{line}");
        if line.starts_with(SKIP_MARKER) {
            skipped_in_stdout += 1;
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            tally.passed += count(rest, " passed");
            tally.failed += count(rest, " failed");
            tally.skipped += count(rest, " ignored");
        }
    }
    let st = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    tally.suites_ok = st.success();
    let skipped_by_data = skips.join().unwrap_or(0) + skipped_in_stdout;
    tally.skipped += skipped_by_data;
    tally.passed = tally.passed.saturating_sub(skipped_by_data);
    println!(
        "xtask: suite {name}: {} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.skipped
    );
    Ok(tally)
}

/// The lint suite: `cargo fmt --check` and `cargo clippy -D warnings` over the host workspace and
/// the kernel workspace, one counted test each.
pub fn lint() -> Result<Tally, String> {
    println!("xtask: suite lint");
    let checks: [(&str, &[&str], Option<&str>); 4] = [
        ("fmt (workspace)", &["fmt", "--all", "--", "--check"], None),
        (
            "clippy (workspace)",
            &[
                "clippy",
                "--quiet",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            None,
        ),
        (
            "fmt (kernel)",
            &["fmt", "--all", "--", "--check"],
            Some("kernel"),
        ),
        (
            "clippy (kernel)",
            &["clippy", "--quiet", "--release", "--", "-D", "warnings"],
            Some("kernel"),
        ),
    ];
    let mut tally = Tally {
        suites_ok: true,
        started: true,
        ..Tally::default()
    };
    for (name, args, dir) in checks {
        let mut cmd = Command::new("cargo");
        cmd.args(args);
        // Paths from xtask's own manifest, so `cargo xtask test` works from any directory.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        cmd.current_dir(match dir {
            Some(d) => root.join(d),
            None => root,
        });
        let ok = cmd
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?
            .success();
        println!("test lint::{name} ... {}", if ok { "ok" } else { "FAILED" });
        if ok {
            tally.passed += 1;
        } else {
            tally.failed += 1;
        }
    }
    println!(
        "xtask: suite lint: {} passed, {} failed",
        tally.passed, tally.failed
    );
    Ok(tally)
}

/// The number just before `label` in a libtest result line (`ok. 3 passed; 0 failed; ...`).
fn count(line: &str, label: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim_start())
                .map(str::trim)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_libtest_result_line() {
        let l = "ok. 12 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(count(l, " passed"), 12);
        assert_eq!(count(l, " failed"), 1);
        assert_eq!(count(l, " ignored"), 3);
        assert_eq!(count("FAILED. 2 passed; 5 failed; 0 ignored", " failed"), 5);
    }
}

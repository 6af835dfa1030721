//! The "python" test suite: builds the `echos` Python package into a reusable virtual environment
//! (target/py-venv) with `pip install .`, then runs pytest on python/tests and counts its results.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::suite::Tally;

/// Packages the suite needs inside the venv (from PyPI): the build backend, the test runner and
/// hypothesis (python/tests/test_properties.py).
const TOOLS: &[&str] = &["maturin>=1.8,<2", "numpy", "pytest", "hypothesis"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let st = cmd
        .status()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({st})"))
    }
}

fn failed_suite(reason: String) -> Tally {
    println!("xtask: suite python: {reason}");
    println!("xtask: suite python: 0 passed, 0 failed, 0 skipped");
    Tally::default()
}

/// Runs the suite; a missing interpreter or a failed build fails the suite (never a silent skip).
pub fn python_tests() -> Result<Tally, String> {
    let root = workspace_root();
    let venv = root.join("target").join("py-venv");
    let python = venv.join("bin").join("python");
    println!("xtask: suite python: venv {}", venv.display());
    if let Err(e) = prepare(&root, &venv, &python) {
        return Ok(failed_suite(e));
    }
    // The determinism tests compare Python's arrays with the CLI's output for the same seed.
    let cli = root.join("target").join("debug").join("echos");
    if let Err(e) = run(
        Command::new("cargo")
            .args(["build", "--quiet", "-p", "echos-cli"])
            .current_dir(&root),
        "cargo build -p echos-cli",
    ) {
        return Ok(failed_suite(e));
    }
    pytest(&root, &python, &cli)
}

fn prepare(root: &Path, venv: &Path, python: &Path) -> Result<(), String> {
    if !python.exists() {
        let base = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        run(
            Command::new(&base).arg("-m").arg("venv").arg(venv),
            &format!("{base} -m venv (on Debian: apt-get install python3-venv)"),
        )?;
    }
    let have_tools = Command::new(python)
        .args(["-c", "import maturin, numpy, pytest, hypothesis"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have_tools {
        run(
            Command::new(python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(TOOLS),
            "pip install maturin numpy pytest hypothesis",
        )?;
    }
    // No build isolation: reuse the venv's maturin instead of fetching one per run; the cargo
    // target directory is the workspace's, so rebuilds are incremental.
    run(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-build-isolation",
                "--force-reinstall",
                "--no-deps",
                ".",
            ])
            .current_dir(root)
            .env("PATH", with_venv_path(venv)),
        "pip install . (building the echos package)",
    )
}

/// maturin's build backend runs the `maturin` executable, which lives in the venv's bin/.
fn with_venv_path(venv: &Path) -> std::ffi::OsString {
    let mut paths = vec![venv.join("bin")];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

fn pytest(root: &Path, python: &Path, cli: &Path) -> Result<Tally, String> {
    println!("xtask: suite python: pytest python/tests");
    let mut child = Command::new(python)
        .args(["-m", "pytest", "-q", "-rs", "python/tests"])
        .env("ECHOS_CLI", cli)
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start pytest: {e}"))?;
    let mut tally = Tally::default();
    let mut summary_seen = false;
    let stdout = child.stdout.take().ok_or("pytest stdout was not piped")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading pytest output: {e}"))?;
        println!("{line}");
        if let Some((passed, failed, skipped)) = parse_summary(&line) {
            tally.passed = passed;
            tally.failed = failed;
            tally.skipped = skipped;
            summary_seen = true;
        }
    }
    let st = child
        .wait()
        .map_err(|e| format!("waiting for pytest: {e}"))?;
    // Exit 1 means failing tests (already counted); anything else non-zero — 5 "no tests
    // collected", 2 interrupted, 3 internal error, 4 usage error — is a broken suite.
    tally.suites_ok = summary_seen && matches!(st.code(), Some(0) | Some(1));
    if st.code() == Some(5) {
        println!("xtask: suite python: pytest collected no tests");
    }
    println!(
        "xtask: suite python: {} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.skipped
    );
    Ok(tally)
}

/// Reads pytest's closing line (`3 failed, 10 passed, 1 skipped, 2 errors in 1.2s`, possibly
/// framed by `=`): errors count as failures.
fn parse_summary(line: &str) -> Option<(u64, u64, u64)> {
    let body = line.trim().trim_matches('=').trim();
    let (counts, time) = body.rsplit_once(" in ")?;
    if !time.trim_end().ends_with('s') {
        return None;
    }
    let (mut passed, mut failed, mut skipped, mut any) = (0, 0, 0, false);
    for part in counts.split(", ") {
        let (n, label) = part.trim().split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        match label {
            "passed" => passed += n,
            "failed" | "error" | "errors" => failed += n,
            "skipped" => skipped += n,
            "deselected" | "xfailed" | "xpassed" | "warning" | "warnings" => {}
            _ => return None,
        }
        any = true;
    }
    any.then_some((passed, failed, skipped))
}

#[cfg(test)]
mod tests {
    use super::parse_summary;

    #[test]
    fn reads_pytest_closing_lines() {
        assert_eq!(parse_summary("12 passed in 0.51s"), Some((12, 0, 0)));
        assert_eq!(
            parse_summary("==== 2 failed, 10 passed, 1 skipped, 3 warnings in 4.02s ===="),
            Some((10, 2, 1))
        );
        assert_eq!(
            parse_summary("1 failed, 5 passed, 2 errors in 1.00s"),
            Some((5, 3, 0))
        );
        assert_eq!(parse_summary("no tests ran in 0.01s"), None);
        assert_eq!(parse_summary("test_esn.py::test_shapes PASSED"), None);
        assert_eq!(parse_summary("the ESN ran in 3 steps"), None);
    }
}

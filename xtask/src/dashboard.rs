//! The "dashboard" test suite: the live dashboard in a real browser. Builds the CLI, installs
//! playwright-core (crates/echos-dash/browser, `npm ci`) if it is not there yet, and runs
//! crates/echos-dash/browser/dashboard.mjs against `echos rt run --demo --dashboard`, which
//! drives Debian's headless chromium. Without node or chromium the suite skips loudly, and
//! fails under CI (CI set): CI must run it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::suite::Tally;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A suite that could not run: a loud skip, or under CI a failure.
fn cannot_run(why: &str) -> Tally {
    let mut t = Tally::default();
    if ci() {
        println!("xtask: suite dashboard: FAILED (CI is set): {why}");
        t.failed = 1;
    } else {
        eprintln!("SKIPPED: suite dashboard: {why}");
        t.skipped = 1;
        t.suites_ok = true;
    }
    t
}

/// Parses the script's closing "N passed, M failed[, K skipped]" line.
pub fn parse_closing(line: &str) -> Option<(u64, u64, u64)> {
    let mut nums = [None, None, Some(0)];
    for part in line.trim().split(", ") {
        let (n, word) = part.split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        match word {
            "passed" => nums[0] = Some(n),
            "failed" => nums[1] = Some(n),
            "skipped" => nums[2] = Some(n),
            _ => return None,
        }
    }
    Some((nums[0]?, nums[1]?, nums[2]?))
}

pub fn dashboard_tests() -> Result<Tally, String> {
    let root = workspace_root();
    println!("xtask: suite dashboard: headless chromium against echos rt run --demo --dashboard");
    if Command::new("node").arg("--version").output().is_err() {
        return Ok(cannot_run(
            "no node (apt-get install nodejs npm; scripts/install-deps.sh does)",
        ));
    }
    let browser = root.join("crates/echos-dash/browser");
    if !browser.join("node_modules/playwright-core").exists() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&browser)
            .status();
        if !st.is_ok_and(|s| s.success()) {
            return Ok(cannot_run("npm ci of playwright-core failed"));
        }
    }
    let st = Command::new("cargo")
        .args(["build", "--quiet", "-p", "echos-cli"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !st.success() {
        let mut t = Tally::default();
        println!("xtask: suite dashboard: cargo build -p echos-cli failed");
        t.failed = 1;
        return Ok(t);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cli = target.join("debug").join("echos");
    let out = target.join("dashboard");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut child = Command::new("node")
        .arg(browser.join("dashboard.mjs"))
        .arg(&cli)
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let mut closing = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(c) = parse_closing(&line) {
                closing = Some(c);
            }
        }
    }
    let st = child.wait().map_err(|e| format!("waiting for node: {e}"))?;
    let mut t = Tally::default();
    match closing {
        Some((p, f, s)) => {
            t.passed = p;
            t.failed = f;
            t.skipped = s;
            if s > 0 && ci() {
                t.failed += s;
            }
            t.suites_ok = st.success() || f > 0;
        }
        None => {
            println!("xtask: suite dashboard: the script ended ({st}) without its closing line");
            t.failed = 1;
        }
    }
    println!(
        "xtask: suite dashboard: {} passed, {} failed, {} skipped (screenshots in {})",
        t.passed,
        t.failed,
        t.skipped,
        out.display()
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::parse_closing;

    #[test]
    fn reads_the_scripts_closing_line() {
        assert_eq!(parse_closing("10 passed, 1 failed"), Some((10, 1, 0)));
        assert_eq!(
            parse_closing("0 passed, 0 failed, 1 skipped"),
            Some((0, 0, 1))
        );
        assert_eq!(parse_closing("ok   the step advances"), None);
        assert_eq!(parse_closing("3 passed"), None);
    }
}

//! The "fuzz" test suite: every fuzz target for a few seconds (`scripts/fuzz.sh`), each target
//! run counted as one test. A smoke run that keeps the targets building and their seeds
//! passing; the long campaigns are `scripts/fuzz.sh SECONDS` (docs/fuzzing.md).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::suite::Tally;

/// Seconds per target: the 24 targets plus the instrumented build stay within about four
/// minutes of CI on a cold target directory (docs/fuzzing.md has the measurement).
const SECONDS_PER_TARGET: u32 = 3;

pub fn fuzz_tests() -> Result<Tally, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!("xtask: suite fuzz: scripts/fuzz.sh {SECONDS_PER_TARGET}");
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg("scripts/fuzz.sh")
        .arg(SECONDS_PER_TARGET.to_string())
        .current_dir(&root)
        .stdout(Stdio::piped());
    // AddressSanitizer costs a quarter more build time; the smoke run goes without it unless
    // asked (the campaigns keep it).
    if std::env::var_os("FUZZ_SANITIZER").is_none() {
        cmd.env("FUZZ_SANITIZER", "none");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start scripts/fuzz.sh: {e}"))?;
    let mut tally = Tally::default();
    let stdout = child.stdout.take().ok_or("fuzz.sh stdout was not piped")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading fuzz.sh output: {e}"))?;
        println!("{line}");
        match result_of(&line) {
            Some(true) => tally.passed += 1,
            Some(false) => tally.failed += 1,
            None => {}
        }
    }
    let st = child
        .wait()
        .map_err(|e| format!("waiting for fuzz.sh: {e}"))?;
    // A script that fails with no failed target to show for it (cargo-fuzz missing, a build
    // error) fails the suite; so does one that ran no target.
    tally.suites_ok = (st.success() || tally.failed > 0) && tally.passed + tally.failed > 0;
    println!(
        "xtask: suite fuzz: {} passed, {} failed in {:.0} s",
        tally.passed,
        tally.failed,
        started.elapsed().as_secs_f64()
    );
    Ok(tally)
}

/// `test fuzz::fuzz_npy ... ok` → `Some(true)`, `... FAILED` → `Some(false)`.
fn result_of(line: &str) -> Option<bool> {
    let rest = line.strip_prefix("test fuzz::")?;
    let (_, outcome) = rest.split_once(" ... ")?;
    match outcome.trim() {
        "ok" => Some(true),
        "FAILED" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::result_of;

    #[test]
    fn reads_target_result_lines() {
        assert_eq!(result_of("test fuzz::fuzz_npy ... ok"), Some(true));
        assert_eq!(result_of("test fuzz::fuzz_pth ... FAILED"), Some(false));
        assert_eq!(result_of("fuzz.sh: fuzz_npy for 3 s"), None);
        assert_eq!(result_of("test fuzz::fuzz_npy ... maybe"), None);
    }
}

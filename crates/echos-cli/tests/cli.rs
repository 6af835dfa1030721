//! The `echos` binary end to end: determinism across processes, and a clear error with a
//! non-zero exit (never a panic) for each kind of bad input.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn echos() -> Command {
    Command::cargo_bin("echos").expect("the echos binary is built")
}

/// A little NARMA-like CSV pair (input, target) of `n` rows.
fn write_series(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let mut x = String::from("u\n");
    let mut y = String::from("y\n");
    let mut prev = 0.0f64;
    for t in 0..n {
        let u = ((t * 7919) % 101) as f64 / 202.0;
        let v = 0.3 * prev + 1.5 * u * u + 0.1;
        prev = v;
        x.push_str(&format!("{u}\n"));
        y.push_str(&format!("{v}\n"));
    }
    let (xp, yp) = (dir.join("x.csv"), dir.join("y.csv"));
    std::fs::write(&xp, x).unwrap();
    std::fs::write(&yp, y).unwrap();
    (xp, yp)
}

fn train(dir: &Path, x: &Path, y: &Path) -> PathBuf {
    let model = dir.join("m.safetensors");
    echos()
        .args([
            "esn",
            "train",
            "--units",
            "50",
            "--washout",
            "20",
            "--seed",
            "3",
        ])
        .arg("--input")
        .arg(x)
        .arg("--target")
        .arg(y)
        .arg("--model")
        .arg(&model)
        .assert()
        .success();
    model
}

/// Runs echos with `args` and expects a failure whose stderr mentions `needle`, no panic.
fn fails_with(args: &[&std::ffi::OsStr], needle: &str) {
    let out = echos().args(args).assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains(needle),
        "stderr lacks {needle:?}:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn run_is_byte_identical_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = write_series(dir.path(), 300);
    let model = train(dir.path(), &x, &y);
    let outs: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let out = dir.path().join(format!("pred{i}.npy"));
            echos()
                .args(["esn", "run", "--model"])
                .arg(&model)
                .arg("--input")
                .arg(&x)
                .arg("--output")
                .arg(&out)
                .assert()
                .success();
            std::fs::read(out).unwrap()
        })
        .collect();
    assert!(outs[0].len() > 300 * 8);
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn task_json_is_one_object_and_deterministic() {
    let run = || {
        let out = echos()
            .args([
                "esn", "task", "narma10", "--units", "30", "--runs", "1", "--seed", "4", "--json",
            ])
            .assert()
            .success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert_eq!(text.trim().lines().count(), 1);
        let mut v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert!(v["seconds"].as_f64().unwrap() >= 0.0);
        assert!(v["nrmse"].as_f64().unwrap() > 0.0);
        assert_eq!(v["setup"]["units"], 30);
        v.as_object_mut().unwrap().remove("seconds");
        v
    };
    assert_eq!(run(), run());
}

#[test]
fn eval_and_generate_work_on_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = write_series(dir.path(), 300);
    let model = train(dir.path(), &x, &y);
    echos()
        .args(["esn", "eval", "--json", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&x)
        .arg("--target")
        .arg(&y)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"nrmse\""));
    // Not trained for generation: a clear refusal.
    fails_with(
        &[
            os("esn"),
            os("generate"),
            os("--steps"),
            os("5"),
            os("--model"),
            model.as_os_str(),
        ],
        "generative",
    );
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, y) = write_series(d, 200);
    let model = train(d, &x, &y);
    let m = model.as_os_str();

    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // A valid .npy of 4 f8 values, then broken variants.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 1), }";
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    for v in [0.1f64, 0.2, 0.3, 0.4] {
        npy.extend_from_slice(&v.to_le_bytes());
    }
    let mut bad_magic = npy.clone();
    bad_magic[0] = b'X';
    let cases: Vec<(PathBuf, &str)> = vec![
        (write("magic.npy", &bad_magic), "magic"),
        (write("trunc.npy", &npy[..npy.len() - 3]), "truncated"),
        (write("header.npy", &npy[..20]), "truncated"),
        (write("ragged.csv", b"1,2\n3\n"), "line 2"),
        (write("text.csv", b"1\nabc\n"), "not a number"),
        (write("nan.csv", b"1\nNaN\n"), "non-finite"),
        (write("empty.csv", b""), "no data rows"),
        (write("x.txt", b"1\n"), "unknown file type"),
    ];
    for (path, needle) in &cases {
        fails_with(
            &[
                os("esn"),
                os("run"),
                os("--model"),
                m,
                os("--input"),
                path.as_os_str(),
                os("--output"),
                d.join("o.npy").as_os_str(),
            ],
            needle,
        );
    }
    // NaN in a .npy, with its position.
    let mut nan = npy.clone();
    let at = nan.len() - 8;
    nan[at..].copy_from_slice(&f64::NAN.to_le_bytes());
    let nan = write("nan.npy", &nan);
    fails_with(
        &[
            os("esn"),
            os("eval"),
            os("--model"),
            m,
            os("--input"),
            nan.as_os_str(),
            os("--target"),
            y.as_os_str(),
        ],
        "row 3, column 0",
    );
    // Mismatched shapes: 4-row input against the 200-row target; 2-column input.
    let short = write("short.npy", &npy);
    fails_with(
        &[
            os("esn"),
            os("eval"),
            os("--model"),
            m,
            os("--input"),
            short.as_os_str(),
            os("--target"),
            y.as_os_str(),
        ],
        "time steps",
    );
    let two = write("two.csv", b"1,2\n3,4\n");
    fails_with(
        &[
            os("esn"),
            os("run"),
            os("--model"),
            m,
            os("--input"),
            two.as_os_str(),
            os("--output"),
            d.join("o.npy").as_os_str(),
        ],
        "columns",
    );
    fails_with(
        &[
            os("esn"),
            os("train"),
            os("--input"),
            short.as_os_str(),
            os("--target"),
            y.as_os_str(),
            os("--model"),
            d.join("n.safetensors").as_os_str(),
        ],
        "time steps",
    );

    // Models: corrupted, truncated, another format version, missing.
    let bytes = std::fs::read(&model).unwrap();
    let mut corrupt = bytes.clone();
    corrupt[12] = 0xff;
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let mut v9 = bytes[..8].to_vec();
    v9.extend_from_slice(
        header
            .replacen("\"format_version\":\"2\"", "\"format_version\":\"9\"", 1)
            .as_bytes(),
    );
    v9.extend_from_slice(&bytes[8 + n..]);
    let model_cases: Vec<(PathBuf, &str)> = vec![
        (
            write("corrupt.safetensors", &corrupt),
            "not a valid safetensors",
        ),
        (
            write("trunc.safetensors", &bytes[..bytes.len() / 2]),
            "not a valid safetensors",
        ),
        (write("v9.safetensors", &v9), "format version 9"),
        (d.join("missing.safetensors"), "cannot read model"),
    ];
    for (path, needle) in &model_cases {
        fails_with(
            &[
                os("esn"),
                os("run"),
                os("--model"),
                path.as_os_str(),
                os("--input"),
                x.as_os_str(),
                os("--output"),
                d.join("o.npy").as_os_str(),
            ],
            needle,
        );
    }
    // Bad option values.
    fails_with(&[os("esn"), os("task"), os("nope")], "unknown task");
    fails_with(
        &[os("esn"), os("task"), os("narma10"), os("--units"), os("0")],
        "units",
    );
}

#[test]
fn generate_continues_a_one_step_ahead_model_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s: Vec<f64> = (0..401).map(|t| (t as f64 * 0.2).sin() * 0.8).collect();
    let x: String = s[..400].iter().map(|v| format!("{v}\n")).collect();
    let y: String = s[1..].iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(d.join("x.csv"), x).unwrap();
    std::fs::write(d.join("y.csv"), y).unwrap();
    let model = d.join("gen.safetensors");
    echos()
        .current_dir(d)
        .args([
            "esn",
            "train",
            "--generative",
            "--units",
            "40",
            "--leak-rate",
            "1",
            "--ridge",
            "1e-8",
            "--input",
            "x.csv",
            "--target",
            "y.csv",
            "--model",
            "gen.safetensors",
        ])
        .assert()
        .success();
    let gen = || {
        let out = echos()
            .args(["esn", "generate", "--steps", "20", "--model"])
            .arg(&model)
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let a = gen();
    assert_eq!(a.lines().count(), 20);
    assert_eq!(a, gen());
    // The sine continues: the first generated value is close to sin(0.2·401)·0.8.
    let first: f64 = a.lines().next().unwrap().parse().unwrap();
    assert!(
        (first - (401.0f64 * 0.2).sin() * 0.8).abs() < 0.05,
        "{first}"
    );
}

#[test]
fn feedback_model_generates_the_continuation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Teacher: a sine; input: a constant bias column (Jaeger's generator setup).
    let s: Vec<f64> = (0..620).map(|t| (t as f64 * 0.25).sin() * 0.5).collect();
    let x: String = (0..600).map(|_| "0.2\n").collect();
    let y: String = s[..600].iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(d.join("x.csv"), x).unwrap();
    std::fs::write(d.join("y.csv"), y).unwrap();
    echos()
        .current_dir(d)
        .args([
            "esn",
            "train",
            "--feedback",
            "--units",
            "60",
            "--leak-rate",
            "0.5",
            "--spectral-radius",
            "0.8",
            "--solver",
            "qr",
            "--ridge",
            "1e-10",
            "--input",
            "x.csv",
            "--target",
            "y.csv",
            "--model",
            "fb.safetensors",
            "--json",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"training\""));
    let out = echos()
        .current_dir(d)
        .args([
            "esn",
            "generate",
            "--steps",
            "20",
            "--model",
            "fb.safetensors",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let gen: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(gen.len(), 20);
    for (k, g) in gen.iter().enumerate() {
        assert!(
            (g - s[600 + k]).abs() < 0.05,
            "step {k}: {g} vs {}",
            s[600 + k]
        );
    }
}

/// `--kernel` picks the step kernel: a fused model runs byte-identically again and differs from
/// the exact one; an unknown name is a clear error.
#[test]
fn train_kernel_flag_selects_the_step_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = write_series(dir.path(), 300);
    let run = |kernel: &str| -> Vec<u8> {
        let model = dir.path().join(format!("{kernel}.safetensors"));
        echos()
            .args([
                "esn",
                "train",
                "--units",
                "120",
                "--washout",
                "20",
                "--kernel",
                kernel,
            ])
            .arg("--input")
            .arg(&x)
            .arg("--target")
            .arg(&y)
            .arg("--model")
            .arg(&model)
            .assert()
            .success();
        let out = dir.path().join(format!("{kernel}.npy"));
        echos()
            .args(["esn", "run", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&x)
            .arg("--output")
            .arg(&out)
            .assert()
            .success();
        std::fs::read(out).unwrap()
    };
    let (exact, scalar) = (run("exact"), run("scalar"));
    assert_eq!(scalar, run("scalar"));
    assert_ne!(exact, scalar);
    fails_with(
        &[
            os("esn"),
            os("train"),
            os("--kernel"),
            os("avx9"),
            os("--input"),
            x.as_os_str(),
            os("--target"),
            y.as_os_str(),
            os("--model"),
            dir.path().join("bad.safetensors").as_os_str(),
        ],
        "unknown step kernel \"avx9\"",
    );
}

#[test]
fn train_topology_flags_build_block_and_cycle_jumps_reservoirs() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = write_series(dir.path(), 300);
    let train_run = |name: &str, extra: &[&str]| -> Vec<u8> {
        let model = dir.path().join(format!("{name}.safetensors"));
        echos()
            .args(["esn", "train", "--units", "60", "--washout", "20"])
            .args(extra)
            .arg("--input")
            .arg(&x)
            .arg("--target")
            .arg(&y)
            .arg("--model")
            .arg(&model)
            .assert()
            .success();
        let out = dir.path().join(format!("{name}.npy"));
        echos()
            .args(["esn", "run", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&x)
            .arg("--output")
            .arg(&out)
            .assert()
            .success();
        std::fs::read(out).unwrap()
    };
    let random = train_run("random", &[]);
    let block8 = train_run("block8", &["--topology", "block", "--block-size", "8"]);
    let block16 = train_run("block16", &["--topology", "block"]);
    let jumps = train_run("jumps", &["--topology", "cycle-jumps", "--jump", "5"]);
    let fused = train_run(
        "block8f",
        &[
            "--topology",
            "block",
            "--block-size",
            "8",
            "--kernel",
            "scalar",
        ],
    );
    assert_eq!(
        block8,
        train_run("block8b", &["--topology", "block", "--block-size", "8"])
    );
    for (a, b) in [
        (&random, &block8),
        (&block8, &block16),
        (&random, &jumps),
        (&block8, &fused),
    ] {
        assert_ne!(a, b);
    }
    let args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = ["esn", "train", "--units", "60"]
            .iter()
            .chain(extra)
            .map(|s| s.into())
            .collect();
        v.extend([
            "--input".into(),
            x.clone().into_os_string(),
            "--target".into(),
            y.clone().into_os_string(),
            "--model".into(),
            dir.path().join("bad.safetensors").into_os_string(),
        ]);
        v
    };
    let fails = |extra: &[&str], needle: &str| {
        let v = args(extra);
        let refs: Vec<&std::ffi::OsStr> = v.iter().map(|s| s.as_os_str()).collect();
        fails_with(&refs, needle);
    };
    fails(
        &["--topology", "block", "--block-size", "0"],
        "size <= units (60), got 0",
    );
    fails(&["--topology", "block", "--block-size", "61"], "got 61");
    fails(
        &["--topology", "cycle-jumps", "--jump", "60"],
        "jump < units (60)",
    );
    fails(&["--jump", "3"], "--jump applies to --topology cycle-jumps");
    fails(
        &["--topology", "cycle", "--block-size", "4"],
        "--block-size applies to --topology block",
    );
}

/// A `.npy` (version 1.0, `<f8`) of one column.
fn npy_column(values: &[f64]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, 1), }}",
        values.len()
    );
    let pad = (64 - (10 + dict.len() + 1) % 64) % 64;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&((dict.len() + pad + 1) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

/// The values of a `.npy` written by echos (`<f8`, any shape), and its header text.
fn read_npy(bytes: &[u8]) -> (String, Vec<f64>) {
    let n = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + n].to_vec()).unwrap();
    let values = bytes[10 + n..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header, values)
}

/// A one-step-ahead model of a sine (CSV files in `d`), saved as `gen.safetensors`.
fn train_generative(d: &Path) -> PathBuf {
    let s: Vec<f64> = (0..401).map(|t| (t as f64 * 0.2).sin() * 0.8).collect();
    let x: String = s[..400].iter().map(|v| format!("{v}\n")).collect();
    let y: String = s[1..].iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(d.join("x.csv"), x).unwrap();
    std::fs::write(d.join("y.csv"), y).unwrap();
    echos()
        .current_dir(d)
        .args([
            "esn",
            "train",
            "--generative",
            "--units",
            "40",
            "--input",
            "x.csv",
            "--target",
            "y.csv",
            "--model",
            "gen.safetensors",
        ])
        .assert()
        .success();
    d.join("gen.safetensors")
}

/// Waits for `child` at most `secs` seconds (killing it after), returning its status.
fn wait_at_most(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed().as_secs() > secs {
            child.kill().unwrap();
            panic!("echos still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
    text
}

/// `echos … | head -1`: the reader closes the pipe; echos ends quietly with success (it
/// panicked with a backtrace, exit 101). A generation of 10^11 steps streams: the first line
/// arrives at once and memory stays constant (it aborted allocating 800 GB, exit 134).
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    use std::io::BufRead;
    use std::process::Stdio;
    let bin = assert_cmd::cargo::cargo_bin("echos");
    // The reader is gone before echos writes its one line.
    let mut child = std::process::Command::new(&bin)
        .args([
            "esn", "task", "narma10", "--units", "30", "--runs", "1", "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = wait_at_most(&mut child, 120);
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");

    let dir = tempfile::tempdir().unwrap();
    let model = train_generative(dir.path());
    let mut child = std::process::Command::new(&bin)
        .args(["esn", "generate", "--steps", "100000000000", "--model"])
        .arg(&model)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.trim().parse::<f64>().is_ok(), "{first:?}");
    let status = wait_at_most(&mut child, 120);
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}

/// stdout on a full disk: an error naming stdout and the cause, exit 1, no panic.
#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_generative(dir.path());
    let full = || {
        std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let model_arg = model.to_str().unwrap();
    for args in [
        &[
            "esn", "task", "narma10", "--units", "30", "--runs", "1", "--json",
        ][..],
        &["esn", "generate", "--steps", "10", "--model", model_arg][..],
        &["esn", "generate", "--steps", "100000", "--model", model_arg][..],
    ] {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("echos"))
            .args(args)
            .stdout(full())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: writing to standard output: No space left on device"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `--units` past the tasks' 20,000 is refused at once, naming the flag and the limit (it was
/// accepted and trained for many minutes).
#[test]
fn train_units_are_capped_like_the_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = write_series(dir.path(), 200);
    let start = std::time::Instant::now();
    fails_with(
        &[
            os("esn"),
            os("train"),
            os("--units"),
            os("20001"),
            os("--input"),
            x.as_os_str(),
            os("--target"),
            y.as_os_str(),
            os("--model"),
            dir.path().join("m.safetensors").as_os_str(),
        ],
        "--units must be between 1 and 20000",
    );
    assert!(start.elapsed().as_secs() < 10);
    fails_with(
        &[
            os("esn"),
            os("task"),
            os("narma10"),
            os("--units"),
            os("20001"),
        ],
        "20000",
    );
}

/// A generation streamed to .npy (row count in the header up front), to .csv and to stdout
/// gives the same series, across several internal chunks.
#[test]
fn generate_streams_the_same_series_to_npy_csv_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = train_generative(d);
    let steps = "10000";
    let stdout = echos()
        .args(["esn", "generate", "--steps", steps, "--model"])
        .arg(&model)
        .assert()
        .success();
    let text = String::from_utf8(stdout.get_output().stdout.clone()).unwrap();
    let from_stdout: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
    for ext in ["npy", "csv"] {
        let out = d.join(format!("g.{ext}"));
        echos()
            .args(["esn", "generate", "--steps", steps, "--model"])
            .arg(&model)
            .arg("--output")
            .arg(&out)
            .assert()
            .success();
        let bytes = std::fs::read(&out).unwrap();
        let values: Vec<f64> = if ext == "npy" {
            let (header, values) = read_npy(&bytes);
            assert!(header.contains("'shape': (10000, 1)"), "{header}");
            values
        } else {
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| l.parse().unwrap())
                .collect()
        };
        assert_eq!(values, from_stdout, "{ext}");
    }
    assert_eq!(from_stdout.len(), 10000);
    // No temporary file is left beside the outputs.
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".echos-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// One flipped exponent byte in the readout weights: every command that loads the model says
/// the file is corrupt and names it (it loaded silently and predicted NRMSE 1.87, not 0.07).
#[test]
fn a_model_with_a_flipped_byte_is_reported_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, y) = write_series(d, 300);
    let model = train(d, &x, &y);
    let mut bytes = std::fs::read(&model).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header["readout"]["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[8 + n + start + 8 + 7] ^= 0x01; // sign/exponent byte of the first unit's weight
    let flipped = d.join("flipped.safetensors");
    std::fs::write(&flipped, bytes).unwrap();
    fails_with(
        &[
            os("esn"),
            os("eval"),
            os("--model"),
            flipped.as_os_str(),
            os("--input"),
            x.as_os_str(),
            os("--target"),
            y.as_os_str(),
        ],
        &format!("model {} is corrupt", flipped.display()),
    );
}

/// The README's "Using echos" commands, run literally (the ESN ones, on small .npy files of the
/// shapes they name): each succeeds. `train` without `--generative` made `generate` fail.
#[test]
fn the_readme_esn_commands_run_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let section = readme
        .split("## Using echos")
        .nth(1)
        .expect("README has a \"Using echos\" section");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the section has a sh block");
    let commands: Vec<Vec<&str>> = block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("target/release/echos esn "))
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert!(
        commands.iter().any(|c| c[1] == "generate") && commands.iter().any(|c| c[1] == "train"),
        "{commands:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A series and its next value: the train and test halves of one sine.
    let s: Vec<f64> = (0..802).map(|t| (t as f64 * 0.2).sin() * 0.8).collect();
    for (name, range) in [
        ("x.npy", 0..600),
        ("y.npy", 1..601),
        ("x_test.npy", 600..800),
        ("y_test.npy", 601..801),
    ] {
        std::fs::write(d.join(name), npy_column(&s[range])).unwrap();
    }
    for args in &commands {
        let out = echos().current_dir(d).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "`echos {}` failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `esn train` without hyperparameter flags uses the engine's `EsnConfig::default()`, as
/// Python does (the CLI had leak rate 0.3, bias 0, seed 0, feedback scaling 0.5 of its own).
#[test]
fn train_defaults_are_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = write_series(dir.path(), 200);
    let model = dir.path().join("m.safetensors");
    echos()
        .args(["esn", "train", "--feedback", "--input"])
        .arg(&x)
        .arg("--target")
        .arg(&y)
        .arg("--model")
        .arg(&model)
        .assert()
        .success();
    let bytes = std::fs::read(&model).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["config"].as_str().unwrap()).unwrap();
    let engine = echos_core::esn::EsnConfig::default();
    assert_eq!(config["units"], engine.units);
    assert_eq!(config["seed"], engine.seed);
    for (key, value) in [
        ("spectral_radius", engine.spectral_radius),
        ("leak_rate", engine.leak_rate),
        ("input_scaling", engine.input_scaling),
        ("bias_scaling", engine.bias_scaling),
        ("connectivity", engine.connectivity),
        ("feedback_scaling", engine.feedback_scaling),
    ] {
        assert_eq!(config[key].as_f64(), Some(value), "{key}: {config}");
    }
}

/// Negative numbers reach the range checks (clap took `-1` for a flag), and the checks name
/// the flag and the range.
#[test]
fn negative_numbers_get_range_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, y) = write_series(d, 200);
    let model = train(d, &x, &y);
    let train_with = |flag: &str, value: &str, needle: &str| {
        fails_with(
            &[
                os("esn"),
                os("train"),
                os(flag),
                os(value),
                os("--input"),
                x.as_os_str(),
                os("--target"),
                y.as_os_str(),
                os("--model"),
                d.join("n.safetensors").as_os_str(),
            ],
            needle,
        )
    };
    train_with(
        "--ridge",
        "-1",
        "--ridge must be a finite number >= 0, got -1",
    );
    train_with(
        "--noise",
        "-0.1",
        "--noise must be a finite number >= 0, got -0.1",
    );
    train_with(
        "--leak-rate",
        "-0.5",
        "leak_rate must be in (0, 1], got -0.5",
    );
    train_with(
        "--spectral-radius",
        "-2",
        "spectral_radius must be finite and >= 0, got -2",
    );
    train_with(
        "--bias-scaling",
        "-0.001",
        "bias_scaling must be finite and >= 0, got -0.001",
    );
    fails_with(
        &[os("esn"), os("bench"), os("--connectivity"), os("-1")],
        "connectivity = -1 is out of range",
    );
    // Counts stay counts: a negative one is clap's invalid value, not an unknown flag.
    fails_with(
        &[
            os("esn"),
            os("generate"),
            os("--steps"),
            os("-3"),
            os("--model"),
            model.as_os_str(),
        ],
        "invalid value '-3' for '--steps",
    );
}

/// Bad inputs found trying each subcommand as a new user: each is refused with its cause.
#[test]
fn new_user_mistakes_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, y) = write_series(d, 200);
    let model = train(d, &x, &y);
    let m = model.as_os_str();
    // A model written over a data file would destroy it.
    let before = std::fs::read(&y).unwrap();
    fails_with(
        &[
            os("esn"),
            os("train"),
            os("--input"),
            x.as_os_str(),
            os("--target"),
            y.as_os_str(),
            os("--model"),
            y.as_os_str(),
        ],
        "a model file's name ends in .safetensors",
    );
    assert_eq!(std::fs::read(&y).unwrap(), before);
    // A missing directory is named, not the temporary file's random name.
    for args in [
        vec![
            os("esn"),
            os("train"),
            os("--input"),
            x.as_os_str(),
            os("--target"),
            y.as_os_str(),
            os("--model"),
            os("/nonexistent-dir/m.safetensors"),
        ],
        vec![
            os("esn"),
            os("run"),
            os("--model"),
            m,
            os("--input"),
            x.as_os_str(),
            os("--output"),
            os("/nonexistent-dir/p.npy"),
        ],
    ] {
        let out = echos().args(&args).assert().failure();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.contains("directory /nonexistent-dir: No such file"),
            "{stderr}"
        );
        assert!(!stderr.contains(".echos-tmp"), "{stderr}");
    }
    // A washout as long as the series names the flag and the file's length.
    fails_with(
        &[
            os("esn"),
            os("eval"),
            os("--washout"),
            os("100000000000"),
            os("--model"),
            m,
            os("--input"),
            x.as_os_str(),
            os("--target"),
            y.as_os_str(),
        ],
        "--washout 100000000000 must be smaller than the number of time steps",
    );
    fails_with(
        &[
            os("esn"),
            os("train"),
            os("--washout"),
            os("200"),
            os("--input"),
            x.as_os_str(),
            os("--target"),
            y.as_os_str(),
            os("--model"),
            d.join("n.safetensors").as_os_str(),
        ],
        "--washout 200 must be smaller than the number of time steps in",
    );
    // Generation: a model not trained for it is told how to train one; an output of unknown
    // type is refused before anything is generated.
    fails_with(
        &[
            os("esn"),
            os("generate"),
            os("--steps"),
            os("5"),
            os("--model"),
            m,
        ],
        "train it with `echos esn train --generative`",
    );
    let gen = train_generative(d);
    fails_with(
        &[
            os("esn"),
            os("generate"),
            os("--steps"),
            os("5"),
            os("--model"),
            gen.as_os_str(),
            os("--output"),
            d.join("g.txt").as_os_str(),
        ],
        "unknown file type",
    );
}

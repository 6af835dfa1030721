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
    let mut v2 = bytes[..8].to_vec();
    v2.extend_from_slice(
        header
            .replacen("\"format_version\":\"1\"", "\"format_version\":\"2\"", 1)
            .as_bytes(),
    );
    v2.extend_from_slice(&bytes[8 + n..]);
    let model_cases: Vec<(PathBuf, &str)> = vec![
        (
            write("corrupt.safetensors", &corrupt),
            "not a valid safetensors",
        ),
        (
            write("trunc.safetensors", &bytes[..bytes.len() / 2]),
            "not a valid safetensors",
        ),
        (write("v2.safetensors", &v2), "format version 2"),
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

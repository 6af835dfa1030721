//! `echos rwkv` end to end: outputs match the reference, bad inputs give clear errors.

use std::path::PathBuf;
use std::process::Command;

fn shared_data(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("ECHOS_SHARED_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    if dir.join("rwkv").is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "shared data not found at {} (set ECHOS_SHARED_DATA); required in CI",
            dir.display()
        );
    }
    eprintln!("SKIPPED (no shared data): {test}");
    None
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("echos-cli-rwkv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn echos(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_echos"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 1-D int64 .npy file.
fn write_tokens(path: &PathBuf, tokens: &[i64]) {
    let header = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}",
        tokens.len()
    );
    let mut h = header.into_bytes();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&h);
    for t in tokens {
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn generate_greedy_continues_the_prompt() {
    let Some(data) = shared_data("generate_greedy_continues_the_prompt") else {
        return;
    };
    let model = data.join("rwkv/trained/tiny-rwkv-5v2-730K.pth");
    let (ok, out, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "\"in the beginning",
        "--temperature",
        "0",
        "-n",
        "20",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim_end(), " of the stress and t");
}

#[test]
fn forward_and_state_files_compose() {
    let Some(data) = shared_data("forward_and_state_files_compose") else {
        return;
    };
    let model = data.join("rwkv/trained/tiny-rwkv-7v0-834K-FP32.bin");
    let m = model.to_str().unwrap();
    let text: Vec<i64> = b"\"in the beginning was"
        .iter()
        .map(|&b| b as i64)
        .collect();
    let (all, first, second) = (tmp("all.npy"), tmp("first.npy"), tmp("second.npy"));
    write_tokens(&all, &text);
    write_tokens(&first, &text[..10]);
    write_tokens(&second, &text[10..]);
    let (la, l2, st) = (tmp("la.npy"), tmp("l2.npy"), tmp("state.safetensors"));
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    assert!(
        echos(&[
            "rwkv",
            "forward",
            "--model",
            m,
            "--tokens",
            &s(&all),
            "--logits",
            &s(&la)
        ])
        .0
    );
    let (ok, _, err) = echos(&[
        "rwkv",
        "forward",
        "--model",
        m,
        "--tokens",
        &s(&first),
        "--logits",
        &s(&l2),
        "--state-out",
        &s(&st),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = echos(&[
        "rwkv",
        "forward",
        "--model",
        m,
        "--tokens",
        &s(&second),
        "--logits",
        &s(&l2),
        "--state-in",
        &s(&st),
    ]);
    assert!(ok, "{err}");
    let read = |p: &PathBuf| {
        echos_rwkv_io::npy::f32_from_npy_bytes(&std::fs::read(p).unwrap(), "l").unwrap()
    };
    let ((sa, va), (s2, v2)) = (read(&la), read(&l2));
    assert_eq!(sa, vec![text.len() as u64, 256]);
    assert_eq!(s2, vec![(text.len() - 10) as u64, 256]);
    let d = va[10 * 256..]
        .iter()
        .zip(&v2)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(d < 1e-5, "resumed logits differ by {d}");
}

#[test]
fn bad_inputs_are_reported() {
    let Some(data) = shared_data("bad_inputs_are_reported") else {
        return;
    };
    let model = data.join("rwkv/trained/tiny-rwkv-4v0-660K.pth");
    let m = model.to_str().unwrap();
    let prompt = tmp("bad-prompt.txt");
    std::fs::write(&prompt, b"in the \xff beginning").unwrap();
    let (ok, _, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        m,
        "--prompt-file",
        prompt.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("not valid UTF-8 (first bad byte at offset 7)"),
        "{err}"
    );

    let toks = tmp("big.npy");
    write_tokens(&toks, &[1, 2, 300]);
    let out = tmp("never.npy");
    let (ok, _, err) = echos(&[
        "rwkv",
        "forward",
        "--model",
        m,
        "--tokens",
        toks.to_str().unwrap(),
        "--logits",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("token id 300 is outside the vocabulary (size 256)"),
        "{err}"
    );
    write_tokens(&toks, &[1, -2]);
    let (ok, _, err) = echos(&[
        "rwkv",
        "forward",
        "--model",
        m,
        "--tokens",
        toks.to_str().unwrap(),
        "--logits",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("token id -2 at position 1"), "{err}");

    let (ok, _, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        "/nonexistent/model.pth",
        "--prompt",
        "x",
    ]);
    assert!(!ok && err.contains("/nonexistent/model.pth"), "{err}");
    let (ok, _, err) = echos(&[
        "rwkv", "generate", "--model", m, "--prompt", "x", "--top-p", "0",
    ]);
    assert!(!ok && err.contains("--top-p"), "{err}");
    let (ok, _, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        m,
        "--prompt",
        "x",
        "--state-in",
        prompt.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("not a readable state file"), "{err}");
}

#[test]
fn bench_prints_one_json_object() {
    let (ok, out, err) = echos(&[
        "rwkv",
        "bench",
        "--json",
        "--shape",
        "2,64,32,256",
        "--prefill",
        "4",
        "--decode",
        "2",
        "--repeat",
        "1",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in [
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "weight_bytes_per_token",
        "decode_fraction_of_bandwidth_limit",
    ] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}");
    }
    let (ok, _, err) = echos(&["rwkv", "bench", "--shape", "2,60,32,256"]);
    assert!(!ok && err.contains("multiple of head_size"), "{err}");
}

/// The tiny trained v5.2 model; None (after saying so) without the shared data.
fn tiny_model(test: &str) -> Option<String> {
    let data = shared_data(test)?;
    Some(
        data.join("rwkv/trained/tiny-rwkv-5v2-730K.pth")
            .to_str()
            .unwrap()
            .to_string(),
    )
}

#[test]
fn forward_refuses_logits_that_are_not_npy() {
    let Some(m) = tiny_model("forward_refuses_logits_that_are_not_npy") else {
        return;
    };
    let toks = tmp("csv-tokens.npy");
    write_tokens(&toks, &[1, 2, 3]);
    let csv = tmp("l.csv");
    std::fs::remove_file(&csv).ok();
    let (ok, _, err) = echos(&[
        "rwkv",
        "forward",
        "--model",
        &m,
        "--tokens",
        toks.to_str().unwrap(),
        "--logits",
        csv.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("--logits") && err.contains(".npy"),
        "{err}"
    );
    assert!(!csv.exists(), "nothing is written under the .csv name");
}

#[test]
fn negative_numbers_reach_our_own_checks() {
    // `--temperature -1` used to be a clap "unexpected argument '-1'"; now our range check
    // answers (it runs before the model is opened, so no model is needed).
    for (flag, value, needle) in [
        (
            "--temperature",
            "-1",
            "--temperature must be a finite number >= 0, got -1",
        ),
        ("--top-p", "-0.5", "--top-p must be in (0, 1], got -0.5"),
    ] {
        let (ok, _, err) = echos(&[
            "rwkv",
            "generate",
            "--model",
            "/nonexistent/m.pth",
            "--prompt",
            "x",
            flag,
            value,
        ]);
        assert!(!ok && err.contains(needle), "{flag} {value}: {err}");
    }
    // A prompt may start with a hyphen.
    let (ok, _, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        "/nonexistent/m.pth",
        "--prompt",
        "-5 degrees",
    ]);
    assert!(!ok && err.contains("/nonexistent/m.pth"), "{err}");
    let (ok, _, err) = echos(&["rwkv", "bench", "--threads", "-2"]);
    assert!(!ok && err.contains("invalid value '-2'"), "{err}");
}

#[test]
fn an_unwritable_state_out_is_refused_before_generating() {
    let Some(m) = tiny_model("an_unwritable_state_out_is_refused_before_generating") else {
        return;
    };
    let (ok, out, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        &m,
        "--prompt",
        "in the",
        "-n",
        "20",
        "--state-out",
        "/nonexistent-dir/state.safetensors",
    ]);
    assert!(!ok && err.contains("--state-out"), "{err}");
    assert!(out.is_empty(), "generated before failing: {out:?}");
    let toks = tmp("so-tokens.npy");
    write_tokens(&toks, &[1, 2, 3]);
    let (ok, _, err) = echos(&[
        "rwkv",
        "forward",
        "--model",
        &m,
        "--tokens",
        toks.to_str().unwrap(),
        "--logits",
        "/nonexistent-dir/l.npy",
    ]);
    assert!(!ok && err.contains("--logits"), "{err}");
}

#[test]
fn an_esn_model_is_named_as_one() {
    // A real ESN model file, trained by `echos esn train`.
    let dir = tmp("esn");
    std::fs::create_dir_all(&dir).unwrap();
    let (x, y) = (dir.join("x.csv"), dir.join("y.csv"));
    let rows = |f: &dyn Fn(usize) -> f64| -> String {
        std::iter::once("v".to_string())
            .chain((0..300).map(|t| format!("{}", f(t))))
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(&x, rows(&|t| ((t * 37) % 11) as f64 / 11.0)).unwrap();
    std::fs::write(&y, rows(&|t| ((t * 37 + 5) % 11) as f64 / 11.0)).unwrap();
    let model = dir.join("esn.safetensors");
    let (ok, _, err) = echos(&[
        "esn",
        "train",
        "--units",
        "20",
        "--input",
        x.to_str().unwrap(),
        "--target",
        y.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "x",
    ]);
    assert!(
        !ok && err.contains("this is an echos ESN model") && err.contains("echos esn"),
        "{err}"
    );
}

/// Runs echos with stdout going to `stdout`; returns (exit code, stderr).
fn echos_to(args: &[&str], stdout: std::process::Stdio) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_echos"))
        .args(args)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BENCH: [&str; 10] = [
    "rwkv",
    "bench",
    "--shape",
    "2,64,32,256",
    "--prefill",
    "4",
    "--decode",
    "2",
    "--repeat",
    "1",
];

#[test]
fn a_full_disk_is_an_error_message_not_a_panic() {
    let full = || {
        std::process::Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };
    let (code, err) = echos_to(&BENCH, full());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        !err.contains("panicked") && err.contains("No space left"),
        "{err}"
    );
    let Some(m) = tiny_model("a_full_disk_is_an_error_message_not_a_panic") else {
        return;
    };
    let (code, err) = echos_to(
        &[
            "rwkv", "generate", "--model", &m, "--prompt", "in", "-n", "20",
        ],
        full(),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        !err.contains("panicked")
            && err.contains("writing to standard output")
            && err.contains("No space left"),
        "{err}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    // The reader goes away before bench prints its one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_echos"))
        .args(BENCH)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");

    let Some(m) = tiny_model("a_closed_pipe_ends_quietly") else {
        return;
    };
    // `echos rwkv generate ... | head -c 10`: the reader leaves mid-stream.
    let mut child = Command::new(env!("CARGO_BIN_EXE_echos"))
        .args([
            "rwkv", "generate", "--model", &m, "--prompt", "in the", "-n", "5000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_stop_string_ends_the_text_before_it() {
    let Some(m) = tiny_model("a_stop_string_ends_the_text_before_it") else {
        return;
    };
    let greedy = |extra: &[&str]| {
        let mut args = vec![
            "rwkv",
            "generate",
            "--model",
            &m,
            "--prompt",
            "\"in the beginning",
            "--temperature",
            "0",
            "-n",
            "20",
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = echos(&args);
        assert!(ok, "{err}");
        out
    };
    let full = greedy(&[]);
    assert_eq!(full.trim_end(), " of the stress and t");
    // "stress" is in the greedy text: the output stops right before it.
    let cut = greedy(&["--stop", "stress", "--stop", "zzz"]);
    assert_eq!(cut, " of the \n");
    // Sampling flags reach the sampler: top-k 1 is greedy whatever the temperature.
    let (ok, out, err) = echos(&[
        "rwkv",
        "generate",
        "--model",
        &m,
        "--prompt",
        "\"in the beginning",
        "--temperature",
        "1.5",
        "--top-k",
        "1",
        "-n",
        "20",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, full);
    for (flag, value, says) in [
        ("--top-k", "0", "--top-k must be at least 1"),
        (
            "--penalty-decay",
            "1.5",
            "--penalty-decay must be in (0, 1]",
        ),
        (
            "--frequency-penalty",
            "nan",
            "--frequency-penalty must be finite",
        ),
        ("--stop", "", "--stop: a stop string must not be empty"),
    ] {
        let (ok, out, err) = echos(&[
            "rwkv", "generate", "--model", &m, "--prompt", "x", flag, value,
        ]);
        assert!(!ok && err.contains(says), "{flag} {value}: {err}");
        assert!(out.is_empty(), "{flag}: generated before failing: {out:?}");
    }
}

#[test]
fn chat_keeps_the_state_between_turns_and_saves_it() {
    use std::io::Write;
    let Some(m) = tiny_model("chat_keeps_the_state_between_turns_and_saves_it") else {
        return;
    };
    let saved = tmp("chat-turn1.st");
    let end = tmp("chat-end.st");
    let _ = std::fs::remove_file(&saved);
    let mut child = Command::new(env!("CARGO_BIN_EXE_echos"))
        .args([
            "rwkv",
            "chat",
            "--model",
            &m,
            "--temperature",
            "0",
            "--max-tokens",
            "30",
            "--state-out",
            end.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!("hello\n/save {}\n\nhello\n", saved.display());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two replies, each closed by a blank line; none contains the turn's stop string.
    let replies: Vec<&str> = stdout.split("\n\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(replies.len(), 2, "{stdout:?}");
    assert!(saved.is_file() && end.is_file());
    // The saved state is the one after the first turn: resuming from it and asking again
    // gives what the second turn of the first run gave, down to the bits of the final state.
    let end2 = tmp("chat-end2.st");
    let mut child = Command::new(env!("CARGO_BIN_EXE_echos"))
        .args([
            "rwkv",
            "chat",
            "--model",
            &m,
            "--temperature",
            "0",
            "--max-tokens",
            "30",
            "--state-in",
            saved.to_str().unwrap(),
            "--state-out",
            end2.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let resumed = child.wait_with_output().unwrap();
    assert!(resumed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&resumed.stdout).trim_end(),
        replies[1].trim_end()
    );
    let read = |p: &PathBuf| std::fs::read(p).unwrap();
    assert_ne!(read(&saved), read(&end), "a turn must change the state");
    assert_eq!(read(&end2), read(&end));
}

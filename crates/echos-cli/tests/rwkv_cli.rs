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

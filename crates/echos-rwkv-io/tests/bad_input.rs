//! Broken model files give errors that name the problem, never a panic.

mod common;

use std::path::{Path, PathBuf};

use common::shared_data;
use echos_rwkv_io::tensors::{read_tensor_file, write_safetensors};
use echos_rwkv_io::{load_model, LoadError};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("echos-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn load_bytes(bytes: &[u8], name: &str) -> Result<(), LoadError> {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    let r = load_model(&p).map(|_| ());
    std::fs::remove_file(&p).ok();
    r
}

fn model_file(data: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(data.join(rel)).unwrap()
}

#[test]
fn truncated_files_are_errors_at_every_cut() {
    let Some(data) = shared_data("truncated_files_are_errors_at_every_cut") else {
        return;
    };
    for rel in [
        "rwkv/random/random-v7.pth",
        "rwkv/trained/tiny-rwkv-5v2-730K-Q5_1.bin",
    ] {
        let bytes = model_file(&data, rel);
        for i in 1..40 {
            let cut = bytes.len() * i / 40;
            let err =
                load_bytes(&bytes[..cut], "cut.model").expect_err("a truncated file must not load");
            let msg = err.to_string();
            assert!(!msg.is_empty(), "{rel} cut at {cut}");
        }
        let err = load_bytes(&bytes[..bytes.len() - 3], "cut.model").unwrap_err();
        assert!(
            matches!(err, LoadError::Truncated(_) | LoadError::Zip(_)),
            "{rel}: {err}"
        );
    }
    assert!(load_bytes(&[], "empty.model").is_err());
    assert!(load_bytes(b"hello, not a model", "text.model").is_err());
}

#[test]
fn corrupted_pth_is_an_error() {
    let Some(data) = shared_data("corrupted_pth_is_an_error") else {
        return;
    };
    let bytes = model_file(&data, "rwkv/random/random-v4.pth");
    for i in 1..30 {
        let mut b = bytes.clone();
        let at = bytes.len() * i / 30;
        for x in &mut b[at..(at + 64).min(bytes.len())] {
            *x ^= 0x5a;
        }
        // Flipped bytes must give an error (CRC, pickle or shape), never a panic; a flip that
        // lands in zip padding may still load, which is fine.
        let _ = load_bytes(&b, "flip.pth");
    }
    let p = data.join("rwkv/random/random-v4.pth");
    assert!(load_model(&p).is_ok());
}

#[test]
fn unknown_quantization_types_are_named() {
    let Some(data) = shared_data("unknown_quantization_types_are_named") else {
        return;
    };
    let bytes = model_file(&data, "rwkv/trained/tiny-rwkv-7v0-834K-Q5_1.bin");
    let mut header = bytes.clone();
    header[20..24].copy_from_slice(&5i32.to_le_bytes());
    let err = load_bytes(&header, "q.bin").unwrap_err();
    assert!(matches!(err, LoadError::UnknownQuantization(5)), "{err}");
    assert!(err.to_string().contains("unknown quantization type 5"));
    let mut tensor = bytes.clone();
    tensor[24 + 8..24 + 12].copy_from_slice(&42i32.to_le_bytes());
    let err = load_bytes(&tensor, "q.bin").unwrap_err();
    assert!(
        matches!(err, LoadError::UnknownQuantizationOf { code: 42, ref key } if key == "emb.weight"),
        "{err}"
    );
}

#[test]
fn missing_unknown_and_misshapen_keys_are_named() {
    let Some(data) = shared_data("missing_unknown_and_misshapen_keys_are_named") else {
        return;
    };
    let file = read_tensor_file(&data.join("rwkv/random/random-v7.pth")).unwrap();
    let p = tmp("keys.safetensors");

    // The unchanged tensors load as safetensors.
    write_safetensors(&p, &file.tensors).unwrap();
    assert!(load_model(&p).is_ok());

    let mut missing = file.tensors.clone();
    missing.remove("blocks.1.att.k_a");
    write_safetensors(&p, &missing).unwrap();
    let err = load_model(&p).err().unwrap();
    assert!(
        matches!(err, LoadError::MissingKey(ref k) if k == "blocks.1.att.k_a"),
        "{err}"
    );

    let mut extra = file.tensors.clone();
    extra.insert(
        "blocks.0.att.mystery".into(),
        extra["blocks.0.att.k_a"].clone(),
    );
    write_safetensors(&p, &extra).unwrap();
    let err = load_model(&p).err().unwrap();
    assert!(
        matches!(err, LoadError::UnknownKey { ref key, .. } if key == "blocks.0.att.mystery"),
        "{err}"
    );

    let mut shaped = file.tensors.clone();
    let t = shaped.get_mut("blocks.1.att.key.weight").unwrap();
    t.shape = vec![32, 128];
    write_safetensors(&p, &shaped).unwrap();
    let err = load_model(&p).err().unwrap();
    assert!(
        matches!(err, LoadError::Shape { ref key, .. } if key == "blocks.1.att.key.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("[32, 128]"));
    std::fs::remove_file(&p).ok();
}

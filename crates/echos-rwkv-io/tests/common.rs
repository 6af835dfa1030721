//! Shared helpers for the reference checks: locating ../shared/data (skip loudly without it)
//! and reading the reference `.npz` files.
#![allow(dead_code)]

use std::path::PathBuf;

use echos_rwkv_io::npy;

/// `$ECHOS_SHARED_DATA`, else `<workspace>/../shared/data`; None (after saying so) when
/// absent outside CI; a panic when absent in CI.
pub fn shared_data(test: &str) -> Option<PathBuf> {
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

pub struct Reference {
    pub tokens: Vec<u32>,
    pub logits: Vec<f32>,
    pub vocab: usize,
}

pub fn reference(path: &std::path::Path) -> Reference {
    let tokens =
        npy::tokens_from_npy_bytes(&npy::npz_member(path, "tokens").unwrap(), "tokens").unwrap();
    let (shape, logits) =
        npy::f32_from_npy_bytes(&npy::npz_member(path, "logits").unwrap(), "logits").unwrap();
    assert_eq!(shape[0] as usize, tokens.len());
    Reference {
        tokens,
        logits,
        vocab: shape[1] as usize,
    }
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

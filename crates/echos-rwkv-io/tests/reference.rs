//! Logits after every token against the reference implementation's (PyPI `rwkv` 0.8.32, fp32,
//! RNN mode), for the random-weight and the trained tiny models in ../shared/data/rwkv.

mod common;

use common::{max_abs_diff, reference, shared_data};
use echos_rwkv_io::{load_model, Model, Scratch, Serial, State};

/// Steps token by token, carrying the state; returns all logits (tokens x vocab).
fn run_steps(model: &Model, tokens: &[u32]) -> Vec<f32> {
    let mut state = State::new(model);
    let mut scratch = Scratch::new(model, 1);
    let mut out = Vec::new();
    for &t in tokens {
        out.extend_from_slice(model.step(&mut state, t, &mut scratch, &Serial).unwrap());
    }
    out
}

fn check(rel_model: &str, rel_ref: &str, tol: f32, test: &str) {
    let Some(data) = shared_data(test) else {
        return;
    };
    let model = load_model(&data.join(rel_model)).unwrap().model;
    let r = reference(&data.join(rel_ref));
    let got = run_steps(&model, &r.tokens);
    let d = max_abs_diff(&got, &r.logits);
    eprintln!(
        "{rel_model}: v{} max |Δlogit| {d:.3e} over {} tokens",
        model.version.name(),
        r.tokens.len()
    );
    assert!(d <= tol, "{rel_model}: max abs difference {d} > {tol}");
}

#[test]
fn random_v4_matches_reference() {
    check(
        "rwkv/random/random-v4.pth",
        "rwkv/random/random-v4-reference.npz",
        1e-4,
        "random_v4_matches_reference",
    );
}

#[test]
fn random_v5_matches_reference() {
    check(
        "rwkv/random/random-v5.pth",
        "rwkv/random/random-v5-reference.npz",
        1e-4,
        "random_v5_matches_reference",
    );
}

#[test]
fn random_v6_matches_reference() {
    check(
        "rwkv/random/random-v6.pth",
        "rwkv/random/random-v6-reference.npz",
        1e-4,
        "random_v6_matches_reference",
    );
}

#[test]
fn random_v7_matches_reference() {
    check(
        "rwkv/random/random-v7.pth",
        "rwkv/random/random-v7-reference.npz",
        1e-4,
        "random_v7_matches_reference",
    );
}

const TRAINED: [&str; 4] = ["4v0-660K", "5v1-730K", "5v2-730K", "7v0-834K"];

#[test]
fn trained_pth_matches_reference() {
    for m in TRAINED {
        check(
            &format!("rwkv/trained/tiny-rwkv-{m}.pth"),
            &format!("rwkv/trained/tiny-rwkv-{m}-reference.npz"),
            1e-4,
            "trained_pth_matches_reference",
        );
    }
}

#[test]
fn trained_fp32_bin_matches_reference() {
    for m in TRAINED {
        check(
            &format!("rwkv/trained/tiny-rwkv-{m}-FP32.bin"),
            &format!("rwkv/trained/tiny-rwkv-{m}-reference.npz"),
            1e-4,
            "trained_fp32_bin_matches_reference",
        );
    }
}

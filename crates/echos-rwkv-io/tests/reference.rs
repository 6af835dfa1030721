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

/// Max |Δlogit| of a quantized/half file against the reference, and the logit spread.
fn quantized_error(m: &str, kind: &str) -> Option<(f32, f32, f32)> {
    let data = shared_data("quantized_error")?;
    let model = load_model(&data.join(format!("rwkv/trained/tiny-rwkv-{m}-{kind}.bin")))
        .unwrap()
        .model;
    let r = reference(&data.join(format!("rwkv/trained/tiny-rwkv-{m}-reference.npz")));
    let got = run_steps(&model, &r.tokens);
    let d = max_abs_diff(&got, &r.logits);
    let rms = (got
        .iter()
        .zip(&r.logits)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        / got.len() as f32)
        .sqrt();
    let spread = r.logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    eprintln!("{m} {kind}: max |Δlogit| {d:.3e}, rms {rms:.3e}, max |logit| {spread:.2}");
    Some((d, rms, spread))
}

/// FP16 files round every matrix to an 11-bit mantissa (relative error <= 2^-12 per weight);
/// through 4-12 layers that moves logits of magnitude ~10 by ~1e-2 at most (measured: 9.2e-3
/// for 5v1, 7e-7 for 7v0 whose weights are already f16-exact). Bound: 2e-2.
#[test]
fn trained_fp16_within_2e_2() {
    for m in TRAINED {
        let Some((d, _, _)) = quantized_error(m, "FP16") else {
            return;
        };
        assert!(d < 2e-2, "{m} FP16: max |Δlogit| {d}");
    }
}

/// Q5_1 keeps 5 bits per weight plus a per-32 scale and minimum: each weight moves by up to
/// half a step (~2.5% of a block's range, checked exactly in `q5_1_weights_within_half_a_step`).
/// On these tiny models that is an rms logit error of 1e-3..0.15 and a max of up to ~0.95
/// (v5). Bounds: rms < 0.25 and max < 1.5 — they catch a wrong block decoding (errors of
/// several units), not rounding.
#[test]
fn trained_q5_1_within_stated_bounds() {
    for m in TRAINED {
        let Some((d, rms, _)) = quantized_error(m, "Q5_1") else {
            return;
        };
        assert!(rms < 0.25 && d < 1.5, "{m} Q5_1: max {d}, rms {rms}");
    }
}

/// The decoder itself: every Q5_1 weight lies within half a quantization step of the FP32
/// file's weight (step = block range / 31, plus f16 rounding of the scale and minimum).
#[test]
fn q5_1_weights_within_half_a_step() {
    let Some(data) = shared_data("q5_1_weights_within_half_a_step") else {
        return;
    };
    for m in TRAINED {
        let dir = data.join("rwkv/trained");
        let q =
            echos_rwkv_io::tensors::read_tensor_file(&dir.join(format!("tiny-rwkv-{m}-Q5_1.bin")))
                .unwrap();
        let f =
            echos_rwkv_io::tensors::read_tensor_file(&dir.join(format!("tiny-rwkv-{m}-FP32.bin")))
                .unwrap();
        let mut checked = 0;
        for (k, qt) in &q.tensors {
            let ft = &f.tensors[k];
            assert_eq!(qt.shape, ft.shape, "{k}");
            for (qb, fb) in qt.data.chunks(32).zip(ft.data.chunks(32)) {
                let (lo, hi) = fb
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
                let bound = (hi - lo) / 31.0 * 0.5 + (hi - lo) * 2e-3 + lo.abs() * 1e-3 + 1e-6;
                for (a, b) in qb.iter().zip(fb) {
                    assert!((a - b).abs() <= bound, "{m} {k}: {a} vs {b}, bound {bound}");
                }
            }
            checked += 1;
        }
        assert!(checked > 10);
    }
}

/// rwkv.cpp's own expected logits after the bytes `"in`: reproduced with its GroupNorm eps
/// (1e-5 for v5, the reference's 64e-5 for v7; README of the shared data).
#[test]
fn rwkv_cpp_expected_logits_after_in() {
    let Some(data) = shared_data("rwkv_cpp_expected_logits_after_in") else {
        return;
    };
    for m in TRAINED {
        let dir = data.join("rwkv/trained");
        let mut model = load_model(&dir.join(format!("tiny-rwkv-{m}-FP32.bin")))
            .unwrap()
            .model;
        if matches!(
            model.version,
            echos_rwkv_io::Version::V5_0 | echos_rwkv_io::Version::V5_2
        ) {
            model.ln_x_eps = 1e-5;
        }
        let bytes = std::fs::read(dir.join(format!("expected-logits-{m}.bin"))).unwrap();
        let expected: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let got = run_steps(&model, &[b'"' as u32, b'i' as u32, b'n' as u32]);
        let d = max_abs_diff(&got[512..], &expected);
        eprintln!("{m}: max |Δlogit| vs rwkv.cpp expected {d:.3e}");
        assert!(d < 1e-4, "{m}: {d}");
    }
}

/// Greedy generation from `"in the beginning`: the first generated byte is the reference's
/// most likely next byte (from its logits for the same prefix), and the continuation is
/// printable text.
#[test]
fn trained_models_continue_in_the_beginning_greedily() {
    let Some(data) = shared_data("trained_models_continue_in_the_beginning_greedily") else {
        return;
    };
    let prompt = b"\"in the beginning";
    for m in TRAINED {
        let dir = data.join("rwkv/trained");
        let model = load_model(&dir.join(format!("tiny-rwkv-{m}.pth")))
            .unwrap()
            .model;
        let r = reference(&dir.join(format!("tiny-rwkv-{m}-reference.npz")));
        assert_eq!(&r.tokens[..prompt.len()], prompt.map(u32::from).as_slice());
        let mut state = State::new(&model);
        let mut scratch = Scratch::new(&model, prompt.len());
        let tokens: Vec<u32> = prompt.iter().map(|&b| b as u32).collect();
        let mut logits = model
            .prefill(&mut state, &tokens, &mut scratch, &Serial, false)
            .unwrap()
            .to_vec();
        let argmax = |l: &[f32]| {
            l.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                .0
        };
        let v = r.vocab;
        let ref_next = argmax(&r.logits[(prompt.len() - 1) * v..prompt.len() * v]);
        let mut text = Vec::new();
        for _ in 0..40 {
            let next = argmax(&logits);
            text.push(next as u8);
            logits = model
                .step(&mut state, next as u32, &mut scratch, &Serial)
                .unwrap()
                .to_vec();
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        eprintln!("{m}: \"in the beginning|{text}");
        assert_eq!(
            text.as_bytes()[0] as usize,
            ref_next,
            "{m}: first byte differs from the reference's"
        );
        assert!(
            text.bytes().all(|b| b == b'\n' || (32..127).contains(&b)),
            "{m}: {text:?}"
        );
        assert!(
            text.contains(" the") || text.contains(" of"),
            "{m}: {text:?}"
        );
    }
}

/// Half-precision checkpoints: the random v7 weights stored as F16 and BF16 safetensors load
/// and track the f32 logits (BF16 keeps 8 mantissa bits: about 0.4% per weight).
#[test]
fn f16_and_bf16_safetensors_load() {
    use echos_rwkv_io::tensors::{read_tensor_file, write_safetensors_as};
    use echos_rwkv_io::FileType;
    let Some(data) = shared_data("f16_and_bf16_safetensors_load") else {
        return;
    };
    let file = read_tensor_file(&data.join("rwkv/random/random-v7.pth")).unwrap();
    let r = reference(&data.join("rwkv/random/random-v7-reference.npz"));
    for (ty, tol) in [(FileType::F16, 2e-2f32), (FileType::BF16, 0.06)] {
        let p = std::env::temp_dir().join(format!(
            "echos-half-{}-{}.safetensors",
            std::process::id(),
            ty.name()
        ));
        write_safetensors_as(&p, &file.tensors, ty).unwrap();
        let loaded = load_model(&p).unwrap();
        std::fs::remove_file(&p).ok();
        assert_eq!(loaded.file_type, ty);
        let d = max_abs_diff(&run_steps(&loaded.model, &r.tokens), &r.logits);
        eprintln!("random v7 as {}: max |Δlogit| {d:.3e}", ty.name());
        assert!(d > 0.0 && d < tol, "{}: {d}", ty.name());
    }
}

/// v5.1 (gate, one decay and bonus per head) has no reference file: the random v5.2 model
/// with each head's decay and bonus made constant is the same network written both ways, so
/// its v5.2 form (per channel) and v5.1 form (per head) must give the same logits.
#[test]
fn v5_1_layout_equals_v5_2_with_per_head_values() {
    use echos_rwkv_io::tensors::{read_tensor_file, write_safetensors};
    let Some(data) = shared_data("v5_1_layout_equals_v5_2_with_per_head_values") else {
        return;
    };
    let file = read_tensor_file(&data.join("rwkv/random/random-v5.pth")).unwrap();
    let mut per_channel = file.tensors.clone();
    let mut per_head = file.tensors.clone();
    for (k, t) in &file.tensors {
        if !(k.ends_with("att.time_decay") || k.ends_with("att.time_faaaa")) {
            continue;
        }
        let (h, n) = (t.shape[0], t.shape[1]);
        let head: Vec<f32> = t
            .data
            .chunks(n)
            .map(|c| c.iter().sum::<f32>() / n as f32)
            .collect();
        per_channel.get_mut(k).unwrap().data = head
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, n))
            .collect();
        let ph = per_head.get_mut(k).unwrap();
        ph.shape = vec![h];
        ph.data = head;
    }
    let dir = std::env::temp_dir();
    let (a, b) = (
        dir.join(format!("echos-v52-{}.safetensors", std::process::id())),
        dir.join(format!("echos-v51-{}.safetensors", std::process::id())),
    );
    write_safetensors(&a, &per_channel).unwrap();
    write_safetensors(&b, &per_head).unwrap();
    let (ma, mb) = (load_model(&a).unwrap().model, load_model(&b).unwrap().model);
    std::fs::remove_file(&a).ok();
    std::fs::remove_file(&b).ok();
    assert_eq!(ma.version, echos_rwkv_io::Version::V5_2);
    assert_eq!(mb.version, echos_rwkv_io::Version::V5_1);
    let tokens = [5u32, 100, 7, 255, 0, 31, 64, 128];
    assert_eq!(run_steps(&ma, &tokens), run_steps(&mb, &tokens));
}

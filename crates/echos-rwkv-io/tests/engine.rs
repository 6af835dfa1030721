//! Engine behaviour that must hold for every version: prefill and batch give the logits of
//! token-by-token steps, states save and restore exactly, kernels agree, int8 stays close.

mod common;

use common::{max_abs_diff, shared_data};
use echos_rwkv_io::synthetic::{synthetic_v7, SyntheticShape};
use echos_rwkv_io::{load_model, Kernel, Model, RwkvError, Scratch, Serial, SpinPool, State};

const TOKENS: [u32; 12] = [3, 200, 17, 17, 0, 255, 42, 99, 128, 7, 64, 1];

fn models() -> Vec<(String, Model)> {
    let mut out = vec![(
        "synthetic-v7".to_string(),
        synthetic_v7(
            &SyntheticShape {
                n_layer: 2,
                n_embd: 128,
                head_size: 32,
                vocab: 256,
            },
            7,
        )
        .unwrap(),
    )];
    if let Some(data) = shared_data("engine models") {
        for v in ["4", "5", "6", "7"] {
            let p = data.join(format!("rwkv/random/random-v{v}.pth"));
            out.push((format!("random-v{v}"), load_model(&p).unwrap().model));
        }
        let p = data.join("rwkv/trained/tiny-rwkv-5v1-730K.pth");
        out.push(("tiny-5v1".into(), load_model(&p).unwrap().model));
    }
    out
}

fn steps(model: &Model, tokens: &[u32]) -> Vec<f32> {
    let mut state = State::new(model);
    let mut scratch = Scratch::new(model, 1);
    tokens
        .iter()
        .flat_map(|&t| {
            model
                .step(&mut state, t, &mut scratch, &Serial)
                .unwrap()
                .to_vec()
        })
        .collect()
}

#[test]
fn prefill_gives_the_logits_of_single_steps() {
    for (name, model) in models() {
        let expected = steps(&model, &TOKENS);
        let mut state = State::new(&model);
        let mut scratch = Scratch::new(&model, TOKENS.len());
        let got = model
            .prefill(&mut state, &TOKENS, &mut scratch, &Serial, true)
            .unwrap()
            .to_vec();
        let d = max_abs_diff(&got, &expected);
        assert!(d < 1e-5, "{name}: prefill differs by {d}");
        // Longer than the scratch: processed in blocks, last logits only.
        let mut state2 = State::new(&model);
        let mut small = Scratch::new(&model, 5);
        let last = model
            .prefill(&mut state2, &TOKENS, &mut small, &Serial, false)
            .unwrap()
            .to_vec();
        let v = model.dims.vocab;
        assert!(
            max_abs_diff(&last, &expected[expected.len() - v..]) < 1e-5,
            "{name}: blocked prefill"
        );
        assert!(
            max_abs_diff(&state.wkv, &state2.wkv) < 1e-5,
            "{name}: states differ"
        );
    }
}

#[test]
fn batch_steps_independent_sequences() {
    for (name, model) in models() {
        let a = steps(&model, &TOKENS[..6]);
        let b = steps(&model, &TOKENS[6..]);
        let v = model.dims.vocab;
        let mut states = vec![State::new(&model), State::new(&model)];
        let mut scratch = Scratch::new(&model, 2);
        for t in 0..6 {
            let logits = model
                .step_batch(
                    &mut states,
                    &[TOKENS[t], TOKENS[6 + t]],
                    &mut scratch,
                    &Serial,
                )
                .unwrap();
            assert!(
                max_abs_diff(&logits[..v], &a[t * v..(t + 1) * v]) < 1e-5,
                "{name}: batch row 0, step {t}"
            );
            assert!(
                max_abs_diff(&logits[v..], &b[t * v..(t + 1) * v]) < 1e-5,
                "{name}: batch row 1, step {t}"
            );
        }
    }
}

#[test]
fn state_snapshot_restores_exactly() {
    for (name, model) in models() {
        let mut state = State::new(&model);
        let mut scratch = Scratch::new(&model, 1);
        for &t in &TOKENS[..4] {
            model.step(&mut state, t, &mut scratch, &Serial).unwrap();
        }
        let snapshot = state.clone();
        let first = model
            .step(&mut state, 9, &mut scratch, &Serial)
            .unwrap()
            .to_vec();
        model.step(&mut state, 10, &mut scratch, &Serial).unwrap();
        state.copy_from(&snapshot).unwrap();
        let again = model
            .step(&mut state, 9, &mut scratch, &Serial)
            .unwrap()
            .to_vec();
        assert_eq!(first, again, "{name}: restored state gives other logits");
        // Through a file as well.
        let dir = std::env::temp_dir().join(format!("echos-state-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.safetensors");
        echos_rwkv_io::state_io::save_state(&p, &model, &snapshot).unwrap();
        assert_eq!(
            echos_rwkv_io::state_io::load_state(&p, &model).unwrap(),
            snapshot
        );
        // One state, one byte sequence: the metadata's random map order must not leak into the
        // file (eight saves; an order-dependent writer differs with probability 1 − 2⁻⁷).
        let first = std::fs::read(&p).unwrap();
        for _ in 0..7 {
            echos_rwkv_io::state_io::save_state(&p, &model, &snapshot).unwrap();
            assert_eq!(
                std::fs::read(&p).unwrap(),
                first,
                "{name}: state file bytes vary"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn kernels_and_threads_agree() {
    let pool = SpinPool::new(2);
    for (name, mut model) in models() {
        model.set_kernel(Kernel::scalar());
        let scalar = steps(&model, &TOKENS);
        for k in [
            Kernel::detect_avx2(),
            Kernel::detect_avx512(),
            Kernel::detect(),
        ] {
            model.set_kernel(k);
            let got = steps(&model, &TOKENS);
            let d = max_abs_diff(&got, &scalar);
            assert!(
                d < 1e-4,
                "{name}: kernel {} differs from scalar by {d}",
                k.name()
            );
            let mut state = State::new(&model);
            let mut scratch = Scratch::new(&model, TOKENS.len());
            let threaded = model
                .prefill(&mut state, &TOKENS, &mut scratch, &pool, true)
                .unwrap()
                .to_vec();
            assert!(
                max_abs_diff(&threaded, &got) < 1e-5,
                "{name}: two threads differ"
            );
        }
        // Same kernel, same input: bit-identical.
        assert_eq!(steps(&model, &TOKENS), steps(&model, &TOKENS));
    }
}

/// int8 products are exact integer sums times two scales: every kernel gives the same bits.
#[test]
fn int8_products_are_bit_identical_across_kernels() {
    use echos_core::rwkv::linear::{matmul, QuantBuf};
    let (rows, cols, n) = (37, 200, 5);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.3)
        .collect();
    let x: Vec<f32> = (0..n * cols)
        .map(|i| ((i * 104729 % 997) as f32 / 498.0 - 1.0) * 2.0)
        .collect();
    let q = echos_core::rwkv::Matrix::f32(rows, cols, w).to_int8();
    let mut quant = QuantBuf::new(n, cols);
    let run = |k: Kernel, t: usize, quant: &mut QuantBuf| {
        let mut y = vec![0.0; t * rows];
        matmul(&q, &x, t, &mut y, k, &Serial, quant);
        y
    };
    for t in [1, n] {
        let reference = run(Kernel::scalar(), t, &mut quant);
        for k in [
            Kernel::detect_avx2(),
            Kernel::detect_avx512(),
            Kernel::detect(),
        ] {
            assert_eq!(
                run(k, t, &mut quant),
                reference,
                "kernel {} with {t} rows",
                k.name()
            );
        }
    }
}

#[test]
fn int8_is_identical_across_kernels_and_threads() {
    let pool = SpinPool::new(2);
    for (name, mut model) in models() {
        model.quantize_int8();
        model.set_kernel(Kernel::scalar());
        let scalar = steps(&model, &TOKENS);
        model.set_kernel(Kernel::detect());
        // The low-rank maps stay f32, whose kernels differ in summation order.
        let d = max_abs_diff(&steps(&model, &TOKENS), &scalar);
        assert!(
            d < 1e-4,
            "{name}: {} differs by {d}",
            Kernel::detect().name()
        );
        let mut state = State::new(&model);
        let mut scratch = Scratch::new(&model, TOKENS.len());
        let pre = model
            .prefill(&mut state, &TOKENS, &mut scratch, &pool, true)
            .unwrap()
            .to_vec();
        assert!(
            max_abs_diff(&pre, &scalar) < 1e-4,
            "{name}: int8 prefill differs"
        );
    }
}

#[test]
fn int8_stays_close_to_f32() {
    for (name, model) in models() {
        let f = steps(&model, &TOKENS);
        let mut q = model.clone();
        q.quantize_int8();
        let g = steps(&q, &TOKENS);
        let d = max_abs_diff(&f, &g);
        let scale = f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        eprintln!("{name}: int8 max |Δlogit| {d:.3e} (max |logit| {scale:.2})");
        assert!(d < 0.05 * scale.max(1.0), "{name}: int8 error {d}");
        assert!(q.weight_bytes_per_token() < model.weight_bytes_per_token());
    }
}

#[test]
fn bad_calls_are_errors() {
    let model = synthetic_v7(
        &SyntheticShape {
            n_layer: 1,
            n_embd: 64,
            head_size: 32,
            vocab: 256,
        },
        1,
    )
    .unwrap();
    let other = synthetic_v7(
        &SyntheticShape {
            n_layer: 2,
            n_embd: 64,
            head_size: 32,
            vocab: 256,
        },
        1,
    )
    .unwrap();
    let mut state = State::new(&model);
    let mut scratch = Scratch::new(&model, 2);
    assert_eq!(
        model
            .step(&mut state, 256, &mut scratch, &Serial)
            .unwrap_err(),
        RwkvError::TokenOutOfRange {
            token: 256,
            vocab: 256
        }
    );
    assert_eq!(
        model
            .prefill(&mut state, &[], &mut scratch, &Serial, false)
            .unwrap_err(),
        RwkvError::Empty
    );
    assert_eq!(
        model
            .prefill(&mut state, &[1, 2, 3], &mut scratch, &Serial, true)
            .unwrap_err(),
        RwkvError::TooManyRows {
            rows: 3,
            max_rows: 2
        }
    );
    let mut wrong = State::new(&other);
    assert_eq!(
        model
            .step(&mut wrong, 1, &mut scratch, &Serial)
            .unwrap_err(),
        RwkvError::StateMismatch
    );
    let wider = synthetic_v7(
        &SyntheticShape {
            n_layer: 1,
            n_embd: 128,
            head_size: 32,
            vocab: 256,
        },
        1,
    )
    .unwrap();
    let mut wrong_scratch = Scratch::new(&wider, 2);
    assert_eq!(
        model
            .step(&mut state, 1, &mut wrong_scratch, &Serial)
            .unwrap_err(),
        RwkvError::ScratchMismatch
    );
    assert!(State::new(&model).copy_from(&wrong).is_err());
    assert!(model
        .step_batch(&mut [State::new(&model)], &[1, 2], &mut scratch, &Serial)
        .is_err());
}

//! The step paths allocate nothing: a counting allocator watches this thread while a model
//! steps, prefills and steps a batch (after the buffers were made).

use echos_rwkv_io::synthetic::{synthetic_v7, SyntheticShape};
use echos_rwkv_io::{Model, Scratch, Serial, State};

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

fn count(f: impl FnOnce()) -> usize {
    echos_testalloc::count_allocations(f).0
}

fn check(mut model: Model, name: &str) {
    let mut state = State::new(&model);
    let mut states = vec![State::new(&model), State::new(&model)];
    let mut scratch = Scratch::new(&model, 8);
    let n = count(|| {
        model.step(&mut state, 5, &mut scratch, &Serial).unwrap();
        model
            .prefill(
                &mut state,
                &[1, 2, 3, 4, 5, 6, 7, 8],
                &mut scratch,
                &Serial,
                true,
            )
            .unwrap();
        model
            .prefill(&mut state, &[9; 20], &mut scratch, &Serial, false)
            .unwrap();
        model
            .step_batch(&mut states, &[3, 4], &mut scratch, &Serial)
            .unwrap();
    });
    assert_eq!(n, 0, "{name}: the step paths allocated {n} times");
    model.quantize_int8();
    let mut scratch = Scratch::new(&model, 8);
    let n = count(|| {
        model.step(&mut state, 5, &mut scratch, &Serial).unwrap();
        model
            .prefill(
                &mut state,
                &[1, 2, 3, 4, 5, 6, 7, 8],
                &mut scratch,
                &Serial,
                true,
            )
            .unwrap();
    });
    assert_eq!(n, 0, "{name} int8: the step paths allocated {n} times");
}

#[test]
fn steps_do_not_allocate() {
    let shape = SyntheticShape {
        n_layer: 2,
        n_embd: 128,
        head_size: 32,
        vocab: 300,
    };
    check(synthetic_v7(&shape, 3).unwrap(), "synthetic v7");
    let data = std::env::var_os("ECHOS_SHARED_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
        });
    if !data.join("rwkv").is_dir() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "shared data not found at {}; required in CI",
                data.display()
            );
        }
        eprintln!("SKIPPED (no shared data): steps_do_not_allocate (v4/v5/v6 part)");
        return;
    }
    for v in ["4", "5", "6"] {
        let model = echos_rwkv_io::load_model(&data.join(format!("rwkv/random/random-v{v}.pth")))
            .unwrap()
            .model;
        check(model, &format!("random v{v}"));
    }
}

/// The instrument itself: without it every allocation bound above would hold vacuously.
#[test]
fn the_counting_allocator_sees_allocations() {
    echos_testalloc::assert_counter_works();
}

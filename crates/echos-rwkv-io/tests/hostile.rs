//! Crafted model and token files (issue 16): each gives a typed error, never a panic, an
//! abort or a huge allocation. A counting allocator tracks this thread's peak of live bytes
//! while a file loads, and each test prints the figure it asserts on.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{pth_of, pth_zip, shared_data, state_dict_pickle, PthTensor};
use echos_rwkv_io::convert::build_model;
use echos_rwkv_io::tensors::{read_tensor_file, RawTensor, TensorFile};
use echos_rwkv_io::{load_model, npy, LoadError};

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

use echos_testalloc::peak_of;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("echos-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Loads `bytes` as a model file; returns the error and the peak allocation of the load.
fn load_err(bytes: &[u8], name: &str) -> (LoadError, usize) {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    let (r, peak) = peak_of(|| load_model(&p).map(|_| ()));
    std::fs::remove_file(&p).ok();
    println!(
        "{name}: {} bytes of file, peak {peak} bytes allocated",
        bytes.len()
    );
    (r.expect_err("a crafted file must not load"), peak)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn one_tensor_pth(t: PthTensor<'_>, storage: &[u8]) -> Vec<u8> {
    let pickle = state_dict_pickle(&[t]);
    pth_zip(
        &pickle,
        &[("0", false, &|w: &mut dyn Write| {
            w.write_all(storage).unwrap()
        })],
    )
}

// ------------------------------------------------------------------ 1: scalar tensors

/// Replaces one tensor of a real model and builds it.
fn build_with(
    file: &TensorFile,
    key: &str,
    shape: Vec<usize>,
    data: Vec<f32>,
) -> Result<(), LoadError> {
    let mut tensors = file.tensors.clone();
    tensors.insert(key.to_string(), RawTensor { shape, data });
    build_model(&TensorFile {
        tensors,
        layout: file.layout,
        file_type: file.file_type,
    })
    .map(|_| ())
}

#[test]
fn a_scalar_head_tensor_is_a_shape_error() {
    let Some(data) = shared_data("a_scalar_head_tensor_is_a_shape_error") else {
        return;
    };
    for rel in [
        "rwkv/random/random-v6.pth",
        "rwkv/trained/tiny-rwkv-5v2-730K.pth",
    ] {
        let file = read_tensor_file(&data.join(rel)).unwrap();
        let err = build_with(&file, "blocks.0.att.time_faaaa", vec![], vec![0.5]).unwrap_err();
        assert!(
            matches!(err, LoadError::Shape { ref key, .. } if key == "blocks.0.att.time_faaaa"),
            "{rel}: {err}"
        );
    }
}

/// Every tensor of every version, reshaped to a scalar, empty, flat, row, column or reversed,
/// is an error or a model — never a panic.
#[test]
fn every_tensor_in_every_odd_shape_is_refused_without_panic() {
    let Some(data) = shared_data("every_tensor_in_every_odd_shape_is_refused_without_panic") else {
        return;
    };
    let mut panics = Vec::new();
    for v in ["4", "5", "6", "7"] {
        let file = read_tensor_file(&data.join(format!("rwkv/random/random-v{v}.pth"))).unwrap();
        for (key, t) in &file.tensors {
            let n = t.data.len();
            let mut reversed = t.shape.clone();
            reversed.reverse();
            let variants: Vec<(Vec<usize>, Vec<f32>)> = vec![
                (vec![], t.data[..1].to_vec()),
                (vec![0], vec![]),
                (vec![0, n], vec![]),
                (vec![n], t.data.clone()),
                (vec![1, n], t.data.clone()),
                (vec![n, 1], t.data.clone()),
                (reversed, t.data.clone()),
            ];
            for (shape, d) in variants {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    build_with(&file, key, shape.clone(), d)
                }));
                if r.is_err() {
                    panics.push(format!("v{v} {key} as {shape:?}"));
                }
            }
        }
    }
    assert!(panics.is_empty(), "panicked: {panics:?}");
}

// ------------------------------------------------------------------ 2: strides

#[test]
fn zero_strides_cannot_inflate_a_tensor() {
    let storage = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    let cases: [(&[u64], &[u64]); 3] = [
        (&[1 << 40], &[0]),
        (&[1 << 14, 1 << 14], &[0, 0]),
        (&[1 << 32, 1 << 32], &[1, 1]),
    ];
    for (shape, stride) in cases {
        let bytes = one_tensor_pth(
            PthTensor {
                name: "emb.weight",
                dtype: "FloatStorage",
                key: "0",
                numel: 4,
                offset: 0,
                shape,
                stride,
            },
            &storage,
        );
        let (err, peak) = load_err(&bytes, "stride.pth");
        assert!(
            matches!(err, LoadError::Corrupt(ref m) if m.contains("emb.weight")),
            "{shape:?}: {err}"
        );
        assert!(
            peak < (64 << 10) + 2 * bytes.len(),
            "{shape:?}: peak {peak}"
        );
    }
    // A view past the end of its storage, and an offset that overflows.
    for (offset, shape, stride) in [
        (1, &[2u64, 2][..], &[2u64, 1][..]),
        (i64::MAX as u64, &[3][..], &[1 << 62][..]),
    ] {
        let bytes = one_tensor_pth(
            PthTensor {
                name: "emb.weight",
                dtype: "FloatStorage",
                key: "0",
                numel: 4,
                offset,
                shape,
                stride,
            },
            &storage,
        );
        let (err, _) = load_err(&bytes, "past.pth");
        assert!(matches!(err, LoadError::Truncated(_)), "{err}");
    }
}

#[test]
fn transposed_and_offset_views_read_their_elements() {
    // Storage 0..8; a (3, 2) view at offset 2 with stride (1, 3): rows [2, 5], [3, 6], [4, 7].
    let storage = f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    let bytes = one_tensor_pth(
        PthTensor {
            name: "w",
            dtype: "FloatStorage",
            key: "0",
            numel: 8,
            offset: 2,
            shape: &[3, 2],
            stride: &[1, 3],
        },
        &storage,
    );
    let p = tmp("view.pth");
    std::fs::write(&p, &bytes).unwrap();
    let file = read_tensor_file(&p).unwrap();
    std::fs::remove_file(&p).ok();
    assert_eq!(file.tensors["w"].shape, vec![3, 2]);
    assert_eq!(file.tensors["w"].data, vec![2.0, 5.0, 3.0, 6.0, 4.0, 7.0]);
}

#[test]
fn our_pth_writer_round_trips_a_real_model() {
    let Some(data) = shared_data("our_pth_writer_round_trips_a_real_model") else {
        return;
    };
    let file = read_tensor_file(&data.join("rwkv/random/random-v5.pth")).unwrap();
    let bytes = pth_of(&file.tensors);
    let p = tmp("roundtrip.pth");
    std::fs::write(&p, &bytes).unwrap();
    let again = read_tensor_file(&p).unwrap();
    std::fs::remove_file(&p).ok();
    assert_eq!(again.tensors, file.tensors);
}

// ------------------------------------------------------------------ 3: deflate bombs

/// 256 MiB of zeros, deflated to about 256 KiB.
const BOMB: usize = 256 << 20;

fn zeros(w: &mut dyn Write) {
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..BOMB / chunk.len() {
        w.write_all(&chunk).unwrap();
    }
}

#[test]
fn a_deflate_bomb_is_read_only_as_far_as_the_pickle_allows() {
    // The pickle claims a 4-element storage; the member inflates to 256 MiB.
    let pickle = state_dict_pickle(&[PthTensor {
        name: "emb.weight",
        dtype: "FloatStorage",
        key: "0",
        numel: 4,
        offset: 0,
        shape: &[2, 2],
        stride: &[2, 1],
    }]);
    let honest = pth_zip(&pickle, &[("0", true, &zeros)]);
    // The same archive with headers that claim the member inflates to 16 bytes.
    let mut lying = honest.clone();
    common::lie_about_size(&mut lying, "archive/data/0", 16);
    for (bytes, name) in [(honest, "bomb.pth"), (lying, "lying-bomb.pth")] {
        let t0 = Instant::now();
        let (err, peak) = load_err(&bytes, name);
        assert!(
            matches!(err, LoadError::Corrupt(ref m) if m.contains("more than the 16 bytes") || m.contains("past the 16 bytes")),
            "{name}: {err}"
        );
        assert!(peak < 4 * bytes.len() + (1 << 20), "{name}: peak {peak}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{name}");
    }

    // The pickle claims the whole 256 MiB: the checkpoint's expansion limit refuses it
    // before anything is inflated.
    let pickle = state_dict_pickle(&[PthTensor {
        name: "emb.weight",
        dtype: "FloatStorage",
        key: "0",
        numel: (BOMB / 4) as u64,
        offset: 0,
        shape: &[(BOMB / 4) as u64],
        stride: &[1],
    }]);
    let bytes = pth_zip(&pickle, &[("0", true, &zeros)]);
    let (err, peak) = load_err(&bytes, "bomb2.pth");
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
    assert!(peak < 4 * bytes.len() + (1 << 20), "peak {peak}");
}

// ------------------------------------------------------------------ 4, 5: pickles

fn pth_with_pickle(pickle: &[u8]) -> Vec<u8> {
    pth_zip(pickle, &[])
}

#[test]
fn a_pickle_of_mark_then_obj_is_a_pickle_error() {
    let (err, _) = load_err(&pth_with_pickle(b"\x80\x02(o."), "obj.pth");
    assert!(
        matches!(err, LoadError::Pickle(ref m) if m.contains("OBJ")),
        "{err}"
    );
}

#[test]
fn memo_references_do_not_multiply_memory() {
    let mut p = b"\x80\x02Nq\x00".to_vec();
    for i in 0u8..30 {
        p.extend_from_slice(&[b'h', i, b'h', i, 0x86, b'q', i + 1]);
    }
    p.push(b'.');
    assert_eq!(p.len(), 216);
    let t0 = Instant::now();
    let (err, peak) = load_err(&pth_with_pickle(&p), "memo.pth");
    assert!(
        matches!(err, LoadError::Pickle(ref m) if m.contains("no tensors")),
        "{err}"
    );
    assert!(peak < 1 << 20, "peak {peak}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

// ------------------------------------------------------------------ 6: npy token files

#[test]
fn token_files_with_deep_braces_or_huge_shapes_are_refused_quickly() {
    let npy_v2 = |header: &str, body: &[u8]| {
        let mut b = b"\x93NUMPY\x02\x00".to_vec();
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(body);
        b
    };
    // The old reader (npyz) took ~3x longer per nested brace; 10,000 would never end. Run it
    // on a thread so a regression fails instead of hanging.
    let braces = npy_v2(&("{".repeat(10_000) + &"}".repeat(10_000)), &[]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = npy::tokens_from_npy_bytes(&braces, "t.npy").map(|_| ());
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    let r = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("a 10,000-brace header must be refused within 2 s");
    assert!(
        matches!(&r, Err(m) if m.contains("not a valid .npy")),
        "{r:?}"
    );

    let p = tmp("huge.npy");
    for shape in ["(1099511627776,)", "(18446744073709551615,)"] {
        let header = format!("{{'descr': '<i8', 'fortran_order': False, 'shape': {shape}, }}");
        std::fs::write(&p, npy_v2(&header, &[0; 64])).unwrap();
        let (r, peak) = peak_of(|| npy::read_tokens(&p));
        println!("token file {shape}: peak {peak} bytes allocated");
        assert!(matches!(r, Err(npy::NpyError::Format(..))), "{r:?}");
        assert!(peak < 4096, "{shape}: peak {peak}");
    }
    std::fs::remove_file(&p).ok();
}

// ------------------------------------------------------------------ 8: ggml sizes

fn ggml(tensors: &[(&str, i32, &[i32], usize)]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x6767_6d66i32, 101, 256, 4, 1, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for &(name, code, dims, data_len) in tensors {
        for v in [dims.len() as i32, name.len() as i32, code] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for d in dims {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b.extend_from_slice(name.as_bytes());
        b.extend(std::iter::repeat_n(0u8, data_len));
    }
    b
}

#[test]
fn ggml_sizes_that_wrap_are_errors() {
    // 4 x 2^30 x 2^30 f32: 2^62 elements, 2^64 bytes, which wraps to 0 unchecked.
    let bytes = ggml(&[("emb.weight", 0, &[4, 1 << 30, 1 << 30], 0)]);
    let (err, peak) = load_err(&bytes, "wrap.bin");
    assert!(
        matches!(err, LoadError::Corrupt(ref m) if m.contains("impossible size")),
        "{err}"
    );
    assert!(peak < 4096, "peak {peak}");
    // 2^20 x 2^20 f32 in a 60-byte file: refused as truncated before any allocation.
    let bytes = ggml(&[("emb.weight", 0, &[1 << 20, 1 << 20], 16)]);
    let (err, peak) = load_err(&bytes, "huge.bin");
    assert!(matches!(err, LoadError::Truncated(_)), "{err}");
    assert!(peak < 4096, "peak {peak}");
}

// ------------------------------------------------------------------ safetensors

#[test]
fn safetensors_declaring_huge_sizes_allocate_nothing_big() {
    let st = |header: &str, body: usize| {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend(std::iter::repeat_n(0u8, body));
        b
    };
    let cases = [
        st(
            r#"{"emb.weight":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}"#,
            16,
        ),
        st(
            r#"{"emb.weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
            0,
        ),
        // A header length of 99 MB in a 40-byte file.
        {
            let mut b = 99_000_000u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]");
            b
        },
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let (err, peak) = load_err(bytes, &format!("huge{i}.safetensors"));
        assert!(matches!(err, LoadError::Safetensors(_)), "{i}: {err}");
        assert!(peak < 4096, "{i}: peak {peak}");
    }
}

// ------------------------------------------------------------------ files of the wrong kind

#[test]
fn an_esn_model_is_named_as_one() {
    // The metadata an echos ESN model file carries, with an f64 tensor as such files have.
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "echos-esn".to_string());
    let data = 1.0f64.to_le_bytes();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![1], &data).unwrap();
    let bytes = safetensors::serialize([("w_out", view)], Some(meta)).unwrap();
    let (err, _) = load_err(&bytes, "esn.safetensors");
    assert!(matches!(err, LoadError::EsnModel), "{err}");
    assert!(err.to_string().contains("echos esn"), "{err}");
}

// ------------------------------------------------------------------ zip end records

#[test]
fn a_zip_end_record_claiming_many_entries_costs_a_bounded_amount() {
    // 70 KB of zeros, one central header, an end record claiming 65,535 entries: the zip crate
    // reserves ~208 bytes per claimed entry before reading them (docs/rwkv.md: <= 13.6 MB for
    // a classic zip). This pins that bound.
    let mut f = vec![0u8; 70_000];
    let cd_start = f.len() as u32;
    let mut cdfh = vec![0u8; 46];
    cdfh[..4].copy_from_slice(b"PK\x01\x02");
    cdfh[28..30].copy_from_slice(&1u16.to_le_bytes());
    f.extend_from_slice(&cdfh);
    f.push(b'a');
    let mut eocd = vec![0u8; 22];
    eocd[..4].copy_from_slice(b"PK\x05\x06");
    eocd[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    eocd[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    eocd[12..16].copy_from_slice(&47u32.to_le_bytes());
    eocd[16..20].copy_from_slice(&cd_start.to_le_bytes());
    f.extend_from_slice(&eocd);
    // A .pth is recognised by its first bytes.
    f[..4].copy_from_slice(b"PK\x03\x04");
    let (err, peak) = load_err(&f, "eocd.pth");
    assert!(matches!(err, LoadError::Zip(_)), "{err}");
    assert!(peak < 14_000_000 + f.len(), "peak {peak}");
}

/// The instrument itself: without it every allocation bound above would hold vacuously.
#[test]
fn the_counting_allocator_sees_allocations() {
    echos_testalloc::assert_counter_works();
}

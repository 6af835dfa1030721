//! What the fuzz targets and the seed generator share: the framings that let mutations reach
//! past a format's checksums (a pickle wrapped in a valid zip, a model file whose CRC is
//! recomputed) and the fixed models the targets decode against. `seedgen` includes this file
//! with `#[path]`, so it must not use libFuzzer.

use std::io::Write;
use std::sync::OnceLock;

use echos_rwkv_io::synthetic::{synthetic_v7, SyntheticShape};
use echos_rwkv_io::Model;

/// The most storage members one fuzzed pickle input names (its first byte).
pub const MAX_STORAGES: usize = 255;

/// A `.pth` zip holding `pickle` as `archive/data.pkl` and one stored member
/// `archive/data/<i>` per storage: what `torch.save` writes, with valid CRCs whatever the bytes.
pub fn pth_zip(pickle: &[u8], storages: &[Vec<u8>]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    // Writing into memory cannot fail for inputs this small; a failure would be the zip
    // crate's bug, so it may abort the run and be seen.
    zip.start_file("archive/data.pkl", stored)
        .expect("zip member");
    zip.write_all(pickle).expect("zip write");
    for (i, s) in storages.iter().enumerate() {
        zip.start_file(format!("archive/data/{i}"), stored)
            .expect("zip member");
        zip.write_all(s).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

/// Storage bytes of a given length: small float32 values, so tensors decode to weights a model
/// can run on.
pub fn storage_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let v = ((i / 4) % 17) as f32 * 0.01 - 0.08;
            v.to_le_bytes()[i % 4]
        })
        .collect()
}

/// The fuzz input of `fuzz_pth_pickle`: `[n][n x u16 LE storage length in bytes][pickle...]`.
/// The fuzzer controls the pickle and how many bytes each storage `archive/data/<i>` has; the
/// zip around them is always valid.
pub fn pickle_input_to_pth(data: &[u8]) -> Vec<u8> {
    let Some((&n, mut rest)) = data.split_first() else {
        return pth_zip(&[], &[]);
    };
    let mut storages = Vec::new();
    for _ in 0..n {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        storages.push(storage_bytes(u16::from_le_bytes(*len) as usize));
        rest = tail;
    }
    pth_zip(rest, &storages)
}

/// The inverse framing, for seeds: a pickle and its storage lengths as a `fuzz_pth_pickle` input.
pub fn pth_pickle_input(pickle: &[u8], storage_lens: &[u16]) -> Vec<u8> {
    let mut out = vec![storage_lens.len() as u8];
    for l in storage_lens {
        out.extend_from_slice(&l.to_le_bytes());
    }
    out.extend_from_slice(pickle);
    out
}

/// Rewrites the `tensors_crc32` metadata of a safetensors model file to the CRC-32 of its
/// tensor bytes, when the header has that key with 8 characters: mutated files then get past
/// the checksum and reach the structural checks behind it. Anything else is left as it is.
pub fn fix_model_crc(bytes: &mut [u8]) {
    let Some(len) = bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)) else {
        return;
    };
    let Some(end) = usize::try_from(len).ok().and_then(|l| l.checked_add(8)) else {
        return;
    };
    if end > bytes.len() {
        return;
    }
    let key = b"\"tensors_crc32\":\"";
    let Some(at) = bytes[8..end]
        .windows(key.len())
        .position(|w| w == key)
        .map(|p| 8 + p + key.len())
    else {
        return;
    };
    if at + 8 > end {
        return;
    }
    let crc = crc32fast::hash(&bytes[end..]);
    bytes[at..at + 8].copy_from_slice(format!("{crc:08x}").as_bytes());
}

/// The small RWKV v7 model that `fuzz_state` decodes state files against.
pub fn state_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        synthetic_v7(
            &SyntheticShape {
                n_layer: 2,
                n_embd: 16,
                head_size: 8,
                vocab: 16,
            },
            1,
        )
        .expect("the synthetic shape is valid")
    })
}

/// The RWKV loader's path for any weight file: format dispatch, the reader, the converter to
/// an engine model, and one token through a model that builds. Errors are the expected
/// outcome; a panic, an abort or an allocation past libFuzzer's limit is the finding.
pub fn load_and_step(bytes: &[u8]) {
    use echos_rwkv_io::{convert, tensors, Scratch, Serial, State};
    let Ok(file) = tensors::read_tensor_bytes(bytes) else {
        return;
    };
    let Ok(model) = convert::build_model(&file) else {
        return;
    };
    let mut state = State::new(&model);
    let mut scratch = Scratch::new(&model, 1);
    model
        .step(&mut state, 0, &mut scratch, &Serial)
        .expect("a model that builds runs token 0");
}

/// Runs one input and reports a new slowest one on stderr (`echos-fuzz: slowest input ...`):
/// libFuzzer's own figure is in whole seconds, too coarse for the worst-time column of
/// `scripts/fuzz.sh`. Reports only when the record grows by a quarter, so a run prints a
/// few dozen such lines at most.
pub fn timed(run: impl FnOnce()) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SLOWEST_NS: AtomicU64 = AtomicU64::new(0);
    let t0 = std::time::Instant::now();
    run();
    let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let prev = SLOWEST_NS.load(Ordering::Relaxed);
    if ns > prev {
        SLOWEST_NS.store(ns, Ordering::Relaxed);
        if ns > prev + prev / 4 {
            eprintln!("echos-fuzz: slowest input {:.3} ms", ns as f64 / 1e6);
        }
    }
}

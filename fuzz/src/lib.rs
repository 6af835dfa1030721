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

// ------------------------------------------------------------------ event decoders

use echos_core::events::{DecodeError, DvsEvent, EventDecoder, Stats, TriggerEvent};

/// Bytes in front of an event-decoder target's payload: `[config][split seed: u16 LE][room]`.
/// `config` picks the decoder's options, the split seed where the payload is cut into chunks,
/// `room` the size of the output buffers (so decoders also stop and resume on full output).
pub const EVENT_PREFIX: usize = 4;

/// An event-decoder target's input, split into its framing and payload (missing framing bytes
/// read as zero).
#[derive(Clone, Copy, Debug)]
pub struct EventInput<'a> {
    pub config: u8,
    pub seed: u16,
    pub room: u8,
    pub payload: &'a [u8],
}

pub fn event_input(data: &[u8]) -> EventInput<'_> {
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    EventInput {
        config: b(0),
        seed: u16::from_le_bytes([b(1), b(2)]),
        room: b(3),
        payload: data.get(EVENT_PREFIX..).unwrap_or(&[]),
    }
}

/// The inverse of [`event_input`], for seeds.
pub fn event_input_bytes(config: u8, seed: u16, room: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![config];
    out.extend_from_slice(&seed.to_le_bytes());
    out.push(room);
    out.extend_from_slice(payload);
    out
}

/// Everything a decoder made of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub events: Vec<DvsEvent>,
    pub triggers: Vec<TriggerEvent>,
    pub stats: Stats,
}

/// The whole payload in one call sequence, with large buffers (`decode_all`).
pub fn decode_whole<D: EventDecoder + ?Sized>(
    d: &mut D,
    payload: &[u8],
) -> Result<Decoded, DecodeError> {
    echos_core::events::decode_all(d, payload).map(|(events, triggers, stats)| Decoded {
        events,
        triggers,
        stats,
    })
}

/// The payload cut into chunks of pseudo-random sizes (0 bytes to a few records, from `seed`)
/// and decoded into output buffers of 1–64 events and 1–4 triggers (from `room`). Checks the
/// streaming contract on the way: a call consumes no more than it was given, and all of it
/// unless an output buffer was full; a call after a full buffer makes progress.
pub fn decode_chunked<D: EventDecoder + ?Sized>(
    d: &mut D,
    payload: &[u8],
    seed: u16,
    room: u8,
) -> Result<Decoded, DecodeError> {
    let mut ev_buf = vec![DvsEvent::default(); 1 + (room % 64) as usize];
    let mut tr_buf = vec![TriggerEvent::default(); 1 + (room >> 6) as usize];
    let mut out = Decoded {
        events: Vec::new(),
        triggers: Vec::new(),
        stats: Stats::default(),
    };
    // xorshift32: a reproducible sequence of cut points for each seed
    let mut x = u32::from(seed) << 8 | 0x9E;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut rest = payload;
    loop {
        let r = next();
        let len = match r % 4 {
            0 => (r >> 8) % 4,
            1 => (r >> 8) % 17,
            _ => (r >> 8) % 200,
        } as usize;
        let (mut chunk, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let mut idle = 0;
        loop {
            let p = d.decode(chunk, &mut ev_buf, &mut tr_buf)?;
            assert!(
                p.consumed <= chunk.len(),
                "consumed {} of {}",
                p.consumed,
                chunk.len()
            );
            assert!(p.events <= ev_buf.len() && p.triggers <= tr_buf.len());
            out.events.extend_from_slice(&ev_buf[..p.events]);
            out.triggers.extend_from_slice(&tr_buf[..p.triggers]);
            chunk = &chunk[p.consumed..];
            if !p.output_full {
                assert!(
                    chunk.is_empty(),
                    "{} input bytes left without a full output buffer",
                    chunk.len()
                );
                break;
            }
            idle = if p.consumed == 0 && p.events == 0 && p.triggers == 0 {
                idle + 1
            } else {
                0
            };
            assert!(idle < 3, "a full-output call made no progress");
        }
        if rest.is_empty() {
            break;
        }
    }
    out.stats = d.finish()?;
    Ok(out)
}

/// The checks every event-decoder target makes: whole and chunked decoding give the same
/// events, triggers, counters or error; the counters agree with the output; and, for formats
/// whose every record carries its full time (`monotonic`), a stream without a counted jump
/// back has non-decreasing event times.
pub fn check_decoder<D: EventDecoder>(
    make: impl Fn() -> D,
    payload: &[u8],
    inp: &EventInput,
    monotonic: bool,
) {
    let whole = decode_whole(&mut make(), payload);
    let chunked = decode_chunked(&mut make(), payload, inp.seed, inp.room);
    assert_eq!(whole, chunked, "chunking changed the decoded stream");
    if let Ok(d) = &whole {
        assert_eq!(d.stats.events, d.events.len() as u64, "stats.events");
        assert_eq!(d.stats.triggers, d.triggers.len() as u64, "stats.triggers");
        assert!(d.stats.bytes <= payload.len() as u64, "stats.bytes");
        if monotonic && d.stats.time_jumps_back == 0 {
            if let Some(w) = d.events.windows(2).find(|w| w[1].t < w[0].t) {
                panic!("time went back without a counted jump: {:?}", w);
            }
        }
    }
}

// ------------------------------------------------------------------ AEDAT 4 framing

/// An AEDAT 4 file header: the magic, the IOHeader FlatBuffer's length and the FlatBuffer
/// (`IOHE`: compression, no data table, `description` as its info node), laid out by hand.
pub fn aedat4_header(compression: i32, description: &str) -> Vec<u8> {
    let mut fb = Vec::new();
    fb.extend_from_slice(&16u32.to_le_bytes()); // root table at 16
    fb.extend_from_slice(b"IOHE");
    // vtable at 8: its size, the table's size, field offsets (compression 4, table pos absent,
    // info node 8)
    for v in [10u16, 12, 4, 0, 8] {
        fb.extend_from_slice(&v.to_le_bytes());
    }
    fb.resize(16, 0);
    fb.extend_from_slice(&8i32.to_le_bytes()); // table → vtable: 16 - 8
    fb.extend_from_slice(&compression.to_le_bytes());
    fb.extend_from_slice(&4u32.to_le_bytes()); // string at 24 + 4
    fb.extend_from_slice(&(description.len() as u32).to_le_bytes());
    fb.extend_from_slice(description.as_bytes());
    fb.push(0);
    let mut out = b"#!AER-DAT4.0\r\n".to_vec();
    out.extend_from_slice(&(fb.len() as u32).to_le_bytes());
    out.extend_from_slice(&fb);
    out
}

/// Packet bodies compressed as AEDAT 4 `compression` names (0 none, 1–2 LZ4 frame, 3–4 Zstd).
pub fn aedat4_compress(compression: i32, data: &[u8]) -> Vec<u8> {
    match compression {
        1 | 2 => {
            // 64 KiB blocks: the decoder's buffers follow the frame's block size (4 MiB by
            // default), which would make every run allocate megabytes
            let info =
                lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max64KB);
            let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            e.write_all(data).expect("in-memory write");
            e.finish().expect("in-memory write")
        }
        3 | 4 => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
        _ => data.to_vec(),
    }
}

/// Re-frames the packets of an uncompressed AEDAT 4 stream (`[i32 stream][u32 size][body]`
/// each) with their bodies compressed: what lets mutations of the FlatBuffers inside reach
/// the decoder through a valid LZ4 or Zstd frame. A cut last packet is kept as it is.
pub fn aedat4_recompress(packets: &[u8], compression: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = packets;
    while rest.len() >= 8 {
        let size = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let Some(body) = rest.get(8..8 + size) else {
            break;
        };
        let packed = aedat4_compress(compression, body);
        out.extend_from_slice(&rest[..4]);
        out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        out.extend_from_slice(&packed);
        rest = &rest[8 + size..];
    }
    out.extend_from_slice(rest);
    out
}

//! Writes the seed corpora of the fuzz targets into `fuzz/seeds/<target>/`: small, valid (and a
//! few deliberately odd) files made by the project's own writers, plus RWKV checkpoints cut down
//! from the shared reference models (`../shared/data/rwkv`) to a few KiB each so mutations stay
//! fast. Every seed is under 64 KiB. Run from the repository root:
//! `cargo run --release --manifest-path fuzz/Cargo.toml -p seedgen [SHARED_DATA_DIR]`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use echos_core::esn::StepKernel;
use echos_core::topology::Topology;
use echos_host::training::{self, Generative, Solver, TrainOptions};
use echos_host::{model_file, Array2};
use echos_rwkv_io::tensors::{read_tensor_file, write_safetensors_as, RawTensor, TensorFile};
use echos_rwkv_io::{convert, state_io, FileType, Scratch, Serial, State};

#[path = "../../src/lib.rs"]
#[allow(dead_code)]
mod framing;

/// libFuzzer mutates inputs this size quickly; every committed seed stays below it.
const MAX_SEED: usize = 64 << 10;

struct Out {
    root: PathBuf,
    written: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        if bytes.len() >= MAX_SEED {
            eprintln!(
                "seedgen: {target}/{name} is {} bytes, not written",
                bytes.len()
            );
            return;
        }
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("create seed directory");
        std::fs::write(dir.join(name), bytes).expect("write seed");
        self.written += 1;
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("ECHOS_SHARED_DATA").map(PathBuf::from))
        .unwrap_or_else(|| root.join("../../shared/data"));
    let mut out = Out {
        root: root.join("seeds"),
        written: 0,
    };
    npy(&mut out);
    csv(&mut out);
    models(&mut out);
    state(&mut out);
    tokenizer(&mut out);
    elf(&mut out);
    abi(&mut out);
    events(&mut out, &shared.join("events"));
    rt(&mut out);
    if shared.join("rwkv").is_dir() {
        rwkv(&mut out, &shared.join("rwkv"));
    } else {
        eprintln!(
            "seedgen: no shared data at {}: RWKV checkpoint seeds not written",
            shared.display()
        );
    }
    println!("seedgen: {} seeds in {}", out.written, out.root.display());
}

// ------------------------------------------------------------------ .npy and CSV

fn npy_raw(version: u8, header: &str, body: &[u8]) -> Vec<u8> {
    let mut out = echos_npy::MAGIC.to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

fn npy(out: &mut Out) {
    let t = "fuzz_npy";
    let series: Vec<f64> = (0..24).map(|i| (i as f64 * 0.3).sin()).collect();
    out.put(
        t,
        "f8_2d.npy",
        &echos_npy::to_bytes_f64(&[8, 3], &series).unwrap(),
    );
    out.put(
        t,
        "f8_1d.npy",
        &echos_npy::to_bytes_f64(&[24], &series).unwrap(),
    );
    let f: Vec<f32> = series.iter().map(|&v| v as f32).collect();
    out.put(
        t,
        "f4_2d.npy",
        &echos_npy::to_bytes_f32(&[4, 6], &f).unwrap(),
    );
    out.put(
        t,
        "f8_empty.npy",
        &echos_npy::to_bytes_f64(&[0, 3], &[]).unwrap(),
    );
    let ints: Vec<u8> = (0..16i32).flat_map(|v| v.to_le_bytes()).collect();
    for (name, version, descr, shape, body) in [
        ("i4_tokens.npy", 1, "<i4", "(16,)", ints.clone()),
        ("i4_be.npy", 2, ">i4", "(4, 4)", ints.clone()),
        ("u2_v3.npy", 3, "<u2", "(2, 4)", ints[..16].to_vec()),
        (
            "i8.npy",
            1,
            "<i8",
            "(8,)",
            [ints.clone(), ints.clone()].concat(),
        ),
        ("u1_scalar.npy", 1, "|u1", "()", vec![7]),
        ("f8_fortran.npy", 1, "<f8", "(2, 2)", vec![0; 32]),
    ] {
        let fortran = if name.contains("fortran") {
            "True"
        } else {
            "False"
        };
        let header =
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
        out.put(t, name, &npy_raw(version, &header, &body));
    }
}

fn csv(out: &mut Out) {
    let t = "fuzz_csv";
    for (name, text) in [
        ("plain.csv", "0.5,1\n-2.25,3e-3\n4,5\n"),
        ("header.csv", "x,y,z\n1,2,3\n4,5,6\n"),
        ("crlf_blank.csv", "a\r\n1.5\r\n\r\n2.5\r\n"),
        ("quoted.csv", "\"1\", \" 2 \"\n3,\"4\"\n"),
        ("ragged.csv", "1,2\n3\n"),
        ("nonfinite.csv", "1,NaN\ninf,2\n"),
        ("big_exponent.csv", "1e308,1e-320\n-0,0\n"),
    ] {
        out.put(t, name, text.as_bytes());
    }
}

// ------------------------------------------------------------------ ESN model files

fn models(out: &mut Out) {
    let t = "fuzz_model";
    let (u, y) = echos_host::datasets::narma10(260, 5).unwrap();
    let input = Array2::column(u[..200].to_vec()).unwrap();
    let target = Array2::column(y[..200].to_vec()).unwrap();
    let two = Array2::new(100, 2, u[..200].to_vec()).unwrap();
    let cases: Vec<(&str, Topology, usize, bool, Generative, Solver)> = vec![
        (
            "random",
            Topology::Random,
            24,
            true,
            Generative::None,
            Solver::NormalEquations,
        ),
        (
            "dense",
            Topology::Random,
            8,
            false,
            Generative::None,
            Solver::Qr,
        ),
        (
            "cycle",
            Topology::Cycle,
            12,
            false,
            Generative::Input,
            Solver::NormalEquations,
        ),
        (
            "delay",
            Topology::DelayLine,
            10,
            true,
            Generative::None,
            Solver::NormalEquations,
        ),
        (
            "jumps",
            Topology::CycleJumps { jump: 3 },
            12,
            false,
            Generative::None,
            Solver::NormalEquations,
        ),
        (
            "block",
            Topology::Block { size: 4 },
            16,
            false,
            Generative::None,
            Solver::NormalEquations,
        ),
        (
            "feedback",
            Topology::Random,
            20,
            false,
            Generative::Feedback,
            Solver::Qr,
        ),
    ];
    for (name, topology, units, input_features, generative, solver) in cases {
        let opts = TrainOptions {
            units,
            spectral_radius: 0.9,
            leak_rate: 0.8,
            input_scaling: 1.0,
            bias_scaling: 0.5,
            connectivity: 0.3,
            topology,
            ridge: 1e-6,
            washout: 20,
            input_features,
            generative,
            feedback_scaling: if generative == Generative::Feedback {
                0.5
            } else {
                0.0
            },
            noise: 0.0,
            solver,
            seed: 3,
            kernel: StepKernel::Exact,
        };
        let (x, yy) = if generative == Generative::Input {
            // One-step-ahead: the target is the input shifted.
            (
                Array2::column(u[..199].to_vec()).unwrap(),
                Array2::column(u[1..200].to_vec()).unwrap(),
            )
        } else if name == "jumps" {
            (two.clone(), Array2::new(100, 2, y[..200].to_vec()).unwrap())
        } else {
            (input.clone(), target.clone())
        };
        let model = training::train(&opts, &x, &yy)
            .unwrap_or_else(|e| panic!("training the {name} seed model: {e}"));
        let bytes = model_file::to_bytes(&model).unwrap();
        // Mode byte 1: the target recomputes the checksum after mutation; 0: raw bytes.
        out.put(
            t,
            &format!("{name}_crc_fixed.bin"),
            &[&[1u8][..], &bytes].concat(),
        );
        out.put(
            t,
            &format!("{name}_raw.bin"),
            &[&[0u8][..], &bytes].concat(),
        );
    }
}

// ------------------------------------------------------------------ RWKV state files

fn state(out: &mut Out) {
    let t = "fuzz_state";
    let model = framing::state_model();
    let dir = tempfile_dir();
    let path = dir.join("s.safetensors");
    let mut st = State::new(model);
    state_io::save_state(&path, model, &st).unwrap();
    out.put(t, "fresh.safetensors", &std::fs::read(&path).unwrap());
    let mut scratch = Scratch::new(model, 4);
    model
        .prefill(&mut st, &[1, 2, 3], &mut scratch, &Serial, false)
        .unwrap();
    state_io::save_state(&path, model, &st).unwrap();
    out.put(t, "stepped.safetensors", &std::fs::read(&path).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("echos-seedgen-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ------------------------------------------------------------------ tokenizer

fn tokenizer(out: &mut Out) {
    let t = "fuzz_tokenizer";
    for (name, text) in [
        (
            "ascii",
            &b"In the beginning was the word, and the word was"[..],
        ),
        ("utf8", "Grüße, 世界! ✓ — ¿qué?".as_bytes()),
        ("invalid_utf8", &b"ab\xff\xfe\xc3(\xe2\x82"[..]),
        ("newlines", &b"\n\n\r\n\t  x\x00y"[..]),
    ] {
        out.put(t, &format!("shipped_{name}"), &[&[0u8][..], text].concat());
    }
    // A small vocabulary in the shipped file's own lines: its 256 single bytes and some longer
    // tokens, then a NUL and text to encode with it.
    let lines: Vec<&str> = echos_rwkv_io::tokenizer::WORLD_VOCAB.lines().collect();
    let mut vocab: String = lines
        .iter()
        .filter(|l| l.trim_end().ends_with(" 1"))
        .map(|l| format!("{}\n", l.trim_end_matches('\r')))
        .collect();
    for l in lines.iter().skip(300).step_by(97).take(120) {
        vocab.push_str(l.trim_end_matches('\r'));
        vocab.push('\n');
    }
    let mut input = vec![1u8];
    input.extend_from_slice(vocab.as_bytes());
    input.push(0);
    input.extend_from_slice("the quick brown fox — ü".as_bytes());
    out.put(t, "own_vocab", &input);
    out.put(
        t,
        "own_vocab_literals",
        b"\x011 b'\\x00' 1\n2 '\\u00e9' 2\n3 \"\\\"q\" 2\n4 b'\\\\' 1\n\x00\xc3\xa9\"q",
    );
}

// ------------------------------------------------------------------ ELF images

fn elf_image(entry: u64, phs: &[(u32, u32, u64, u64, u64, u64)], file_len: usize) -> Vec<u8> {
    let mut b = vec![0u8; file_len.max(64 + phs.len() * 56)];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    for (i, &(p_type, flags, offset, vaddr, filesz, memsz)) in phs.iter().enumerate() {
        let o = 64 + i * 56;
        b[o..o + 4].copy_from_slice(&p_type.to_le_bytes());
        b[o + 4..o + 8].copy_from_slice(&flags.to_le_bytes());
        for (k, v) in [offset, vaddr, vaddr, filesz, memsz, 4096]
            .into_iter()
            .enumerate()
        {
            b[o + 8 + 8 * k..o + 16 + 8 * k].copy_from_slice(&v.to_le_bytes());
        }
    }
    b
}

fn elf(out: &mut Out) {
    let t = "fuzz_elf";
    let (r, w, x) = (4u32, 2u32, 1u32);
    out.put(
        t,
        "text_data.elf",
        &elf_image(
            0x40_1000,
            &[
                (1, r | x, 0x1000, 0x40_1000, 0x800, 0x800),
                (1, r | w, 0x2000, 0x40_3000, 0x100, 0x3000),
            ],
            0x2100,
        ),
    );
    out.put(
        t,
        "with_note_and_stack.elf",
        &elf_image(
            0x20_0010,
            &[
                (4, r, 0x200, 0, 0x20, 0x20),
                (1, r | x, 0, 0x20_0000, 0x400, 0x400),
                (0x6474_e551, r | w, 0, 0, 0, 0),
            ],
            0x400,
        ),
    );
    out.put(
        t,
        "interp.elf",
        &elf_image(0x40_1000, &[(3, r, 0x100, 0, 0x10, 0x10)], 0x200),
    );
    let many: Vec<_> = (0..9)
        .map(|i| (1, r | x, 0, 0x40_0000 + i * 0x1000, 0x40, 0x40))
        .collect();
    out.put(t, "nine_segments.elf", &elf_image(0x40_0000, &many, 0x1000));
}

// ------------------------------------------------------------------ syscall arguments

fn abi(out: &mut Out) {
    use echos_abi::{CapHandle, Request, ReservoirCreateArgs, Rights, Topology as T, Q16_ONE};
    let t = "fuzz_abi";
    let handle = CapHandle::new(3, 7, Rights::ALL);
    let requests = [
        Request::LogWrite {
            ptr: 0x40_0000,
            len: 16,
        },
        Request::ReservoirStep { args: 0x10_0000 },
        Request::CapDerive {
            handle,
            rights: Rights::READ,
        },
        Request::MutexLock { mutex: 2 },
    ];
    let create = ReservoirCreateArgs {
        seed: 42,
        units: 100,
        inputs: 1,
        outputs: 1,
        topology: T::SparseRandom,
        spectral_radius_q16: Q16_ONE * 9 / 10,
        leak_rate_q16: Q16_ONE,
        input_scaling_q16: Q16_ONE,
        density_q16: Q16_ONE / 10,
    };
    for (i, req) in requests.iter().enumerate() {
        let (n, regs) = req.encode();
        let mut b = Vec::new();
        b.extend_from_slice(&n.to_le_bytes());
        for r in regs {
            b.extend_from_slice(&r.to_le_bytes());
        }
        b.extend_from_slice(&handle.to_raw().to_le_bytes());
        b.extend_from_slice(&u64::from(Rights::ALL.bits()).to_le_bytes());
        b.extend_from_slice(&create.to_bytes());
        // The other structs zeroed, then two regions (RW data, R weights) and three checks.
        b.extend_from_slice(&[0u8; 32 + 24 + 32 + 16 + 40 + 456]);
        b.push(2);
        for (flags, start, len) in [(3u8, 0x10_0000u64, 0x2000u64), (1, 0x20_0000, 0x1000)] {
            b.push(flags);
            b.extend_from_slice(&start.to_le_bytes());
            b.extend_from_slice(&len.to_le_bytes());
        }
        for (flags, ptr, len) in [
            (1u8, 0x10_0ff0u64, 0x20u64),
            (0, 0x20_0000, 0x1000),
            (1, 0x20_0000 + i as u64, 4),
        ] {
            b.push(flags);
            b.extend_from_slice(&ptr.to_le_bytes());
            b.extend_from_slice(&len.to_le_bytes());
        }
        out.put(t, &format!("request_{i}"), &b);
    }
}

// ------------------------------------------------------------------ RWKV checkpoints

/// Cuts a reference model down: two layers, n_embd 16, vocab 32, low-rank and FFN widths a
/// quarter (a function of each old dimension, so tensors that must agree still agree).
fn shrink(file: &TensorFile) -> BTreeMap<String, RawTensor> {
    let emb = &file.tensors["emb.weight"];
    let (vocab, c) = (emb.shape[0], emb.shape[1]);
    let head = file
        .tensors
        .iter()
        .find(|(k, _)| k.ends_with("att.time_faaaa") || k.ends_with("att.r_k"))
        // [n_head, head_size], or with a trailing 1 as rwkv.cpp stores it.
        .and_then(|(_, t)| t.shape.iter().rev().find(|&&d| d > 1).copied())
        .unwrap_or(16);
    let heads = file
        .tensors
        .keys()
        .any(|k| k.ends_with("att.time_faaaa") || k.ends_with("att.r_k"));
    // One head of the whole width shrinks with it; otherwise keep the head size, one head.
    let new_head = if head == c { 16 } else { head };
    let new_c = new_head.max(16);
    let n_head = c / head;
    let map = |d: usize| -> usize {
        if d == vocab {
            32
        } else if d == c {
            new_c
        } else if heads && d == head {
            new_head
        } else if heads && d == n_head {
            new_c / new_head
        } else if d < 32 {
            d
        } else {
            d / 4
        }
    };
    file.tensors
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("blocks.") || k.starts_with("blocks.0.") || k.starts_with("blocks.1.")
        })
        .map(|(k, t)| {
            let shape: Vec<usize> = t.shape.iter().map(|&d| map(d)).collect();
            (
                k.clone(),
                RawTensor::new(shape.clone(), slice(t, &shape)).unwrap(),
            )
        })
        .collect()
}

/// The leading `shape` corner of `t`.
fn slice(t: &RawTensor, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        let mut at = 0;
        for (d, &i) in idx.iter().enumerate() {
            at = at * t.shape[d] + i;
        }
        out.push(t.data[at]);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

fn pickle_int(p: &mut Vec<u8>, v: u64) {
    if v < 256 {
        p.extend_from_slice(&[b'K', v as u8]);
    } else {
        p.push(b'J');
        p.extend_from_slice(&(v as u32).to_le_bytes());
    }
}

fn pickle_str(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

/// The `data.pkl` torch.save writes for a state dict of contiguous tensors, storage `i` for
/// tensor `i`, with a memo the way torch's pickler uses it (BINPUT/BINGET of the storage class).
fn state_dict_pickle(tensors: &[(&String, &RawTensor)], storage: &str) -> Vec<u8> {
    let mut p = b"\x80\x02}q\x00(".to_vec();
    for (i, (name, t)) in tensors.iter().enumerate() {
        pickle_str(&mut p, name);
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\nq\x01((");
        pickle_str(&mut p, "storage");
        if i == 0 {
            p.extend_from_slice(format!("ctorch\n{storage}\nq\x02").as_bytes());
        } else {
            p.extend_from_slice(b"h\x02");
        }
        pickle_str(&mut p, &i.to_string());
        pickle_str(&mut p, "cpu");
        pickle_int(&mut p, t.data.len() as u64);
        p.extend_from_slice(b"tQ");
        pickle_int(&mut p, 0);
        let mut stride = vec![1u64; t.shape.len()];
        for d in (0..t.shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * t.shape[d + 1] as u64;
        }
        for dims in [
            t.shape.iter().map(|&d| d as u64).collect::<Vec<_>>(),
            stride,
        ] {
            p.push(b'(');
            for d in dims {
                pickle_int(&mut p, d);
            }
            p.push(b't');
        }
        p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend_from_slice(b"u.");
    p
}

fn encode(v: &[f32], ty: FileType) -> Vec<u8> {
    match ty {
        FileType::F16 => v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect(),
        FileType::BF16 => v
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect(),
        _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// ggml blocks of 32 values: a scale (and minimum) in f16 and small integers, as rwkv.cpp
/// quantizes (round to nearest; the fuzz seeds need the layout, not the accuracy).
fn quantize(v: &[f32], code: i32) -> Vec<u8> {
    let f16 = |x: f32| half::f16::from_f32(x).to_le_bytes();
    let mut out = Vec::new();
    for b in v.chunks_exact(32) {
        let amax = b.iter().fold(0f32, |a, x| a.max(x.abs())).max(1e-6);
        match code {
            9 => {
                let d = amax / 127.0;
                out.extend_from_slice(&f16(d));
                out.extend(b.iter().map(|x| (x / d).round() as i8 as u8));
            }
            2 | 3 | 7 | 8 => {
                let d = amax / 8.0;
                out.extend_from_slice(&f16(d));
                if code == 3 || code == 8 {
                    out.extend_from_slice(&f16(-amax));
                }
                if code == 7 || code == 8 {
                    out.extend_from_slice(&0u32.to_le_bytes());
                }
                let q = |x: f32| ((x / d).round() as i32 + 8).clamp(0, 15) as u8;
                out.extend((0..16).map(|j| q(b[j]) | (q(b[j + 16]) << 4)));
            }
            _ => unreachable!("quantization code {code}"),
        }
    }
    out
}

/// An rwkv.cpp file (version 101): header, then per tensor ndim, key length, type, dims
/// innermost first, key, data.
fn ggml(tensors: &BTreeMap<String, RawTensor>, file_code: i32) -> Vec<u8> {
    let emb = &tensors["emb.weight"];
    let n_layer = tensors
        .keys()
        .filter_map(|k| {
            k.strip_prefix("blocks.")?
                .split('.')
                .next()?
                .parse::<i32>()
                .ok()
        })
        .max()
        .map_or(0, |l| l + 1);
    let mut b = Vec::new();
    for v in [
        echos_rwkv_io::tensors::GGML_MAGIC as i32,
        101,
        emb.shape[0] as i32,
        emb.shape[1] as i32,
        n_layer,
        file_code,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (k, t) in tensors {
        // As rwkv.cpp writes them: vectors stay FP32, matrices take the file's type.
        let code = match (t.shape.len(), file_code) {
            (2, 1) => 1,
            (2, q) if q > 1 && t.data.len() % 32 == 0 => q,
            _ => 0,
        };
        for v in [t.shape.len() as i32, k.len() as i32, code] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for &d in t.shape.iter().rev() {
            b.extend_from_slice(&(d as i32).to_le_bytes());
        }
        b.extend_from_slice(k.as_bytes());
        match code {
            0 => b.extend(encode(&t.data, FileType::F32)),
            1 => b.extend(encode(&t.data, FileType::F16)),
            q => b.extend(quantize(&t.data, q)),
        }
    }
    b
}

fn rwkv(out: &mut Out, dir: &Path) {
    let tmp = tempfile_dir();
    for v in 4..=7 {
        let src = dir.join(format!("random/random-v{v}.pth"));
        let file = read_tensor_file(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let small = shrink(&file);
        let check = TensorFile {
            tensors: small.clone(),
            layout: file.layout,
            file_type: FileType::F32,
        };
        if let Err(e) = convert::build_model(&check) {
            eprintln!("seedgen: the cut-down v{v} model does not build ({e}); skipped");
            continue;
        }
        for ty in [FileType::F32, FileType::F16, FileType::BF16] {
            let p = tmp.join("m.safetensors");
            write_safetensors_as(&p, &small, ty).unwrap();
            out.put(
                "fuzz_safetensors",
                &format!("v{v}_{}.safetensors", ty.name()),
                &std::fs::read(&p).unwrap(),
            );
        }
        let entries: Vec<_> = small.iter().collect();
        for (ty, class) in [
            (FileType::F32, "FloatStorage"),
            (FileType::F16, "HalfStorage"),
        ] {
            let pickle = state_dict_pickle(&entries, class);
            let storages: Vec<Vec<u8>> = small.values().map(|t| encode(&t.data, ty)).collect();
            let pth = framing::pth_zip(&pickle, &storages);
            if let Err(e) = echos_rwkv_io::tensors::read_tensor_bytes(&pth)
                .and_then(|f| convert::build_model(&f))
            {
                eprintln!(
                    "seedgen: our v{v} {} .pth does not load ({e}); skipped",
                    ty.name()
                );
                continue;
            }
            out.put("fuzz_pth", &format!("v{v}_{}.pth", ty.name()), &pth);
            let lens: Vec<u16> = storages.iter().map(|s| s.len() as u16).collect();
            assert!(lens.len() <= framing::MAX_STORAGES);
            out.put(
                "fuzz_pth_pickle",
                &format!("v{v}_{}.bin", ty.name()),
                &framing::pth_pickle_input(&pickle, &lens),
            );
        }
    }
    // A deflated member, as some re-packed checkpoints have.
    let v7 = read_tensor_file(&dir.join("random/random-v7.pth")).unwrap();
    let small = shrink(&v7);
    let entries: Vec<_> = small.iter().collect();
    let pickle = state_dict_pickle(&entries, "FloatStorage");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("archive/data.pkl", deflated).unwrap();
    zip.write_all(&pickle).unwrap();
    for (i, t) in small.values().enumerate() {
        zip.start_file(format!("archive/data/{i}"), deflated)
            .unwrap();
        zip.write_all(&encode(&t.data, FileType::F32)).unwrap();
    }
    out.put(
        "fuzz_pth",
        "v7_deflated.pth",
        &zip.finish().unwrap().into_inner(),
    );

    for name in ["4v0-660K", "5v1-730K", "5v2-730K", "7v0-834K"] {
        let src = dir.join(format!("trained/tiny-rwkv-{name}-FP32.bin"));
        let file = read_tensor_file(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let small = shrink(&file);
        let check = TensorFile {
            tensors: small.clone(),
            layout: file.layout,
            file_type: FileType::F32,
        };
        if let Err(e) = convert::build_model(&check) {
            eprintln!("seedgen: the cut-down {name} model does not build ({e}); skipped");
            continue;
        }
        for (code, ty) in [
            (0, "FP32"),
            (1, "FP16"),
            (2, "Q4_0"),
            (3, "Q4_1"),
            (7, "Q5_0"),
            (8, "Q5_1"),
            (9, "Q8_0"),
        ] {
            let bytes = ggml(&small, code);
            if let Err(e) = echos_rwkv_io::tensors::read_tensor_bytes(&bytes)
                .and_then(|f| convert::build_model(&f))
            {
                eprintln!("seedgen: our {name} {ty} ggml file does not load ({e}); skipped");
                continue;
            }
            out.put("fuzz_ggml", &format!("{name}_{ty}.bin"), &bytes);
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
}

// ------------------------------------------------------------------ event streams

/// Seeds of the event targets: streams made by the project's writers, hand-made records of the
/// formats it has no writer for, and short prefixes of the shared recordings (a few KiB each,
/// cut at a record or packet boundary) when `../shared/data/events` is there.
fn events(out: &mut Out, shared: &Path) {
    use echos_core::events::{
        DatRecordKind, DatVersion, DatWriter, DvsEvent, Evt2Writer, Evt3Writer, Header,
        TriggerEvent,
    };
    use framing::event_input_bytes as framed;
    let evs: Vec<DvsEvent> = (0..300u64)
        .map(|i| {
            DvsEvent::new(
                i * 37 + (i % 7) * 3,
                (i * 13 % 640) as u16,
                (i * 7 % 480) as u16,
                (i % 2) as u8,
            )
        })
        .collect();
    let trs = vec![
        TriggerEvent {
            t: 5520,
            channel: 0,
            value: 1,
        },
        TriggerEvent {
            t: 5530,
            channel: 1,
            value: 0,
        },
    ];
    let mut evt2 = Vec::new();
    let mut w = Evt2Writer::new(640, 480).unwrap().without_header();
    w.write_events(&evs[..150], &mut evt2).unwrap();
    w.write_triggers(&trs, &mut evt2).unwrap();
    w.write_events(&evs[150..], &mut evt2).unwrap();
    w.finish(&mut evt2);
    let mut evt3 = Vec::new();
    let mut w = Evt3Writer::new(640, 480).unwrap().without_header();
    w.write_events(&evs[..150], &mut evt3).unwrap();
    w.write_triggers(&trs, &mut evt3).unwrap();
    w.write_events(&evs[150..], &mut evt3).unwrap();
    w.finish(&mut evt3);
    let mut dat = Vec::new();
    let mut w = DatWriter::new(DatVersion::V2, DatRecordKind::Cd, 640, 480)
        .unwrap()
        .without_header();
    w.write_events(&evs, &mut dat).unwrap();
    w.finish(&mut dat);
    for (cfg, room) in [(0u8, 255u8), (1, 3), (6, 64)] {
        out.put(
            "fuzz_evt2",
            &format!("writer-{cfg}"),
            &framed(cfg, 7 + cfg as u16, room, &evt2),
        );
        out.put(
            "fuzz_evt3",
            &format!("writer-{cfg}"),
            &framed(cfg, 11 + cfg as u16, room, &evt3),
        );
        out.put(
            "fuzz_dat",
            &format!("writer-{cfg}"),
            &framed(cfg, 5 + cfg as u16, room, &dat),
        );
    }
    // EVT 2.1: TIME_HIGH, vectors of both polarities, a trigger, OTHERS, a wrap and a jump back
    let words: Vec<u64> = vec![
        (0x8 << 60) | (7 << 32),
        (0x1 << 60) | (3 << 54) | (32 << 43) | (9 << 32) | 0x8000_0005,
        (5 << 32) | 0xFFFF_FFFF,
        (0xA << 60) | (1 << 54) | (2 << 40) | (1 << 32),
        0xE000_0000_0000_0000,
        (0x8 << 60) | (0x0FFF_FFFF << 32),
        (0x8 << 60) | (1 << 32),
        (0x1 << 60) | (6 << 32) | 0x3,
        (0x8 << 60),
    ];
    let mut le = Vec::new();
    let mut legacy = Vec::new();
    for w in &words {
        le.extend_from_slice(&w.to_le_bytes());
        legacy.extend_from_slice(&((w >> 32) as u32).to_le_bytes());
        legacy.extend_from_slice(&(*w as u32).to_le_bytes());
    }
    out.put("fuzz_evt21", "words", &framed(0, 3, 255, &le));
    out.put("fuzz_evt21", "words-small-room", &framed(1, 9, 2, &le));
    out.put("fuzz_evt21", "legacy", &framed(8, 4, 255, &legacy));
    // N-MNIST: events, an overflow marker (y == 240), a record cut short
    let mut nm = Vec::new();
    for i in 0..40u32 {
        let t = i * 1000;
        nm.extend_from_slice(&[
            (i % 34) as u8,
            (i * 3 % 34) as u8,
            ((i % 2) << 7) as u8 | (t >> 16) as u8,
            (t >> 8) as u8,
            t as u8,
        ]);
        if i == 20 {
            nm.extend_from_slice(&[0, 240, 0, 0, 0]);
        }
    }
    out.put("fuzz_nmnist", "records", &framed(0, 1, 255, &nm));
    out.put(
        "fuzz_nmnist",
        "small",
        &framed(1, 2, 4, &nm[..nm.len() - 2]),
    );
    // AEDAT 2.0 (big-endian address, timestamp) and 3.1 (a polarity packet, a special packet)
    let mut a2 = Vec::new();
    for i in 0..40u32 {
        let addr = (i % 128) << 8 | (i * 5 % 128) << 1 | (i % 2);
        a2.extend_from_slice(&addr.to_be_bytes());
        a2.extend_from_slice(&(i * 100 + if i == 30 { 1 << 31 } else { 0 }).to_be_bytes());
    }
    out.put("fuzz_aedat", "dvs128", &framed(0, 1, 255, &a2));
    out.put("fuzz_aedat", "davis", &framed(1, 2, 5, &a2));
    let packet31 = |kind: i16, overflow: i32, records: &[(u32, i32)]| {
        let n = records.len() as i32;
        let mut p = Vec::new();
        p.extend_from_slice(&kind.to_le_bytes());
        p.extend_from_slice(&1i16.to_le_bytes());
        for v in [8i32, 4, overflow, n, n, n] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        for &(d, t) in records {
            p.extend_from_slice(&d.to_le_bytes());
            p.extend_from_slice(&t.to_le_bytes());
        }
        p
    };
    let pol = |x: u32, y: u32, on: bool| (x << 17) | (y << 2) | ((on as u32) << 1) | 1;
    let mut a31 = packet31(
        1,
        0,
        &(0..30)
            .map(|i| (pol(i * 11 % 346, i * 7 % 260, i % 2 == 0), i as i32 * 50))
            .collect::<Vec<_>>(),
    );
    a31.extend_from_slice(&packet31(0, 0, &[(1 << 1 | 1, 1600)]));
    a31.extend_from_slice(&packet31(1, 1, &[(pol(3, 4, true), 10)]));
    out.put("fuzz_aedat", "aedat31", &framed(2, 3, 255, &a31));
    out.put("fuzz_aedat", "aedat31-small", &framed(3, 4, 1, &a31));
    // tables: a structured .npy as the writer makes it, and CSV
    let dir = tempfile::tempdir().unwrap();
    let opts = echos_host::events::WriteOptions {
        width: 640,
        height: 480,
        raw: Default::default(),
    };
    let mut files = Vec::new();
    for ext in ["npy", "csv", "raw", "dat"] {
        let p = dir.path().join(format!("s.{ext}"));
        echos_host::events::write_events(&p, &evs[..60], &trs, opts).unwrap();
        files.push((ext, std::fs::read(&p).unwrap()));
    }
    let evt2_opts = echos_host::events::WriteOptions {
        raw: echos_host::events::RawEncoding::Evt2,
        ..opts
    };
    let p = dir.path().join("e2.raw");
    echos_host::events::write_events(&p, &evs[..60], &trs, evt2_opts).unwrap();
    files.push(("raw", std::fs::read(&p).unwrap()));
    let file_of = |ext: &str| files.iter().find(|f| f.0 == ext).unwrap().1.clone();
    out.put(
        "fuzz_event_tables",
        "npy",
        &framed(0, 1, 255, &file_of("npy")),
    );
    out.put(
        "fuzz_event_tables",
        "npy-small-room",
        &framed(0, 77, 2, &file_of("npy")),
    );
    out.put(
        "fuzz_event_tables",
        "csv",
        &framed(1, 2, 255, &file_of("csv")),
    );
    out.put(
        "fuzz_event_tables",
        "csv-header",
        &framed(1, 3, 3, b"x, y ,p,t\r\n1,2,1,5\n3,4,0,2\n\n-1,2,0,9\n"),
    );
    // whole files: the header target and the reader (its first byte picks the extension:
    // raw dat bin aedat aedat4 npy csv evt)
    let ext_byte = |ext: &str| {
        ["raw", "dat", "bin", "aedat", "aedat4", "npy", "csv", "evt"]
            .iter()
            .position(|e| *e == ext)
            .unwrap() as u8
    };
    for (i, (ext, bytes)) in files.iter().enumerate() {
        out.put("fuzz_event_header", &format!("{i}.{ext}"), bytes);
        let mut f = vec![ext_byte(ext) | 8 * (i as u8 % 4)];
        f.extend_from_slice(bytes);
        out.put("fuzz_event_file", &format!("{i}.{ext}"), &f);
    }
    let mut f = vec![ext_byte("bin")];
    f.extend_from_slice(&nm);
    out.put("fuzz_event_file", "nmnist.bin", &f);
    let mut a2file =
        b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n# AEChip: DVS128\r\n".to_vec();
    a2file.extend_from_slice(&a2);
    out.put(
        "fuzz_event_file",
        "dvs128.aedat",
        &[&[ext_byte("aedat")][..], &a2file].concat(),
    );
    out.put("fuzz_event_header", "dvs128.aedat", &a2file);
    let mut a31file = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DAVIS346\r\n#Start-Time: 2020-01-01\r\n#!END-HEADER\r\n".to_vec();
    a31file.extend_from_slice(&a31);
    out.put(
        "fuzz_event_file",
        "davis.aedat",
        &[&[ext_byte("aedat")][..], &a31file].concat(),
    );
    out.put("fuzz_event_header", "davis.aedat", &a31file);

    if !shared.is_dir() {
        eprintln!(
            "seedgen: no shared data at {}: event recording seeds not written",
            shared.display()
        );
        return;
    }
    let read = |name: &str| std::fs::read(shared.join(name)).ok();
    for (name, target, rec, cfgs) in [
        ("evt2.raw", "fuzz_evt2", 4usize, [0u8, 2]),
        ("evt3.raw", "fuzz_evt3", 2, [0, 1]),
    ] {
        let Some(bytes) = read(name) else { continue };
        let h = Header::parse(&bytes[..bytes.len().min(1 << 16)]).unwrap();
        out.put(
            "fuzz_event_header",
            &format!("shared-{name}"),
            &bytes[..(h.len + 2048).min(bytes.len())],
        );
        let mut f = vec![ext_byte("raw")];
        f.extend_from_slice(&bytes[..(h.len + 8192).min(bytes.len())]);
        out.put("fuzz_event_file", &format!("shared-{name}"), &f);
        for (k, off) in [0usize, 100_000, 1_000_000].into_iter().enumerate() {
            let start = h.len + off / rec * rec;
            if start + 4096 <= bytes.len() {
                let cfg = cfgs[k % 2];
                out.put(
                    target,
                    &format!("shared-{name}-{off}"),
                    &framed(
                        cfg,
                        31 * k as u16 + 1,
                        [255, 7, 64][k],
                        &bytes[start..start + 4096],
                    ),
                );
            }
        }
    }
    if let Some(bytes) = read("sample_nmnist.bin") {
        out.put(
            "fuzz_nmnist",
            "shared-sample",
            &framed(0, 5, 255, &bytes[..bytes.len().min(5 * 800)]),
        );
        out.put(
            "fuzz_event_header",
            "shared-nmnist",
            &bytes[..bytes.len().min(1000)],
        );
        out.put(
            "fuzz_event_file",
            "shared-nmnist.bin",
            &[&[ext_byte("bin")][..], &bytes].concat(),
        );
    }
    if let Some(bytes) = read("davis346.aedat4") {
        aedat4_seeds(out, &bytes);
    }
}

/// AEDAT 4 seeds from the shared DAVIS346 recording (LZ4 packets): its header and first small
/// packets as they are, and the same packets decompressed under a header naming no
/// compression (plain, and to be re-compressed by the target as each of the five kinds).
fn aedat4_seeds(out: &mut Out, bytes: &[u8]) {
    use echos_host::events::Aedat4Header;
    use framing::event_input_bytes as framed;
    let h = Aedat4Header::parse(&bytes[..bytes.len().min(1 << 20)]).unwrap();
    out.put(
        "fuzz_event_header",
        "shared-davis346.aedat4",
        &bytes[..(h.len + 1024).min(bytes.len())],
    );
    let mut raw = bytes[..h.len].to_vec();
    let mut plain = framing::aedat4_header(0, &h.description);
    let mut pos = h.len;
    let mut kept = 0;
    // a few small packets: every LZ4 packet of the recording declares 4 MiB blocks, which the
    // decoder allocates per packet, so more of them only slow each run down
    while kept < 4 && pos + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let Some(body) = bytes.get(pos + 8..pos + 8 + size) else {
            break;
        };
        let mut dec = Vec::new();
        std::io::Read::read_to_end(&mut lz4_flex::frame::FrameDecoder::new(body), &mut dec)
            .unwrap();
        if size <= 6000
            && dec.len() <= 8_000
            && raw.len() + 8 + size < 20_000
            && plain.len() + 8 + dec.len() < 20_000
        {
            raw.extend_from_slice(&bytes[pos..pos + 8 + size]);
            plain.extend_from_slice(&bytes[pos..pos + 4]);
            plain.extend_from_slice(&(dec.len() as u32).to_le_bytes());
            plain.extend_from_slice(&dec);
            kept += 1;
        }
        pos += 8 + size;
    }
    out.put("fuzz_aedat4", "shared-lz4", &framed(0, 1, 255, &raw));
    out.put("fuzz_aedat4", "shared-plain", &framed(0, 2, 9, &plain));
    for c in 0..5u8 {
        out.put(
            "fuzz_aedat4",
            &format!("shared-recompress-{c}"),
            &framed(
                1 | c << 1,
                3 + c as u16,
                [255, 1, 64, 17, 200][c as usize],
                &plain,
            ),
        );
    }
    out.put(
        "fuzz_event_file",
        "shared-davis346.aedat4",
        &[&[4u8][..], &raw].concat(),
    );
}

// ------------------------------------------------------------------ hosted runtime

/// The runtime's config (the documented example, and smaller ones) and shared-region files
/// (a real region of a small shape, whole and as the target's overlay framing).
fn rt(out: &mut Out) {
    let full = r#"[model]
path = "m.safetensors"

[loop]
period_us = 1000
deadline_us = 1000
budget_us = 500
periods = 10000

[sched]
policy = "fifo"
priority = 80
cpu = 1
lock_memory = true
prefault_stack_kib = 256
numa = true

[source]
kind = "series"
path = "x.npy"
repeat = false

[sink]
file = "y.npy"
ring = true

[shm]
name = "demo"
ring_capacity = 1024
snapshot_every = 1
stats_every = 100
"#;
    // the queue target: [config][ops...] (push 0/1 with a signed time step, pop 2, pop_into 3,
    // pop_until 4, peek and re-split 5)
    for (name, bytes) in [
        (
            "fill-drain",
            &[
                0x03u8, 0, 5, 1, 5, 0, 5, 0, 5, 0, 5, 0, 5, 2, 3, 4, 5, 4, 10, 2,
            ][..],
        ),
        (
            "late-clamp",
            &[0x21, 0, 50, 0, 0xF0, 8, 3, 5, 4, 0x80, 3, 20][..],
        ),
        ("refuse", &[0x10, 0, 1, 0, 1, 0, 1, 5, 2, 0, 1, 4, 0x7F][..]),
    ] {
        out.put("fuzz_event_queue", name, bytes);
    }
    out.put("fuzz_rt_config", "full.toml", full.as_bytes());
    out.put(
        "fuzz_rt_config",
        "minimal.toml",
        b"[model]\npath = \"m.safetensors\"\n[loop]\nperiod_us = 100\n[source]\nkind = \"stdin\"\n",
    );
    out.put("fuzz_rt_config", "deadline.toml", b"[model]\npath = \"/abs/m.safetensors\"\n[loop]\nperiod_us = 10\nbudget_us = 1\n[sched]\npolicy = \"deadline\"\n[source]\nkind = \"series\"\npath = \"x.csv\"\n");
    let name = format!("seedgen-{}", std::process::id());
    let shape = echos_rt::shm::Shape {
        units: 5,
        inputs: 1,
        outputs: 2,
        ring_capacity: 4,
        period_ns: 1_000_000,
    };
    let mut region = echos_rt::shm::Region::create(&name, &shape, true).unwrap();
    region.push_output(1, 1000, &[0.5, -0.5]);
    region.push_output(2, 2000, &[1.5, 2.5]);
    let bytes = std::fs::read(region.path()).unwrap();
    drop(region);
    out.put("fuzz_rt_shm", "region", &[&[0u8][..], &bytes].concat());
    out.put(
        "fuzz_rt_shm",
        "overlay-header",
        &[1u8, 4, 0, 1, 3, 24, 0, 9, 9, 9, 9],
    );
    out.put(
        "fuzz_rt_shm",
        "overlay-ring",
        &[
            1u8, 15, 3, 3, 7, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F,
        ],
    );
}

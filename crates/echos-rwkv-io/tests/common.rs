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

/// One tensor entry of a hand-made `.pth`, as `torch.save` would describe it.
pub struct PthTensor<'a> {
    pub name: &'a str,
    /// Storage class, e.g. `FloatStorage`.
    pub dtype: &'a str,
    pub key: &'a str,
    /// Elements the storage's persistent id claims.
    pub numel: u64,
    pub offset: u64,
    pub shape: &'a [u64],
    pub stride: &'a [u64],
}

fn pickle_int(p: &mut Vec<u8>, v: u64) {
    // LONG1 with 8 bytes: any size, as Python writes large ints.
    p.extend_from_slice(&[0x8a, 8]);
    p.extend_from_slice(&v.to_le_bytes());
}

fn pickle_str(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

/// The `data.pkl` of a state dict `{name: tensor, ...}` in the opcodes torch.save emits.
pub fn state_dict_pickle(tensors: &[PthTensor<'_>]) -> Vec<u8> {
    let mut p = b"\x80\x02}(".to_vec();
    for t in tensors {
        pickle_str(&mut p, t.name);
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        pickle_str(&mut p, "storage");
        p.extend_from_slice(format!("ctorch\n{}\n", t.dtype).as_bytes());
        pickle_str(&mut p, t.key);
        pickle_str(&mut p, "cpu");
        pickle_int(&mut p, t.numel);
        p.extend_from_slice(b"tQ");
        pickle_int(&mut p, t.offset);
        for dims in [t.shape, t.stride] {
            p.push(b'(');
            for &d in dims {
                pickle_int(&mut p, d);
            }
            p.push(b't');
        }
        p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend_from_slice(b"u.");
    p
}

/// Writes the bytes of one storage member.
pub type WriteStorage<'a> = dyn Fn(&mut dyn std::io::Write) + 'a;

/// A `.pth` zip: `archive/data.pkl` plus one member `archive/data/<key>` per storage, each
/// stored or deflated. Storage contents come from `write`, which may stream large members.
pub fn pth_zip(pickle: &[u8], storages: &[(&str, bool, &WriteStorage<'_>)]) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(pickle).unwrap();
    for (key, deflate, write) in storages {
        let opts = if *deflate { deflated } else { stored };
        zip.start_file(format!("archive/data/{key}"), opts).unwrap();
        write(&mut zip);
    }
    zip.finish().unwrap().into_inner()
}

/// A `.pth` of float32 tensors, each contiguous in its own storage.
pub fn pth_of(
    tensors: &std::collections::BTreeMap<String, echos_rwkv_io::tensors::RawTensor>,
) -> Vec<u8> {
    let keys: Vec<String> = (0..tensors.len()).map(|i| i.to_string()).collect();
    let shapes: Vec<(Vec<u64>, Vec<u64>)> = tensors
        .values()
        .map(|t| {
            let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
            let mut stride = vec![1u64; shape.len()];
            for d in (0..shape.len().saturating_sub(1)).rev() {
                stride[d] = stride[d + 1] * shape[d + 1];
            }
            (shape, stride)
        })
        .collect();
    let entries: Vec<PthTensor<'_>> = tensors
        .iter()
        .zip(&keys)
        .zip(&shapes)
        .map(|(((name, t), key), (shape, stride))| PthTensor {
            name,
            dtype: "FloatStorage",
            key,
            numel: t.data.len() as u64,
            offset: 0,
            shape,
            stride,
        })
        .collect();
    let data: Vec<Vec<u8>> = tensors
        .values()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let writers: Vec<Box<WriteStorage<'_>>> = data
        .iter()
        .map(|d| {
            Box::new(move |w: &mut dyn std::io::Write| w.write_all(d).unwrap())
                as Box<WriteStorage<'_>>
        })
        .collect();
    let storages: Vec<(&str, bool, &WriteStorage<'_>)> = keys
        .iter()
        .zip(&writers)
        .map(|(k, w)| (k.as_str(), false, w.as_ref()))
        .collect();
    pth_zip(&state_dict_pickle(&entries), &storages)
}

/// Rewrites the uncompressed size that the local and central headers of member `name` declare
/// (a lying header, as a crafted archive has).
pub fn lie_about_size(zip: &mut [u8], name: &str, size: u32) {
    let name = name.as_bytes();
    let mut found = 0;
    for i in 0..zip.len().saturating_sub(46) {
        let (sig, name_len_at, name_at, size_at) = match &zip[i..i + 4] {
            b"PK\x03\x04" => ("local", 26, 30, 22),
            b"PK\x01\x02" => ("central", 28, 46, 24),
            _ => continue,
        };
        let n = u16::from_le_bytes([zip[i + name_len_at], zip[i + name_len_at + 1]]) as usize;
        if zip.get(i + name_at..i + name_at + n) == Some(name) {
            zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
            found += 1;
            let _ = sig;
        }
    }
    assert_eq!(found, 2, "local and central header of the member");
}

//! Reading named tensors out of the three weight file formats — BlinkDL `.pth` (zip + pickle),
//! safetensors, rwkv.cpp `.bin` — into f32, with every size checked against the file.

// Block formats are specified per element index; index loops read closest to the spec.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};

use crate::pickle::{StorageRef, TensorRef};
use crate::{archive, pickle, LoadError};

/// One tensor in PyTorch dimension order, as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl RawTensor {
    /// A tensor whose shape holds exactly `data.len()` values.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<RawTensor, LoadError> {
        let t = RawTensor { shape, data };
        t.check("(new tensor)")?;
        Ok(t)
    }

    /// Elements the shape names (`usize::MAX` if that overflows).
    pub fn numel(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    /// The shape and the data agree (the fields are public, so the converter checks).
    pub fn check(&self, key: &str) -> Result<(), LoadError> {
        if self.numel() != self.data.len() {
            return Err(LoadError::Corrupt(format!(
                "tensor `{key}` has shape {:?} but {} values",
                self.shape,
                self.data.len()
            )));
        }
        Ok(())
    }
}

/// How the file stored the values: BlinkDL keeps the trained values; rwkv.cpp's converter
/// stores some of them transformed (see `convert.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Blink,
    RwkvCpp,
}

/// The storage type of the tensors in a file (the widest seen, for reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl FileType {
    pub fn name(self) -> &'static str {
        match self {
            FileType::F32 => "FP32",
            FileType::F16 => "FP16",
            FileType::BF16 => "BF16",
            FileType::Q4_0 => "Q4_0",
            FileType::Q4_1 => "Q4_1",
            FileType::Q5_0 => "Q5_0",
            FileType::Q5_1 => "Q5_1",
            FileType::Q8_0 => "Q8_0",
        }
    }
}

pub struct TensorFile {
    pub tensors: BTreeMap<String, RawTensor>,
    pub layout: Layout,
    /// Type of the large matrices.
    pub file_type: FileType,
}

/// Picks the reader from the first bytes: zip (`PK`) is a `.pth`, the ggml magic is
/// rwkv.cpp, anything else is tried as safetensors.
pub fn read_tensor_file(path: &Path) -> Result<TensorFile, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io(path.display().to_string(), e))?;
    read_tensor_bytes(&bytes)
}

/// [`read_tensor_file`] on bytes already in memory (the fuzz targets' entry).
pub fn read_tensor_bytes(bytes: &[u8]) -> Result<TensorFile, LoadError> {
    if bytes.len() >= 4 && &bytes[..4] == b"PK\x03\x04" {
        read_pth(bytes)
    } else if bytes.len() >= 4
        && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == GGML_MAGIC
    {
        read_ggml(bytes)
    } else {
        read_safetensors(bytes)
    }
}

fn convert(bytes: &[u8], ty: FileType, key: &str) -> Result<Vec<f32>, LoadError> {
    Ok(match ty {
        FileType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        FileType::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        FileType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        q => dequantize(bytes, q, key)?,
    })
}

// ---------------------------------------------------------------- .pth

/// How many bytes a `.pth` may make us hold for its tensors, as a multiple of the file's own
/// size (plus [`PTH_FLOOR`]). `torch.save` stores tensors uncompressed, so a real checkpoint
/// needs about 2x (f32 storage read, then decoded) to 3x (16-bit storage decoded to f32);
/// beyond this is a crafted file (views that repeat elements, deflate bombs).
pub const PTH_EXPANSION: u64 = 8;
/// Allowance for tiny files, whose pickle and bookkeeping dominate.
pub const PTH_FLOOR: u64 = 1 << 20;
/// Largest `data.pkl` read: a real checkpoint's is a few hundred bytes per tensor.
pub const PTH_PICKLE_LIMIT: u64 = 64 << 20;

/// What a `.pth` file may still make us allocate; charged before each allocation.
struct Budget {
    left: u64,
    limit: u64,
    file_len: u64,
}

impl Budget {
    fn for_file(file_len: usize) -> Budget {
        let file_len = file_len as u64;
        let limit = file_len
            .saturating_mul(PTH_EXPANSION)
            .saturating_add(PTH_FLOOR);
        Budget {
            left: limit,
            limit,
            file_len,
        }
    }

    fn charge(&mut self, bytes: u64, what: impl FnOnce() -> String) -> Result<(), LoadError> {
        if bytes > self.left {
            return Err(LoadError::TooLarge {
                what: what(),
                bytes,
                limit: self.limit,
                file_len: self.file_len,
            });
        }
        self.left -= bytes;
        Ok(())
    }
}

/// Bytes per element of a torch storage class, and the file type it decodes as.
fn storage_type(dtype: &str) -> Option<(FileType, u64)> {
    Some(match dtype {
        "FloatStorage" => (FileType::F32, 4),
        "HalfStorage" => (FileType::F16, 2),
        "BFloat16Storage" => (FileType::BF16, 2),
        _ => return None,
    })
}

/// A tensor view checked against its storage: every index it reaches lies inside, and it has
/// no more elements than the storage (a view may not repeat elements into a larger tensor).
struct View {
    name: String,
    shape: Vec<usize>,
    stride: Vec<usize>,
    offset: usize,
    numel: usize,
}

fn check_view(name: &str, t: &TensorRef) -> Result<View, LoadError> {
    let bad = |why: String| LoadError::Corrupt(format!("tensor `{name}`: {why}"));
    if t.shape.len() != t.stride.len() {
        return Err(bad(format!(
            "size {:?} and stride {:?} differ in length",
            t.shape, t.stride
        )));
    }
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("size {:?} overflows", t.shape)))?;
    if numel > t.storage.numel {
        return Err(bad(format!(
            "size {:?} has {numel} elements, more than its storage `{}` holds ({})",
            t.shape, t.storage.key, t.storage.numel
        )));
    }
    if numel > 0 {
        // The last element reached: offset + sum((n - 1) * stride), all checked.
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |a, (&n, &s)| {
                (n - 1).checked_mul(s).and_then(|x| a.checked_add(x))
            });
        match last {
            Some(last) if last < t.storage.numel => {}
            _ => {
                return Err(LoadError::Truncated(format!(
                    "tensor `{name}` (offset {}, size {:?}, stride {:?}) reaches past the {} elements of storage `{}`",
                    t.offset, t.shape, t.stride, t.storage.numel, t.storage.key
                )))
            }
        }
    }
    // Everything is below the storage's element count, which is below the budget-checked
    // byte count, so these fit a usize.
    let to_usize = |v: &[u64]| v.iter().map(|&x| x as usize).collect::<Vec<_>>();
    Ok(View {
        name: name.to_string(),
        shape: to_usize(&t.shape),
        stride: to_usize(&t.stride),
        offset: t.offset as usize,
        numel: numel as usize,
    })
}

/// The elements of `v` from `storage` (decoded as `ty`), in row-major order.
fn gather(storage: &[u8], ty: FileType, size: usize, v: &View) -> Result<Vec<f32>, LoadError> {
    let contiguous = {
        let mut expect = 1;
        let mut ok = true;
        for (&n, &s) in v.shape.iter().zip(&v.stride).rev() {
            if n > 1 && s != expect {
                ok = false;
            }
            expect *= n;
        }
        ok
    };
    if contiguous {
        let start = v.offset * size;
        return convert(&storage[start..start + v.numel * size], ty, &v.name);
    }
    // Tensors saved from a transpose are not contiguous: walk the strides.
    let mut raw = Vec::with_capacity(v.numel * size);
    let mut idx = vec![0usize; v.shape.len()];
    for _ in 0..v.numel {
        let e = v.offset + idx.iter().zip(&v.stride).map(|(i, s)| i * s).sum::<usize>();
        raw.extend_from_slice(&storage[e * size..(e + 1) * size]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < v.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    convert(&raw, ty, &v.name)
}

fn read_pth(bytes: &[u8]) -> Result<TensorFile, LoadError> {
    let mut budget = Budget::for_file(bytes.len());
    let mut zip = archive::open(bytes).map_err(LoadError::Zip)?;
    let pkl_name = zip
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_owned)
        .ok_or_else(|| LoadError::Zip("no data.pkl in the archive".into()))?;
    let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();
    let limit = PTH_PICKLE_LIMIT.min(budget.left);
    let pickle = archive::read_member(&mut zip, &pkl_name, limit, &|| {
        format!("a checkpoint's pickle may hold (at most {PTH_PICKLE_LIMIT}, and within the file's expansion limit)")
    })
    .map_err(|e| LoadError::Zip(e.to_string()))?;
    budget.charge(pickle.len() as u64, || pkl_name.clone())?;
    let entries = pickle::torch_tensors(&pickle).map_err(|e| LoadError::Pickle(e.to_string()))?;
    drop(pickle);
    if entries.is_empty() {
        return Err(LoadError::Pickle("no tensors found in the pickle".into()));
    }

    // Check every view against its storage before reading any storage.
    let mut storages: BTreeMap<String, (StorageRef, Vec<View>)> = BTreeMap::new();
    let mut widest = FileType::F32;
    for (name, t) in &entries {
        let (ty, _) =
            storage_type(&t.storage.dtype).ok_or_else(|| LoadError::UnsupportedDtype {
                key: name.clone(),
                dtype: t.storage.dtype.clone(),
            })?;
        if ty != FileType::F32 {
            widest = ty;
        }
        let view = check_view(name, t)?;
        let (s, views) = storages
            .entry(t.storage.key.clone())
            .or_insert_with(|| (t.storage.clone(), Vec::new()));
        if *s != t.storage {
            return Err(LoadError::Corrupt(format!(
                "tensor `{name}` names storage `{}` as {} of {} elements, an earlier tensor as {} of {}",
                s.key, t.storage.dtype, t.storage.numel, s.dtype, s.numel
            )));
        }
        views.push(view);
    }
    drop(entries);

    let mut tensors = BTreeMap::new();
    for (key, (s, views)) in storages {
        let (ty, size) = storage_type(&s.dtype).expect("checked above");
        let member = format!("{prefix}data/{key}");
        let bytes_needed = s.numel.saturating_mul(size);
        budget.charge(bytes_needed, || {
            format!("storage `{member}` ({} elements)", s.numel)
        })?;
        let storage =
            archive::read_member(&mut zip, &member, bytes_needed, &|| {
                format!(
                    "the pickle gives storage `{key}` ({} elements of {size})",
                    s.numel
                )
            })
            .map_err(|e| {
                let what = format!("storage of tensor `{}`: {e}", views[0].name);
                match e {
                    archive::MemberError::SizeMismatch { .. }
                    | archive::MemberError::Missing(_) => LoadError::Truncated(what),
                    archive::MemberError::TooLarge { .. }
                    | archive::MemberError::Inflates { .. } => LoadError::Corrupt(what),
                    archive::MemberError::Zip(..) => LoadError::Zip(what),
                }
            })?;
        if storage.len() as u64 != bytes_needed {
            return Err(LoadError::Truncated(format!(
                "storage `{member}` has {} bytes, the pickle says {} elements of {size} bytes",
                storage.len(),
                s.numel
            )));
        }
        for v in views {
            budget.charge(v.numel as u64 * 4, || format!("tensor `{}`", v.name))?;
            let data = gather(&storage, ty, size as usize, &v)?;
            tensors.insert(
                v.name,
                RawTensor {
                    shape: v.shape,
                    data,
                },
            );
        }
    }
    Ok(TensorFile {
        tensors,
        layout: Layout::Blink,
        file_type: widest,
    })
}

// ---------------------------------------------------------------- safetensors

/// The `format` metadata of the ESN model files echos-host writes (`model_file::FORMAT_NAME`).
const ESN_FORMAT: &str = "echos-esn";

fn read_safetensors(bytes: &[u8]) -> Result<TensorFile, LoadError> {
    use safetensors::{Dtype, SafeTensors};
    let st_err = |e: safetensors::SafeTensorError| LoadError::Safetensors(e.to_string());
    // Our own other safetensors files are named, not reported as odd dtypes or keys.
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(st_err)?;
    if let Some(format) = meta.metadata().as_ref().and_then(|m| m.get("format")) {
        if format == ESN_FORMAT {
            return Err(LoadError::EsnModel);
        }
        if format == crate::state_io::STATE_FORMAT {
            return Err(LoadError::StateFile);
        }
    }
    let st = SafeTensors::deserialize(bytes).map_err(st_err)?;
    let mut tensors = BTreeMap::new();
    let mut widest = FileType::F32;
    for (name, view) in st.tensors() {
        let ty = match view.dtype() {
            Dtype::F32 => FileType::F32,
            Dtype::F16 => FileType::F16,
            Dtype::BF16 => FileType::BF16,
            other => {
                return Err(LoadError::UnsupportedDtype {
                    key: name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        if ty != FileType::F32 {
            widest = ty;
        }
        let data = convert(view.data(), ty, &name)?;
        tensors.insert(
            name,
            RawTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(TensorFile {
        tensors,
        layout: Layout::Blink,
        file_type: widest,
    })
}

// ---------------------------------------------------------------- rwkv.cpp .bin

/// "ggmf" read as a little-endian int32.
pub const GGML_MAGIC: u32 = 0x6767_6d66;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LoadError> {
        if self.bytes.len() - self.pos < n {
            return Err(LoadError::Truncated(format!(
                "{what}: needs {n} bytes at offset {}, file has {}",
                self.pos,
                self.bytes.len()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i32(&mut self, what: &str) -> Result<i32, LoadError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Block layout of the ggml quantized types: (elements per block, bytes per block).
fn block(ty: FileType) -> (usize, usize) {
    match ty {
        FileType::Q4_0 => (32, 18),
        FileType::Q4_1 => (32, 20),
        FileType::Q5_0 => (32, 22),
        FileType::Q5_1 => (32, 24),
        FileType::Q8_0 => (32, 34),
        FileType::F32 => (1, 4),
        FileType::F16 | FileType::BF16 => (1, 2),
    }
}

fn ggml_type(code: i32) -> Option<FileType> {
    Some(match code {
        0 => FileType::F32,
        1 => FileType::F16,
        2 => FileType::Q4_0,
        3 => FileType::Q4_1,
        7 => FileType::Q5_0,
        8 => FileType::Q5_1,
        9 => FileType::Q8_0,
        _ => return None,
    })
}

fn read_ggml(bytes: &[u8]) -> Result<TensorFile, LoadError> {
    let mut c = Cursor { bytes, pos: 0 };
    let _magic = c.i32("header")?;
    let version = c.i32("header")?;
    if version != 100 && version != 101 {
        return Err(LoadError::Corrupt(format!(
            "rwkv.cpp file version {version}, expected 100 or 101"
        )));
    }
    let n_vocab = c.i32("header")?;
    let n_embd = c.i32("header")?;
    let n_layer = c.i32("header")?;
    let data_type = c.i32("header")?;
    if n_vocab <= 0 || n_embd <= 0 || n_layer <= 0 {
        return Err(LoadError::Corrupt(format!(
            "header has n_vocab {n_vocab}, n_embd {n_embd}, n_layer {n_layer}"
        )));
    }
    let file_type = ggml_type(data_type).ok_or(LoadError::UnknownQuantization(data_type))?;
    let mut tensors = BTreeMap::new();
    while c.pos < bytes.len() {
        let n_dims = c.i32("tensor header")?;
        let key_len = c.i32("tensor header")?;
        let code = c.i32("tensor header")?;
        if !(1..=4).contains(&n_dims) || !(1..=1024).contains(&key_len) {
            return Err(LoadError::Corrupt(format!(
                "tensor header at offset {} has {n_dims} dimensions and a {key_len}-byte name",
                c.pos - 12
            )));
        }
        let mut shape = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = c.i32("tensor shape")?;
            if d <= 0 {
                return Err(LoadError::Corrupt(format!(
                    "tensor dimension {d} at offset {}",
                    c.pos - 4
                )));
            }
            shape.push(d as usize);
        }
        // ggml lists dimensions innermost first; PyTorch outermost first.
        shape.reverse();
        let key = std::str::from_utf8(c.take(key_len as usize, "tensor name")?)
            .map_err(|_| {
                LoadError::Corrupt(format!("tensor name at offset {} is not UTF-8", c.pos))
            })?
            .to_string();
        let ty = ggml_type(code).ok_or(LoadError::UnknownQuantizationOf {
            key: key.clone(),
            code,
        })?;
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                LoadError::Corrupt(format!("tensor `{key}` has an impossible size {shape:?}"))
            })?;
        let (per, bsize) = block(ty);
        if !numel.is_multiple_of(per) {
            return Err(LoadError::Corrupt(format!(
                "tensor `{key}` has {numel} elements, not a multiple of the {} block of {per}",
                ty.name()
            )));
        }
        let data_len = (numel / per).checked_mul(bsize).ok_or_else(|| {
            LoadError::Corrupt(format!("tensor `{key}` has an impossible size {shape:?}"))
        })?;
        let data = c.take(data_len, &format!("data of tensor `{key}`"))?;
        let data = convert(data, ty, &key)?;
        if tensors
            .insert(key.clone(), RawTensor { shape, data })
            .is_some()
        {
            return Err(LoadError::Corrupt(format!("tensor `{key}` appears twice")));
        }
    }
    let emb = tensors
        .get("emb.weight")
        .ok_or_else(|| LoadError::MissingKey("emb.weight".into()))?;
    if emb.shape != [n_vocab as usize, n_embd as usize] {
        return Err(LoadError::Shape {
            key: "emb.weight".into(),
            expected: format!("[{n_vocab}, {n_embd}] from the file header"),
            found: format!("{:?}", emb.shape),
        });
    }
    Ok(TensorFile {
        tensors,
        layout: Layout::RwkvCpp,
        file_type,
    })
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// ggml (file version 101) block formats, 32 values per block.
fn dequantize(bytes: &[u8], ty: FileType, key: &str) -> Result<Vec<f32>, LoadError> {
    let (per, bsize) = block(ty);
    if !bytes.len().is_multiple_of(bsize) {
        return Err(LoadError::Corrupt(format!(
            "tensor `{key}`: data is not whole {} blocks",
            ty.name()
        )));
    }
    let mut out = Vec::with_capacity(bytes.len() / bsize * per);
    for b in bytes.chunks_exact(bsize) {
        let mut y = [0.0f32; 32];
        match ty {
            FileType::Q4_0 => {
                let d = f16_at(b, 0);
                for j in 0..16 {
                    y[j] = ((b[2 + j] & 0xf) as i32 - 8) as f32 * d;
                    y[j + 16] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
                }
            }
            FileType::Q4_1 => {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                for j in 0..16 {
                    y[j] = (b[4 + j] & 0xf) as f32 * d + m;
                    y[j + 16] = (b[4 + j] >> 4) as f32 * d + m;
                }
            }
            FileType::Q5_0 | FileType::Q5_1 => {
                let (d, m, h) = if ty == FileType::Q5_0 {
                    (f16_at(b, 0), 0.0, 2)
                } else {
                    (f16_at(b, 0), f16_at(b, 2), 4)
                };
                let qh = u32::from_le_bytes([b[h], b[h + 1], b[h + 2], b[h + 3]]);
                let qs = &b[h + 4..h + 20];
                let off = if ty == FileType::Q5_0 { 16 } else { 0 };
                for j in 0..16 {
                    let h0 = ((qh >> j) << 4) & 0x10;
                    let h1 = (qh >> (j + 12)) & 0x10;
                    let x0 = ((qs[j] as u32 & 0xf) | h0) as i32 - off;
                    let x1 = ((qs[j] as u32 >> 4) | h1) as i32 - off;
                    y[j] = x0 as f32 * d + m;
                    y[j + 16] = x1 as f32 * d + m;
                }
            }
            FileType::Q8_0 => {
                let d = f16_at(b, 0);
                for j in 0..32 {
                    y[j] = (b[2 + j] as i8) as f32 * d;
                }
            }
            FileType::F32 | FileType::F16 | FileType::BF16 => unreachable!("not a block format"),
        }
        out.extend_from_slice(&y);
    }
    Ok(out)
}

/// Writes tensors as a safetensors file (f32), e.g. to convert a `.pth` checkpoint.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, RawTensor>,
) -> Result<(), LoadError> {
    write_safetensors_as(path, tensors, FileType::F32)
}

/// Writes tensors as a safetensors file in F32, F16 or BF16.
pub fn write_safetensors_as(
    path: &Path,
    tensors: &BTreeMap<String, RawTensor>,
    ty: FileType,
) -> Result<(), LoadError> {
    use safetensors::tensor::TensorView;
    let dtype = match ty {
        FileType::F32 => safetensors::Dtype::F32,
        FileType::F16 => safetensors::Dtype::F16,
        FileType::BF16 => safetensors::Dtype::BF16,
        other => {
            return Err(LoadError::UnsupportedDtype {
                key: "(output)".into(),
                dtype: other.name().into(),
            })
        }
    };
    let encode = |v: &f32| -> Vec<u8> {
        match ty {
            FileType::F16 => f16::from_f32(*v).to_le_bytes().to_vec(),
            FileType::BF16 => bf16::from_f32(*v).to_le_bytes().to_vec(),
            _ => v.to_le_bytes().to_vec(),
        }
    };
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(encode).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (k, b, shape) in &bytes {
        let v = TensorView::new(dtype, shape.clone(), b)
            .map_err(|e| LoadError::Safetensors(format!("tensor `{k}`: {e}")))?;
        views.push((k.clone(), v));
    }
    let out =
        safetensors::serialize(views, None).map_err(|e| LoadError::Safetensors(e.to_string()))?;
    crate::state_io::write_atomic(path, &out)
        .map_err(|e| LoadError::Io(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_block_dequantizes() {
        let mut b = vec![0u8; 34];
        b[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        for j in 0..32 {
            b[2 + j] = (j as i8 - 16) as u8;
        }
        let y = dequantize(&b, FileType::Q8_0, "t").unwrap();
        for j in 0..32 {
            assert_eq!(y[j], (j as f32 - 16.0) * 0.5);
        }
    }

    #[test]
    fn q5_1_high_bits_land_in_both_halves() {
        let mut b = vec![0u8; 24];
        b[..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(-2.0).to_le_bytes());
        // High bit set for element 0 and element 16.
        b[4..8].copy_from_slice(&(1u32 | (1u32 << 16)).to_le_bytes());
        b[8] = 0x21; // element 0 low nibble 1, element 16 low nibble 2
        let y = dequantize(&b, FileType::Q5_1, "t").unwrap();
        assert_eq!(y[0], 17.0 - 2.0);
        assert_eq!(y[16], 18.0 - 2.0);
        assert_eq!(y[1], -2.0);
    }

    #[test]
    fn partial_block_is_an_error() {
        assert!(dequantize(&[0u8; 23], FileType::Q5_1, "t").is_err());
    }
}

//! Reading named tensors out of the three weight file formats — BlinkDL `.pth` (zip + pickle),
//! safetensors, rwkv.cpp `.bin` — into f32, with every size checked against the file.

// Block formats are specified per element index; index loops read closest to the spec.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use half::{bf16, f16};
use repugnant_pickle::ops::PickleOp;
use repugnant_pickle::{evaluate, parse_ops, SequenceType, Value};

use crate::LoadError;

/// One tensor in PyTorch dimension order, as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl RawTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
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
    if bytes.len() >= 4 && &bytes[..4] == b"PK\x03\x04" {
        read_pth(path, &bytes)
    } else if bytes.len() >= 4
        && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == GGML_MAGIC
    {
        read_ggml(&bytes)
    } else {
        read_safetensors(&bytes)
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

/// One tensor entry of a checkpoint's pickle.
struct PthEntry {
    name: String,
    dtype: String,
    storage: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn pickle_err(why: impl Into<String>) -> LoadError {
    LoadError::Pickle(why.into())
}

fn is_rebuild(v: &Value<'_>) -> bool {
    match v {
        Value::Global(g, _) | Value::App(g, _) => {
            matches!(g.as_ref(), Value::Raw(op) if matches!(op.as_ref(), PickleOp::GLOBAL(_, "_rebuild_tensor_v2")))
        }
        _ => false,
    }
}

/// Collects every `(name, tensor)` pair in the pickled structure, whether it was saved as a
/// dict or an OrderedDict (whose items the evaluator leaves nested in tuples).
fn collect_pairs<'v, 'a>(v: &'v Value<'a>, out: &mut Vec<(&'a str, &'v Value<'a>)>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Seq(SequenceType::Tuple, kv) if kv.len() == 2 && is_rebuild(&kv[1]) => {
            if let Value::String(name) = &kv[0] {
                out.push((name, &kv[1]));
            }
        }
        Value::Seq(_, items) => items.iter().for_each(|i| collect_pairs(i, out, depth + 1)),
        Value::Build(a, b) => {
            collect_pairs(a, out, depth + 1);
            collect_pairs(b, out, depth + 1);
        }
        Value::Global(_, args) | Value::App(_, args) | Value::Object(_, args) => {
            args.iter().for_each(|i| collect_pairs(i, out, depth + 1))
        }
        _ => {}
    }
}

fn int_list(v: &Value<'_>, what: &str, key: &str) -> Result<Vec<usize>, LoadError> {
    match v {
        Value::Seq(_, items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err(pickle_err(format!(
                    "tensor `{key}`: {what} holds a non-integer"
                ))),
            })
            .collect(),
        _ => Err(pickle_err(format!("tensor `{key}`: {what} is not a tuple"))),
    }
}

/// Reads `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` entries; the
/// storage is a persistent id `('storage', torch.XStorage, key, device, numel)`.
fn pth_entries(pickle: &[u8]) -> Result<Vec<PthEntry>, LoadError> {
    let (_, ops) = parse_ops::<nom::error::Error<&[u8]>>(pickle)
        .map_err(|e| pickle_err(format!("cannot parse: {e:?}")))?;
    let (values, _) =
        evaluate(&ops, true).map_err(|e| pickle_err(format!("cannot evaluate: {e}")))?;
    let top = values.last().ok_or_else(|| pickle_err("empty pickle"))?;
    let mut pairs = Vec::new();
    collect_pairs(top, &mut pairs, 0);
    if pairs.is_empty() {
        return Err(pickle_err("no tensors found in the pickle"));
    }
    let mut out = Vec::new();
    for (name, v) in pairs {
        let (Value::Global(_, args) | Value::App(_, args)) = v else {
            continue;
        };
        let args = match args.as_slice() {
            [Value::Seq(SequenceType::Tuple, a)] => a.as_slice(),
            a => a,
        };
        let [Value::PersId(pid), Value::Int(offset), size, stride, ..] = args else {
            return Err(pickle_err(format!(
                "tensor `{name}`: unexpected _rebuild_tensor_v2 arguments"
            )));
        };
        let Value::Seq(SequenceType::Tuple, pid) = pid.as_ref() else {
            return Err(pickle_err(format!(
                "tensor `{name}`: storage id is not a tuple"
            )));
        };
        let (dtype, storage) = match pid.as_slice() {
            [Value::String("storage"), Value::Raw(op), Value::String(key), ..] => match op.as_ref()
            {
                PickleOp::GLOBAL("torch", ty) => (ty.to_string(), key.to_string()),
                _ => {
                    return Err(pickle_err(format!(
                        "tensor `{name}`: storage type is not a torch global"
                    )))
                }
            },
            _ => {
                return Err(pickle_err(format!(
                    "tensor `{name}`: unexpected storage id"
                )))
            }
        };
        out.push(PthEntry {
            name: name.to_string(),
            dtype,
            storage,
            offset: usize::try_from(*offset)
                .map_err(|_| pickle_err(format!("tensor `{name}`: negative offset")))?,
            shape: int_list(size, "size", name)?,
            stride: int_list(stride, "stride", name)?,
        });
    }
    Ok(out)
}

fn read_pth(_path: &Path, bytes: &[u8]) -> Result<TensorFile, LoadError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| LoadError::Zip(e.to_string()))?;
    let pkl_name = zip
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_owned)
        .ok_or_else(|| LoadError::Zip("no data.pkl in the archive".into()))?;
    let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();
    let mut pickle = Vec::new();
    zip.by_name(&pkl_name)
        .and_then(|mut f| f.read_to_end(&mut pickle).map_err(Into::into))
        .map_err(|e| LoadError::Zip(format!("{pkl_name}: {e}")))?;
    let entries = pth_entries(&pickle)?;
    let mut storages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    let mut widest = FileType::F32;
    for t in entries {
        let (ty, size) = match t.dtype.as_str() {
            "FloatStorage" => (FileType::F32, 4),
            "HalfStorage" => (FileType::F16, 2),
            "BFloat16Storage" => (FileType::BF16, 2),
            other => {
                return Err(LoadError::UnsupportedDtype {
                    key: t.name.clone(),
                    dtype: other.to_string(),
                })
            }
        };
        if ty != FileType::F32 {
            widest = ty;
        }
        let member = format!("{prefix}data/{}", t.storage);
        if !storages.contains_key(&t.storage) {
            let mut buf = Vec::new();
            zip.by_name(&member)
                .and_then(|mut f| f.read_to_end(&mut buf).map_err(Into::into))
                .map_err(|e| {
                    LoadError::Zip(format!("storage `{member}` of tensor `{}`: {e}", t.name))
                })?;
            storages.insert(t.storage.clone(), buf);
        }
        let storage = &storages[&t.storage];
        if t.shape.len() != t.stride.len() {
            return Err(LoadError::Corrupt(format!(
                "tensor `{}`: shape and stride lengths differ",
                t.name
            )));
        }
        // Gather through the strides (tensors saved from a transpose are not contiguous).
        let numel: usize = t.shape.iter().product();
        let max_index = t
            .shape
            .iter()
            .zip(&t.stride)
            .map(|(&n, &s)| n.saturating_sub(1) * s)
            .sum::<usize>();
        let offset = t.offset;
        if numel > 0 && (offset + max_index + 1) * size > storage.len() {
            return Err(LoadError::Truncated(format!(
                "tensor `{}` needs {} bytes of storage `{}`, which has {}",
                t.name,
                (offset + max_index + 1) * size,
                t.storage,
                storage.len()
            )));
        }
        let mut raw = Vec::with_capacity(numel * size);
        let mut idx = vec![0usize; t.shape.len()];
        for _ in 0..numel {
            let e = offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            raw.extend_from_slice(&storage[e * size..(e + 1) * size]);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        let data = convert(&raw, ty, &t.name)?;
        tensors.insert(
            t.name.clone(),
            RawTensor {
                shape: t.shape.clone(),
                data,
            },
        );
    }
    if tensors.is_empty() {
        return Err(LoadError::Corrupt("the checkpoint holds no tensors".into()));
    }
    Ok(TensorFile {
        tensors,
        layout: Layout::Blink,
        file_type: widest,
    })
}

// ---------------------------------------------------------------- safetensors

fn read_safetensors(bytes: &[u8]) -> Result<TensorFile, LoadError> {
    use safetensors::{Dtype, SafeTensors};
    let st = SafeTensors::deserialize(bytes).map_err(|e| LoadError::Safetensors(e.to_string()))?;
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
        let data = c.take(numel / per * bsize, &format!("data of tensor `{key}`"))?;
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
        safetensors::serialize(views, &None).map_err(|e| LoadError::Safetensors(e.to_string()))?;
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

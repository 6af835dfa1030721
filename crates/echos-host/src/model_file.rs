//! Trained models on disk: safetensors tensors plus versioned JSON metadata (format name,
//! format version, engine version, dtype, reservoir config, readout setup, a CRC-32 of the
//! tensor bytes), written atomically.
//! The layout is documented in docs/model-format.md; change both together and bump
//! `FORMAT_VERSION` when old readers would misread a new file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use echos_core::esn::{ConfigError, Esn, EsnConfig};
use echos_core::matrix::{Csr, Dense};
use echos_core::readout::{Linear, ReadoutError};
use echos_core::topology::{BlockSparse, ReservoirMatrix};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::training::{EsnModel, ReadoutSetup, TrainError};

pub const FORMAT_NAME: &str = "echos-esn";
/// Version 2 added `tensors_crc32`; version 1 (the same layout without it) still loads.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this reader loads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Metadata key of the CRC-32 (IEEE, as zlib's `crc32`) of the bytes after the JSON header,
/// as 8 lowercase hex digits.
pub const CHECKSUM_KEY: &str = "tensors_crc32";

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot read model {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write model {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model {path} is not a valid safetensors file (corrupted or truncated?): {reason}")]
    NotSafetensors { path: PathBuf, reason: String },
    #[error("model {path} is not an echos model: metadata key '{key}' is {found}")]
    NotEchosModel {
        path: PathBuf,
        key: &'static str,
        found: String,
    },
    #[error(
        "model {path} has format version {found}; this echos reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
    )]
    Version { path: PathBuf, found: String },
    #[error(
        "model {path} is corrupt: its tensor data has CRC-32 {computed:08x}, but the file records {stored:08x} (damaged on disk or in transfer; use an intact copy or train again)"
    )]
    Corrupt {
        path: PathBuf,
        stored: u32,
        computed: u32,
    },
    #[error("model {path}: metadata '{key}' is not valid: {reason}")]
    Metadata {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
    #[error("model {path}: tensor '{name}' is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("model {path}: tensor '{name}' has dtype {found}, expected {expected}")]
    TensorDtype {
        path: PathBuf,
        name: String,
        found: String,
        expected: &'static str,
    },
    #[error("model {path}: tensor '{name}' has shape {found:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("model {path}: weights do not fit the configuration: {source}")]
    Config { path: PathBuf, source: ConfigError },
    #[error("model {path}: readout: {source}")]
    Readout { path: PathBuf, source: ReadoutError },
    #[error("model {path}: {source}")]
    Model { path: PathBuf, source: TrainError },
    #[error("cannot serialise the model: {0}")]
    Serialize(String),
}

/// How W is stored, in the `reservoir` metadata entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ReservoirMeta {
    Dense,
    Csr,
    Cycle {
        weight: f64,
    },
    DelayLine {
        weight: f64,
    },
    CycleJumps {
        cycle_weight: f64,
        jump_weight: f64,
        jump: usize,
    },
    /// Tensors `w.indices` [groups·per_group] and `w.values` [groups·per_group·size].
    Block {
        size: usize,
        per_group: usize,
    },
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64_bytes(v: impl Iterator<Item = u32>) -> Vec<u8> {
    v.flat_map(|x| i64::from(x).to_le_bytes()).collect()
}

/// The bytes of the model file for `model`.
pub fn to_bytes(model: &EsnModel) -> Result<Vec<u8>, ModelFileError> {
    let esn = model.esn();
    let n = esn.units();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let reservoir = match esn.w() {
        ReservoirMatrix::Dense(d) => {
            owned.push(("w".into(), Dtype::F64, vec![n, n], f64_bytes(&d.data)));
            ReservoirMeta::Dense
        }
        ReservoirMatrix::Csr(c) => {
            owned.push((
                "w.indptr".into(),
                Dtype::I64,
                vec![c.indptr.len()],
                i64_bytes(c.indptr.iter().copied()),
            ));
            owned.push((
                "w.indices".into(),
                Dtype::I64,
                vec![c.indices.len()],
                i64_bytes(c.indices.iter().copied()),
            ));
            owned.push((
                "w.values".into(),
                Dtype::F64,
                vec![c.values.len()],
                f64_bytes(&c.values),
            ));
            ReservoirMeta::Csr
        }
        ReservoirMatrix::Block(b) => {
            owned.push((
                "w.indices".into(),
                Dtype::I64,
                vec![b.indices.len()],
                i64_bytes(b.indices.iter().copied()),
            ));
            owned.push((
                "w.values".into(),
                Dtype::F64,
                vec![b.values.len()],
                f64_bytes(&b.values),
            ));
            ReservoirMeta::Block {
                size: b.size,
                per_group: b.per_group,
            }
        }
        ReservoirMatrix::Cycle { weight, .. } => ReservoirMeta::Cycle { weight: *weight },
        ReservoirMatrix::DelayLine { weight, .. } => ReservoirMeta::DelayLine { weight: *weight },
        ReservoirMatrix::CycleJumps {
            cycle_weight,
            jump_weight,
            jump,
            ..
        } => ReservoirMeta::CycleJumps {
            cycle_weight: *cycle_weight,
            jump_weight: *jump_weight,
            jump: *jump,
        },
    };
    let w_in = esn.w_in();
    owned.push((
        "w_in".into(),
        Dtype::F64,
        vec![w_in.rows, w_in.cols],
        f64_bytes(&w_in.data),
    ));
    if let Some(fb) = esn.w_fb() {
        owned.push((
            "w_fb".into(),
            Dtype::F64,
            vec![fb.rows, fb.cols],
            f64_bytes(&fb.data),
        ));
    }
    owned.push(("bias".into(), Dtype::F64, vec![n], f64_bytes(esn.bias())));
    let r = &model.readout().weights;
    owned.push((
        "readout".into(),
        Dtype::F64,
        vec![r.rows, r.cols],
        f64_bytes(&r.data),
    ));
    owned.push(("state".into(), Dtype::F64, vec![n], f64_bytes(esn.state())));
    owned.push((
        "last_output".into(),
        Dtype::F64,
        vec![model.last_output().len()],
        f64_bytes(model.last_output()),
    ));
    owned.push((
        "last_input".into(),
        Dtype::F64,
        vec![model.last_input().len()],
        f64_bytes(model.last_input()),
    ));

    let json = |v: &dyn erased::Json| v.to_json().map_err(ModelFileError::Serialize);
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT_NAME.to_string());
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    // A placeholder of the final width: `canonical_header` writes the checksum once the tensor
    // bytes are laid out, without changing the header's length.
    meta.insert(CHECKSUM_KEY.to_string(), format!("{:08x}", 0));
    meta.insert(
        "engine_version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    meta.insert("dtype".to_string(), "f64".to_string());
    meta.insert("config".to_string(), json(esn.config())?);
    meta.insert("readout".to_string(), json(&model.setup)?);
    meta.insert("reservoir".to_string(), json(&reservoir)?);

    let views = owned
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| ModelFileError::Serialize(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::tensor::serialize(views, Some(meta))
        .map_err(|e| ModelFileError::Serialize(e.to_string()))?;
    canonical_header(bytes)
}

/// The header rewritten by the one canonical form (`echos_files::safetensors_header`: keys
/// sorted, so one model always gives the same bytes — the determinism contract covers saved
/// models too), with the checksum of the tensor bytes in place of its placeholder (same width,
/// so the header keeps its length).
fn canonical_header(bytes: Vec<u8>) -> Result<Vec<u8>, ModelFileError> {
    echos_files::safetensors_header::canonical(bytes, |value, tensors| {
        let checksum = format!("{:08x}", crc32fast::hash(tensors));
        match value
            .get_mut("__metadata__")
            .and_then(|m| m.get_mut(CHECKSUM_KEY))
        {
            Some(slot) => *slot = serde_json::Value::String(checksum),
            None => return Err("no checksum placeholder".into()),
        }
        Ok(())
    })
    .map_err(|why| ModelFileError::Serialize(format!("sorting the header: {why}")))
}

mod erased {
    /// Object-safe JSON serialisation, so one closure serialises every metadata type.
    pub trait Json {
        fn to_json(&self) -> Result<String, String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, String> {
            serde_json::to_string(self).map_err(|e| e.to_string())
        }
    }
}

/// Saves atomically (temp file in the same directory, fsync, rename).
pub fn save(path: &Path, model: &EsnModel) -> Result<(), ModelFileError> {
    let bytes = to_bytes(model)?;
    crate::atomic::write(path, &bytes).map_err(|source| ModelFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads and validates a model file.
pub fn load(path: &Path) -> Result<EsnModel, ModelFileError> {
    load_with_integrity(path).map(|(model, _)| model)
}

/// What loading could check of a file's integrity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The tensor bytes match the file's CRC-32.
    Verified,
    /// A file of an older format version, written before files carried a checksum: loaded
    /// without one (its structure is still validated).
    Unchecked { format_version: u32 },
}

impl Integrity {
    /// What a front end tells the user about an unchecked file, naming it.
    pub fn warning(self, path: &Path) -> Option<String> {
        match self {
            Integrity::Verified => None,
            Integrity::Unchecked { format_version } => Some(format!(
                "model {} has format version {format_version}, written before model files carried a checksum: \
                 damage to its weights cannot be detected (train again to get a checked version-{FORMAT_VERSION} file)",
                path.display()
            )),
        }
    }
}

/// Loads and validates a model file, and says whether its checksum was verified.
pub fn load_with_integrity(path: &Path) -> Result<(EsnModel, Integrity), ModelFileError> {
    let bytes = std::fs::read(path).map_err(|source| ModelFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes_with_integrity(&bytes, path)
}

struct Reader<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
}

impl Reader<'_> {
    fn view(
        &self,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
    ) -> Result<TensorView<'_>, ModelFileError> {
        let v = self
            .st
            .tensor(name)
            .map_err(|_| ModelFileError::MissingTensor {
                path: self.path.to_path_buf(),
                name: name.to_string(),
            })?;
        if v.dtype() != dtype {
            return Err(ModelFileError::TensorDtype {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                found: format!("{:?}", v.dtype()),
                expected: if dtype == Dtype::F64 { "F64" } else { "I64" },
            });
        }
        if v.shape() != shape {
            return Err(ModelFileError::TensorShape {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                found: v.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        Ok(v)
    }

    fn f64s(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>, ModelFileError> {
        let v = self.view(name, Dtype::F64, shape)?;
        Ok(v.data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")))
            .collect())
    }

    /// A 1-D I64 tensor of any length, as u32 indices.
    fn indices(&self, name: &str) -> Result<Vec<u32>, ModelFileError> {
        let len = self
            .st
            .tensor(name)
            .map(|v| v.shape().iter().product::<usize>())
            .unwrap_or(0);
        let v = self.view(name, Dtype::I64, &[len])?;
        v.data()
            .chunks_exact(8)
            .map(|c| {
                let i = i64::from_le_bytes(c.try_into().expect("8-byte chunk"));
                u32::try_from(i).map_err(|_| ModelFileError::Metadata {
                    path: self.path.to_path_buf(),
                    key: "reservoir",
                    reason: format!("{name} holds {i}, outside the index range"),
                })
            })
            .collect()
    }

    fn values_len(&self, name: &str) -> usize {
        self.st
            .tensor(name)
            .map(|v| v.shape().iter().product())
            .unwrap_or(0)
    }
}

/// Parses model bytes; `path` only names the file in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<EsnModel, ModelFileError> {
    from_bytes_with_integrity(bytes, path).map(|(model, _)| model)
}

/// Parses model bytes and says whether their checksum was verified; `path` only names the
/// file in errors.
pub fn from_bytes_with_integrity(
    bytes: &[u8],
    path: &Path,
) -> Result<(EsnModel, Integrity), ModelFileError> {
    let p = || path.to_path_buf();
    let not_st = |e: safetensors::SafeTensorError| ModelFileError::NotSafetensors {
        path: p(),
        reason: e.to_string(),
    };
    let (header_len, header) = SafeTensors::read_metadata(bytes).map_err(not_st)?;
    let st = SafeTensors::deserialize(bytes).map_err(not_st)?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    let get = |key: &'static str| meta.get(key).map(String::as_str);
    match get("format") {
        Some(FORMAT_NAME) => {}
        other => {
            return Err(ModelFileError::NotEchosModel {
                path: p(),
                key: "format",
                found: other.map_or("missing".into(), |s| format!("{s:?}")),
            })
        }
    }
    let version = match get("format_version").map(str::parse::<u32>) {
        Some(Ok(v)) if (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&v) => v,
        _ => {
            return Err(ModelFileError::Version {
                path: p(),
                found: get("format_version").unwrap_or("missing").to_string(),
            })
        }
    };
    // Before anything is read from the tensors: a damaged file is reported as damaged, not as
    // whatever its damaged weights would make of it.
    let integrity = if version >= 2 {
        let stored = get(CHECKSUM_KEY)
            .filter(|s| s.len() == 8)
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .ok_or_else(|| ModelFileError::Metadata {
                path: p(),
                key: CHECKSUM_KEY,
                reason: format!(
                    "{}; a version-{version} file records 8 hex digits",
                    get(CHECKSUM_KEY).map_or("missing".into(), |s| format!("\"{s}\""))
                ),
            })?;
        // read_metadata checked that the header lies inside `bytes`.
        let computed = crc32fast::hash(bytes.get(8 + header_len..).unwrap_or_default());
        if computed != stored {
            return Err(ModelFileError::Corrupt {
                path: p(),
                stored,
                computed,
            });
        }
        Integrity::Verified
    } else {
        Integrity::Unchecked {
            format_version: version,
        }
    };
    match get("dtype") {
        Some("f64") => {}
        other => {
            return Err(ModelFileError::Metadata {
                path: p(),
                key: "dtype",
                reason: format!(
                    "{}; this version stores f64 only",
                    other.map_or("missing".into(), |s| format!("\"{s}\""))
                ),
            })
        }
    }
    fn parse<T: serde::de::DeserializeOwned>(
        meta: &HashMap<String, String>,
        key: &'static str,
        path: &Path,
    ) -> Result<T, ModelFileError> {
        let text = meta.get(key).ok_or_else(|| ModelFileError::Metadata {
            path: path.to_path_buf(),
            key,
            reason: "missing".into(),
        })?;
        serde_json::from_str(text).map_err(|e| ModelFileError::Metadata {
            path: path.to_path_buf(),
            key,
            reason: e.to_string(),
        })
    }
    let config: EsnConfig = parse(meta, "config", path)?;
    let setup: ReadoutSetup = parse(meta, "readout", path)?;
    let reservoir: ReservoirMeta = parse(meta, "reservoir", path)?;
    config
        .validate()
        .map_err(|source| ModelFileError::Config { path: p(), source })?;

    let r = Reader { path, st };
    let n = config.units;
    let n_inputs = config.inputs;
    let w = match reservoir {
        ReservoirMeta::Dense => ReservoirMatrix::Dense(Dense {
            rows: n,
            cols: n,
            data: r.f64s("w", &[n, n])?,
        }),
        ReservoirMeta::Csr => {
            let indptr = r.indices("w.indptr")?;
            let indices = r.indices("w.indices")?;
            let values = r.f64s("w.values", &[r.values_len("w.values")])?;
            let csr =
                Csr::new(n, n, indptr, indices, values).map_err(|e| ModelFileError::Metadata {
                    path: p(),
                    key: "reservoir",
                    reason: format!("the CSR matrix W is inconsistent: {e}"),
                })?;
            ReservoirMatrix::Csr(csr)
        }
        ReservoirMeta::Block { size, per_group } => {
            let block = BlockSparse {
                units: n,
                size,
                per_group,
                indices: r.indices("w.indices")?,
                values: r.f64s("w.values", &[r.values_len("w.values")])?,
            };
            block.validate().map_err(|e| ModelFileError::Metadata {
                path: p(),
                key: "reservoir",
                reason: format!("the block-sparse matrix W is inconsistent: {e}"),
            })?;
            ReservoirMatrix::Block(block)
        }
        ReservoirMeta::Cycle { weight } => ReservoirMatrix::Cycle { units: n, weight },
        ReservoirMeta::DelayLine { weight } => ReservoirMatrix::DelayLine { units: n, weight },
        ReservoirMeta::CycleJumps {
            cycle_weight,
            jump_weight,
            jump,
        } => ReservoirMatrix::CycleJumps {
            units: n,
            cycle_weight,
            jump_weight,
            jump,
        },
    };
    let w_in = Dense {
        rows: n,
        cols: config.inputs,
        data: r.f64s("w_in", &[n, config.inputs])?,
    };
    let w_fb = if config.outputs > 0 {
        Some(Dense {
            rows: n,
            cols: config.outputs,
            data: r.f64s("w_fb", &[n, config.outputs])?,
        })
    } else {
        None
    };
    let bias = r.f64s("bias", &[n])?;
    let n_features = n + if setup.input_features {
        config.inputs
    } else {
        0
    };
    let outputs =
        r.st.tensor("readout")
            .ok()
            .and_then(|v| v.shape().first().copied())
            .unwrap_or(0);
    let readout = Dense {
        rows: outputs,
        cols: n_features + 1,
        data: r.f64s("readout", &[outputs, n_features + 1])?,
    };
    let readout = Linear::from_weights(readout)
        .map_err(|source| ModelFileError::Readout { path: p(), source })?;
    let state = r.f64s("state", &[n])?;
    let last_output = r.f64s("last_output", &[outputs])?;
    let last_input = r.f64s("last_input", &[n_inputs])?;
    if last_output
        .iter()
        .chain(&last_input)
        .any(|v| !v.is_finite())
    {
        return Err(ModelFileError::Metadata {
            path: p(),
            key: "last_output",
            reason: "last_output or last_input contains NaN or infinity".into(),
        });
    }
    let mut esn = Esn::from_parts(config, w, w_in, w_fb, bias)
        .map_err(|source| ModelFileError::Config { path: p(), source })?;
    esn.set_state(&state).map_err(|e| ModelFileError::Model {
        path: p(),
        source: TrainError::Step(e),
    })?;
    let model = EsnModel::from_parts(esn, readout, setup, last_output, last_input)
        .map_err(|source| ModelFileError::Model { path: p(), source })?;
    Ok((model, integrity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::Array2;
    use crate::training::{self, Generative, TrainOptions};
    use echos_core::esn::StepKernel;
    use echos_core::kernels::{Kernel, Variant};
    use echos_core::topology::Topology;

    fn narma_model(topology: Topology, units: usize, input_features: bool) -> (EsnModel, Array2) {
        narma_model_with(topology, units, input_features, StepKernel::Exact)
    }

    fn narma_model_with(
        topology: Topology,
        units: usize,
        input_features: bool,
        kernel: StepKernel,
    ) -> (EsnModel, Array2) {
        let (u, y) = crate::datasets::narma10(900, 3).unwrap();
        let input = Array2::column(u[..600].to_vec()).unwrap();
        let target = Array2::column(y[..600].to_vec()).unwrap();
        let opts = TrainOptions {
            units,
            spectral_radius: 0.9,
            leak_rate: 1.0,
            input_scaling: 1.0,
            bias_scaling: 0.5,
            connectivity: 0.1,
            topology,
            ridge: 1e-6,
            washout: 100,
            input_features,
            generative: Generative::None,
            feedback_scaling: 0.0,
            noise: 0.0,
            solver: crate::training::Solver::NormalEquations,
            seed: 11,
            kernel,
        };
        let model = training::train(&opts, &input, &target).unwrap();
        (model, Array2::column(u[600..].to_vec()).unwrap())
    }

    fn bits(a: &Array2) -> Vec<u64> {
        a.data().iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn round_trip_gives_bit_identical_predictions() {
        let dir = tempfile::tempdir().unwrap();
        // Sparse (CSR), dense (20 units → auto dense) and structured reservoirs.
        for (topology, units, inf) in [
            (Topology::Random, 200, true),
            (Topology::Random, 20, false),
            (Topology::Cycle, 50, false),
            (Topology::Block { size: 16 }, 100, false),
            (Topology::Block { size: 7 }, 50, true),
        ] {
            let (model, test) = narma_model(topology, units, inf);
            let path = dir.path().join("m.safetensors");
            save(&path, &model).unwrap();
            let mut loaded = load(&path).unwrap();
            let mut original = model.clone();
            let a = original.run(&test).unwrap();
            let b = loaded.run(&test).unwrap();
            assert_eq!(bits(&a), bits(&b), "{topology:?}");
            assert_eq!(loaded.esn().w(), model.esn().w());
        }
    }

    /// The step kernel is part of the saved configuration: a fused model reloads with the same
    /// variant and gives the same bits; an exact model's header does not mention it (so files
    /// from before the field existed are unchanged); a variant this CPU lacks, or a name that
    /// is not a concrete kernel, is a typed configuration error naming it.
    #[test]
    fn step_kernel_is_saved_and_checked_on_load() {
        let p = Path::new("m.safetensors");
        let (exact, _) = narma_model(Topology::Random, 30, false);
        let exact_bytes = to_bytes(&exact).unwrap();
        let header = |b: &[u8]| {
            let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            String::from_utf8(b[8..8 + n].to_vec()).unwrap()
        };
        assert!(!header(&exact_bytes).contains("kernel"));
        for k in Kernel::available() {
            let kernel = StepKernel::Fused(k.variant());
            for (topology, units) in [(Topology::Random, 200), (Topology::Cycle, 40)] {
                let (model, test) = narma_model_with(topology, units, true, kernel);
                let bytes = to_bytes(&model).unwrap();
                let name = format!(r#"\"kernel\":\"{}\""#, k.variant().name());
                assert!(header(&bytes).contains(&name), "{}", header(&bytes));
                let mut loaded = from_bytes(&bytes, p).unwrap();
                assert_eq!(loaded.esn().step_kernel(), kernel);
                let a = model.clone().run(&test).unwrap();
                assert_eq!(bits(&a), bits(&loaded.run(&test).unwrap()), "{kernel}");
                // And the fused model really differs from the exact one (another kernel).
                let (exact, _) = narma_model_with(topology, units, true, StepKernel::Exact);
                assert_ne!(bits(&a), bits(&exact.clone().run(&test).unwrap()));
            }
        }
        let (scalar, _) = narma_model_with(
            Topology::Random,
            30,
            false,
            StepKernel::Fused(Variant::Scalar),
        );
        let bytes = to_bytes(&scalar).unwrap();
        let scalar_name = r#"\"kernel\":\"scalar\""#;
        for (to, ok) in [
            (r#"\"kernel\":\"avx512\""#, Variant::Avx512.is_supported()),
            (r#"\"kernel\":\"avx2  \""#, false),
            (r#"\"kernel\":\"fast  \""#, false),
        ] {
            let e = from_bytes(&patch_header(&bytes, scalar_name, to), p);
            match e {
                Ok(m) => assert!(ok && m.esn().step_kernel() == StepKernel::Fused(Variant::Avx512)),
                Err(e) => {
                    assert!(!ok, "{to}: {e}");
                    let text = e.to_string();
                    assert!(text.contains("kernel") || text.contains("avx512"), "{text}");
                }
            }
        }
    }

    /// The metadata goes through a `HashMap` (random order per map): without sorting the header,
    /// two saves of one model differ in their bytes almost every time.
    #[test]
    fn the_same_model_always_gives_the_same_bytes() {
        let (model, _) = narma_model(Topology::Random, 30, false);
        let first = to_bytes(&model).unwrap();
        for _ in 0..20 {
            assert_eq!(to_bytes(&model).unwrap(), first);
        }
        let loaded = from_bytes(&first, Path::new("mem")).unwrap();
        assert_eq!(to_bytes(&loaded).unwrap(), first);
    }

    #[test]
    fn feedback_model_round_trips_and_generates_identically() {
        let mg = crate::datasets::MackeyGlass::default()
            .generate(700)
            .unwrap();
        let s: Vec<f64> = mg.iter().map(|&v| crate::datasets::squash(v)).collect();
        let cfg = EsnConfig {
            units: 60,
            inputs: 1,
            outputs: 1,
            spectral_radius: 0.8,
            leak_rate: 0.4,
            feedback_scaling: 0.5,
            bias_scaling: 0.0,
            seed: 5,
            ..EsnConfig::default()
        };
        let esn = Esn::new(&cfg).unwrap();
        let setup = ReadoutSetup {
            ridge: 1e-8,
            washout: 100,
            input_features: false,
            generative: Generative::Feedback,
            solver: crate::training::Solver::Qr,
        };
        let input = Array2::column(vec![0.2; 700]).unwrap();
        let target = Array2::column(s).unwrap();
        let model = training::fit(esn, setup, &input, &target, 1e-6, 1).unwrap();
        let bytes = to_bytes(&model).unwrap();
        let mut loaded = from_bytes(&bytes, Path::new("mem")).unwrap();
        let mut original = model.clone();
        assert_eq!(
            bits(&original.generate(50).unwrap()),
            bits(&loaded.generate(50).unwrap())
        );
    }

    /// Replaces `from` by `to` (same length) in the JSON header, keeping offsets valid.
    fn patch_header(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.contains(from), "{from} not in {header}");
        let mut out = bytes[..8].to_vec();
        out.extend_from_slice(header.replacen(from, to, 1).as_bytes());
        out.extend_from_slice(&bytes[8 + n..]);
        out
    }

    #[test]
    fn rejects_corrupted_truncated_and_foreign_files() {
        let (model, _) = narma_model(Topology::Random, 30, false);
        let bytes = to_bytes(&model).unwrap();
        let p = Path::new("m.safetensors");
        assert!(from_bytes(&bytes, p).is_ok());

        let e = from_bytes(&bytes[..bytes.len() - 9], p).unwrap_err();
        assert!(matches!(e, ModelFileError::NotSafetensors { .. }), "{e}");
        assert!(e.to_string().contains("truncated"));
        let e = from_bytes(&bytes[..5], p).unwrap_err();
        assert!(matches!(e, ModelFileError::NotSafetensors { .. }), "{e}");
        let mut garbled = bytes.clone();
        garbled[10] = b'#';
        let e = from_bytes(&garbled, p).unwrap_err();
        assert!(matches!(e, ModelFileError::NotSafetensors { .. }), "{e}");

        let other = patch_header(
            &bytes,
            "\"format_version\":\"2\"",
            "\"format_version\":\"7\"",
        );
        let e = from_bytes(&other, p).unwrap_err();
        assert!(
            matches!(e, ModelFileError::Version { ref found, .. } if found == "7"),
            "{e}"
        );
        assert!(e.to_string().contains("versions 1 to 2"), "{e}");
        let foreign = patch_header(
            &bytes,
            "\"format\":\"echos-esn\"",
            "\"format\":\"other-esn\"",
        );
        assert!(matches!(
            from_bytes(&foreign, p),
            Err(ModelFileError::NotEchosModel { .. })
        ));
        let f32s = patch_header(&bytes, "\"dtype\":\"f64\"", "\"dtype\":\"f32\"");
        assert!(matches!(
            from_bytes(&f32s, p),
            Err(ModelFileError::Metadata { key: "dtype", .. })
        ));
    }

    fn header_len(bytes: &[u8]) -> usize {
        u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
    }

    /// The byte range of tensor `name` in the file, from its header entry.
    fn tensor_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
        let n = header_len(bytes);
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let at = |i: usize| 8 + n + header[name]["data_offsets"][i].as_u64().unwrap() as usize;
        at(0)..at(1)
    }

    /// The file with its stored checksum recomputed for its (edited) tensor bytes: what a tool
    /// that writes a wrong value but checksums it correctly would produce.
    fn reseal(bytes: &[u8]) -> Vec<u8> {
        let n = header_len(bytes);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let key = format!("\"{CHECKSUM_KEY}\":\"");
        let at = 8 + header.find(&key).unwrap() + key.len();
        let mut out = bytes.to_vec();
        let crc = format!("{:08x}", crc32fast::hash(&bytes[8 + n..]));
        out[at..at + 8].copy_from_slice(crc.as_bytes());
        out
    }

    /// The file with its metadata map edited (the header may change length).
    fn edit_metadata(
        bytes: &[u8],
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> Vec<u8> {
        let n = header_len(bytes);
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        edit(header["__metadata__"].as_object_mut().unwrap());
        let text = serde_json::to_vec(&header).unwrap();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        out.extend_from_slice(&bytes[8 + n..]);
        out
    }

    /// One flipped byte anywhere in the tensors (here the sign/exponent byte of a readout
    /// weight) is a typed `Corrupt` error naming the file; before the checksum such a file
    /// loaded silently and predicted something else (shown by resealing it).
    #[test]
    fn a_flipped_tensor_byte_is_a_corrupt_file_naming_it() {
        let (model, test) = narma_model(Topology::Random, 200, true);
        let bytes = to_bytes(&model).unwrap();
        let p = Path::new("flipped.safetensors");
        assert_eq!(
            from_bytes_with_integrity(&bytes, p).unwrap().1,
            Integrity::Verified
        );
        let r = tensor_range(&bytes, "readout");
        let mut flipped = bytes.clone();
        flipped[r.start + 8 * 5 + 7] ^= 0x01;
        let e = from_bytes(&flipped, p).unwrap_err();
        assert!(
            matches!(e, ModelFileError::Corrupt { stored, computed, .. } if stored != computed),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("model flipped.safetensors is corrupt"),
            "{e}"
        );
        let mut unchecked = from_bytes(&reseal(&flipped), p).unwrap();
        assert_ne!(
            bits(&unchecked.run(&test).unwrap()),
            bits(&model.clone().run(&test).unwrap())
        );
        // Every tensor is covered, not only the readout.
        for name in [
            "w.indptr",
            "w.indices",
            "w.values",
            "w_in",
            "bias",
            "state",
            "last_output",
            "last_input",
        ] {
            let mut flipped = bytes.clone();
            flipped[tensor_range(&bytes, name).start] ^= 0x10;
            let e = from_bytes(&flipped, p).unwrap_err();
            assert!(matches!(e, ModelFileError::Corrupt { .. }), "{name}: {e}");
        }
    }

    /// Version-1 files (no checksum) load, flagged unchecked with a warning naming the file; a
    /// version-2 file without a well-formed checksum is refused.
    #[test]
    fn version_1_files_load_unchecked_and_version_2_needs_its_checksum() {
        let (model, test) = narma_model(Topology::Random, 30, false);
        let bytes = to_bytes(&model).unwrap();
        let p = Path::new("old.safetensors");
        let v1 = edit_metadata(&bytes, |m| {
            m.remove(CHECKSUM_KEY);
            m.insert("format_version".into(), "1".into());
        });
        let (mut loaded, integrity) = from_bytes_with_integrity(&v1, p).unwrap();
        assert_eq!(integrity, Integrity::Unchecked { format_version: 1 });
        let warning = integrity.warning(p).unwrap();
        assert!(
            warning.contains("old.safetensors") && warning.contains("checksum"),
            "{warning}"
        );
        assert_eq!(Integrity::Verified.warning(p), None);
        assert_eq!(
            bits(&loaded.run(&test).unwrap()),
            bits(&model.clone().run(&test).unwrap())
        );
        let missing = edit_metadata(&bytes, |m| {
            m.remove(CHECKSUM_KEY);
        });
        let e = from_bytes(&missing, p).unwrap_err();
        assert!(
            matches!(
                e,
                ModelFileError::Metadata {
                    key: CHECKSUM_KEY,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("missing"), "{e}");
        let garbled = edit_metadata(&bytes, |m| {
            m.insert(CHECKSUM_KEY.into(), "12zz".into());
        });
        let e = from_bytes(&garbled, p).unwrap_err();
        assert!(e.to_string().contains("\"12zz\""), "{e}");
    }

    /// A column index out of range (in a file whose checksum fits, so the matrix check is what
    /// finds it) is a sentence, not Rust debug text.
    #[test]
    fn a_bad_column_index_is_reported_in_words() {
        let (model, _) = narma_model(Topology::Random, 200, false);
        let bytes = to_bytes(&model).unwrap();
        let r = tensor_range(&bytes, "w.indices");
        let mut bad = bytes.clone();
        bad[r.start..r.start + 8].copy_from_slice(&999i64.to_le_bytes());
        let e = from_bytes(&reseal(&bad), Path::new("m.safetensors")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("CSR column index 999 in row 0 is out of range"),
            "{text}"
        );
        assert!(!text.contains("BadColumnIndex"), "{text}");
    }

    #[test]
    fn rejects_wrong_shapes_and_dtypes() {
        let (model, _) = narma_model(Topology::Random, 30, false);
        let bytes = to_bytes(&model).unwrap();
        let p = Path::new("m.safetensors");
        // Metadata values are JSON strings inside the JSON header, hence the escaped quotes.
        // The config now claims 2 inputs, but w_in is 30 × 1.
        let wrong = patch_header(&bytes, r#"\"inputs\":1"#, r#"\"inputs\":2"#);
        let e = from_bytes(&wrong, p).unwrap_err();
        assert!(
            matches!(e, ModelFileError::TensorShape { ref name, .. } if name == "w_in"),
            "{e}"
        );
        // The readout claims input features it does not have.
        let wrong = patch_header(
            &bytes,
            r#"\"input_features\":false"#,
            r#"\"input_features\":true "#,
        );
        let e = from_bytes(&wrong, p).unwrap_err();
        assert!(
            matches!(e, ModelFileError::TensorShape { ref name, .. } if name == "readout"),
            "{e}"
        );
        // Bias stored as I64 instead of F64 (same byte size).
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let entry = header.find("\"bias\":{").unwrap();
        let from = "\"dtype\":\"F64\"";
        let at = entry + header[entry..].find(from).unwrap();
        let mut h = header.to_string();
        h.replace_range(at..at + from.len(), "\"dtype\":\"I64\"");
        let mut wrong = bytes[..8].to_vec();
        wrong.extend_from_slice(h.as_bytes());
        wrong.extend_from_slice(&bytes[8 + n..]);
        let e = from_bytes(&wrong, p).unwrap_err();
        assert!(matches!(e, ModelFileError::TensorDtype { .. }), "{e}");
        // NaN in the readout.
        let (good, _) = narma_model(Topology::Random, 30, false);
        let mut readout = good.readout().clone();
        readout.weights.data[3] = f64::NAN;
        let bad = EsnModel::from_parts(
            good.esn().clone(),
            readout,
            good.setup.clone(),
            good.last_output().to_vec(),
            good.last_input().to_vec(),
        )
        .unwrap();
        let e = from_bytes(&to_bytes(&bad).unwrap(), p).unwrap_err();
        assert!(matches!(e, ModelFileError::Readout { .. }), "{e}");
    }

    #[test]
    fn rejects_an_inconsistent_block_matrix() {
        let (model, _) = narma_model(Topology::Block { size: 8 }, 40, false);
        let bytes = to_bytes(&model).unwrap();
        let p = Path::new("m.safetensors");
        assert!(from_bytes(&bytes, p).is_ok());
        // The stored layout says 8 rows per group; claiming 5 makes the value count wrong.
        let wrong = patch_header(&bytes, r#"\"size\":8,"#, r#"\"size\":5,"#);
        let e = from_bytes(&wrong, p).unwrap_err();
        assert!(
            matches!(
                e,
                ModelFileError::Metadata {
                    key: "reservoir",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("block-sparse"), "{e}");
    }
}

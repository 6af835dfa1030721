//! Host side of RWKV in echo-os: loading BlinkDL `.pth`, safetensors and rwkv.cpp `.bin`
//! weights into the engine's [`Model`], the world and byte tokenizers, state files, `.npy`
//! token/logit files and a spinning thread pool for the engine's [`Parallel`] hook.
//!
//! Resource rule for every reader here: nothing is allocated from a size a file declares
//! before that size is checked against the bytes present (or, for `.pth` views and deflated
//! members, charged to a budget of a small multiple of the file); every size is computed with
//! checked arithmetic. docs/rwkv.md lists the limits.
#![deny(unsafe_code)]

pub mod archive;
pub mod convert;
pub mod generate;
pub mod npy;
pub mod pickle;
// The pool hands the engine's closures to spinning threads through raw pointers.
#[allow(unsafe_code)]
pub mod pool;
pub mod state_io;
pub mod synthetic;
pub mod tensors;
pub mod tokenizer;

use std::path::Path;

pub use echos_core::rwkv::{Kernel, Model, Parallel, RwkvError, Scratch, Serial, State, Version};
pub use pool::SpinPool;
pub use tensors::{FileType, Layout};

/// Everything that can go wrong reading a model or its companion files.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{0}`: {1}")]
    Io(String, std::io::Error),
    #[error("not a readable PyTorch checkpoint (pickle): {0}")]
    Pickle(String),
    #[error("not a readable PyTorch checkpoint (zip archive): {0}")]
    Zip(String),
    #[error("not a readable safetensors file: {0}")]
    Safetensors(String),
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("the file is corrupted: {0}")]
    Corrupt(String),
    #[error("unknown quantization type {0} in the rwkv.cpp header (known: 0 FP32, 1 FP16, 2 Q4_0, 3 Q4_1, 7 Q5_0, 8 Q5_1, 9 Q8_0)")]
    UnknownQuantization(i32),
    #[error("tensor `{key}` has unknown quantization type {code} (known: 0 FP32, 1 FP16, 2 Q4_0, 3 Q4_1, 7 Q5_0, 8 Q5_1, 9 Q8_0)")]
    UnknownQuantizationOf { key: String, code: i32 },
    #[error(
        "tensor `{key}` has data type {dtype}; only float32, float16 and bfloat16 are supported"
    )]
    UnsupportedDtype { key: String, dtype: String },
    #[error("the model lacks the tensor `{0}`")]
    MissingKey(String),
    #[error("unknown tensor `{key}` for an RWKV v{version} model")]
    UnknownKey { key: String, version: &'static str },
    #[error("tensor `{key}` has shape {found}, expected {expected}")]
    Shape {
        key: String,
        expected: String,
        found: String,
    },
    #[error("the weights do not form a valid model: {0}")]
    Model(RwkvError),
    #[error("{what} would need {bytes} bytes, beyond the {limit} bytes a {file_len}-byte checkpoint may expand to ({expansion}x its size plus 1 MiB): the file is crafted or corrupt", expansion = tensors::PTH_EXPANSION)]
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
        file_len: u64,
    },
    #[error("this is an echos ESN model, not RWKV weights: use `echos esn ...` with it")]
    EsnModel,
    #[error("this is an RWKV state file, not a model: give it with --state-in")]
    StateFile,
}

/// What was loaded, for reports.
pub struct Loaded {
    pub model: Model,
    pub layout: Layout,
    pub file_type: FileType,
}

/// Loads a model file of any supported format (chosen by its first bytes). The model gets the
/// widest matrix kernel this CPU supports.
pub fn load_model(path: &Path) -> Result<Loaded, LoadError> {
    let file = tensors::read_tensor_file(path)?;
    let model = convert::build_model(&file)?;
    Ok(Loaded {
        model,
        layout: file.layout,
        file_type: file.file_type,
    })
}

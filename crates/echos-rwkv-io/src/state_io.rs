//! Saving and restoring an RWKV [`State`] as safetensors (tensors `att_x`, `ffn_x`, `wkv`)
//! with versioned JSON-style metadata naming the model shape it belongs to.

use std::collections::HashMap;
use std::path::Path;

use echos_core::rwkv::{Model, State};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

pub const STATE_FORMAT: &str = "echos-rwkv-state/1";

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot access `{0}`: {1}")]
    Io(String, std::io::Error),
    #[error("`{0}` is not a readable state file: {1}")]
    Format(String, String),
    #[error("`{path}` is a state for {found}, but the model is {expected}")]
    Mismatch {
        path: String,
        found: String,
        expected: String,
    },
}

/// Writes to a temporary file beside `path`, fsyncs and renames (the workspace's one atomic
/// write, `echos_files::atomic`): readers never see half a file, and a failed write leaves
/// neither a half file nor its temporary behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    echos_files::atomic::write(path, bytes)
}

fn shape_tag(model: &Model) -> String {
    let d = model.dims;
    format!(
        "RWKV v{} n_layer {} n_embd {} n_head {} head_size {}",
        model.version.name(),
        d.n_layer,
        d.n_embd,
        d.n_head,
        d.head_size
    )
}

fn bytes_of(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn save_state(path: &Path, model: &Model, state: &State) -> Result<(), StateFileError> {
    let p = path.display().to_string();
    let (a, f, w) = (
        bytes_of(&state.att_x),
        bytes_of(&state.ffn_x),
        bytes_of(&state.wkv),
    );
    let fmt = |e: safetensors::SafeTensorError| StateFileError::Format(p.clone(), e.to_string());
    let views = vec![
        (
            "att_x",
            TensorView::new(Dtype::F32, vec![state.att_x.len()], &a).map_err(fmt)?,
        ),
        (
            "ffn_x",
            TensorView::new(Dtype::F32, vec![state.ffn_x.len()], &f).map_err(fmt)?,
        ),
        (
            "wkv",
            TensorView::new(Dtype::F32, vec![state.wkv.len()], &w).map_err(fmt)?,
        ),
    ];
    let meta: HashMap<String, String> = [
        ("format".to_string(), STATE_FORMAT.to_string()),
        ("model".to_string(), shape_tag(model)),
    ]
    .into();
    let bytes = safetensors::serialize(views, Some(meta)).map_err(fmt)?;
    // The metadata map's order is random per run: one state, one byte sequence.
    let bytes = echos_files::safetensors_header::canonical(bytes, |_, _| Ok(()))
        .map_err(|why| StateFileError::Format(p.clone(), why))?;
    write_atomic(path, &bytes).map_err(|e| StateFileError::Io(p, e))
}

pub fn load_state(path: &Path, model: &Model) -> Result<State, StateFileError> {
    let bytes =
        std::fs::read(path).map_err(|e| StateFileError::Io(path.display().to_string(), e))?;
    state_from_bytes(&bytes, path, model)
}

/// [`load_state`] on bytes already in memory; `path` only names the file in errors.
pub fn state_from_bytes(bytes: &[u8], path: &Path, model: &Model) -> Result<State, StateFileError> {
    let p = path.display().to_string();
    let fmt = |m: String| StateFileError::Format(p.clone(), m);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| fmt(e.to_string()))?;
    let info = meta.metadata().clone().unwrap_or_default();
    if info.get("format").map(String::as_str) != Some(STATE_FORMAT) {
        return Err(fmt(format!("metadata `format` is not `{STATE_FORMAT}`")));
    }
    let expected = shape_tag(model);
    let found = info.get("model").cloned().unwrap_or_default();
    if found != expected {
        return Err(StateFileError::Mismatch {
            path: p,
            found,
            expected,
        });
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| fmt(e.to_string()))?;
    let mut state = State::new(model);
    for (name, dst) in [
        ("att_x", &mut state.att_x),
        ("ffn_x", &mut state.ffn_x),
        ("wkv", &mut state.wkv),
    ] {
        let t = st
            .tensor(name)
            .map_err(|e| fmt(format!("tensor `{name}`: {e}")))?;
        if t.dtype() != Dtype::F32 || t.data().len() != dst.len() * 4 {
            return Err(fmt(format!("tensor `{name}` has the wrong type or length")));
        }
        for (d, b) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
    Ok(state)
}

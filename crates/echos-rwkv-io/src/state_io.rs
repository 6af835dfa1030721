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

/// Writes to a temporary file beside `path` (`<stem>.tmp<pid>`), fsyncs it, renames it over
/// `path` and fsyncs the directory: readers, and a machine that loses power, see the old file
/// or the whole new one. Temp files left by writers that were killed (their pid is gone) are
/// removed first. (echos-host's `atomic` module is the same contract for the ESN side; this
/// crate does not depend on echos-host.)
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    remove_stale_temps(path);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        // Directory fsync is advisory on some filesystems; the data itself is already synced.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes `path`'s temp files (`<stem>.tmp<pid>`) whose writer process no longer exists
/// (Linux: no `/proc/PID`); a live writer's file is never touched. Best effort.
fn remove_stale_temps(path: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Some(prefix) = path
        .with_extension("tmp")
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
    else {
        return;
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
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

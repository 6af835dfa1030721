//! echo-os host services (std only): reading and writing files, datasets, model files and the
//! batch training tasks that the CLI and the Python package share.
#![forbid(unsafe_code)]

pub mod array;
pub use echos_files::atomic;
pub mod bench;
pub mod csv_table;
pub mod datasets;
pub mod ensemble;
pub mod error;
pub mod events;
pub mod model_file;
pub mod npy;
pub mod tasks;
pub mod training;

use std::path::{Path, PathBuf};

pub use array::Array2;
pub use error::DataError;

/// Reads a time series from `.npy` or `.csv`, chosen by the file's extension.
pub fn read_array(path: &Path) -> Result<Array2, DataError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("npy") => npy::read(path),
        Some(e) if e.eq_ignore_ascii_case("csv") => csv_table::read(path),
        _ => Err(DataError::UnknownExtension {
            path: path.to_path_buf(),
        }),
    }
}

/// Writes a time series as `.npy` or `.csv` (by extension), atomically.
pub fn write_array(path: &Path, a: &Array2) -> Result<(), DataError> {
    let bytes = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("npy") => npy::to_bytes(a),
        Some(e) if e.eq_ignore_ascii_case("csv") => csv_table::to_string(a).into_bytes(),
        _ => {
            return Err(DataError::UnknownExtension {
                path: path.to_path_buf(),
            })
        }
    };
    atomic::write(path, &bytes).map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The shared reference data (`$ECHOS_SHARED_DATA`, else `<workspace>/../shared/data`). `None`
/// means "skip": it prints `SKIPPED (no shared data): <test>` — except under `CI`, where missing
/// data is a failure.
pub fn shared_data_dir(test_name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("ECHOS_SHARED_DATA") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "shared data directory {} is missing and CI is set: {test_name} cannot run",
            dir.display()
        );
    }
    eprintln!("SKIPPED (no shared data): {test_name}");
    None
}

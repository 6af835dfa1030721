//! Errors of the data readers (.npy, CSV): each variant names the problem and where it is, so a
//! user can fix the file without reading our code.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown file type (expected a .npy or .csv extension)")]
    UnknownExtension { path: PathBuf },
    /// A format error with the file it is in. The inner error is part of the message and
    /// deliberately not a `source()`, so error chains do not print it twice.
    #[error("{path}: {error}")]
    InFile {
        path: PathBuf,
        error: Box<DataError>,
    },

    // .npy
    #[error("not a .npy file: the first bytes are not the magic \"\\x93NUMPY\"")]
    NpyMagic,
    #[error(".npy file truncated: {what} needs {needed} bytes, only {available} present")]
    NpyTruncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)")]
    NpyVersion { major: u8, minor: u8 },
    #[error(".npy header is malformed: {0}")]
    NpyHeader(String),
    #[error("unsupported .npy dtype {0:?} (supported: f4, f8, i4, i8, either byte order)")]
    NpyDtype(String),
    #[error("unsupported .npy shape {0:?}: expected 1 or 2 dimensions")]
    NpyRank(Vec<usize>),
    #[error(".npy data has {extra} bytes beyond the {expected} that shape {shape:?} needs")]
    NpyTrailing {
        shape: Vec<usize>,
        expected: usize,
        extra: usize,
    },

    // CSV
    #[error("CSV line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("CSV line {line}, column {column}: {field:?} is not a number")]
    CsvNotNumber {
        line: u64,
        column: usize,
        field: String,
    },
    #[error("CSV line {line} has {found} fields, but the first data row has {expected}")]
    CsvRagged {
        line: u64,
        expected: usize,
        found: usize,
    },

    // Any array
    #[error("the file holds no data rows")]
    Empty,
    #[error("non-finite value {value} at row {row}, column {col} (0-based); NaN and inf are not allowed")]
    NonFinite { row: usize, col: usize, value: f64 },
    #[error("shape {rows} x {cols} does not fit {len} values")]
    ShapeMismatch {
        rows: usize,
        cols: usize,
        len: usize,
    },
    #[error("shape {rows} x {cols} overflows the address space")]
    ShapeOverflow { rows: usize, cols: usize },
}

impl DataError {
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            e @ (DataError::Read { .. } | DataError::Write { .. } | DataError::InFile { .. }) => e,
            e => DataError::InFile {
                path: path.into(),
                error: Box::new(e),
            },
        }
    }

    /// The innermost error (inside any `InFile` wrapper), for callers that match on the kind.
    pub fn kind(&self) -> &DataError {
        match self {
            DataError::InFile { error, .. } => error.kind(),
            e => e,
        }
    }
}

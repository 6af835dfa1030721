//! `.npy` / `.npz` files for token ids in and logits out (the `forward` command and the
//! reference checks).

use std::io::Read;
use std::path::Path;

use npyz::{DType, NpyFile, TypeChar, WriterBuilder};

#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("cannot read `{0}`: {1}")]
    Io(String, std::io::Error),
    #[error("`{0}` is not a valid .npy array: {1}")]
    Format(String, String),
    #[error("`{path}` holds {found}; expected {expected}")]
    Type {
        path: String,
        found: String,
        expected: &'static str,
    },
    #[error("`{0}` has no array named `{1}`")]
    Missing(String, String),
    #[error("token id {value} at position {index} of `{path}` is negative or too large")]
    BadToken {
        path: String,
        index: usize,
        value: i64,
    },
}

fn describe(d: &DType) -> String {
    match d {
        DType::Plain(t) => format!("{t}"),
        other => format!("{other:?}"),
    }
}

/// Token ids from a 1-D int32 or int64 array.
pub fn tokens_from_npy_bytes(bytes: &[u8], path: &str) -> Result<Vec<u32>, NpyError> {
    let npy = NpyFile::new(bytes).map_err(|e| NpyError::Format(path.into(), e.to_string()))?;
    let shape = npy.shape().to_vec();
    if shape.len() != 1 {
        return Err(NpyError::Type {
            path: path.into(),
            found: format!("shape {shape:?}"),
            expected: "a 1-D array",
        });
    }
    let dtype = npy.dtype();
    let values: Vec<i64> = match &dtype {
        DType::Plain(t) if t.type_char() == TypeChar::Int && t.size_field() == 4 => npy
            .into_vec::<i32>()
            .map_err(|e| NpyError::Format(path.into(), e.to_string()))?
            .into_iter()
            .map(i64::from)
            .collect(),
        DType::Plain(t) if t.type_char() == TypeChar::Int && t.size_field() == 8 => npy
            .into_vec::<i64>()
            .map_err(|e| NpyError::Format(path.into(), e.to_string()))?,
        other => {
            return Err(NpyError::Type {
                path: path.into(),
                found: describe(other),
                expected: "int32 or int64 token ids",
            })
        }
    };
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            u32::try_from(value).map_err(|_| NpyError::BadToken {
                path: path.into(),
                index,
                value,
            })
        })
        .collect()
}

pub fn read_tokens(path: &Path) -> Result<Vec<u32>, NpyError> {
    let bytes = std::fs::read(path).map_err(|e| NpyError::Io(path.display().to_string(), e))?;
    tokens_from_npy_bytes(&bytes, &path.display().to_string())
}

/// A float32 array of any shape: (shape, values).
pub fn f32_from_npy_bytes(bytes: &[u8], path: &str) -> Result<(Vec<u64>, Vec<f32>), NpyError> {
    let npy = NpyFile::new(bytes).map_err(|e| NpyError::Format(path.into(), e.to_string()))?;
    let shape = npy.shape().to_vec();
    match npy.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 4 => {}
        other => {
            return Err(NpyError::Type {
                path: path.into(),
                found: describe(&other),
                expected: "float32",
            })
        }
    }
    let v = npy
        .into_vec::<f32>()
        .map_err(|e| NpyError::Format(path.into(), e.to_string()))?;
    Ok((shape, v))
}

/// Writes a (rows x cols) float32 array, replacing the file atomically.
pub fn write_f32_2d(path: &Path, rows: usize, cols: usize, data: &[f32]) -> Result<(), NpyError> {
    let io = |e| NpyError::Io(path.display().to_string(), e);
    let mut buf = Vec::new();
    {
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[rows as u64, cols as u64])
            .writer(&mut buf)
            .begin_nd()
            .map_err(io)?;
        w.extend(data.iter().copied()).map_err(io)?;
        w.finish().map_err(io)?;
    }
    crate::state_io::write_atomic(path, &buf).map_err(io)
}

/// One member array of a `.npz` (a zip of `.npy` files), as raw `.npy` bytes.
pub fn npz_member(path: &Path, name: &str) -> Result<Vec<u8>, NpyError> {
    let file =
        std::fs::File::open(path).map_err(|e| NpyError::Io(path.display().to_string(), e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| NpyError::Format(path.display().to_string(), e.to_string()))?;
    let mut member = zip
        .by_name(&format!("{name}.npy"))
        .map_err(|_| NpyError::Missing(path.display().to_string(), name.into()))?;
    let mut out = Vec::new();
    member
        .read_to_end(&mut out)
        .map_err(|e| NpyError::Io(path.display().to_string(), e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_round_trip_and_token_types() {
        let dir = std::env::temp_dir().join(format!("echos-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("l.npy");
        write_f32_2d(&p, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        let (shape, v) = f32_from_npy_bytes(&std::fs::read(&p).unwrap(), "l").unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        // A float array is not a token array.
        assert!(matches!(
            tokens_from_npy_bytes(&std::fs::read(&p).unwrap(), "l"),
            Err(NpyError::Type { .. })
        ));
        let mut buf = Vec::new();
        {
            let mut w = npyz::WriteOptions::<i64>::new()
                .default_dtype()
                .shape(&[3])
                .writer(&mut buf)
                .begin_nd()
                .unwrap();
            w.extend([5i64, -1, 7]).unwrap();
            w.finish().unwrap();
        }
        assert!(matches!(
            tokens_from_npy_bytes(&buf, "t"),
            Err(NpyError::BadToken {
                index: 1,
                value: -1,
                ..
            })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}

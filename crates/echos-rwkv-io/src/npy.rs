//! `.npy` / `.npz` files for token ids in and logits out (the `forward` command and the
//! reference checks), through the workspace's one `.npy` reader, `echos-npy`.

use std::path::Path;

use echos_npy::Npy;

#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("cannot read `{0}`: {1}")]
    Io(String, std::io::Error),
    #[error("`{0}` is not a valid .npy array: {1}")]
    Format(String, echos_npy::NpyError),
    #[error("`{0}` is not a valid .npz archive: {1}")]
    Archive(String, String),
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
        value: i128,
    },
}

/// Token ids from a 1-D array of any integer dtype.
pub fn tokens_from_npy_bytes(bytes: &[u8], path: &str) -> Result<Vec<u32>, NpyError> {
    let npy = Npy::parse(bytes).map_err(|e| NpyError::Format(path.into(), e))?;
    if npy.shape().len() != 1 {
        return Err(NpyError::Type {
            path: path.into(),
            found: format!("shape {:?}", npy.shape()),
            expected: "a 1-D array",
        });
    }
    let ints = npy.ints().map_err(|_| NpyError::Type {
        path: path.into(),
        found: npy.descr(),
        expected: "integer token ids",
    })?;
    ints.enumerate()
        .map(|(index, value)| {
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

/// A float32 array of any shape: (shape, values in row-major order).
pub fn f32_from_npy_bytes(bytes: &[u8], path: &str) -> Result<(Vec<u64>, Vec<f32>), NpyError> {
    let npy = Npy::parse(bytes).map_err(|e| NpyError::Format(path.into(), e))?;
    let values = npy.to_f32().map_err(|_| NpyError::Type {
        path: path.into(),
        found: npy.descr(),
        expected: "float32",
    })?;
    Ok((npy.shape().iter().map(|&d| d as u64).collect(), values))
}

/// Writes a (rows x cols) float32 array, replacing the file atomically.
pub fn write_f32_2d(path: &Path, rows: usize, cols: usize, data: &[f32]) -> Result<(), NpyError> {
    let buf = echos_npy::to_bytes_f32(&[rows, cols], data)
        .map_err(|e| NpyError::Format(path.display().to_string(), e))?;
    crate::state_io::write_atomic(path, &buf)
        .map_err(|e| NpyError::Io(path.display().to_string(), e))
}

/// A `.npz` member may inflate to at most this multiple of the archive's size (NumPy's
/// `savez` stores members; `savez_compressed` of float data shrinks them by a few percent).
pub const NPZ_EXPANSION: u64 = 16;

/// One member array of a `.npz` (a zip of `.npy` files), as raw `.npy` bytes.
pub fn npz_member(path: &Path, name: &str) -> Result<Vec<u8>, NpyError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| NpyError::Io(p.clone(), e))?;
    let mut zip = crate::archive::open(&bytes).map_err(|e| NpyError::Archive(p.clone(), e))?;
    let limit = (bytes.len() as u64).saturating_mul(NPZ_EXPANSION);
    crate::archive::read_member(&mut zip, &format!("{name}.npy"), limit, &|| {
        format!(
            "a {}-byte archive may inflate to ({NPZ_EXPANSION}x)",
            bytes.len()
        )
    })
    .map_err(|e| match e {
        crate::archive::MemberError::Missing(_) => NpyError::Missing(p.clone(), name.into()),
        e => NpyError::Archive(p.clone(), e.to_string()),
    })
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
        let mut buf = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
        buf.extend_from_slice(&(h.len() as u16).to_le_bytes());
        buf.extend_from_slice(h.as_bytes());
        for v in [5i64, -1, 7] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        assert!(matches!(
            tokens_from_npy_bytes(&buf, "t"),
            Err(NpyError::BadToken {
                index: 1,
                value: -1,
                ..
            })
        ));
        // uint16 and int32 token files both read.
        for (descr, body) in [
            (
                "<u2",
                [1u16, 65535]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
            (
                ">i4",
                [1i32, 65535].iter().flat_map(|v| v.to_be_bytes()).collect(),
            ),
        ] {
            let mut buf = b"\x93NUMPY\x01\x00".to_vec();
            let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
            buf.extend_from_slice(&(h.len() as u16).to_le_bytes());
            buf.extend_from_slice(h.as_bytes());
            buf.extend_from_slice(&body);
            assert_eq!(tokens_from_npy_bytes(&buf, "t").unwrap(), vec![1, 65535]);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

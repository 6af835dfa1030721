//! `.npy` time series for the host: 1-D or 2-D f4/f8/i4/i8 arrays read into and written from
//! [`Array2`]. The format itself (header, dtypes, bounds) lives in the workspace's one reader,
//! `echos-npy`; this file maps its errors onto [`DataError`] and checks what a time series must
//! be (rank 1 or 2, a numeric dtype we accept, finite values).

use std::path::Path;

use echos_npy::{Dtype, Npy, NpyError};

use crate::array::Array2;
use crate::error::DataError;

/// Reads a `.npy` file; 1-D arrays become `n × 1`.
pub fn read(path: &Path) -> Result<Array2, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|e| e.in_file(path))
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<Array2, DataError> {
    let npy = Npy::parse(bytes).map_err(from_npy)?;
    let (rows, cols) = match npy.shape() {
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        other => return Err(DataError::NpyRank(other.to_vec())),
    };
    if !matches!(npy.dtype(), Dtype::F4 | Dtype::F8 | Dtype::I4 | Dtype::I8) {
        return Err(DataError::NpyDtype(npy.descr()));
    }
    Array2::new(rows, cols, npy.to_f64())
}

/// Writes `a` as a little-endian f8 `.npy` (version 1.0), atomically: temp file in the same
/// directory, fsync, rename — a reader never sees half a file.
pub fn write(path: &Path, a: &Array2) -> Result<(), DataError> {
    let bytes = to_bytes(a);
    crate::atomic::write(path, &bytes).map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of `a` as a version-1.0 `<f8` `.npy` file of shape (rows, cols).
pub fn to_bytes(a: &Array2) -> Vec<u8> {
    echos_npy::to_bytes_f64(&[a.rows(), a.cols()], a.data())
        .expect("an Array2 holds exactly rows × cols values")
}

/// The header of a version-1.0 `<f8` `.npy` file of shape (rows, cols): a writer that knows the
/// row count up front streams the little-endian values after it.
pub fn header(rows: usize, cols: usize) -> Vec<u8> {
    echos_npy::header(Dtype::F8, &[rows, cols])
}

/// The host's error for each format defect.
fn from_npy(e: NpyError) -> DataError {
    match e {
        NpyError::Magic => DataError::NpyMagic,
        NpyError::Truncated {
            what,
            needed,
            available,
        } => DataError::NpyTruncated {
            what,
            needed,
            available,
        },
        NpyError::Version { major, minor } => DataError::NpyVersion { major, minor },
        NpyError::Header(m) => DataError::NpyHeader(m),
        NpyError::Dtype(d) => DataError::NpyDtype(d),
        // a record array (an event file) where a time series is expected
        NpyError::Structured { names } => {
            DataError::NpyDtype(format!("a structured array with fields {names:?}"))
        }
        NpyError::Overflow { shape } => match shape[..] {
            [rows] => DataError::ShapeOverflow { rows, cols: 1 },
            [rows, cols] => DataError::ShapeOverflow { rows, cols },
            _ => DataError::NpyRank(shape),
        },
        NpyError::Trailing {
            shape,
            expected,
            extra,
        } => DataError::NpyTrailing {
            shape,
            expected,
            extra,
        },
        // Not produced by parsing.
        e @ (NpyError::Kind { .. }
        | NpyError::ShapeMismatch { .. }
        | NpyError::NotStructured
        | NpyError::Record(_)) => DataError::NpyHeader(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echos_npy::MAGIC;

    fn npy(header: &str, version: (u8, u8), body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    fn f8(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn round_trip_is_exact() {
        let a = Array2::new(3, 2, vec![0.1, -2.5, 1e-300, 7.0, 3.25, -0.0]).unwrap();
        let bytes = to_bytes(&a);
        assert_eq!(
            (bytes.len() - a.data().len() * 8) % 64,
            0,
            "data 64-byte aligned"
        );
        let b = parse(&bytes).unwrap();
        assert_eq!(a.rows(), b.rows());
        let bits = |x: &Array2| x.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
    }

    #[test]
    fn reads_other_dtypes_orders_and_fortran() {
        let h = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }\n";
        let body: Vec<u8> = [1i32, -2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy(h, (1, 0), &body)).unwrap();
        assert_eq!((a.rows(), a.cols()), (3, 1));
        assert_eq!(a.data(), &[1.0, -2.0, 3.0]);

        let h = "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), }";
        let body: Vec<u8> = [1.5f32, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse(&npy(h, (1, 0), &body)).unwrap().data(), &[1.5, 2.0]);

        // Column-major (2, 3): on disk columns [1,4], [2,5], [3,6].
        let h = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
        let a = parse(&npy(h, (1, 0), &f8(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]))).unwrap();
        assert_eq!(a.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

        let h = "{'descr': '<i8', 'shape': (2,), 'fortran_order': False}";
        let body: Vec<u8> = [7i64, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse(&npy(h, (1, 0), &body)).unwrap().data(), &[7.0, 9.0]);
    }

    #[test]
    fn rejects_each_defect_with_its_own_error() {
        let good = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let body = f8(&[1.0, 2.0, 3.0, 4.0]);
        assert!(parse(&npy(good, (1, 0), &body)).is_ok());

        let mut bad_magic = npy(good, (1, 0), &body);
        bad_magic[1] = b'X';
        assert!(matches!(parse(&bad_magic), Err(DataError::NpyMagic)));
        assert!(matches!(
            parse(b"\x93NUM"),
            Err(DataError::NpyTruncated { needed: 8, .. })
        ));
        assert!(matches!(
            parse(&npy(good, (4, 0), &body)),
            Err(DataError::NpyVersion { major: 4, minor: 0 })
        ));
        // Header length points past the end of the file.
        let short = npy(good, (1, 0), &[]);
        assert!(matches!(
            parse(&short[..30]),
            Err(DataError::NpyTruncated {
                what: "the header",
                ..
            })
        ));
        // Truncated data and extra data.
        assert!(matches!(
            parse(&npy(good, (1, 0), &body[..31])),
            Err(DataError::NpyTruncated {
                needed: 32,
                available: 31,
                ..
            })
        ));
        let mut long = body.clone();
        long.extend_from_slice(&[0; 8]);
        assert!(matches!(
            parse(&npy(good, (1, 0), &long)),
            Err(DataError::NpyTrailing { extra: 8, .. })
        ));
        for (header, what) in [
            ("{'descr': '<f8', 'shape': (2, 2), }", "missing key"),
            ("{'descr': '<f8', 'fortran_order': 3, 'shape': (2, 2)}", ""),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, x)}",
                "size",
            ),
            ("'descr': '<f8'", "expected '{'"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'z': 1}",
                "",
            ),
        ] {
            match parse(&npy(header, (1, 0), &body)) {
                Err(DataError::NpyHeader(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{header}: {other:?}"),
            }
        }
        // A dtype the format allows but a time series does not take.
        let u2 = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 2), }";
        assert!(
            matches!(parse(&npy(u2, (1, 0), &body[..8])), Err(DataError::NpyDtype(d)) if d == "<u2")
        );
        let c16 = "{'descr': '<c16', 'fortran_order': False, 'shape': (2, 2), }";
        assert!(
            matches!(parse(&npy(c16, (1, 0), &body)), Err(DataError::NpyDtype(d)) if d == "<c16")
        );
        let rank3 = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 2), }";
        assert!(matches!(
            parse(&npy(rank3, (1, 0), &body)),
            Err(DataError::NpyRank(_))
        ));
        let huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 2), }";
        assert!(matches!(
            parse(&npy(huge, (1, 0), &body)),
            Err(DataError::ShapeOverflow { .. })
        ));
    }

    #[test]
    fn rejects_nan_and_inf_with_position() {
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let e = parse(&npy(h, (1, 0), &f8(&[1.0, 2.0, 3.0, f64::INFINITY]))).unwrap_err();
        assert!(
            matches!(e, DataError::NonFinite { row: 1, col: 1, .. }),
            "{e}"
        );
        let e = parse(&npy(h, (1, 0), &f8(&[1.0, f64::NAN, 3.0, 4.0]))).unwrap_err();
        assert!(e.to_string().contains("row 0, column 1"), "{e}");
    }

    #[test]
    fn reads_the_santa_fe_series() {
        let Some(dir) = crate::shared_data_dir("reads_the_santa_fe_series") else {
            return;
        };
        let a = read(&dir.join("timeseries/santafe_laser.npy")).unwrap();
        assert_eq!((a.rows(), a.cols()), (10_093, 1));
        assert!(a.data().iter().all(|v| (0.0..=255.0).contains(v)));
    }
}

//! NumPy `.npy` files (format versions 1.0–3.0) of 1-D or 2-D f4/f8/i4/i8 arrays, read into and
//! written from [`Array2`]. Hand-written rather than `npyz`: that crate reports every defect as a
//! bare `io::Error`, and our contract is a typed error naming the defect (magic, version, header,
//! dtype, shape vs byte count, truncation, NaN/inf with its position).

use std::path::Path;

use crate::array::Array2;
use crate::error::DataError;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

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
    need(bytes, 8, "the magic and version")?;
    if &bytes[..6] != MAGIC {
        return Err(DataError::NpyMagic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_start, header_len) = match (major, minor) {
        (1, 0) => {
            need(bytes, 10, "the header length")?;
            (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize)
        }
        (2, 0) | (3, 0) => {
            need(bytes, 12, "the header length")?;
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (12, n as usize)
        }
        _ => return Err(DataError::NpyVersion { major, minor }),
    };
    let data_start = header_start + header_len;
    need(bytes, data_start, "the header")?;
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| DataError::NpyHeader("not valid text".into()))?;
    let header = Header::parse(header)?;
    let dtype = Dtype::parse(&header.descr)?;

    let (rows, cols) = match header.shape.as_slice() {
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        other => return Err(DataError::NpyRank(other.to_vec())),
    };
    let count = rows
        .checked_mul(cols)
        .ok_or(DataError::ShapeOverflow { rows, cols })?;
    let expected = count
        .checked_mul(dtype.size)
        .ok_or(DataError::ShapeOverflow { rows, cols })?;
    let body = &bytes[data_start..];
    if body.len() < expected {
        return Err(DataError::NpyTruncated {
            what: "the array data",
            needed: expected,
            available: body.len(),
        });
    }
    if body.len() > expected {
        return Err(DataError::NpyTrailing {
            shape: header.shape.clone(),
            expected,
            extra: body.len() - expected,
        });
    }
    let mut values: Vec<f64> = body
        .chunks_exact(dtype.size)
        .map(|c| dtype.decode(c))
        .collect();
    if header.fortran_order && cols > 1 {
        // Column-major on disk: transpose so rows are time steps.
        let mut t = vec![0.0; values.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[r * cols + c] = values[c * rows + r];
            }
        }
        values = t;
    }
    Array2::new(rows, cols, values)
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
    let mut out = header(a.rows(), a.cols());
    out.reserve(a.data().len() * 8);
    out.extend(a.data().iter().flat_map(|v| v.to_le_bytes()));
    out
}

/// The header of a version-1.0 `<f8` `.npy` file of shape (rows, cols): a writer that knows the
/// row count up front streams the little-endian values after it.
pub fn header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // The format pads the header with spaces and a newline so the data starts 64-byte aligned.
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

fn need(bytes: &[u8], needed: usize, what: &'static str) -> Result<(), DataError> {
    if bytes.len() < needed {
        Err(DataError::NpyTruncated {
            what,
            needed,
            available: bytes.len(),
        })
    } else {
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    F4,
    F8,
    I4,
    I8,
}

struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    fn parse(descr: &str) -> Result<Self, DataError> {
        let bad = || DataError::NpyDtype(descr.to_string());
        let (order, code) = descr.split_at_checked(1).ok_or_else(bad)?;
        let big_endian = match order {
            "<" | "|" => false,
            ">" => true,
            _ => return Err(bad()),
        };
        let (kind, size) = match code {
            "f4" => (Kind::F4, 4),
            "f8" => (Kind::F8, 8),
            "i4" => (Kind::I4, 4),
            "i8" => (Kind::I8, 8),
            _ => return Err(bad()),
        };
        Ok(Self {
            kind,
            size,
            big_endian,
        })
    }

    fn decode(&self, c: &[u8]) -> f64 {
        let mut b = [0u8; 8];
        b[..self.size].copy_from_slice(c);
        if self.big_endian {
            b[..self.size].reverse();
        }
        match self.kind {
            Kind::F4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Kind::F8 => f64::from_le_bytes(b),
            Kind::I4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Kind::I8 => i64::from_le_bytes(b) as f64,
        }
    }
}

/// The header dictionary: `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }`.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

impl Header {
    fn parse(text: &str) -> Result<Self, DataError> {
        let mut p = Parser {
            s: text.trim_end_matches(['\n', ' ', '\0']).as_bytes(),
            i: 0,
        };
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        p.expect(b'{')?;
        loop {
            p.skip_ws();
            if p.eat(b'}') {
                break;
            }
            let key = p.string()?;
            p.expect(b':')?;
            let value = p.value()?;
            match (key.as_str(), value) {
                ("descr", Value::Str(s)) => descr = Some(s),
                ("fortran_order", Value::Bool(b)) => fortran = Some(b),
                ("shape", Value::Tuple(t)) => shape = Some(t),
                ("descr" | "fortran_order" | "shape", _) => {
                    return Err(DataError::NpyHeader(format!(
                        "key '{key}' has the wrong type"
                    )))
                }
                _ => {
                    return Err(DataError::NpyHeader(format!("unexpected key '{key}'")));
                }
            }
            p.skip_ws();
            if !p.eat(b',') {
                p.expect(b'}')?;
                break;
            }
        }
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(DataError::NpyHeader("text after the closing '}'".into()));
        }
        let missing = |k: &str| DataError::NpyHeader(format!("missing key '{k}'"));
        Ok(Self {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), DataError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(DataError::NpyHeader(format!(
                "expected '{}' at byte {}",
                c as char, self.i
            )))
        }
    }

    fn string(&mut self) -> Result<String, DataError> {
        self.skip_ws();
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(DataError::NpyHeader(format!(
                    "expected a quoted string at byte {}",
                    self.i
                )))
            }
        };
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&b| b == quote)
            .ok_or_else(|| DataError::NpyHeader("unterminated string".into()))?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn value(&mut self) -> Result<Value, DataError> {
        self.skip_ws();
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            return Ok(Value::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.i += 5;
            return Ok(Value::Bool(false));
        }
        if self.eat(b'(') {
            let mut dims = Vec::new();
            loop {
                if self.eat(b')') {
                    return Ok(Value::Tuple(dims));
                }
                self.skip_ws();
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                let n: usize = digits.parse().map_err(|_| {
                    DataError::NpyHeader(format!("shape entry at byte {start} is not a size"))
                })?;
                dims.push(n);
                if !self.eat(b',') {
                    self.expect(b')')?;
                    return Ok(Value::Tuple(dims));
                }
            }
        }
        Ok(Value::Str(self.string()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let u2 = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 2), }";
        assert!(
            matches!(parse(&npy(u2, (1, 0), &body)), Err(DataError::NpyDtype(d)) if d == "<u2")
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

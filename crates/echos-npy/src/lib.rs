//! NumPy `.npy` files (format versions 1.0–3.0): the workspace's one reader and writer, used by
//! the host's time-series files and RWKV's token and logit files.
//!
//! Resource rule: parsing borrows the input and allocates only the shape (one `usize` per
//! dimension the header names); the header is read in one pass (no nesting, no backtracking);
//! the shape's byte count is computed with checked arithmetic and compared with the bytes
//! present before any value is decoded, so a tiny file claiming a huge shape costs nothing.
#![forbid(unsafe_code)]

/// The first six bytes of every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Every defect a `.npy` file can have, named so a user can fix the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    #[error("not a .npy file: the first bytes are not the magic \"\\x93NUMPY\"")]
    Magic,
    #[error(".npy file truncated: {what} needs {needed} bytes, only {available} present")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)")]
    Version { major: u8, minor: u8 },
    #[error(".npy header is malformed: {0}")]
    Header(String),
    #[error("unsupported .npy dtype {0:?} (supported: i1, i2, i4, i8, u1, u2, u4, u8, f4, f8, either byte order)")]
    Dtype(String),
    #[error(".npy shape {shape:?} needs more bytes than the address space holds")]
    Overflow { shape: Vec<usize> },
    #[error(".npy data has {extra} bytes beyond the {expected} that shape {shape:?} needs")]
    Trailing {
        shape: Vec<usize>,
        expected: usize,
        extra: usize,
    },
    #[error("the array holds {found} values; expected {expected}")]
    Kind {
        found: &'static str,
        expected: &'static str,
    },
    #[error("the .npy file holds a structured array (fields {names:?}); expected plain numbers")]
    Structured { names: Vec<String> },
    #[error("the .npy file holds plain numbers; expected a structured array of records")]
    NotStructured,
    #[error("structured .npy dtype: {0}")]
    Record(String),
    #[error("shape {shape:?} does not fit {len} values")]
    ShapeMismatch { shape: Vec<usize>, len: usize },
}

/// Element types this reader decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    I1,
    I2,
    I4,
    I8,
    U1,
    U2,
    U4,
    U8,
    F4,
    F8,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::I1 | Dtype::U1 => 1,
            Dtype::I2 | Dtype::U2 => 2,
            Dtype::I4 | Dtype::U4 | Dtype::F4 => 4,
            Dtype::I8 | Dtype::U8 | Dtype::F8 => 8,
        }
    }

    /// The NumPy type code without byte order (`"f8"`, `"i4"`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Dtype::I1 => "i1",
            Dtype::I2 => "i2",
            Dtype::I4 => "i4",
            Dtype::I8 => "i8",
            Dtype::U1 => "u1",
            Dtype::U2 => "u2",
            Dtype::U4 => "u4",
            Dtype::U8 => "u8",
            Dtype::F4 => "f4",
            Dtype::F8 => "f8",
        }
    }

    pub fn is_integer(self) -> bool {
        !matches!(self, Dtype::F4 | Dtype::F8)
    }

    fn from_code(code: &str) -> Option<Dtype> {
        Some(match code {
            "i1" | "b" => Dtype::I1,
            "i2" | "h" => Dtype::I2,
            "i4" | "i" => Dtype::I4,
            "i8" | "q" => Dtype::I8,
            "u1" | "B" => Dtype::U1,
            "u2" | "H" => Dtype::U2,
            "u4" | "I" => Dtype::U4,
            "u8" | "Q" => Dtype::U8,
            "f4" | "f" => Dtype::F4,
            "f8" | "d" => Dtype::F8,
            _ => return None,
        })
    }

    fn kind_name(self) -> &'static str {
        if self.is_integer() {
            "integer"
        } else if self == Dtype::F4 {
            "float32"
        } else {
            "float64"
        }
    }
}

/// A parsed `.npy` file: its header and a view of its data (validated to be exactly the bytes
/// the shape needs).
#[derive(Clone, Debug)]
pub struct Npy<'a> {
    dtype: Dtype,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
    len: usize,
    data: &'a [u8],
}

impl<'a> Npy<'a> {
    /// Parses and validates the bytes of a `.npy` file; decodes no values yet.
    pub fn parse(bytes: &'a [u8]) -> Result<Npy<'a>, NpyError> {
        let (header, data_start) = split_header(bytes)?;
        let descr = match &header.descr {
            Descr::Plain(d) => d,
            Descr::Fields(f) => {
                return Err(NpyError::Structured {
                    names: f.iter().map(|(n, _)| n.clone()).collect(),
                })
            }
        };
        let (dtype, big_endian) = parse_descr(descr)?;

        let len = header
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        let expected = len.and_then(|n| n.checked_mul(dtype.size()));
        let (Some(len), Some(expected)) = (len, expected) else {
            return Err(NpyError::Overflow {
                shape: header.shape,
            });
        };
        let body = &bytes[data_start..];
        if body.len() < expected {
            return Err(NpyError::Truncated {
                what: "the array data",
                needed: expected,
                available: body.len(),
            });
        }
        if body.len() > expected {
            return Err(NpyError::Trailing {
                shape: header.shape,
                expected,
                extra: body.len() - expected,
            });
        }
        Ok(Npy {
            dtype,
            big_endian,
            fortran_order: header.fortran_order,
            shape: header.shape,
            len,
            data: body,
        })
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    pub fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// The dtype as NumPy writes it (`"<f8"`, `">i4"`, `"|u1"`).
    pub fn descr(&self) -> String {
        let order = if self.dtype.size() == 1 {
            '|'
        } else if self.big_endian {
            '>'
        } else {
            '<'
        };
        format!("{order}{}", self.dtype.code())
    }

    pub fn fortran_order(&self) -> bool {
        self.fortran_order
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Storage positions of the elements in row-major (C) order: the identity unless the file
    /// is column-major.
    fn storage_index(&self, p: usize) -> usize {
        if !self.fortran_order || self.shape.len() < 2 {
            return p;
        }
        // Split `p` into a row-major multi-index (last dimension first) and weigh each digit
        // with its column-major stride, the product of the dimensions before it. Only called
        // for p < len, so no dimension is 0 and the divisions are exact.
        let (mut rest, mut index, mut prefix) = (p, 0, self.len);
        for &n in self.shape.iter().rev() {
            prefix /= n;
            index += (rest % n) * prefix;
            rest /= n;
        }
        index
    }

    fn le_bytes(&self, i: usize) -> [u8; 8] {
        let n = self.dtype.size();
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&self.data[i * n..(i + 1) * n]);
        if self.big_endian {
            b[..n].reverse();
        }
        b
    }

    fn int_at(&self, i: usize) -> i128 {
        let b = self.le_bytes(i);
        match self.dtype {
            Dtype::I1 => i128::from(b[0] as i8),
            Dtype::I2 => i128::from(i16::from_le_bytes([b[0], b[1]])),
            Dtype::I4 => i128::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Dtype::I8 => i128::from(i64::from_le_bytes(b)),
            Dtype::U1 => i128::from(b[0]),
            Dtype::U2 => i128::from(u16::from_le_bytes([b[0], b[1]])),
            Dtype::U4 => i128::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Dtype::U8 => i128::from(u64::from_le_bytes(b)),
            // Callers check the kind first; a float read as an integer truncates.
            Dtype::F4 | Dtype::F8 => self.f64_at(i) as i128,
        }
    }

    fn f64_at(&self, i: usize) -> f64 {
        let b = self.le_bytes(i);
        match self.dtype {
            Dtype::F4 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Dtype::F8 => f64::from_le_bytes(b),
            _ => self.int_at(i) as f64,
        }
    }

    /// Every value as f64 in row-major order (integers above 2^53 round to the nearest f64).
    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len)
            .map(|p| self.f64_at(self.storage_index(p)))
            .collect()
    }

    /// float32 values in row-major order; any other dtype is refused rather than converted.
    pub fn to_f32(&self) -> Result<Vec<f32>, NpyError> {
        if self.dtype != Dtype::F4 {
            return Err(NpyError::Kind {
                found: self.dtype.kind_name(),
                expected: "float32",
            });
        }
        Ok((0..self.len)
            .map(|p| self.f64_at(self.storage_index(p)) as f32)
            .collect())
    }

    /// Integer values in row-major order, each exact (i128 holds every integer dtype); floats
    /// are refused.
    pub fn ints(&self) -> Result<impl ExactSizeIterator<Item = i128> + '_, NpyError> {
        if !self.dtype.is_integer() {
            return Err(NpyError::Kind {
                found: self.dtype.kind_name(),
                expected: "integer",
            });
        }
        Ok((0..self.len).map(|p| self.int_at(self.storage_index(p))))
    }
}

/// The bytes of a version-1.0 (2.0 when the header needs it) little-endian `.npy` file of
/// float64 values in row-major order, data 64-byte aligned.
pub fn to_bytes_f64(shape: &[usize], data: &[f64]) -> Result<Vec<u8>, NpyError> {
    let mut out = header_bytes("<f8", shape, data.len())?;
    out.reserve(data.len() * 8);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// As [`to_bytes_f64`] for float32 values.
pub fn to_bytes_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, NpyError> {
    let mut out = header_bytes("<f4", shape, data.len())?;
    out.reserve(data.len() * 4);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Magic, version, header length and the padded header dictionary for `len` values.
fn header_bytes(descr: &str, shape: &[usize], len: usize) -> Result<Vec<u8>, NpyError> {
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(len) {
        return Err(NpyError::ShapeMismatch {
            shape: shape.to_vec(),
            len,
        });
    }
    Ok(header_for(descr, shape))
}

/// The header of a little-endian `dtype` file of `shape` (data 64-byte aligned after it), for
/// writers that stream the values themselves.
pub fn header(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let order = if dtype.size() == 1 { '|' } else { '<' };
    header_for(&format!("{order}{}", dtype.code()), shape)
}

fn header_for(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    frame_header(&dict)
}

/// Magic, version and length in front of a header dictionary, padded so the data starts
/// 64-byte aligned.
fn frame_header(dict: &str) -> Vec<u8> {
    // Version 1.0 stores the header length in 16 bits: the dict, up to 63 pad bytes and '\n'.
    let v1 = dict.len() + 64 <= u16::MAX as usize;
    let prefix = MAGIC.len() + 2 + if v1 { 2 } else { 4 };
    // Pad with spaces and a newline so the data starts 64-byte aligned, as NumPy does.
    let pad = (64 - (prefix + dict.len() + 1) % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(prefix + header_len);
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

/// The header of a `.npy` file and the position where its data starts.
fn split_header(bytes: &[u8]) -> Result<(Header, usize), NpyError> {
    need(bytes, 8, "the magic and version")?;
    if &bytes[..6] != MAGIC {
        return Err(NpyError::Magic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_start, header_len): (usize, usize) = match (major, minor) {
        (1, 0) => {
            need(bytes, 10, "the header length")?;
            (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize)
        }
        (2, 0) | (3, 0) => {
            need(bytes, 12, "the header length")?;
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let n = usize::try_from(n).map_err(|_| NpyError::Truncated {
                what: "the header",
                needed: usize::MAX,
                available: bytes.len(),
            })?;
            (12, n)
        }
        _ => return Err(NpyError::Version { major, minor }),
    };
    let data_start = header_start
        .checked_add(header_len)
        .ok_or(NpyError::Truncated {
            what: "the header",
            needed: usize::MAX,
            available: bytes.len(),
        })?;
    need(bytes, data_start, "the header")?;
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| NpyError::Header("not valid text".into()))?;
    Ok((Header::parse(header)?, data_start))
}

fn need(bytes: &[u8], needed: usize, what: &'static str) -> Result<(), NpyError> {
    if bytes.len() < needed {
        Err(NpyError::Truncated {
            what,
            needed,
            available: bytes.len(),
        })
    } else {
        Ok(())
    }
}

/// `'<f8'`, `'>i4'`, `'|u1'`, `'=f4'` (native: little-endian on every target we build).
fn parse_descr(descr: &str) -> Result<(Dtype, bool), NpyError> {
    let bad = || NpyError::Dtype(descr.to_string());
    let (order, code) = descr.split_at_checked(1).ok_or_else(bad)?;
    let big_endian = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return Err(bad()),
    };
    let dtype = Dtype::from_code(code).ok_or_else(bad)?;
    if order == "|" && dtype.size() != 1 {
        return Err(bad());
    }
    Ok((dtype, big_endian))
}

/// A dtype as the header writes it: `'<f8'`, or a structured dtype's list of
/// `(name, descr)` pairs.
enum Descr {
    Plain(String),
    Fields(Vec<(String, String)>),
}

/// The header dictionary: `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }`.
struct Header {
    descr: Descr,
    fortran_order: bool,
    shape: Vec<usize>,
}

enum Value {
    Str(String),
    Fields(Vec<(String, String)>),
    Bool(bool),
    Tuple(Vec<usize>),
}

impl Header {
    /// One left-to-right pass: every step consumes input or fails, nothing nests.
    fn parse(text: &str) -> Result<Self, NpyError> {
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
            let slot_taken = match (key.as_str(), value) {
                ("descr", Value::Str(s)) => descr.replace(Descr::Plain(s)).is_some(),
                ("descr", Value::Fields(f)) => descr.replace(Descr::Fields(f)).is_some(),
                ("fortran_order", Value::Bool(b)) => fortran.replace(b).is_some(),
                ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
                ("descr" | "fortran_order" | "shape", _) => {
                    return Err(NpyError::Header(format!("key '{key}' has the wrong type")))
                }
                _ => return Err(NpyError::Header(format!("unexpected key '{key}'"))),
            };
            if slot_taken {
                return Err(NpyError::Header(format!("key '{key}' appears twice")));
            }
            p.skip_ws();
            if !p.eat(b',') {
                p.expect(b'}')?;
                break;
            }
        }
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(NpyError::Header("text after the closing '}'".into()));
        }
        let missing = |k: &str| NpyError::Header(format!("missing key '{k}'"));
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

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(NpyError::Header(format!(
                "expected '{}' at byte {}",
                c as char, self.i
            )))
        }
    }

    fn string(&mut self) -> Result<String, NpyError> {
        self.skip_ws();
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(NpyError::Header(format!(
                    "expected a quoted string at byte {}",
                    self.i
                )))
            }
        };
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&b| b == quote)
            .ok_or_else(|| NpyError::Header("unterminated string".into()))?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn value(&mut self) -> Result<Value, NpyError> {
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
        if self.eat(b'[') {
            // a structured dtype: [('name', 'descr'), ...]; nested dtypes and sub-array
            // shapes are refused (one level, no recursion)
            let mut fields = Vec::new();
            loop {
                if self.eat(b']') {
                    return Ok(Value::Fields(fields));
                }
                self.expect(b'(')?;
                let name = self.string()?;
                self.expect(b',')?;
                let descr = self.string().map_err(|_| {
                    NpyError::Header(format!(
                        "field '{name}' is not a plain dtype (nested or sub-array fields are not supported)"
                    ))
                })?;
                if !self.eat(b')') {
                    return Err(NpyError::Header(format!(
                        "field '{name}' has a sub-array shape (not supported)"
                    )));
                }
                fields.push((name, descr));
                if !self.eat(b',') {
                    self.expect(b']')?;
                    return Ok(Value::Fields(fields));
                }
            }
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
                    NpyError::Header(format!("shape entry at byte {start} is not a size"))
                })?;
                // Python 2 wrote long integers with an `L` suffix.
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
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

/// One field of a structured (record) dtype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordField {
    pub name: String,
    pub dtype: Dtype,
    pub big_endian: bool,
    /// Byte offset inside a record.
    pub offset: usize,
}

impl RecordField {
    fn le_bytes(&self, record: &[u8]) -> [u8; 8] {
        let n = self.dtype.size();
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&record[self.offset..self.offset + n]);
        if self.big_endian {
            b[..n].reverse();
        }
        b
    }

    /// The field's value in `record` (a slice of [`RecordLayout::itemsize`] bytes) as an exact
    /// integer; `None` for a float field.
    pub fn int(&self, record: &[u8]) -> Option<i128> {
        let b = self.le_bytes(record);
        Some(match self.dtype {
            Dtype::I1 => i128::from(b[0] as i8),
            Dtype::I2 => i128::from(i16::from_le_bytes([b[0], b[1]])),
            Dtype::I4 => i128::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Dtype::I8 => i128::from(i64::from_le_bytes(b)),
            Dtype::U1 => i128::from(b[0]),
            Dtype::U2 => i128::from(u16::from_le_bytes([b[0], b[1]])),
            Dtype::U4 => i128::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Dtype::U8 => i128::from(u64::from_le_bytes(b)),
            Dtype::F4 | Dtype::F8 => return None,
        })
    }
}

/// The layout of a structured dtype: its numeric fields and the record size. Padding fields
/// (`('', '|V3')`, as NumPy writes for aligned dtypes) take space but are not fields; a
/// boolean field (`'|b1'`) reads as an unsigned byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLayout {
    pub fields: Vec<RecordField>,
    pub itemsize: usize,
}

/// Records larger than this are refused (a record is a handful of numbers).
const MAX_RECORD: usize = 1 << 16;

impl RecordLayout {
    fn from_descr(fields: &[(String, String)]) -> Result<Self, NpyError> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        for (name, d) in fields {
            let size = if let Some(n) = d.strip_prefix("|V") {
                n.parse::<usize>()
                    .map_err(|_| NpyError::Record(format!("field '{name}': bad void size {d:?}")))?
            } else {
                let (dtype, big_endian) = match d.as_str() {
                    "|b1" | "|?" | "?" => (Dtype::U1, false),
                    _ => parse_descr(d)?,
                };
                if name.is_empty() || out.iter().any(|f: &RecordField| &f.name == name) {
                    return Err(NpyError::Record(format!(
                        "field name {name:?} is empty or repeated"
                    )));
                }
                out.push(RecordField {
                    name: name.clone(),
                    dtype,
                    big_endian,
                    offset,
                });
                dtype.size()
            };
            offset = offset
                .checked_add(size)
                .filter(|&o| o <= MAX_RECORD)
                .ok_or_else(|| NpyError::Record(format!("records exceed {MAX_RECORD} bytes")))?;
        }
        if offset == 0 {
            return Err(NpyError::Record("a record of zero bytes".into()));
        }
        Ok(Self {
            fields: out,
            itemsize: offset,
        })
    }

    pub fn field(&self, name: &str) -> Option<&RecordField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The header of a one-dimensional structured `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordsHeader {
    pub layout: RecordLayout,
    /// Number of records.
    pub len: usize,
    /// Byte position of the first record.
    pub data_start: usize,
}

impl RecordsHeader {
    /// Parses the header at the start of `prefix` (the file or its first bytes); the data is
    /// not looked at, so a streaming reader checks the file size against
    /// [`data_len`](Self::data_len) itself.
    pub fn parse(prefix: &[u8]) -> Result<Self, NpyError> {
        let (header, data_start) = split_header(prefix)?;
        let Descr::Fields(fields) = &header.descr else {
            return Err(NpyError::NotStructured);
        };
        let layout = RecordLayout::from_descr(fields)?;
        let len = match header.shape.as_slice() {
            [n] => *n,
            s => {
                return Err(NpyError::Record(format!(
                    "shape {s:?}: a record array has one dimension"
                )))
            }
        };
        Ok(Self {
            layout,
            len,
            data_start,
        })
    }

    /// Bytes of data the header announces (checked).
    pub fn data_len(&self) -> Result<usize, NpyError> {
        self.len
            .checked_mul(self.layout.itemsize)
            .ok_or_else(|| NpyError::Overflow {
                shape: vec![self.len],
            })
    }
}

/// The header of a one-dimensional structured array of `len` packed records with `fields`.
/// Its length does not depend on `len` (the count is padded to 20 digits), so a writer that
/// learns the count at the end can write this first and overwrite it in place.
pub fn structured_header(fields: &[(&str, Dtype)], len: usize) -> Vec<u8> {
    let parts: Vec<String> = fields
        .iter()
        .map(|(n, d)| {
            let order = if d.size() == 1 { '|' } else { '<' };
            format!("('{n}', '{order}{}')", d.code())
        })
        .collect();
    let count = len.to_string();
    let pad = " ".repeat(20usize.saturating_sub(count.len()));
    let dict = format!(
        "{{'descr': [{}], 'fortran_order': False, 'shape': ({count},){pad}, }}",
        parts.join(", ")
    );
    frame_header(&dict)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn npy(header: &str, version: (u8, u8), body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        if version.0 == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    fn le<T: Copy, const N: usize>(values: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|&v| f(v)).collect()
    }

    #[test]
    fn round_trip_is_exact_and_aligned() {
        let data = [0.1, -2.5, 1e-300, 7.0, 3.25, -0.0];
        let bytes = to_bytes_f64(&[3, 2], &data).unwrap();
        assert_eq!(
            (bytes.len() - data.len() * 8) % 64,
            0,
            "data 64-byte aligned"
        );
        let a = Npy::parse(&bytes).unwrap();
        assert_eq!(a.shape(), &[3, 2]);
        assert_eq!(a.descr(), "<f8");
        let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.to_f64()), bits(&data));

        let bytes = to_bytes_f32(&[4], &[1.0, 2.5, -3.0, 4.0]).unwrap();
        assert_eq!((bytes.len() - 16) % 64, 0);
        let a = Npy::parse(&bytes).unwrap();
        assert_eq!(a.shape(), &[4]);
        assert_eq!(a.to_f32().unwrap(), vec![1.0, 2.5, -3.0, 4.0]);
        assert!(matches!(
            to_bytes_f32(&[3], &[1.0]),
            Err(NpyError::ShapeMismatch { len: 1, .. })
        ));
        // A streamed file: the header, then the values.
        let mut streamed = header(Dtype::F8, &[3, 2]);
        streamed.extend(data.iter().flat_map(|v| v.to_le_bytes()));
        assert_eq!(streamed, to_bytes_f64(&[3, 2], &data).unwrap());
    }

    #[test]
    fn reads_every_integer_dtype_in_both_orders() {
        let h = |d: &str, n: usize| {
            format!("{{'descr': '{d}', 'fortran_order': False, 'shape': ({n},), }}")
        };
        let cases: Vec<(&str, Vec<u8>, Vec<i128>)> = vec![
            ("|i1", vec![0xff, 5], vec![-1, 5]),
            ("|u1", vec![0xff, 5], vec![255, 5]),
            ("<i2", le(&[-300i16, 7], i16::to_le_bytes), vec![-300, 7]),
            (">u2", le(&[65535u16, 1], u16::to_be_bytes), vec![65535, 1]),
            ("<i4", le(&[-2i32, 3], i32::to_le_bytes), vec![-2, 3]),
            (">i4", le(&[-2i32, 3], i32::to_be_bytes), vec![-2, 3]),
            (
                "<u4",
                le(&[u32::MAX, 0], u32::to_le_bytes),
                vec![4294967295, 0],
            ),
            (
                "<i8",
                le(&[i64::MIN, 9], i64::to_le_bytes),
                vec![i64::MIN as i128, 9],
            ),
            (
                "<u8",
                le(&[u64::MAX, 9], u64::to_le_bytes),
                vec![u64::MAX as i128, 9],
            ),
        ];
        for (descr, body, want) in cases {
            let bytes = npy(&h(descr, 2), (1, 0), &body);
            let a = Npy::parse(&bytes).unwrap();
            assert_eq!(a.descr(), descr);
            assert_eq!(a.ints().unwrap().collect::<Vec<_>>(), want, "{descr}");
            assert!(matches!(a.to_f32(), Err(NpyError::Kind { .. })));
        }
        let f = npy(&h("<f4", 1), (1, 0), &1.5f32.to_le_bytes());
        assert!(matches!(
            Npy::parse(&f).unwrap().ints(),
            Err(NpyError::Kind {
                found: "float32",
                ..
            })
        ));
    }

    #[test]
    fn column_major_files_come_out_row_major() {
        // (2, 3) column-major: on disk columns [1,4], [2,5], [3,6].
        let h = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
        let body = le(&[1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0], f64::to_le_bytes);
        let bytes = npy(h, (1, 0), &body);
        let a = Npy::parse(&bytes).unwrap();
        assert_eq!(a.to_f64(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // (2, 2, 2): element [i][j][k] sits at i + 2j + 4k.
        let h = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2, 2), }";
        let disk: Vec<i32> = (0..8)
            .map(|s| {
                let (i, j, k) = (s % 2, (s / 2) % 2, s / 4);
                i * 100 + j * 10 + k
            })
            .collect();
        let bytes = npy(h, (1, 0), &le(&disk, i32::to_le_bytes));
        let a = Npy::parse(&bytes).unwrap();
        let ints: Vec<i128> = a.ints().unwrap().collect();
        assert_eq!(ints, vec![0, 1, 10, 11, 100, 101, 110, 111]);
    }

    #[test]
    fn header_variants_numpy_writes_are_read() {
        let body = le(&[7i64, 9], i64::to_le_bytes);
        for h in [
            "{'descr': '<i8', 'shape': (2,), 'fortran_order': False}",
            "{\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (2L,)}\n",
            "{'descr':'<i8','fortran_order':False,'shape':(2,),}    \n",
        ] {
            let bytes = npy(h, (1, 0), &body);
            let a = Npy::parse(&bytes).unwrap();
            assert_eq!(a.ints().unwrap().collect::<Vec<_>>(), vec![7, 9], "{h}");
        }
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
        for v in [(2, 0), (3, 0)] {
            assert!(Npy::parse(&npy(h, v, &body)).is_ok());
        }
        let scalar = "{'descr': '<f8', 'fortran_order': False, 'shape': (), }";
        let bytes = npy(scalar, (1, 0), &2.0f64.to_le_bytes());
        let a = Npy::parse(&bytes).unwrap();
        assert_eq!((a.len(), a.to_f64()), (1, vec![2.0]));
    }

    #[test]
    fn rejects_each_defect_with_its_own_error() {
        let good = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let body = le(&[1.0f64, 2.0, 3.0, 4.0], f64::to_le_bytes);
        assert!(Npy::parse(&npy(good, (1, 0), &body)).is_ok());
        let mut bad_magic = npy(good, (1, 0), &body);
        bad_magic[1] = b'X';
        assert_eq!(Npy::parse(&bad_magic).unwrap_err(), NpyError::Magic);
        assert!(matches!(
            Npy::parse(b"\x93NUM"),
            Err(NpyError::Truncated { needed: 8, .. })
        ));
        assert_eq!(
            Npy::parse(&npy(good, (4, 0), &body)).unwrap_err(),
            NpyError::Version { major: 4, minor: 0 }
        );
        let short = npy(good, (1, 0), &[]);
        assert!(matches!(
            Npy::parse(&short[..30]),
            Err(NpyError::Truncated {
                what: "the header",
                ..
            })
        ));
        assert!(matches!(
            Npy::parse(&npy(good, (1, 0), &body[..31])),
            Err(NpyError::Truncated {
                needed: 32,
                available: 31,
                ..
            })
        ));
        let mut long = body.clone();
        long.extend_from_slice(&[0; 8]);
        assert!(matches!(
            Npy::parse(&npy(good, (1, 0), &long)),
            Err(NpyError::Trailing { extra: 8, .. })
        ));
        for (header, what) in [
            ("{'descr': '<f8', 'shape': (2, 2), }", "missing key"),
            (
                "{'descr': '<f8', 'fortran_order': 3, 'shape': (2, 2)}",
                "quoted",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, x)}",
                "size",
            ),
            ("'descr': '<f8'", "expected '{'"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'z': 'a'}",
                "unexpected key",
            ),
            (
                "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}",
                "twice",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)} x",
                "after",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': 'x'}",
                "wrong type",
            ),
        ] {
            match Npy::parse(&npy(header, (1, 0), &body)) {
                Err(NpyError::Header(m)) => assert!(m.contains(what), "{header}: {m}"),
                other => panic!("{header}: {other:?}"),
            }
        }
        for d in ["<u3", "<c16", "|f8", "<O", "", "f8"] {
            let h = format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (2, 2), }}");
            assert_eq!(
                Npy::parse(&npy(&h, (1, 0), &body)).unwrap_err(),
                NpyError::Dtype(d.to_string()),
                "{d}"
            );
        }
        let huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 2), }";
        assert!(matches!(
            Npy::parse(&npy(huge, (1, 0), &body)),
            Err(NpyError::Overflow { .. })
        ));
        let too_big =
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }";
        assert!(matches!(
            Npy::parse(&npy(too_big, (1, 0), &body)),
            Err(NpyError::Header(_))
        ));
    }
}

#[cfg(test)]
mod record_tests {
    use super::tests::npy;
    use super::*;

    const EVENT: &[(&str, Dtype)] = &[
        ("t", Dtype::U8),
        ("x", Dtype::U2),
        ("y", Dtype::U2),
        ("p", Dtype::U1),
    ];

    fn record(t: u64, x: u16, y: u16, p: u8) -> Vec<u8> {
        let mut r = t.to_le_bytes().to_vec();
        r.extend_from_slice(&x.to_le_bytes());
        r.extend_from_slice(&y.to_le_bytes());
        r.push(p);
        r
    }

    #[test]
    fn structured_header_round_trips_and_has_a_fixed_length() {
        let h = structured_header(EVENT, 2);
        assert_eq!(h.len() % 64, 0, "data 64-byte aligned");
        for n in [0, 7, 123_456_789, usize::MAX] {
            assert_eq!(structured_header(EVENT, n).len(), h.len(), "count {n}");
        }
        let mut file = h.clone();
        file.extend(record(5, 1, 2, 1));
        file.extend(record(u64::MAX, 640, 480, 0));
        let r = RecordsHeader::parse(&file).unwrap();
        assert_eq!((r.len, r.layout.itemsize, r.data_start), (2, 13, h.len()));
        assert_eq!(r.data_len().unwrap(), 26);
        let second = &file[r.data_start + 13..];
        let get = |n: &str| r.layout.field(n).unwrap().int(second).unwrap();
        assert_eq!(
            (get("t"), get("x"), get("y"), get("p")),
            (u64::MAX as i128, 640, 480, 0)
        );
        // a plain reader names what it found
        assert_eq!(
            Npy::parse(&file).unwrap_err(),
            NpyError::Structured {
                names: vec!["t".into(), "x".into(), "y".into(), "p".into()]
            }
        );
    }

    /// The headers NumPy 2.4 writes for a packed, an aligned (padded) and a boolean-field
    /// record dtype (copied from `np.save` output).
    #[test]
    fn reads_the_record_headers_numpy_writes() {
        let aligned = "{'descr': [('t', '<u8'), ('x', '<u2'), ('y', '<u2'), ('p', '|u1'), ('', '|V3')], 'fortran_order': False, 'shape': (2,), }";
        let body: Vec<u8> = [
            record(9, 3, 4, 1),
            vec![0; 3],
            record(10, 5, 6, 0),
            vec![0; 3],
        ]
        .concat();
        let f = npy(aligned, (1, 0), &body);
        let r = RecordsHeader::parse(&f).unwrap();
        assert_eq!(r.layout.itemsize, 16);
        assert_eq!(r.layout.fields.len(), 4);
        let rec1 = &f[r.data_start + 16..r.data_start + 32];
        assert_eq!(r.layout.field("y").unwrap().int(rec1), Some(6));

        let faery = "{'descr': [('t', '<i8'), ('x', '<i2'), ('y', '<i2'), ('on', '|b1')], 'fortran_order': False, 'shape': (1,), }";
        let f = npy(faery, (1, 0), &record(1, 2, 3, 1));
        let r = RecordsHeader::parse(&f).unwrap();
        let on = r.layout.field("on").unwrap();
        assert_eq!((on.dtype, on.offset), (Dtype::U1, 12));
        let big = "{'descr': [('t', '>u4')], 'fortran_order': False, 'shape': (1,), }";
        let f = npy(big, (1, 0), &7u32.to_be_bytes());
        let r = RecordsHeader::parse(&f).unwrap();
        assert_eq!(r.layout.fields[0].int(&f[r.data_start..]), Some(7));
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        let plain = to_bytes_f64(&[2], &[1.0, 2.0]).unwrap();
        assert_eq!(
            RecordsHeader::parse(&plain).unwrap_err(),
            NpyError::NotStructured
        );
        for (descr, shape, what) in [
            ("[('a', [('b', '<u2')])]", "(1,)", "not a plain dtype"),
            ("[('a', '<u2', (3,))]", "(1,)", "sub-array"),
            ("[('a', '<u2'), ('a', '<u2')]", "(1,)", "repeated"),
            ("[('a', '<u2')]", "(2, 2)", "one dimension"),
            ("[('a', '|V99999999')]", "(1,)", "exceed"),
            ("[]", "(1,)", "zero bytes"),
        ] {
            let h = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
            let e = RecordsHeader::parse(&npy(&h, (1, 0), &[])).unwrap_err();
            assert!(e.to_string().contains(what), "{descr}: {e}");
        }
        let h = "{'descr': [('a', '<c16')], 'fortran_order': False, 'shape': (1,), }";
        assert_eq!(
            RecordsHeader::parse(&npy(h, (1, 0), &[])).unwrap_err(),
            NpyError::Dtype("<c16".into())
        );
        let huge =
            "{'descr': [('a', '<u8')], 'fortran_order': False, 'shape': (18446744073709551615,), }";
        let r = RecordsHeader::parse(&npy(huge, (1, 0), &[])).unwrap();
        assert!(matches!(r.data_len(), Err(NpyError::Overflow { .. })));
    }
}

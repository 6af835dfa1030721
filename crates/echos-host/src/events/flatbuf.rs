//! A small bounds-checked FlatBuffers reader for the few AEDAT 4 schemas (IOHeader, event,
//! IMU and trigger packets). The `flatbuffers` crate's safe entry points need verifiers that
//! `flatc` generates; these schemas are small enough that reading them by hand, with every
//! access checked, is less machinery. Every read returns an error naming what was out of
//! place; nothing indexes past the buffer.

/// Why a FlatBuffer cannot be read: `what` names the structure, `at` its byte position in the
/// buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FbError {
    pub what: &'static str,
    pub at: usize,
}

type Result<T> = std::result::Result<T, FbError>;

fn bytes<const N: usize>(buf: &[u8], at: usize, what: &'static str) -> Result<[u8; N]> {
    at.checked_add(N)
        .and_then(|end| buf.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or(FbError { what, at })
}

pub fn u32_at(buf: &[u8], at: usize, what: &'static str) -> Result<u32> {
    bytes::<4>(buf, at, what).map(u32::from_le_bytes)
}

pub fn i64_at(buf: &[u8], at: usize, what: &'static str) -> Result<i64> {
    bytes::<8>(buf, at, what).map(i64::from_le_bytes)
}

/// `at + offset`, inside the buffer.
fn follow(buf: &[u8], at: usize, what: &'static str) -> Result<usize> {
    let off = u32_at(buf, at, what)? as usize;
    at.checked_add(off)
        .filter(|&p| p < buf.len())
        .ok_or(FbError { what, at })
}

/// A table: its position and its vtable's field offsets.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    /// Number of field slots the vtable holds.
    slots: usize,
    /// The table's inline size (fields lie inside it).
    inline: usize,
}

impl<'a> Table<'a> {
    /// The table at `pos` (its soffset to the vtable is checked).
    pub fn at(buf: &'a [u8], pos: usize) -> Result<Self> {
        let soff = bytes::<4>(buf, pos, "table")
            .map(i32::from_le_bytes)
            .map(i64::from)?;
        let vt = (pos as i64)
            .checked_sub(soff)
            .filter(|&v| v >= 0)
            .map(|v| v as usize)
            .ok_or(FbError {
                what: "vtable offset",
                at: pos,
            })?;
        let vt_len = bytes::<2>(buf, vt, "vtable").map(u16::from_le_bytes)? as usize;
        let inline = bytes::<2>(buf, vt + 2, "vtable").map(u16::from_le_bytes)? as usize;
        if vt_len < 4 || !vt_len.is_multiple_of(2) || vt + vt_len > buf.len() {
            return Err(FbError {
                what: "vtable size",
                at: vt,
            });
        }
        if pos.checked_add(inline).is_none_or(|end| end > buf.len()) || inline < 4 {
            return Err(FbError {
                what: "table size",
                at: pos,
            });
        }
        Ok(Self {
            buf,
            pos,
            vtable: vt,
            slots: (vt_len - 4) / 2,
            inline,
        })
    }

    /// The position of field `index` if present; checked to hold `size` bytes inside the table.
    fn field(&self, index: usize, size: usize, what: &'static str) -> Result<Option<usize>> {
        if index >= self.slots {
            return Ok(None);
        }
        let at = self.vtable + 4 + 2 * index;
        let off = bytes::<2>(self.buf, at, what).map(u16::from_le_bytes)? as usize;
        if off == 0 {
            return Ok(None);
        }
        if off < 4 || off + size > self.inline {
            return Err(FbError { what, at });
        }
        Ok(Some(self.pos + off))
    }

    pub fn i64(&self, index: usize, default: i64, what: &'static str) -> Result<i64> {
        match self.field(index, 8, what)? {
            Some(p) => i64_at(self.buf, p, what),
            None => Ok(default),
        }
    }

    pub fn i32(&self, index: usize, default: i32, what: &'static str) -> Result<i32> {
        match self.field(index, 4, what)? {
            Some(p) => bytes::<4>(self.buf, p, what).map(i32::from_le_bytes),
            None => Ok(default),
        }
    }

    pub fn i8(&self, index: usize, default: i8, what: &'static str) -> Result<i8> {
        match self.field(index, 1, what)? {
            Some(p) => bytes::<1>(self.buf, p, what).map(|b| b[0] as i8),
            None => Ok(default),
        }
    }

    /// A string field (UTF-8 checked).
    pub fn str(&self, index: usize, what: &'static str) -> Result<Option<&'a str>> {
        let Some((start, len)) = self.vector(index, 1, what)? else {
            return Ok(None);
        };
        std::str::from_utf8(&self.buf[start..start + len])
            .map(Some)
            .map_err(|_| FbError { what, at: start })
    }

    /// A vector field of `elem` bytes per element: the position of its first element and its
    /// length, checked to lie inside the buffer.
    pub fn vector(
        &self,
        index: usize,
        elem: usize,
        what: &'static str,
    ) -> Result<Option<(usize, usize)>> {
        let Some(p) = self.field(index, 4, what)? else {
            return Ok(None);
        };
        let v = follow(self.buf, p, what)?;
        let len = u32_at(self.buf, v, what)? as usize;
        let start = v + 4;
        let fits = len
            .checked_mul(elem)
            .and_then(|n| n.checked_add(start))
            .is_some_and(|end| end <= self.buf.len());
        if !fits {
            return Err(FbError { what, at: v });
        }
        Ok(Some((start, len)))
    }

    /// Element `i` of a vector of tables found by [`vector`](Self::vector) with `elem == 4`.
    pub fn table_in_vector(&self, start: usize, i: usize, what: &'static str) -> Result<Table<'a>> {
        let at = start + 4 * i;
        let pos = follow(self.buf, at, what)?;
        Table::at(self.buf, pos)
    }
}

/// The root table of a FlatBuffer, checking its file identifier when one is given;
/// `size_prefixed` buffers start with their length (which must fit the bytes present).
pub fn root<'a>(
    buf: &'a [u8],
    identifier: Option<&[u8; 4]>,
    size_prefixed: bool,
) -> Result<Table<'a>> {
    let buf = if size_prefixed {
        let n = u32_at(buf, 0, "size prefix")? as usize;
        buf.get(4..).and_then(|b| b.get(..n)).ok_or(FbError {
            what: "size prefix",
            at: 0,
        })?
    } else {
        buf
    };
    if let Some(id) = identifier {
        if buf.get(4..8) != Some(&id[..]) {
            return Err(FbError {
                what: "file identifier",
                at: 4,
            });
        }
    }
    let pos = follow(buf, 0, "root offset")?;
    Table::at(buf, pos)
}

#[cfg(test)]
pub(crate) mod build {
    //! A minimal FlatBuffer builder for the tests: tables with scalar, string and vector fields,
    //! laid out front to back (valid FlatBuffers, not size-optimal).

    pub enum Field {
        I64(i64),
        I32(i32),
        I8(i8),
        /// A vector of `elem`-byte inline elements (struct vectors, strings without the NUL).
        Bytes(Vec<u8>, usize),
        /// A vector of tables, each the field list of one table.
        Tables(Vec<Vec<Option<Field>>>),
    }

    /// The bytes of a buffer whose root table has `fields` (`None` = absent).
    pub fn buffer(identifier: Option<&[u8; 4]>, fields: &[Option<Field>]) -> Vec<u8> {
        let mut out = vec![0u8; 8];
        if let Some(id) = identifier {
            out[4..8].copy_from_slice(id);
        }
        let root = table(&mut out, fields);
        out[0..4].copy_from_slice(&(root as u32).to_le_bytes());
        out
    }

    /// As [`buffer`], size-prefixed.
    pub fn size_prefixed(identifier: &[u8; 4], fields: &[Option<Field>]) -> Vec<u8> {
        let b = buffer(Some(identifier), fields);
        let mut out = (b.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&b);
        out
    }

    fn align(out: &mut Vec<u8>, n: usize) {
        while !out.len().is_multiple_of(n) {
            out.push(0);
        }
    }

    /// Appends a vtable and its table; returns the table's position. Offset fields point
    /// forward to data appended after the table.
    fn table(out: &mut Vec<u8>, fields: &[Option<Field>]) -> usize {
        align(out, 8);
        let vt = out.len();
        let vt_len = 4 + 2 * fields.len();
        out.resize(vt + vt_len, 0);
        align(out, 8);
        let pos = out.len();
        // inline layout: soffset, then each present field at an 8-aligned slot
        let mut offs = vec![0u16; fields.len()];
        let mut inline = 8usize;
        for (i, f) in fields.iter().enumerate() {
            if f.is_some() {
                offs[i] = inline as u16;
                inline += 8;
            }
        }
        out.resize(pos + inline, 0);
        out[pos..pos + 4].copy_from_slice(&((pos - vt) as i32).to_le_bytes());
        out[vt..vt + 2].copy_from_slice(&(vt_len as u16).to_le_bytes());
        out[vt + 2..vt + 4].copy_from_slice(&(inline as u16).to_le_bytes());
        for (i, o) in offs.iter().enumerate() {
            out[vt + 4 + 2 * i..vt + 6 + 2 * i].copy_from_slice(&o.to_le_bytes());
        }
        for (i, f) in fields.iter().enumerate() {
            let Some(f) = f else { continue };
            let at = pos + offs[i] as usize;
            match f {
                Field::I64(v) => out[at..at + 8].copy_from_slice(&v.to_le_bytes()),
                Field::I32(v) => out[at..at + 4].copy_from_slice(&v.to_le_bytes()),
                Field::I8(v) => out[at] = *v as u8,
                Field::Bytes(data, elem) => {
                    align(out, 8);
                    let v = out.len();
                    out.extend_from_slice(&((data.len() / elem) as u32).to_le_bytes());
                    out.extend_from_slice(data);
                    out.push(0);
                    out[at..at + 4].copy_from_slice(&((v - at) as u32).to_le_bytes());
                }
                Field::Tables(tables) => {
                    align(out, 8);
                    let v = out.len();
                    out.extend_from_slice(&(tables.len() as u32).to_le_bytes());
                    out.resize(v + 4 + 4 * tables.len(), 0);
                    out[at..at + 4].copy_from_slice(&((v - at) as u32).to_le_bytes());
                    for (k, t) in tables.iter().enumerate() {
                        let slot = v + 4 + 4 * k;
                        let tp = table(out, t);
                        out[slot..slot + 4].copy_from_slice(&((tp - slot) as u32).to_le_bytes());
                    }
                }
            }
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::build::{buffer, size_prefixed, Field};
    use super::*;

    #[test]
    fn reads_scalars_strings_and_vectors() {
        let b = buffer(
            Some(b"IOHE"),
            &[
                Some(Field::I32(3)),
                None,
                Some(Field::Bytes(b"<dv/>".to_vec(), 1)),
            ],
        );
        let t = root(&b, Some(b"IOHE"), false).unwrap();
        assert_eq!(t.i32(0, 0, "c").unwrap(), 3);
        assert_eq!(
            t.i64(1, -1, "p").unwrap(),
            -1,
            "absent field has its default"
        );
        assert_eq!(t.str(2, "s").unwrap(), Some("<dv/>"));
        assert_eq!(t.i64(7, 5, "x").unwrap(), 5, "slot beyond the vtable");
        assert_eq!(
            root(&b, Some(b"EVTS"), false).unwrap_err().what,
            "file identifier"
        );

        let inner = vec![
            vec![Some(Field::I64(10)), Some(Field::I8(1))],
            vec![Some(Field::I64(20)), None],
        ];
        let p = size_prefixed(b"TRIG", &[Some(Field::Tables(inner))]);
        let t = root(&p, Some(b"TRIG"), true).unwrap();
        let (start, len) = t.vector(0, 4, "v").unwrap().unwrap();
        assert_eq!(len, 2);
        let e1 = t.table_in_vector(start, 1, "e").unwrap();
        assert_eq!(
            (e1.i64(0, 0, "t").unwrap(), e1.i8(1, 0, "s").unwrap()),
            (20, 0)
        );
    }

    /// Every truncation and every single-byte corruption of a buffer is an error or a value,
    /// never a panic or a read past the end.
    #[test]
    fn damaged_buffers_are_errors() {
        let inner = vec![vec![Some(Field::I64(10)), Some(Field::I8(1))]];
        let good = size_prefixed(
            b"TRIG",
            &[
                Some(Field::Tables(inner)),
                Some(Field::Bytes(vec![7; 32], 16)),
            ],
        );
        let read = |b: &[u8]| -> Result<()> {
            let t = root(b, Some(b"TRIG"), true)?;
            if let Some((s, n)) = t.vector(0, 4, "v")? {
                for i in 0..n {
                    let e = t.table_in_vector(s, i, "e")?;
                    e.i64(0, 0, "t")?;
                    e.i8(1, 0, "s")?;
                }
            }
            t.vector(1, 16, "w")?;
            Ok(())
        };
        read(&good).unwrap();
        for cut in 0..good.len() {
            let _ = read(&good[..cut]);
        }
        assert!(read(&good[..good.len() - 1]).is_err());
        for i in 0..good.len() {
            for v in [0x00, 0x7F, 0x80, 0xFF] {
                let mut b = good.clone();
                b[i] = v;
                let _ = read(&b);
            }
        }
        // a vector claiming 2^32 - 1 elements
        let mut b = good.clone();
        let t = root(&b, None, true).unwrap();
        let (s, _) = t.vector(1, 16, "w").unwrap().unwrap();
        b[4 + s - 4..4 + s].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read(&b).unwrap_err().what, "w");
    }
}

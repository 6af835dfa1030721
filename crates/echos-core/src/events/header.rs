//! The `% key value` text headers of Prophesee RAW (EVT) and DAT files, and recognising a
//! recording's format from its first bytes (header keys, magic strings), not its file name.

use super::evt2::Evt21Layout;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Headers longer than this are refused: a real one is a few hundred bytes, and parsing must
/// not let a hostile file make us buffer without bound.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// Event file formats the project reads (the AEDAT ones on the std side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Evt2,
    Evt21,
    Evt3,
    Dat,
    Nmnist,
    Aedat2,
    Aedat31,
    Aedat4,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::Evt2 => "evt2",
            Self::Evt21 => "evt2.1",
            Self::Evt3 => "evt3",
            Self::Dat => "dat",
            Self::Nmnist => "nmnist",
            Self::Aedat2 => "aedat2",
            Self::Aedat31 => "aedat3.1",
            Self::Aedat4 => "aedat4",
        }
    }

    /// Recognise a recording from its first bytes (a few KiB is plenty): AEDAT magic lines,
    /// the `%` header's `evt`/`format`/`Version` keys (then the plugin name), else the N-MNIST
    /// record shape. `None` when nothing matches.
    pub fn detect(bytes: &[u8]) -> Option<Format> {
        for (magic, f) in [
            (&b"#!AER-DAT4.0"[..], Format::Aedat4),
            (&b"#!AER-DAT3.1"[..], Format::Aedat31),
            (&b"#!AER-DAT2.0"[..], Format::Aedat2),
        ] {
            if bytes.starts_with(magic) {
                return Some(f);
            }
        }
        if bytes.first() == Some(&b'%') {
            return match Header::parse(bytes) {
                Ok(h) => h.format,
                Err(_) => None,
            };
        }
        looks_like_nmnist(bytes).then_some(Format::Nmnist)
    }
}

fn looks_like_nmnist(bytes: &[u8]) -> bool {
    let records = bytes.len() / 5;
    if records == 0 {
        return false;
    }
    let n = records.min(200);
    bytes[..n * 5]
        .chunks_exact(5)
        .all(|r| (r[0] < 34 && r[1] < 34) || r[1] == 240)
}

/// Why a header cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The bytes end inside a header line: read more and parse again.
    Incomplete { have: usize },
    /// The header runs past [`MAX_HEADER_LEN`].
    TooLong { limit: usize },
    /// A value that must be a number or `WxH` is not (or is zero or too large).
    BadValue { offset: usize, key: String },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete { have } => write!(
                f,
                "the header is incomplete after {have} bytes (the data ends inside a `%` line)"
            ),
            Self::TooLong { limit } => {
                write!(
                    f,
                    "the `%` header runs past {limit} bytes; this is not an event file"
                )
            }
            Self::BadValue { offset, key } => {
                write!(
                    f,
                    "header line at byte {offset}: the value of `{key}` is not valid"
                )
            }
        }
    }
}

/// A parsed `%` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Bytes of the header, including the last line's newline: the payload starts here.
    pub len: usize,
    /// From `% evt 3.0`, `% format EVT3;…`, a DAT `% Version`/`Data file containing` line, or
    /// (failing those) the camera plugin's name.
    pub format: Option<Format>,
    /// `evt` value (`3.0`) for RAW files, `Version` value (`2`) for DAT files.
    pub version: Option<String>,
    /// From `% geometry WxH`, the `format` options `width=`/`height=`, DAT `Width`/`Height`, or
    /// the sensor known for the camera plugin.
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub date: Option<String>,
    /// `% t0` / `% T0`: the time origin the writer subtracted (add it back when decoding).
    pub t0: Option<u64>,
    /// EVT 2.1 word order (`endianness=legacy` in the `format` options means 32-bit halves).
    pub evt21_layout: Evt21Layout,
    /// Every line as (key, value), in order, `format` options included as written.
    pub entries: Vec<(String, String)>,
}

impl Header {
    /// Parse the header at the start of `bytes` (which may hold the whole file or just its
    /// beginning). A file without a header gives `len == 0` and nothing set.
    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        let mut h = Header::default();
        let mut pos = 0;
        let mut dat_hint = false;
        let mut plugin: Option<String> = None;
        let mut generation: Option<String> = None;
        while pos < bytes.len() && bytes[pos] == b'%' {
            let rest = &bytes[pos..];
            // A header line is `%`, then printable ASCII up to `\n`; binary data that happens
            // to start with 0x25 fails this and ends the header.
            let mut end = None;
            let mut printable = true;
            for (i, &b) in rest.iter().enumerate().skip(1) {
                if b == b'\n' {
                    end = Some(i);
                    break;
                }
                if !(b == b'\t' || b == b'\r' || (0x20..0x7F).contains(&b)) {
                    printable = false;
                    break;
                }
                if pos + i >= MAX_HEADER_LEN {
                    return Err(HeaderError::TooLong {
                        limit: MAX_HEADER_LEN,
                    });
                }
            }
            if !printable {
                break;
            }
            let Some(end) = end else {
                return Err(HeaderError::Incomplete { have: bytes.len() });
            };
            if rest.len() > 1 && rest[1] != b' ' && rest[1] != b'\n' && rest[1] != b'\r' {
                break;
            }
            let line_offset = pos;
            // printable ASCII was checked, so this is valid UTF-8
            let line = core::str::from_utf8(&rest[1..end]).unwrap_or("").trim();
            pos += end + 1;
            if pos > MAX_HEADER_LEN {
                return Err(HeaderError::TooLong {
                    limit: MAX_HEADER_LEN,
                });
            }
            if line == "end" {
                break;
            }
            let (key, value) = match line.split_once(' ') {
                Some((k, v)) => (k, v.trim()),
                None => (line, ""),
            };
            h.entries.push((key.to_string(), value.to_string()));
            let bad = || HeaderError::BadValue {
                offset: line_offset,
                key: key.to_string(),
            };
            match key {
                "evt" => {
                    h.version = Some(value.to_string());
                    h.format = match value {
                        "3.0" => Some(Format::Evt3),
                        "2.0" => Some(Format::Evt2),
                        "2.1" => Some(Format::Evt21),
                        _ => h.format,
                    };
                }
                "format" => {
                    let mut parts = value.split(';');
                    let name = parts.next().unwrap_or("").trim();
                    match name.to_ascii_uppercase().replace('.', "").as_str() {
                        "EVT3" => h.format = Some(Format::Evt3),
                        "EVT2" => h.format = Some(Format::Evt2),
                        "EVT21" => h.format = Some(Format::Evt21),
                        _ => {}
                    }
                    for opt in parts {
                        let Some((k, v)) = opt.split_once('=') else {
                            continue;
                        };
                        match k.trim() {
                            "width" => h.width = Some(parse_size(v).ok_or_else(bad)?),
                            "height" => h.height = Some(parse_size(v).ok_or_else(bad)?),
                            "endianness" if v.trim() == "legacy" => {
                                h.evt21_layout = Evt21Layout::Legacy32
                            }
                            _ => {}
                        }
                    }
                }
                "geometry" => {
                    let (w, hh) = value.split_once('x').ok_or_else(bad)?;
                    h.width = Some(parse_size(w).ok_or_else(bad)?);
                    h.height = Some(parse_size(hh).ok_or_else(bad)?);
                }
                "Width" => h.width = Some(parse_size(value).ok_or_else(bad)?),
                "Height" => h.height = Some(parse_size(value).ok_or_else(bad)?),
                "Version" => {
                    h.version = Some(value.to_string());
                    dat_hint = true;
                }
                "Data" if value.starts_with("file containing") => dat_hint = true,
                "date" | "Date" => h.date = Some(value.to_string()),
                "t0" | "T0" => h.t0 = Some(value.parse().map_err(|_| bad())?),
                "plugin_name" => plugin = Some(value.to_string()),
                "sensor_generation" => generation = Some(value.to_string()),
                _ => {}
            }
        }
        h.len = pos;
        if h.format.is_none() && dat_hint {
            h.format = Some(Format::Dat);
        }
        let known = plugin
            .as_deref()
            .and_then(sensor_of_plugin)
            .or_else(|| generation.as_deref().and_then(sensor_of_generation));
        if let Some((format, w, hh)) = known {
            if h.format.is_none() {
                h.format = Some(format);
            }
            if h.width.is_none() && h.height.is_none() {
                h.width = Some(w);
                h.height = Some(hh);
            }
        }
        Ok(h)
    }

    /// The value of the first line with this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The DAT layout version (`% Version`; files without one use the v1 layout).
    pub fn dat_version(&self) -> super::DatVersion {
        match self.get("Version").map(str::trim) {
            Some(v) if v.parse::<u32>().is_ok_and(|n| n >= 2) => super::DatVersion::V2,
            _ => super::DatVersion::V1,
        }
    }
}

fn parse_size(s: &str) -> Option<u16> {
    match s.trim().parse::<u32>() {
        Ok(v) if v > 0 && v <= u16::MAX as u32 => Some(v as u16),
        _ => None,
    }
}

/// Sensors of Prophesee camera plugins whose files carry no geometry (older RAW files): the
/// default event format and size of the sensor the plugin drives.
fn sensor_of_plugin(name: &str) -> Option<(Format, u16, u16)> {
    let n = name.to_ascii_lowercase();
    if n.contains("imx636") || n.contains("gen41") || n.contains("gen4") {
        Some((Format::Evt3, 1280, 720))
    } else if n.contains("genx320") {
        Some((Format::Evt21, 320, 320))
    } else if n.contains("gen31") || n.contains("gen3") {
        Some((Format::Evt2, 640, 480))
    } else {
        None
    }
}

fn sensor_of_generation(g: &str) -> Option<(Format, u16, u16)> {
    match g.split('.').next()?.trim() {
        "3" => Some((Format::Evt2, 640, 480)),
        "4" => Some((Format::Evt3, 1280, 720)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prophesee_raw_header() {
        let text = b"% date 2023-10-19 03:51:23\n% evt 3.0\n% format EVT3;height=720;width=1280\n% plugin_name hal_plugin_imx636_evk4\n% end\n\x00\x80";
        let h = Header::parse(text).unwrap();
        assert_eq!(h.format, Some(Format::Evt3));
        assert_eq!((h.width, h.height), (Some(1280), Some(720)));
        assert_eq!(h.date.as_deref(), Some("2023-10-19 03:51:23"));
        assert_eq!(h.version.as_deref(), Some("3.0"));
        assert_eq!(h.len, text.len() - 2);
        assert_eq!(h.get("plugin_name"), Some("hal_plugin_imx636_evk4"));
    }

    #[test]
    fn geometry_from_plugin_when_absent() {
        let text =
            b"% Date 2020-09-25 07:48:31\n% plugin_name hal_plugin_gen3_fx3\n% evt 2.0\n\xd0\xd8";
        let h = Header::parse(text).unwrap();
        assert_eq!(h.format, Some(Format::Evt2));
        assert_eq!((h.width, h.height), (Some(640), Some(480)));
    }

    #[test]
    fn dat_header_and_t0() {
        let text = b"% Data file containing CD events\n% Version 2\n% Width 640\n% Height 480\n% T0 42\n\x0c\x08";
        let h = Header::parse(text).unwrap();
        assert_eq!(h.format, Some(Format::Dat));
        assert_eq!(h.dat_version(), crate::events::DatVersion::V2);
        assert_eq!(h.t0, Some(42));
        assert_eq!(h.len, text.len() - 2);
    }

    #[test]
    fn binary_starting_with_percent_ends_the_header() {
        // a word 0x2025 (ADDR_X) begins with 0x25 '%' followed by a non-space
        let text = b"% evt 3.0\n\x25\x20\x01\x80";
        let h = Header::parse(text).unwrap();
        assert_eq!(h.len, 10);
    }

    #[test]
    fn bad_and_incomplete_headers() {
        assert_eq!(
            Header::parse(b"% evt 3.0\n% geome"),
            Err(HeaderError::Incomplete { have: 17 })
        );
        assert!(matches!(
            Header::parse(b"% geometry 0x720\n"),
            Err(HeaderError::BadValue { offset: 0, .. })
        ));
        let mut long = alloc::vec![b'%', b' '];
        long.resize(MAX_HEADER_LEN + 10, b'a');
        assert!(matches!(
            Header::parse(&long),
            Err(HeaderError::TooLong { .. })
        ));
    }

    #[test]
    fn detects_formats_from_content() {
        assert_eq!(Format::detect(b"#!AER-DAT4.0\r\n"), Some(Format::Aedat4));
        assert_eq!(Format::detect(b"% evt 2.0\n"), Some(Format::Evt2));
        assert_eq!(
            Format::detect(b"% format EVT21;endianness=legacy\n"),
            Some(Format::Evt21)
        );
        assert_eq!(
            Format::detect(&[1, 2, 0x80, 0, 5, 33, 240, 0, 0, 9]),
            Some(Format::Nmnist)
        );
        assert_eq!(Format::detect(&[200, 2, 0x80, 0, 5]), None);
    }
}

//! The `#` text headers of jAER's AEDAT 2.0 and cAER's AEDAT 3.1 files: the magic line, then
//! `#`-lines (3.1 ends them with `#!END-HEADER`), and the sensor each names (`# AEChip: …`
//! in 2.0, `#Source N: …` in 3.1).

/// A header longer than this is refused (real ones are a few hundred bytes).
pub const MAX_HEADER: usize = 1 << 20;

/// A header line longer than this ends the header (binary data that starts with `#`).
const MAX_LINE: usize = 4096;

/// A parsed text header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextHeader {
    /// Bytes of header: the records start here.
    pub len: usize,
    /// Each `#` line after the magic, without `#` and the line end, split at the first `:`
    /// (`("AEChip", "eu.seebetter.ini.chips.davis.DAVIS346B")`; a line without `:` has an
    /// empty value).
    pub entries: Vec<(String, String)>,
}

/// Why a text header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextHeaderError {
    #[error("the file does not start with {0:?}")]
    Magic(&'static str),
    #[error("the header runs past {MAX_HEADER} bytes (or has a line over 4096 bytes)")]
    TooLong,
    #[error("the header ends inside a line (the file is cut at byte {0})")]
    Incomplete(usize),
    #[error("no `#!END-HEADER` line ends the AEDAT 3.1 header")]
    NoEnd,
}

impl TextHeader {
    /// Parse the header of `bytes` (the file or its first [`MAX_HEADER`] bytes) that starts
    /// with `magic`; `end_line` (3.1: `#!END-HEADER`) must close it, else the first byte that
    /// does not begin a printable `#` line does.
    pub fn parse(
        bytes: &[u8],
        magic: &'static str,
        end_line: Option<&str>,
    ) -> Result<Self, TextHeaderError> {
        if !bytes.starts_with(magic.as_bytes()) {
            return Err(TextHeaderError::Magic(magic));
        }
        let mut h = TextHeader::default();
        let mut pos = 0;
        let mut first = true;
        loop {
            if pos >= bytes.len() || bytes[pos] != b'#' {
                if end_line.is_some() {
                    return Err(if pos >= bytes.len() {
                        TextHeaderError::Incomplete(pos)
                    } else {
                        TextHeaderError::NoEnd
                    });
                }
                break;
            }
            // a header line is printable ASCII up to its newline; any other byte means the
            // records have begun (binary data that happens to start with '#')
            let rest = &bytes[pos..];
            let mut end = None;
            let mut binary = false;
            for (i, &b) in rest.iter().enumerate().take(MAX_LINE) {
                if b == b'\n' {
                    end = Some(i);
                    break;
                }
                if !(b == b'\t' || b == b'\r' || (0x20..0x7F).contains(&b)) {
                    binary = true;
                    break;
                }
            }
            if binary {
                if end_line.is_some() {
                    return Err(TextHeaderError::NoEnd);
                }
                break;
            }
            let Some(nl) = end else {
                if rest.len() >= MAX_LINE {
                    return Err(TextHeaderError::TooLong);
                }
                return Err(TextHeaderError::Incomplete(bytes.len()));
            };
            let line = &rest[..nl];
            pos += nl + 1;
            if pos > MAX_HEADER {
                return Err(TextHeaderError::TooLong);
            }
            // printable ASCII was checked: valid UTF-8
            let text = std::str::from_utf8(&line[1..])
                .unwrap_or("")
                .trim_end_matches('\r')
                .trim();
            if first {
                first = false;
                continue;
            }
            if end_line.is_some_and(|e| text == e.trim_start_matches('#')) {
                break;
            }
            let (k, v) = match text.split_once(':') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (text, ""),
            };
            h.entries.push((k.to_string(), v.to_string()));
        }
        h.len = pos;
        Ok(h)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The sensor of a jAER chip class or cAER source name: width, height and whether it is a
/// DAVIS (its AEDAT 2.0 address layout) rather than a DVS128.
pub fn sensor(name: &str) -> Option<(u16, u16, bool)> {
    let n = name.to_ascii_uppercase();
    if n.contains("DAVIS346") {
        Some((346, 260, true))
    } else if n.contains("DAVIS240") {
        Some((240, 180, true))
    } else if n.contains("DAVIS640") {
        Some((640, 480, true))
    } else if n.contains("DVS128") || n.contains("TMPDIFF128") {
        Some((128, 128, false))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_header_kinds() {
        let text = b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS346B\r\n\x00\x01\x02\x03";
        let h = TextHeader::parse(text, "#!AER-DAT2.0", None).unwrap();
        assert_eq!(h.len, text.len() - 4);
        assert_eq!(
            h.get("AEChip"),
            Some("eu.seebetter.ini.chips.davis.DAVIS346B")
        );
        assert_eq!(sensor(h.get("AEChip").unwrap()), Some((346, 260, true)));

        let text = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n\x01\x00";
        let h = TextHeader::parse(text, "#!AER-DAT3.1", Some("#!END-HEADER")).unwrap();
        assert_eq!(h.len, text.len() - 2);
        assert_eq!(h.get("Source 1"), Some("DVS128"));

        // a record that starts with '#' and a non-printable byte ends a 2.0 header
        let text = b"#!AER-DAT2.0\r\n#\x01\x02\x03\x04\x05\x06\x07\n";
        assert_eq!(
            TextHeader::parse(text, "#!AER-DAT2.0", None).unwrap().len,
            14
        );
    }

    #[test]
    fn damaged_headers() {
        use TextHeaderError as E;
        assert_eq!(
            TextHeader::parse(b"#!AER-DAT3.1\r\n", "#!AER-DAT2.0", None),
            Err(E::Magic("#!AER-DAT2.0"))
        );
        assert_eq!(
            TextHeader::parse(
                b"#!AER-DAT3.1\r\n#Format: RAW\r\n",
                "#!AER-DAT3.1",
                Some("#!END-HEADER")
            ),
            Err(E::Incomplete(28))
        );
        assert_eq!(
            TextHeader::parse(
                b"#!AER-DAT3.1\r\n\x01\x02",
                "#!AER-DAT3.1",
                Some("#!END-HEADER")
            ),
            Err(E::NoEnd)
        );
        let mut long = b"#!AER-DAT2.0\r\n".to_vec();
        while long.len() <= MAX_HEADER {
            long.extend_from_slice(b"# padding padding padding\r\n");
        }
        assert_eq!(
            TextHeader::parse(&long, "#!AER-DAT2.0", None),
            Err(E::TooLong)
        );
    }
}

//! CSV time series: one row per time step, one numeric column per feature. A header row is
//! optional (a first row with no numeric field is taken as the header); ragged rows, non-numbers
//! and NaN/inf are rejected with their line number.

use std::path::Path;

use crate::array::Array2;
use crate::error::DataError;

/// Reads a CSV file into (time steps, features).
pub fn read(path: &Path) -> Result<Array2, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|e| e.in_file(path))
}

/// Parses CSV bytes.
pub fn parse(bytes: &[u8]) -> Result<Array2, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Ragged rows are ours to report, with the expected width.
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut cols: Option<usize> = None;
    let mut data = Vec::new();
    let mut rows = 0usize;
    let mut first = true;
    for record in reader.records() {
        let record = record.map_err(|e| DataError::Csv {
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue; // blank line
        }
        if first {
            first = false;
            if record.iter().all(|f| f.parse::<f64>().is_err()) {
                continue; // header
            }
        }
        let expected = *cols.get_or_insert(record.len());
        if record.len() != expected {
            return Err(DataError::CsvRagged {
                line,
                expected,
                found: record.len(),
            });
        }
        for (j, field) in record.iter().enumerate() {
            let v: f64 = field.parse().map_err(|_| DataError::CsvNotNumber {
                line,
                column: j + 1,
                field: clipped(field),
            })?;
            if !v.is_finite() {
                return Err(DataError::Csv {
                    line,
                    message: format!(
                        "column {}: non-finite value {:?}; NaN and inf are not allowed",
                        j + 1,
                        clipped(field)
                    ),
                });
            }
            data.push(v);
        }
        rows += 1;
    }
    let cols = cols.ok_or(DataError::Empty)?;
    Array2::new(rows, cols, data)
}

/// A field as quoted in an error message: at most 64 characters (then `…`), so a
/// multi-megabyte field cannot turn into a multi-megabyte message.
fn clipped(field: &str) -> String {
    const MAX: usize = 64;
    match field.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &field[..cut]),
        None => field.to_string(),
    }
}

/// Writes `a` as CSV (no header), with Rust's shortest round-trip float formatting.
pub fn to_string(a: &Array2) -> String {
    let mut out = String::new();
    for t in 0..a.rows() {
        push_row(&mut out, a.row(t));
    }
    out
}

/// Appends one CSV line of `row` to `out` (the format of `to_string`, for streamed output).
pub fn push_row(out: &mut String, row: &[f64]) {
    use std::fmt::Write;
    for (j, v) in row.iter().enumerate() {
        if j > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v:?}"); // writing to a String cannot fail
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_with_and_without_header() {
        let a = parse(b"u,y\n1,2\n3.5, -4e-1\n").unwrap();
        assert_eq!((a.rows(), a.cols()), (2, 2));
        assert_eq!(a.data(), &[1.0, 2.0, 3.5, -0.4]);
        let b = parse(b"1\n2\n\n3\n").unwrap();
        assert_eq!(b.data(), &[1.0, 2.0, 3.0]);
        let c = parse(to_string(&a).as_bytes()).unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn rejects_bad_csv_with_line_numbers() {
        let e = parse(b"1,2\n3,4\n5\n").unwrap_err();
        assert!(
            matches!(
                e,
                DataError::CsvRagged {
                    line: 3,
                    expected: 2,
                    found: 1
                }
            ),
            "{e}"
        );
        let e = parse(b"a,b\n1,2\n3,x\n").unwrap_err();
        assert!(
            matches!(
                e,
                DataError::CsvNotNumber {
                    line: 3,
                    column: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse(b"1,2\n3,NaN\n").unwrap_err();
        assert!(e.to_string().contains("line 2") && e.to_string().contains("non-finite"));
        let e = parse(b"1,inf\n").unwrap_err();
        assert!(e.to_string().contains("line 1, column 2") || e.to_string().contains("line 1"));
        assert!(matches!(parse(b""), Err(DataError::Empty)));
        assert!(matches!(parse(b"a,b\n"), Err(DataError::Empty)));
        // Truncated mid-quote.
        assert!(parse(b"1,2\n\"3,4\n").is_err());
        assert!(parse(&[0xff, 0xfe, b'\n']).is_err());
    }

    #[test]
    fn huge_fields_are_clipped_in_errors() {
        for field in ["9".repeat(400) + "e999999", "x".repeat(1_000_000)] {
            let text = format!("1,2\n3,{field}\n");
            let msg = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(msg.len() < 200, "{} bytes", msg.len());
            assert!(msg.contains('…') && msg.contains("line 2"), "{msg}");
        }
    }
}

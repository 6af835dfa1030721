//! Events as tables: NumPy structured `.npy` records (fields `t`, `x`, `y`, `p`, or faery's
//! `on`) and CSV rows `t,x,y,p`, read with the same streaming [`EventDecoder`] contract as
//! the camera formats so that `open` and `convert` treat every file alike.

use echos_core::events::{DecodeError, DvsEvent, EventDecoder, Progress, Stats, TriggerEvent};
use echos_npy::{RecordField, RecordLayout};

fn bounds(stats: &mut Stats, offset: u64) {
    stats.out_of_bounds += 1;
    if stats.first_out_of_bounds.is_none() {
        stats.first_out_of_bounds = Some(offset);
    }
}

/// Records of a structured `.npy` file (the bytes after its header).
#[derive(Debug)]
pub struct NpyEventDecoder {
    t: RecordField,
    x: RecordField,
    y: RecordField,
    p: RecordField,
    itemsize: usize,
    carry: Vec<u8>,
    offset: u64,
    last_t: Option<u64>,
    stats: Stats,
}

impl NpyEventDecoder {
    /// A decoder for records of `layout`; `None` names the field that is missing or not an
    /// integer.
    pub fn new(layout: &RecordLayout) -> Result<Self, String> {
        let field = |names: &[&str]| -> Result<RecordField, String> {
            let f = names
                .iter()
                .find_map(|n| layout.field(n))
                .ok_or_else(|| format!("the records have no field `{}`", names[0]))?;
            if !f.dtype.is_integer() {
                return Err(format!("field `{}` is not an integer", f.name));
            }
            Ok(f.clone())
        };
        Ok(Self {
            t: field(&["t"])?,
            x: field(&["x"])?,
            y: field(&["y"])?,
            p: field(&["p", "on", "polarity"])?,
            itemsize: layout.itemsize,
            carry: Vec::with_capacity(layout.itemsize),
            offset: 0,
            last_t: None,
            stats: Stats::default(),
        })
    }

    fn record(&mut self, r: &[u8], off: u64, out: &mut DvsEvent) -> Result<bool, DecodeError> {
        // the fields were checked to be integers and to lie inside the record
        let get = |f: &RecordField| f.int(r).unwrap_or(-1);
        let t = get(&self.t);
        let (x, y, p) = (get(&self.x), get(&self.y), get(&self.p));
        if !(0..=u64::MAX as i128).contains(&t) {
            return Err(DecodeError::Corrupt {
                offset: off,
                what: "a record's `t` is negative or beyond 64 bits",
            });
        }
        if !(0..=u16::MAX as i128).contains(&x) || !(0..=u16::MAX as i128).contains(&y) {
            bounds(&mut self.stats, off);
            return Ok(false);
        }
        let t = t as u64;
        if self.last_t.is_some_and(|l| t < l) {
            self.stats.time_jumps_back += 1;
            self.stats.first_time_jump_back.get_or_insert(off);
        }
        self.last_t = Some(t);
        *out = DvsEvent {
            t,
            x: x as u16,
            y: y as u16,
            p: (p != 0) as u8,
        };
        Ok(true)
    }
}

impl EventDecoder for NpyEventDecoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        _triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        let size = self.itemsize;
        let mut pos = 0;
        let mut n = 0;
        let mut full = false;
        while pos < input.len() {
            if n >= events.len() {
                full = true;
                break;
            }
            let off = self.offset + pos as u64 - self.carry.len() as u64;
            let mut e = DvsEvent::default();
            let kept = if self.carry.is_empty() && input.len() - pos >= size {
                let r = self.record(&input[pos..pos + size], off, &mut e);
                pos += size;
                r?
            } else {
                // a record cut by a chunk boundary: completed from the carried bytes
                let take = (size - self.carry.len()).min(input.len() - pos);
                self.carry.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                if self.carry.len() < size {
                    break;
                }
                let rec = std::mem::take(&mut self.carry);
                let r = self.record(&rec, off, &mut e);
                self.carry = rec;
                self.carry.clear();
                r?
            };
            if kept {
                events[n] = e;
                n += 1;
            }
        }
        self.offset += pos as u64;
        self.stats.bytes = self.offset;
        self.stats.events += n as u64;
        Ok(Progress {
            consumed: pos,
            events: n,
            triggers: 0,
            output_full: full,
        })
    }

    fn finish(&mut self) -> Result<Stats, DecodeError> {
        if !self.carry.is_empty() {
            return Err(DecodeError::Truncated {
                offset: self.offset - self.carry.len() as u64,
                have: self.carry.len(),
                record_len: self.itemsize,
            });
        }
        Ok(self.stats.clone())
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Longest CSV line accepted: four integers and separators fit in 80 bytes.
pub const MAX_CSV_LINE: usize = 256;

/// CSV rows `t,x,y,p` (an optional first line naming the columns, in any order).
#[derive(Debug, Default)]
pub struct CsvEventDecoder {
    line: Vec<u8>,
    /// Column of t, x, y, p once known (from the header line, else the default order).
    columns: Option<[usize; 4]>,
    line_no: u64,
    offset: u64,
    last_t: Option<u64>,
    stats: Stats,
}

fn csv_err(offset: u64, what: &'static str) -> DecodeError {
    DecodeError::Corrupt { offset, what }
}

impl CsvEventDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// One complete line (without its newline) starting at `off`.
    fn line(&mut self, off: u64) -> Result<Option<DvsEvent>, DecodeError> {
        let text = std::str::from_utf8(&self.line).map_err(|_| csv_err(off, "not UTF-8 text"))?;
        let text = text.trim_end_matches('\r').trim();
        self.line_no += 1;
        if text.is_empty() {
            return Ok(None);
        }
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if self.columns.is_none() {
            self.columns = Some([0, 1, 2, 3]);
            if fields
                .first()
                .is_some_and(|f| f.parse::<u64>().is_err() && !f.starts_with('-'))
            {
                let mut cols = [usize::MAX; 4];
                for (i, f) in fields.iter().enumerate() {
                    let k = match f.to_ascii_lowercase().as_str() {
                        "t" | "timestamp" => 0,
                        "x" => 1,
                        "y" => 2,
                        "p" | "on" | "polarity" => 3,
                        _ => continue,
                    };
                    cols[k] = i;
                }
                if cols.contains(&usize::MAX) {
                    return Err(csv_err(
                        off,
                        "the CSV header line does not name the columns t, x, y and p",
                    ));
                }
                self.columns = Some(cols);
                return Ok(None);
            }
        }
        let cols = self.columns.unwrap_or([0, 1, 2, 3]);
        let get = |k: usize| -> Result<u64, DecodeError> {
            fields
                .get(cols[k])
                .ok_or(csv_err(off, "a CSV row has fewer than 4 fields"))?
                .parse::<u64>()
                .map_err(|_| csv_err(off, "a CSV field is not a non-negative integer"))
        };
        let (t, x, y, p) = (get(0)?, get(1)?, get(2)?, get(3)?);
        if x > u16::MAX as u64 || y > u16::MAX as u64 {
            bounds(&mut self.stats, off);
            return Ok(None);
        }
        if p > 1 {
            return Err(csv_err(off, "a CSV polarity is not 0 or 1"));
        }
        if self.last_t.is_some_and(|l| t < l) {
            self.stats.time_jumps_back += 1;
            self.stats.first_time_jump_back.get_or_insert(off);
        }
        self.last_t = Some(t);
        Ok(Some(DvsEvent {
            t,
            x: x as u16,
            y: y as u16,
            p: p as u8,
        }))
    }
}

impl EventDecoder for CsvEventDecoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        _triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        let mut pos = 0;
        let mut n = 0;
        let mut full = false;
        let result = loop {
            if pos >= input.len() {
                break Ok(());
            }
            if n >= events.len() {
                full = true;
                break Ok(());
            }
            let rest = &input[pos..];
            let line_start = self.offset + pos as u64 - self.line.len() as u64;
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.line.len() + i > MAX_CSV_LINE {
                        break Err(csv_err(line_start, "a CSV line is longer than 256 bytes"));
                    }
                    self.line.extend_from_slice(&rest[..i]);
                    pos += i + 1;
                    let r = self.line(line_start);
                    self.line.clear();
                    match r {
                        Ok(Some(e)) => {
                            events[n] = e;
                            n += 1;
                        }
                        Ok(None) => {}
                        Err(e) => break Err(e),
                    }
                }
                None => {
                    if self.line.len() + rest.len() > MAX_CSV_LINE {
                        break Err(csv_err(line_start, "a CSV line is longer than 256 bytes"));
                    }
                    self.line.extend_from_slice(rest);
                    pos = input.len();
                }
            }
        };
        self.offset += pos as u64;
        self.stats.bytes = self.offset;
        self.stats.events += n as u64;
        result?;
        Ok(Progress {
            consumed: pos,
            events: n,
            triggers: 0,
            output_full: full,
        })
    }

    /// A last line without its newline is a cut row (the reader feeds a final newline
    /// itself, so only a stream that stops inside a row gets here).
    fn finish(&mut self) -> Result<Stats, DecodeError> {
        if !self.line.is_empty() {
            return Err(DecodeError::Truncated {
                offset: self.offset - self.line.len() as u64,
                have: self.line.len(),
                record_len: self.line.len() + 1,
            });
        }
        Ok(self.stats.clone())
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}

//! iniVation AEDAT 4.0 (the DV software's format): the file header (`#!AER-DAT4.0\r\n`, a
//! u32 length and an IOHeader FlatBuffer with the compression, the data-table position and an
//! XML description of each stream) and a streaming decoder of its packets (i32 stream id, u32
//! size, then a compressed, size-prefixed FlatBuffer: `EVTS` polarity events, `FRME` frames,
//! `IMUS` inertial samples, `TRIG` triggers).
//!
//! Choices (docs/events.md): event times are the file's absolute microseconds (as the DV
//! software, faery and `aedat` give them; `tsOffset` is reported, not subtracted); events come
//! from the lowest-numbered `EVTS` stream unless another is chosen; external-signal and
//! generator triggers become [`TriggerEvent`]s (channel 0 and 1, value 1 for a rising edge or a
//! pulse, 0 for a falling edge) and the other trigger kinds (timestamp reset, frame and exposure
//! markers) are counted; frames are counted per `FRME` packet without decompressing their
//! pixels; IMU samples are counted. Packets end at the header's data-table position; what
//! follows (the packet index) is read past.

use std::io::Read;

use echos_core::events::{DecodeError, DvsEvent, EventDecoder, Progress, Stats, TriggerEvent};

use super::flatbuf::{self, FbError};

/// The file's first bytes.
pub const MAGIC: &[u8; 14] = b"#!AER-DAT4.0\r\n";

/// A packet larger than this (compressed or decompressed) is refused: real packets are a few
/// kilobytes to a few megabytes (one frame), and a corrupt size must not make us buffer more.
pub const MAX_PACKET: usize = 256 << 20;

/// The IOHeader is a short XML text; refuse a length field beyond this.
pub const MAX_HEADER: usize = 16 << 20;

/// Packet compression named by the IOHeader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
    Lz4High,
    Zstd,
    ZstdHigh,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lz4 => "lz4",
            Self::Lz4High => "lz4-high",
            Self::Zstd => "zstd",
            Self::ZstdHigh => "zstd-high",
        }
    }

    fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Lz4,
            2 => Self::Lz4High,
            3 => Self::Zstd,
            4 => Self::ZstdHigh,
            _ => return None,
        })
    }
}

/// What a stream carries (its `typeIdentifier`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Events,
    Frames,
    Imus,
    Triggers,
    Other(String),
}

impl StreamKind {
    fn from_identifier(s: &str) -> Self {
        match s {
            "EVTS" => Self::Events,
            "FRME" => Self::Frames,
            "IMUS" => Self::Imus,
            "TRIG" => Self::Triggers,
            other => Self::Other(other.to_string()),
        }
    }

    /// The FlatBuffer file identifier of its packets.
    pub fn identifier(&self) -> &[u8] {
        match self {
            Self::Events => b"EVTS",
            Self::Frames => b"FRME",
            Self::Imus => b"IMUS",
            Self::Triggers => b"TRIG",
            Self::Other(s) => s.as_bytes(),
        }
    }
}

/// One stream of the description (`outInfo/<id>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    pub id: i32,
    pub kind: StreamKind,
    /// `info/sizeX`, `info/sizeY`.
    pub width: Option<u16>,
    pub height: Option<u16>,
    /// `info/source`: the camera (`DAVIS346_00000002`).
    pub source: Option<String>,
    /// `info/tsOffset`: the device's time origin in µs (reported; event times are absolute).
    pub ts_offset: Option<i64>,
    /// `originalOutputName` (`events`, `frames`, ...).
    pub name: Option<String>,
}

/// The parsed file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aedat4Header {
    /// Bytes of magic, length field and IOHeader: the packets start here.
    pub len: usize,
    pub compression: Compression,
    /// File offset of the packet index (the packets end there); `None` when the recorder did
    /// not write one (an interrupted recording).
    pub data_table_position: Option<u64>,
    pub streams: Vec<StreamInfo>,
    /// The XML description as written.
    pub description: String,
}

/// Why an AEDAT 4 header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Aedat4HeaderError {
    #[error("not an AEDAT 4.0 file: it does not start with \"#!AER-DAT4.0\\r\\n\"")]
    Magic,
    #[error("the AEDAT 4 header needs {needed} bytes, the file has {have}")]
    Incomplete { needed: usize, have: usize },
    #[error(
        "the AEDAT 4 IOHeader claims {len} bytes (more than {MAX_HEADER}); the file is corrupt"
    )]
    TooLong { len: usize },
    #[error("AEDAT 4 IOHeader: bad {} at byte {}", .0.what, .0.at + 18)]
    FlatBuffer(FbError),
    #[error("AEDAT 4 IOHeader: unknown compression {0} (known: 0 none, 1 LZ4, 2 LZ4 high, 3 Zstd, 4 Zstd high)")]
    Compression(i32),
    #[error("AEDAT 4 IOHeader: data-table position {0} lies inside the header")]
    DataTable(i64),
    #[error("AEDAT 4 description: {0}")]
    Description(String),
}

impl Aedat4Header {
    /// Parse the header at the start of `bytes` (the file, or at least its header).
    pub fn parse(bytes: &[u8]) -> Result<Self, Aedat4HeaderError> {
        if !bytes.starts_with(MAGIC) {
            if MAGIC.starts_with(bytes) {
                return Err(Aedat4HeaderError::Incomplete {
                    needed: MAGIC.len() + 4,
                    have: bytes.len(),
                });
            }
            return Err(Aedat4HeaderError::Magic);
        }
        let lf = MAGIC.len();
        let Some(n) = bytes.get(lf..lf + 4) else {
            return Err(Aedat4HeaderError::Incomplete {
                needed: lf + 4,
                have: bytes.len(),
            });
        };
        let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
        if n > MAX_HEADER {
            return Err(Aedat4HeaderError::TooLong { len: n });
        }
        let start = lf + 4;
        let len = start + n;
        let Some(io) = bytes.get(start..len) else {
            return Err(Aedat4HeaderError::Incomplete {
                needed: len,
                have: bytes.len(),
            });
        };
        let t = flatbuf::root(io, Some(b"IOHE"), false).map_err(Aedat4HeaderError::FlatBuffer)?;
        let fb = Aedat4HeaderError::FlatBuffer;
        let c = t.i32(0, 0, "compression").map_err(fb)?;
        let compression = Compression::from_i32(c).ok_or(Aedat4HeaderError::Compression(c))?;
        let dtp = t.i64(1, -1, "dataTablePosition").map_err(fb)?;
        let data_table_position = match dtp {
            -1 => None,
            p if p >= len as i64 => Some(p as u64),
            p => return Err(Aedat4HeaderError::DataTable(p)),
        };
        let description = t.str(2, "infoNode").map_err(fb)?.unwrap_or("").to_string();
        let streams = parse_description(&description)?;
        Ok(Self {
            len,
            compression,
            data_table_position,
            streams,
            description,
        })
    }

    /// The stream events are read from: the lowest-numbered `EVTS` stream.
    pub fn event_stream(&self) -> Option<&StreamInfo> {
        self.streams
            .iter()
            .filter(|s| s.kind == StreamKind::Events)
            .min_by_key(|s| s.id)
    }
}

/// The streams of `<dv><node name="outInfo"><node name="ID">…`; the stream's attributes are
/// `<attr key=… type=…>value</attr>`, its sensor size and source in a child `info` node.
fn parse_description(xml: &str) -> Result<Vec<StreamInfo>, Aedat4HeaderError> {
    let bad = |m: String| Aedat4HeaderError::Description(m);
    if xml.trim().is_empty() {
        return Err(bad("the IOHeader carries no stream description".into()));
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| bad(format!("not valid XML: {e}")))?;
    let out = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("node") && n.attribute("name") == Some("outInfo"))
        .ok_or_else(|| bad("no `outInfo` node".into()))?;
    let attr = |node: roxmltree::Node, key: &str| -> Option<String> {
        node.children()
            .find(|n| n.has_tag_name("attr") && n.attribute("key") == Some(key))
            .map(|n| n.text().unwrap_or("").trim().to_string())
    };
    let mut streams: Vec<StreamInfo> = Vec::new();
    for node in out.children().filter(|n| n.has_tag_name("node")) {
        let name = node.attribute("name").unwrap_or("");
        let id: i32 = name
            .parse()
            .map_err(|_| bad(format!("stream node name {name:?} is not a stream id")))?;
        if streams.iter().any(|s| s.id == id) {
            return Err(bad(format!("stream {id} is described twice")));
        }
        let ident = attr(node, "typeIdentifier")
            .ok_or_else(|| bad(format!("stream {id} has no typeIdentifier")))?;
        let info = node
            .children()
            .find(|n| n.has_tag_name("node") && n.attribute("name") == Some("info"));
        let size = |key: &str| -> Result<Option<u16>, Aedat4HeaderError> {
            match info.and_then(|i| attr(i, key)) {
                None => Ok(None),
                Some(v) => match v.parse::<u16>() {
                    Ok(s) if s > 0 && s <= i16::MAX as u16 => Ok(Some(s)),
                    _ => Err(bad(format!(
                        "stream {id}: {key} {v:?} is not a sensor size"
                    ))),
                },
            }
        };
        let ts_offset = match info.and_then(|i| attr(i, "tsOffset")) {
            None => None,
            Some(v) => Some(
                v.parse::<i64>()
                    .map_err(|_| bad(format!("stream {id}: tsOffset {v:?} is not a number")))?,
            ),
        };
        streams.push(StreamInfo {
            id,
            kind: StreamKind::from_identifier(&ident),
            width: size("sizeX")?,
            height: size("sizeY")?,
            source: info.and_then(|i| attr(i, "source")),
            ts_offset,
            name: attr(node, "originalOutputName"),
        });
    }
    if streams.is_empty() {
        return Err(bad("no stream is described".into()));
    }
    Ok(streams)
}

/// What an AEDAT 4 stream held besides polarity events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aedat4Counts {
    pub packets: u64,
    pub event_packets: u64,
    /// Frames (one per `FRME` packet).
    pub frames: u64,
    pub imu_samples: u64,
    /// Trigger elements of every kind (external ones are also decoded as triggers).
    pub trigger_records: u64,
    /// Packets of streams the description does not name, or of kinds this reader does not
    /// read (and of `EVTS` streams other than the chosen one).
    pub skipped_packets: u64,
    /// Bytes after the data-table position (the packet index), read past.
    pub data_table_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Events,
    Imus,
    Triggers,
    /// Counted (frames) or skipped without decompressing.
    Frame,
    Skip,
}

/// Where the decoder is in the packet stream.
#[derive(Clone, Copy, Debug)]
enum State {
    Head,
    /// Buffering a packet body of `size` bytes.
    Body {
        size: usize,
        action: Action,
    },
    /// Passing over a body of which `left` bytes remain.
    Skip {
        left: u64,
    },
    /// After the data-table position.
    Tail,
}

/// The decoded packet whose elements are being handed out.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    action: Action,
    /// Position of the element vector in `packet` (after the size prefix) and its length.
    start: usize,
    len: usize,
    next: usize,
    /// File-independent offset (decoder input) of the packet, for errors.
    offset: u64,
}

/// Streaming AEDAT 4 packet decoder ([`EventDecoder`]): fed the bytes after the header, it
/// buffers one packet at a time (never more than its size field, capped at [`MAX_PACKET`] and
/// at the bytes that actually arrive), decompresses it and hands out its events.
#[derive(Debug)]
pub struct Aedat4Decoder {
    compression: Compression,
    streams: Vec<(i32, Action)>,
    /// Sensor size of the chosen event stream (events outside it are dropped and counted).
    event_size: (u16, u16),
    /// End of the packets relative to the decoder's input (data-table position − header).
    packets_end: Option<u64>,
    /// Bytes of input there will be, when known: a packet claiming more is an error at once.
    input_len: Option<u64>,
    offset: u64,
    state: State,
    head: [u8; 8],
    head_len: usize,
    packet_offset: u64,
    body: Vec<u8>,
    packet: Vec<u8>,
    cursor: Option<Cursor>,
    last_t: Option<u64>,
    stats: Stats,
    counts: Aedat4Counts,
}

impl Aedat4Decoder {
    /// A decoder for the packets of the file whose header is `header`, reading events from
    /// `event_stream` (`None`: [`Aedat4Header::event_stream`]).
    pub fn new(header: &Aedat4Header, event_stream: Option<i32>) -> Self {
        let chosen = event_stream.or_else(|| header.event_stream().map(|s| s.id));
        let streams = header
            .streams
            .iter()
            .map(|s| {
                let action = match s.kind {
                    StreamKind::Events if Some(s.id) == chosen => Action::Events,
                    StreamKind::Imus => Action::Imus,
                    StreamKind::Triggers => Action::Triggers,
                    StreamKind::Frames => Action::Frame,
                    _ => Action::Skip,
                };
                (s.id, action)
            })
            .collect();
        // a stream without a declared size accepts every non-negative i16 coordinate
        let chosen_info = header.streams.iter().find(|s| Some(s.id) == chosen);
        let event_size = (
            chosen_info.and_then(|s| s.width).unwrap_or(u16::MAX),
            chosen_info.and_then(|s| s.height).unwrap_or(u16::MAX),
        );
        Self {
            compression: header.compression,
            streams,
            event_size,
            packets_end: header
                .data_table_position
                .map(|p| p.saturating_sub(header.len as u64)),
            input_len: None,
            offset: 0,
            state: State::Head,
            head: [0; 8],
            head_len: 0,
            packet_offset: 0,
            body: Vec::new(),
            packet: Vec::new(),
            cursor: None,
            last_t: None,
            stats: Stats::default(),
            counts: Aedat4Counts::default(),
        }
    }

    /// The decoder's input will be `len` bytes (the file minus its header): a packet whose size
    /// runs past it is refused before anything is buffered.
    pub fn with_input_len(mut self, len: u64) -> Self {
        self.input_len = Some(len);
        self
    }

    pub fn counts(&self) -> &Aedat4Counts {
        &self.counts
    }

    fn action(&self, id: i32) -> Action {
        self.streams
            .iter()
            .find(|s| s.0 == id)
            .map_or(Action::Skip, |&(_, a)| a)
    }

    /// Decompress the buffered body into `packet` and point the cursor at its elements.
    fn open_packet(&mut self, action: Action) -> Result<(), DecodeError> {
        let at = self.packet_offset;
        let corrupt = |what| DecodeError::Corrupt { offset: at, what };
        self.packet.clear();
        let body = std::mem::take(&mut self.body);
        let result = decompress(self.compression, &body, &mut self.packet);
        self.body = body;
        self.body.clear();
        result.map_err(corrupt)?;
        let (ident, elem): (&[u8; 4], usize) = match action {
            Action::Events => (b"EVTS", 16),
            Action::Imus => (b"IMUS", 4),
            Action::Triggers => (b"TRIG", 4),
            Action::Frame | Action::Skip => return Ok(()),
        };
        let fb_err = |e: FbError| corrupt(e.what);
        let t = flatbuf::root(&self.packet, Some(ident), true).map_err(fb_err)?;
        let (start, len) = t
            .vector(0, elem, "packet element vector")
            .map_err(fb_err)?
            .unwrap_or((0, 0));
        // vector positions are relative to the buffer after the 4-byte size prefix
        self.cursor = Some(Cursor {
            action,
            start: start + 4,
            len,
            next: 0,
            offset: at,
        });
        Ok(())
    }

    /// Hand out the current packet's elements; `false` when an output buffer filled first.
    fn drain(
        &mut self,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> Result<bool, DecodeError> {
        let Some(mut c) = self.cursor else {
            return Ok(true);
        };
        let corrupt = |what| DecodeError::Corrupt {
            offset: c.offset,
            what,
        };
        match c.action {
            Action::Events => {
                let (w, h) = self.event_size;
                let base = c.start + 16 * c.next;
                // the vector was checked to lie inside the packet: these slices exist
                let elems = &self.packet[base..c.start + 16 * c.len];
                // elements are taken until the output is full: dropped (out-of-bounds) ones
                // take no room, so a call never reports a full buffer it did not fill
                let mut took = 0;
                for (k, e) in elems.chunks_exact(16).enumerate() {
                    if *n == events.len() {
                        break;
                    }
                    took += 1;
                    let t = i64::from_le_bytes(e[0..8].try_into().unwrap_or([0; 8]));
                    let x = i16::from_le_bytes([e[8], e[9]]);
                    let y = i16::from_le_bytes([e[10], e[11]]);
                    if t < 0 {
                        return Err(corrupt("an event has a negative timestamp"));
                    }
                    let t = t as u64;
                    if x < 0 || y < 0 || x as u16 >= w || y as u16 >= h {
                        self.stats.out_of_bounds += 1;
                        if self.stats.first_out_of_bounds.is_none() {
                            self.stats.first_out_of_bounds =
                                Some(c.offset + (base + 16 * k) as u64);
                        }
                        continue;
                    }
                    if self.last_t.is_some_and(|l| t < l) {
                        self.stats.time_jumps_back += 1;
                        if self.stats.first_time_jump_back.is_none() {
                            self.stats.first_time_jump_back = Some(c.offset);
                        }
                    }
                    self.last_t = Some(t);
                    events[*n] = DvsEvent {
                        t,
                        x: x as u16,
                        y: y as u16,
                        p: (e[12] != 0) as u8,
                    };
                    *n += 1;
                }
                c.next += took;
            }
            Action::Triggers => {
                let t = flatbuf::root(&self.packet, None, true).map_err(|e| corrupt(e.what))?;
                while c.next < c.len {
                    let e = t
                        .table_in_vector(c.start - 4, c.next, "trigger")
                        .map_err(|e| corrupt(e.what))?;
                    let ts = e.i64(0, 0, "trigger time").map_err(|e| corrupt(e.what))?;
                    let source = e.i8(1, 0, "trigger source").map_err(|e| corrupt(e.what))?;
                    let external = match source {
                        1 => Some((0, 1)),
                        2 => Some((0, 0)),
                        3 => Some((0, 1)),
                        4 => Some((1, 1)),
                        5 => Some((1, 0)),
                        _ => None,
                    };
                    if let Some((channel, value)) = external {
                        if *nt >= triggers.len() {
                            break;
                        }
                        if ts < 0 {
                            return Err(corrupt("a trigger has a negative timestamp"));
                        }
                        triggers[*nt] = TriggerEvent {
                            t: ts as u64,
                            channel,
                            value,
                        };
                        *nt += 1;
                    } else {
                        self.stats.other_records += 1;
                    }
                    self.counts.trigger_records += 1;
                    c.next += 1;
                }
            }
            Action::Imus => {
                self.counts.imu_samples += c.len as u64;
                self.stats.other_records += c.len as u64;
                c.next = c.len;
            }
            Action::Frame | Action::Skip => c.next = c.len,
        }
        if c.next >= c.len {
            self.cursor = None;
            Ok(true)
        } else {
            self.cursor = Some(c);
            Ok(false)
        }
    }

    /// A complete packet header at `self.packet_offset`: validate its size and choose what to
    /// do with the body.
    fn start_packet(&mut self) -> Result<State, DecodeError> {
        let id = i32::from_le_bytes([self.head[0], self.head[1], self.head[2], self.head[3]]);
        let size = u32::from_le_bytes([self.head[4], self.head[5], self.head[6], self.head[7]]);
        let at = self.packet_offset;
        let size = size as u64;
        let end = at + 8 + size;
        if let Some(len) = self.input_len {
            if end > len {
                return Err(DecodeError::Truncated {
                    offset: at,
                    have: (len - at) as usize,
                    record_len: (8 + size) as usize,
                });
            }
        }
        if self.packets_end.is_some_and(|p| end > p) {
            return Err(DecodeError::Corrupt {
                offset: at,
                what: "a packet runs past the data-table position",
            });
        }
        self.counts.packets += 1;
        let action = self.action(id);
        match action {
            Action::Skip => {
                self.counts.skipped_packets += 1;
                return Ok(State::Skip { left: size });
            }
            Action::Frame => {
                self.counts.frames += 1;
                self.stats.other_records += 1;
                return Ok(State::Skip { left: size });
            }
            Action::Events => self.counts.event_packets += 1,
            Action::Imus | Action::Triggers => {}
        }
        if size as usize > MAX_PACKET {
            return Err(DecodeError::Corrupt {
                offset: at,
                what: "a packet's size exceeds 256 MiB",
            });
        }
        Ok(State::Body {
            size: size as usize,
            action,
        })
    }
}

/// Decompress one packet body into `out`, at most [`MAX_PACKET`] bytes.
fn decompress(c: Compression, body: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let limit = MAX_PACKET as u64 + 1;
    match c {
        Compression::None => out.extend_from_slice(body),
        Compression::Lz4 | Compression::Lz4High => {
            lz4_flex::frame::FrameDecoder::new(body)
                .take(limit)
                .read_to_end(out)
                .map_err(|_| "the packet's LZ4 frame is corrupt")?;
        }
        Compression::Zstd | Compression::ZstdHigh => {
            // a body may hold several frames one after the other
            let mut rest = body;
            while !rest.is_empty() {
                let mut d = ruzstd::decoding::StreamingDecoder::new(&mut rest)
                    .map_err(|_| "the packet's Zstd frame header is corrupt")?;
                let left = limit.saturating_sub(out.len() as u64);
                (&mut d)
                    .take(left)
                    .read_to_end(out)
                    .map_err(|_| "the packet's Zstd frame is corrupt")?;
                if out.len() as u64 >= limit {
                    break;
                }
            }
        }
    }
    if out.len() > MAX_PACKET {
        return Err("a packet decompresses to more than 256 MiB");
    }
    Ok(())
}

impl EventDecoder for Aedat4Decoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        let mut n = 0;
        let mut nt = 0;
        let mut pos = 0;
        let mut full = false;
        let result = (|| -> Result<(), DecodeError> {
            loop {
                if !self.drain(events, &mut n, triggers, &mut nt)? {
                    full = true;
                    return Ok(());
                }
                let here = self.offset + pos as u64;
                if matches!(self.state, State::Head)
                    && self.head_len == 0
                    && self.packets_end.is_some_and(|p| here >= p)
                {
                    self.state = State::Tail;
                }
                let rest = &input[pos..];
                match self.state {
                    State::Tail => {
                        self.counts.data_table_bytes += rest.len() as u64;
                        pos = input.len();
                        return Ok(());
                    }
                    _ if rest.is_empty() => return Ok(()),
                    State::Head => {
                        if self.head_len == 0 {
                            self.packet_offset = here;
                        }
                        let take = (8 - self.head_len).min(rest.len());
                        self.head[self.head_len..self.head_len + take]
                            .copy_from_slice(&rest[..take]);
                        self.head_len += take;
                        pos += take;
                        if self.head_len == 8 {
                            self.head_len = 0;
                            self.state = self.start_packet()?;
                        }
                    }
                    State::Skip { left } => {
                        let take = left.min(rest.len() as u64);
                        pos += take as usize;
                        self.state = if take == left {
                            State::Head
                        } else {
                            State::Skip { left: left - take }
                        };
                    }
                    State::Body { size, action } => {
                        let take = (size - self.body.len()).min(rest.len());
                        self.body.extend_from_slice(&rest[..take]);
                        pos += take;
                        if self.body.len() == size {
                            self.state = State::Head;
                            self.open_packet(action)?;
                        }
                    }
                }
            }
        })();
        self.offset += pos as u64;
        self.stats.bytes = self.offset;
        self.stats.events += n as u64;
        self.stats.triggers += nt as u64;
        result?;
        Ok(Progress {
            consumed: pos,
            events: n,
            triggers: nt,
            output_full: full,
        })
    }

    fn finish(&mut self) -> Result<Stats, DecodeError> {
        if let Some(c) = self.cursor {
            return Err(DecodeError::PendingOutput {
                events: c.len - c.next,
            });
        }
        match self.state {
            State::Head if self.head_len > 0 => Err(DecodeError::Truncated {
                offset: self.packet_offset,
                have: self.head_len,
                record_len: 8,
            }),
            State::Body { size, .. } => Err(DecodeError::Truncated {
                offset: self.packet_offset,
                have: 8 + self.body.len(),
                record_len: 8 + size,
            }),
            State::Skip { left } => Err(DecodeError::Truncated {
                offset: self.packet_offset,
                have: (self.offset - self.packet_offset) as usize,
                record_len: (self.offset - self.packet_offset + left) as usize,
            }),
            _ => Ok(self.stats.clone()),
        }
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}

#[cfg(test)]
pub(crate) mod testfile {
    //! Small AEDAT 4 files made from the format's description (no shared sample has Zstd,
    //! external triggers or unknown streams): header, packets and their FlatBuffers.
    use super::super::flatbuf::build::{buffer, size_prefixed, Field};
    use std::io::Write;

    /// Streams 0 events (8 × 4 sensor), 1 frames, 2 IMU, 3 triggers.
    pub const XML: &str = r#"<dv version="2.0"><node name="outInfo" path="/o/">
<node name="0" path="/o/0/"><attr key="typeIdentifier" type="string">EVTS</attr><attr key="originalOutputName" type="string">events</attr>
<node name="info" path="/o/0/info/"><attr key="sizeX" type="int">8</attr><attr key="sizeY" type="int">4</attr><attr key="source" type="string">TEST_1</attr><attr key="tsOffset" type="long">1000</attr></node></node>
<node name="1" path="/o/1/"><attr key="typeIdentifier" type="string">FRME</attr></node>
<node name="2" path="/o/2/"><attr key="typeIdentifier" type="string">IMUS</attr></node>
<node name="3" path="/o/3/"><attr key="typeIdentifier" type="string">TRIG</attr></node>
</node></dv>"#;

    pub fn header(compression: i32, data_table: Option<i64>, xml: &str) -> Vec<u8> {
        let mut fields = vec![Some(Field::I32(compression))];
        fields.push(data_table.map(Field::I64));
        fields.push(Some(Field::Bytes(xml.as_bytes().to_vec(), 1)));
        let io = buffer(Some(b"IOHE"), &fields);
        let mut out = super::MAGIC.to_vec();
        out.extend_from_slice(&(io.len() as u32).to_le_bytes());
        out.extend_from_slice(&io);
        out
    }

    pub fn compress(compression: i32, data: &[u8]) -> Vec<u8> {
        match compression {
            0 => data.to_vec(),
            1 | 2 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            _ => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
        }
    }

    pub fn packet(stream: i32, compression: i32, payload: &[u8]) -> Vec<u8> {
        let body = compress(compression, payload);
        let mut out = stream.to_le_bytes().to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    pub fn events(ev: &[(i64, i16, i16, bool)]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(t, x, y, on) in ev {
            v.extend_from_slice(&t.to_le_bytes());
            v.extend_from_slice(&x.to_le_bytes());
            v.extend_from_slice(&y.to_le_bytes());
            v.extend_from_slice(&[on as u8, 0, 0, 0]);
        }
        size_prefixed(b"EVTS", &[Some(Field::Bytes(v, 16))])
    }

    pub fn triggers(tr: &[(i64, i8)]) -> Vec<u8> {
        let tables = tr
            .iter()
            .map(|&(t, s)| vec![Some(Field::I64(t)), Some(Field::I8(s))])
            .collect();
        size_prefixed(b"TRIG", &[Some(Field::Tables(tables))])
    }

    pub fn imus(n: usize) -> Vec<u8> {
        let tables = (0..n)
            .map(|i| vec![Some(Field::I64(i as i64)), Some(Field::I32(0))])
            .collect();
        size_prefixed(b"IMUS", &[Some(Field::Tables(tables))])
    }
}

#[cfg(test)]
mod tests {
    use super::testfile::*;
    use super::*;

    /// Decode `payload` (the bytes after the header) in chunks of `chunk` bytes with output
    /// buffers of `cap` events.
    fn decode(
        d: &mut Aedat4Decoder,
        payload: &[u8],
        chunk: usize,
        cap: usize,
    ) -> Result<(Vec<DvsEvent>, Vec<TriggerEvent>, Stats), DecodeError> {
        let mut ev = vec![DvsEvent::default(); cap];
        let mut tr = vec![TriggerEvent::default(); cap];
        let (mut events, mut triggers) = (Vec::new(), Vec::new());
        let mut rest = payload;
        loop {
            let n = chunk.min(rest.len());
            let p = d.decode(&rest[..n], &mut ev, &mut tr)?;
            events.extend_from_slice(&ev[..p.events]);
            triggers.extend_from_slice(&tr[..p.triggers]);
            rest = &rest[p.consumed..];
            if rest.is_empty() && !p.output_full {
                break;
            }
        }
        Ok((events, triggers, d.finish()?))
    }

    fn sample(compression: i32, with_table: bool) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(packet(
            0,
            compression,
            &events(&[
                (10, 0, 0, true),
                (11, 7, 3, false),
                (11, 8, 0, true),
                (12, -1, 2, true),
            ]),
        ));
        body.extend(packet(1, compression, &[0x55; 300]));
        body.extend(packet(
            3,
            compression,
            &triggers(&[(12, 1), (13, 6), (14, 5), (15, 0)]),
        ));
        body.extend(packet(2, compression, &imus(3)));
        body.extend(packet(9, compression, &[1, 2, 3]));
        body.extend(packet(
            0,
            compression,
            &events(&[(20, 1, 1, false), (19, 2, 2, true)]),
        ));
        let probe = header(compression, Some(0), XML);
        let table = probe.len() + body.len();
        let position = if with_table { table as i64 } else { -1 };
        let mut file = header(compression, Some(position), XML);
        assert_eq!(
            file.len(),
            probe.len(),
            "header size does not depend on the position"
        );
        file.extend(body);
        if with_table {
            file.extend(compress(compression, b"the packet index"));
        }
        file
    }

    fn expected() -> Vec<DvsEvent> {
        vec![
            DvsEvent::new(10, 0, 0, 1),
            DvsEvent::new(11, 7, 3, 0),
            DvsEvent::new(20, 1, 1, 0),
            DvsEvent::new(19, 2, 2, 1),
        ]
    }

    #[test]
    fn every_compression_and_chunking_decodes_the_same_stream() {
        for compression in [0, 1, 2, 3, 4] {
            for with_table in [false, true] {
                let file = sample(compression, with_table);
                let h = Aedat4Header::parse(&file).unwrap();
                assert_eq!(h.compression, Compression::from_i32(compression).unwrap());
                assert_eq!(h.streams.len(), 4);
                assert_eq!(h.event_stream().unwrap().width, Some(8));
                assert_eq!(h.streams[0].ts_offset, Some(1000));
                let payload = &file[h.len..];
                for (chunk, cap) in [(payload.len(), 1000), (1, 1), (7, 2), (64, 3)] {
                    let mut d = Aedat4Decoder::new(&h, None).with_input_len(payload.len() as u64);
                    let (ev, tr, stats) = decode(&mut d, payload, chunk, cap).unwrap();
                    let what =
                        format!("compression {compression}, table {with_table}, chunk {chunk}");
                    assert_eq!(ev, expected(), "{what}");
                    assert_eq!(
                        tr,
                        vec![
                            TriggerEvent {
                                t: 12,
                                channel: 0,
                                value: 1
                            },
                            TriggerEvent {
                                t: 14,
                                channel: 1,
                                value: 0
                            },
                        ],
                        "{what}"
                    );
                    // (8, 0) and (-1, 2) lie outside the 8 x 4 sensor; 19 follows 20
                    assert_eq!(stats.out_of_bounds, 2, "{what}");
                    assert_eq!(stats.time_jumps_back, 1, "{what}");
                    assert_eq!((stats.events, stats.triggers), (4, 2));
                    let c = d.counts();
                    assert_eq!(
                        (c.packets, c.event_packets, c.frames, c.imu_samples),
                        (6, 2, 1, 3),
                        "{what}"
                    );
                    assert_eq!((c.trigger_records, c.skipped_packets), (4, 1));
                    assert_eq!(c.data_table_bytes > 0, with_table, "{what}");
                    assert_eq!(stats.other_records, 1 + 3 + 2);
                }
            }
        }
    }

    #[test]
    fn another_event_stream_can_be_chosen() {
        let xml = XML.replace(">IMUS<", ">EVTS<");
        let mut file = header(0, None, &xml);
        let h0 = Aedat4Header::parse(&file).unwrap();
        file.extend(packet(0, 0, &events(&[(1, 1, 1, true)])));
        file.extend(packet(2, 0, &events(&[(5, 2, 2, false)])));
        let payload = &file[h0.len..];
        let mut d = Aedat4Decoder::new(&h0, None);
        assert_eq!(
            decode(&mut d, payload, 99, 9).unwrap().0,
            vec![DvsEvent::new(1, 1, 1, 1)]
        );
        assert_eq!(d.counts().skipped_packets, 1);
        let mut d = Aedat4Decoder::new(&h0, Some(2));
        assert_eq!(
            decode(&mut d, payload, 99, 9).unwrap().0,
            vec![DvsEvent::new(5, 2, 2, 0)]
        );
    }

    fn corrupt_at(file: &[u8], with_len: bool) -> DecodeError {
        let h = Aedat4Header::parse(file).unwrap();
        let payload = &file[h.len..];
        let mut d = Aedat4Decoder::new(&h, None);
        if with_len {
            d = d.with_input_len(payload.len() as u64);
        }
        decode(&mut d, payload, 5, 4).unwrap_err()
    }

    #[test]
    fn damaged_packets_are_errors_that_name_their_offset() {
        let good = sample(1, false);
        let h = Aedat4Header::parse(&good).unwrap();
        let n = good.len() - h.len;
        // cut inside the last packet's header and inside its body
        for cut in [n - 1, n - 3] {
            let e = corrupt_at(&good[..h.len + cut], false);
            assert!(matches!(e, DecodeError::Truncated { .. }), "{e:?}");
        }
        let e = corrupt_at(&good[..h.len + 4], false);
        assert_eq!(
            e,
            DecodeError::Truncated {
                offset: 0,
                have: 4,
                record_len: 8
            }
        );
        // a size running past the end: refused at the packet header when the length is known
        let mut past = good.clone();
        past[h.len + 4..h.len + 8].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert_eq!(
            corrupt_at(&past, true),
            DecodeError::Truncated {
                offset: 0,
                have: n,
                record_len: 1_000_008
            }
        );
        assert!(matches!(
            corrupt_at(&past, false),
            DecodeError::Truncated { offset: 0, .. }
        ));
        // an absurd size without a known length: refused before buffering
        past[h.len + 4..h.len + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            corrupt_at(&past, false),
            DecodeError::Corrupt {
                offset: 0,
                what: "a packet's size exceeds 256 MiB"
            }
        );
        // a corrupt LZ4 frame in the first packet
        let mut bad = good.clone();
        bad[h.len + 8..h.len + 12].copy_from_slice(b"XXXX");
        assert_eq!(
            corrupt_at(&bad, true),
            DecodeError::Corrupt {
                offset: 0,
                what: "the packet's LZ4 frame is corrupt"
            }
        );
        // a corrupt Zstd frame
        let zgood = sample(3, false);
        let hz = Aedat4Header::parse(&zgood).unwrap();
        let mut zbad = zgood.clone();
        zbad[hz.len + 8] ^= 0xFF;
        assert!(matches!(
            corrupt_at(&zbad, true),
            DecodeError::Corrupt { offset: 0, what } if what.contains("Zstd")
        ));
        // an events packet whose FlatBuffer says it is something else
        let mut file = header(0, None, XML);
        let hl = file.len();
        file.extend(packet(0, 0, &imus(1)));
        assert_eq!(
            corrupt_at(&file, true),
            DecodeError::Corrupt {
                offset: 0,
                what: "file identifier"
            }
        );
        // a negative timestamp, in the second packet
        file.truncate(hl);
        file.extend(packet(0, 0, &events(&[(1, 0, 0, true)])));
        let second = (file.len() - hl) as u64;
        file.extend(packet(0, 0, &events(&[(-5, 0, 0, true)])));
        assert_eq!(
            corrupt_at(&file, true),
            DecodeError::Corrupt {
                offset: second,
                what: "an event has a negative timestamp"
            }
        );
        // a packet that runs past the declared data table
        let mut t = sample(0, true);
        let ht = Aedat4Header::parse(&t).unwrap();
        let pos = ht.data_table_position.unwrap() as usize;
        // move the table 3 bytes earlier: the last packet now crosses it
        let io = header(0, Some(pos as i64 - 3), XML);
        t[..io.len()].copy_from_slice(&io);
        assert!(matches!(
            corrupt_at(&t, true),
            DecodeError::Corrupt {
                what: "a packet runs past the data-table position",
                ..
            }
        ));
    }

    #[test]
    fn damaged_headers_are_errors() {
        use Aedat4HeaderError as E;
        assert_eq!(Aedat4Header::parse(b"#!AER-DAT3.1\r\n"), Err(E::Magic));
        assert!(matches!(
            Aedat4Header::parse(b"#!AER-DA"),
            Err(E::Incomplete { .. })
        ));
        let good = header(1, None, XML);
        assert!(matches!(
            Aedat4Header::parse(&good[..good.len() - 1]),
            Err(E::Incomplete { .. })
        ));
        let mut long = good.clone();
        long[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Aedat4Header::parse(&long), Err(E::TooLong { .. })));
        assert_eq!(
            Aedat4Header::parse(&header(7, None, XML)),
            Err(E::Compression(7))
        );
        assert_eq!(
            Aedat4Header::parse(&header(0, Some(3), XML)),
            Err(E::DataTable(3))
        );
        for (xml, what) in [
            ("", "no stream description"),
            ("<dv><node", "not valid XML"),
            ("<dv></dv>", "no `outInfo`"),
            ("<dv><node name=\"outInfo\"></node></dv>", "no stream"),
            (
                "<dv><node name=\"outInfo\"><node name=\"x\"></node></node></dv>",
                "not a stream id",
            ),
            (
                "<dv><node name=\"outInfo\"><node name=\"0\"></node></node></dv>",
                "no typeIdentifier",
            ),
        ] {
            match Aedat4Header::parse(&header(0, None, xml)) {
                Err(E::Description(m)) => assert!(m.contains(what), "{xml}: {m}"),
                other => panic!("{xml}: {other:?}"),
            }
        }
        let bad_size = XML.replace(">346<", ">0<").replace(">8<", ">-3<");
        assert!(matches!(
            Aedat4Header::parse(&header(0, None, &bad_size)),
            Err(E::Description(m)) if m.contains("sizeX")
        ));
        let mut bad_fb = good.clone();
        bad_fb[18] = 0xF0; // root offset past the end
        assert!(matches!(
            Aedat4Header::parse(&bad_fb),
            Err(E::FlatBuffer(_))
        ));
    }

    /// Every single-byte change and every cut of a small LZ4 file decodes or fails with an
    /// error: no panic, no hang.
    #[test]
    fn mutated_files_never_panic() {
        for compression in [0, 1, 3] {
            let good = sample(compression, true);
            let h = Aedat4Header::parse(&good).unwrap();
            for i in 0..good.len() {
                for v in [0x00u8, 0xFF, good[i] ^ 0x01] {
                    let mut b = good.clone();
                    b[i] = v;
                    if let Ok(h) = Aedat4Header::parse(&b) {
                        let payload = &b[h.len.min(b.len())..];
                        let mut d =
                            Aedat4Decoder::new(&h, None).with_input_len(payload.len() as u64);
                        let _ = decode(&mut d, payload, 13, 3);
                    }
                }
            }
            for cut in h.len..good.len() {
                let mut d = Aedat4Decoder::new(&h, None);
                let _ = decode(&mut d, &good[h.len..cut], 17, 5);
            }
        }
    }

    /// Found by fuzz_aedat4: a packet whose events lay outside the sensor made every call
    /// report a full output buffer without writing an event (out-of-bounds events took room),
    /// so a caller got `output_full` with nothing in the buffer, call after call. Dropped
    /// events must take no room: a call that reports a full buffer has filled it.
    #[test]
    fn dropped_events_take_no_output_room() {
        let mut ev: Vec<(i64, i16, i16, bool)> = (0..40).map(|i| (i, 100, 100, true)).collect();
        ev.extend((40..45).map(|i| (i, 1, 1, false)));
        let mut file = header(0, None, XML);
        let hlen = file.len();
        file.extend(packet(0, 0, &events(&ev)));
        let h = Aedat4Header::parse(&file).unwrap();
        assert_eq!(h.len, hlen);
        let mut d = Aedat4Decoder::new(&h, None);
        let mut buf = [DvsEvent::default(); 3];
        let mut rest = &file[h.len..];
        let mut got = Vec::new();
        loop {
            let p = d.decode(rest, &mut buf, &mut []).unwrap();
            if p.output_full {
                assert_eq!(p.events, buf.len(), "a full buffer was reported with {p:?}");
            }
            got.extend_from_slice(&buf[..p.events]);
            rest = &rest[p.consumed..];
            if rest.is_empty() && !p.output_full {
                break;
            }
        }
        let st = d.finish().unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(st.out_of_bounds, 40);
        assert_eq!(got[0], DvsEvent::new(40, 1, 1, 0));
    }
}

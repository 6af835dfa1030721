//! Resource bounds of the host's parsers (issue 16): a tiny file that declares a huge size (a
//! safetensors header length, a tensor or array shape, an AEDAT 4 header or packet, a
//! compressed frame's content size, an event table's record count) is refused without a big
//! allocation. The workspace's one counting allocator (`echos-testalloc`) tracks this thread's
//! peak of live bytes.

use std::path::{Path, PathBuf};

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

use echos_testalloc::peak_of;

/// The instrument itself: without it every bound below would hold vacuously.
#[test]
fn the_counting_allocator_sees_allocations() {
    echos_testalloc::assert_counter_works();
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("echos-resource-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn safetensors(json: &str, body: &[u8]) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn model_files_declaring_huge_sizes_allocate_nothing_big() {
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("header length 2^62", {
            let mut b = (1u64 << 62).to_le_bytes().to_vec();
            b.extend_from_slice(b"{}");
            b
        }),
        ("header length 1 GiB", {
            let mut b = (1u64 << 30).to_le_bytes().to_vec();
            b.extend_from_slice(b"{\"a\":");
            b
        }),
    ];
    for shape in [
        "[1073741824, 1073741824]",
        "[4294967296]",
        "[18446744073709551615, 2]",
    ] {
        let json = format!(
            "{{\"__metadata__\":{{\"format\":\"echos-esn\",\"format_version\":\"2\"}},\"w_in\":{{\"dtype\":\"F64\",\"shape\":{shape},\"data_offsets\":[0,16]}}}}"
        );
        cases.push(("huge tensor shape", safetensors(&json, &[0; 16])));
    }
    for (what, bytes) in cases {
        let (r, peak) =
            peak_of(|| echos_host::model_file::from_bytes(&bytes, Path::new("m.safetensors")));
        println!(
            "{what}: {} bytes of file, peak {peak} bytes allocated",
            bytes.len()
        );
        assert!(r.is_err(), "{what}: a crafted file loaded");
        assert!(peak < 64 << 10, "{what}: peak {peak} bytes");
    }
}

#[test]
fn npy_and_csv_tables_declaring_huge_sizes_allocate_nothing_big() {
    for shape in [
        "(1099511627776, 1)",
        "(4294967296, 4294967296)",
        "(18446744073709551615,)",
    ] {
        let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        let mut bytes = echos_npy::MAGIC.to_vec();
        bytes.extend_from_slice(&[2, 0]);
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 16]);
        let (r, peak) = peak_of(|| echos_host::npy::parse(&bytes));
        println!("npy {shape}: peak {peak} bytes");
        assert!(r.is_err(), "{shape}");
        assert!(peak < 4096, "npy {shape}: peak {peak} bytes");
    }
}

/// An AEDAT 4 header (hand-made IOHeader FlatBuffer: compression, no data table, `xml`).
fn aedat4_header(compression: i32, xml: &str, declared_len: Option<u32>) -> Vec<u8> {
    let mut fb = Vec::new();
    fb.extend_from_slice(&16u32.to_le_bytes());
    fb.extend_from_slice(b"IOHE");
    for v in [10u16, 12, 4, 0, 8] {
        fb.extend_from_slice(&v.to_le_bytes());
    }
    fb.resize(16, 0);
    fb.extend_from_slice(&8i32.to_le_bytes());
    fb.extend_from_slice(&compression.to_le_bytes());
    fb.extend_from_slice(&4u32.to_le_bytes());
    fb.extend_from_slice(&(xml.len() as u32).to_le_bytes());
    fb.extend_from_slice(xml.as_bytes());
    fb.push(0);
    let mut out = b"#!AER-DAT4.0\r\n".to_vec();
    out.extend_from_slice(&declared_len.unwrap_or(fb.len() as u32).to_le_bytes());
    out.extend_from_slice(&fb);
    out
}

const XML: &str = r#"<dv version="2.0"><node name="outInfo" path="/o/"><node name="0" path="/o/0/"><attr key="typeIdentifier" type="string">EVTS</attr><node name="info" path="/o/0/info/"><attr key="sizeX" type="int">8</attr><attr key="sizeY" type="int">4</attr></node></node></node></dv>"#;

fn packet(stream: i32, body: &[u8], declared: Option<u32>) -> Vec<u8> {
    let mut out = stream.to_le_bytes().to_vec();
    out.extend_from_slice(&declared.unwrap_or(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// An LZ4 frame whose descriptor declares `content_size` bytes, holding one tiny block.
fn lz4_claiming(content_size: u64) -> Vec<u8> {
    let mut f = vec![0x04, 0x22, 0x4D, 0x18];
    // version 01, block independence, content size present; block max size 4 MiB
    let flg = 0b0110_1000u8;
    let bd = 0b0111_0000u8;
    let mut desc = vec![flg, bd];
    desc.extend_from_slice(&content_size.to_le_bytes());
    let hc = (xxhash32(&desc) >> 8) as u8;
    f.extend_from_slice(&desc);
    f.push(hc);
    // one uncompressed block of 4 bytes, then the end mark
    f.extend_from_slice(&(4u32 | 0x8000_0000).to_le_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]);
    f.extend_from_slice(&0u32.to_le_bytes());
    f
}

/// XXH32 with seed 0 (the LZ4 frame descriptor's checksum).
fn xxhash32(data: &[u8]) -> u32 {
    const P1: u32 = 2654435761;
    const P2: u32 = 2246822519;
    const P3: u32 = 3266489917;
    const P4: u32 = 668265263;
    const P5: u32 = 374761393;
    assert!(data.len() < 16);
    let mut h = P5.wrapping_add(data.len() as u32);
    let mut rest = data;
    while rest.len() >= 4 {
        let k = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        h = h
            .wrapping_add(k.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        rest = &rest[4..];
    }
    for &b in rest {
        h = h
            .wrapping_add((b as u32).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

/// A Zstd frame header declaring a `content_size` frame (single segment off, 8-byte size field)
/// with an 8 MiB window, then one tiny raw block.
fn zstd_claiming(content_size: u64) -> Vec<u8> {
    zstd_frame(content_size, 13)
}

/// As [`zstd_claiming`], with a 2 GiB window (which ruzstd refuses at the frame header).
fn zstd_huge_window(content_size: u64) -> Vec<u8> {
    zstd_frame(content_size, 21)
}

/// A Zstd frame: 8-byte content size, window 2^(10 + `exponent`), one raw block of 4 bytes.
fn zstd_frame(content_size: u64, exponent: u8) -> Vec<u8> {
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD];
    f.push(0b1100_0000); // FCS field 8 bytes, no checksum, no dictionary
    f.push(exponent << 3); // window descriptor, no mantissa
    f.extend_from_slice(&content_size.to_le_bytes());
    // last block, raw, 4 bytes
    let bh: u32 = 1 | (4 << 3);
    f.extend_from_slice(&bh.to_le_bytes()[..3]);
    f.extend_from_slice(&[1, 2, 3, 4]);
    f
}

fn read_event_file(name: &str, bytes: &[u8]) -> (Result<usize, String>, usize) {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    let r = peak_of(|| {
        echos_host::events::open(&p)
            .and_then(|r| r.read_all())
            .map(|rec| rec.events.len())
            .map_err(|e| e.to_string())
    });
    std::fs::remove_file(&p).unwrap();
    r
}

#[test]
fn event_files_declaring_huge_sizes_allocate_nothing_big() {
    // The reader's own buffers: a 1 MiB + 64 header prefix at most and a 64 Ki-event chunk
    // (1 MiB): nothing in these files may add to them in proportion to what they declare.
    const READER: usize = 2 << 20;
    let mut cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "AEDAT 4 header length 16 MiB",
            "a.aedat4",
            aedat4_header(0, XML, Some(16 << 20)),
        ),
        ("AEDAT 4 packet of 200 MiB", "b.aedat4", {
            let mut f = aedat4_header(0, XML, None);
            f.extend(packet(0, &[0; 8], Some(200 << 20)));
            f
        }),
    ];
    let npy_table = |records: &str| {
        let header = format!(
            "{{'descr': [('t', '<u8'), ('x', '<u2'), ('y', '<u2'), ('p', '|u1')], 'fortran_order': False, 'shape': ({records},), }}"
        );
        let mut b = echos_npy::MAGIC.to_vec();
        b.extend_from_slice(&[2, 0]);
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&[0; 13]);
        b
    };
    cases.push((
        "npy table of 2^40 records",
        "t.npy",
        npy_table("1099511627776"),
    ));
    cases.push((
        "npy table of 2^64-1 records",
        "u.npy",
        npy_table("18446744073709551615"),
    ));
    let mut long_line = b"t,x,y,p\n".to_vec();
    long_line.extend(std::iter::repeat_n(b'1', 100_000));
    cases.push(("CSV line of 100 kB", "l.csv", long_line));
    for (what, name, bytes) in cases {
        let (r, peak) = read_event_file(name, &bytes);
        println!(
            "{what}: {} bytes of file, {r:?}, peak {peak} bytes allocated",
            bytes.len()
        );
        assert!(r.is_err(), "{what}: a crafted file was read: {r:?}");
        assert!(peak < READER, "{what}: peak {peak} bytes");
    }
}

/// A compressed packet body declaring 2^40 bytes of content (and, for Zstd, the largest
/// window) costs no more than the same frame declaring 4 KiB: what the decompressors allocate
/// is bounded by the format's block size (lz4_flex keeps two buffers of the frame's block
/// maximum, 4 MiB here), never by the declared size.
#[test]
fn compressed_packets_declaring_huge_contents_allocate_nothing_in_proportion() {
    const READER: usize = 2 << 20;
    const LZ4_BLOCKS: usize = 2 * (4 << 20) + (1 << 20);
    for (c, what, make) in [
        (1, "LZ4", lz4_claiming as fn(u64) -> Vec<u8>),
        (3, "Zstd", zstd_claiming as fn(u64) -> Vec<u8>),
        (
            3,
            "Zstd with a 2 GiB window",
            zstd_huge_window as fn(u64) -> Vec<u8>,
        ),
    ] {
        let mut peaks = Vec::new();
        for declared in [4096u64, 1 << 40] {
            let mut f = aedat4_header(c, XML, None);
            f.extend(packet(0, &make(declared), None));
            let (r, peak) = read_event_file("c.aedat4", &f);
            println!(
                "{what} frame declaring {declared} bytes: {} bytes of file, {r:?}, peak {peak} bytes allocated",
                f.len()
            );
            assert!(
                r.is_err(),
                "{what}: a frame with 4 bytes of content was read: {r:?}"
            );
            assert!(
                peak < READER + LZ4_BLOCKS,
                "{what} {declared}: peak {peak} bytes"
            );
            peaks.push(peak);
        }
        assert!(
            peaks[1] <= peaks[0] + (64 << 10),
            "{what}: declaring 2^40 bytes cost {} bytes, 4 KiB cost {}",
            peaks[1],
            peaks[0]
        );
    }
}

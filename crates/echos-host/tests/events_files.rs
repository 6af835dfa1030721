//! The host's event file reader and writers on the real recordings in
//! `../shared/data/events`: every file opens by content, decodes to what the reference decoders
//! give (golden values: crates/echos-core/tests/events_data/golden.rs from
//! bench/events_golden.py — faery 0.7.1, expelliarmus 1.1.12, tonic 1.7.0 — and
//! tests/events_data/aedat4_golden.rs from bench/events_aedat4_golden.py — `aedat` 2.3.0, with
//! faery agreeing), in any chunking, and survives every writer and its reader unchanged.

use std::path::{Path, PathBuf};

use echos_core::events::{events_digest, DvsEvent};
use echos_host::events::{self, EventFormat, RawEncoding, WriteOptions};

pub struct FileGolden {
    pub count: usize,
    pub first: &'static [(u64, u16, u16, u8)],
    pub last: &'static [(u64, u16, u16, u8)],
    pub digest: u64,
    pub xyp_digest: u64,
}

#[path = "../../echos-core/tests/events_data/golden.rs"]
mod golden;

#[path = "events_data/aedat4_golden.rs"]
mod aedat4_golden;

fn shared(test: &str) -> Option<PathBuf> {
    echos_host::shared_data_dir(test).map(|d| d.join("events"))
}

fn tuple(e: &DvsEvent) -> (u64, u16, u16, u8) {
    (e.t, e.x, e.y, e.p)
}

fn check(events: &[DvsEvent], g: &FileGolden, what: &str) {
    assert_eq!(events.len(), g.count, "{what}: event count");
    let first: Vec<_> = events.iter().take(5).map(tuple).collect();
    let last: Vec<_> = events[events.len().saturating_sub(5)..]
        .iter()
        .map(tuple)
        .collect();
    assert_eq!(first, g.first, "{what}: first events");
    assert_eq!(last, g.last, "{what}: last events");
    assert_eq!(events_digest(events), g.digest, "{what}: digest");
}

/// Every shared recording, its format as recognised from the content, and its golden.
fn recordings() -> Vec<(&'static str, EventFormat, &'static FileGolden, (u16, u16))> {
    vec![
        (
            "evt3.raw",
            EventFormat::Evt3,
            &golden::EVT3_FAERY,
            (1280, 720),
        ),
        (
            "evt2.raw",
            EventFormat::Evt2,
            &golden::EVT2_FAERY,
            (640, 480),
        ),
        (
            "davis346.aedat4",
            EventFormat::Aedat4,
            &aedat4_golden::AEDAT4_AEDAT,
            (346, 260),
        ),
        (
            "sample_nmnist.bin",
            EventFormat::Nmnist,
            &golden::NMNIST_TONIC,
            (34, 34),
        ),
    ]
}

#[test]
fn every_shared_recording_matches_its_reference_decoder() {
    let Some(dir) = shared("every_shared_recording_matches_its_reference_decoder") else {
        return;
    };
    for (name, format, g, size) in recordings() {
        let r = events::open(&dir.join(name)).unwrap();
        assert_eq!(r.info().format, format, "{name}");
        assert_eq!(
            (r.info().width, r.info().height),
            (Some(size.0), Some(size.1)),
            "{name}"
        );
        let rec = r.read_all().unwrap();
        check(&rec.events, g, name);
        assert!(
            rec.events.windows(2).all(|w| w[0].t <= w[1].t),
            "{name}: monotonic"
        );
        assert_eq!(rec.stats.out_of_bounds, 0, "{name}");
    }
    // faery agrees with `aedat` on the AEDAT 4 file, event for event
    assert_eq!(
        aedat4_golden::AEDAT4_AEDAT.digest,
        golden::AEDAT4_FAERY.digest
    );
}

#[test]
fn aedat4_frames_imu_and_triggers_are_counted_as_aedat_reports_them() {
    let Some(dir) = shared("aedat4_frames_imu_and_triggers_are_counted_as_aedat_reports_them")
    else {
        return;
    };
    let r = events::open(&dir.join("davis346.aedat4")).unwrap();
    let info = r.info().clone();
    assert_eq!(info.version.as_deref(), Some("4.0"));
    let get = |k: &str| {
        info.entries
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("compression"), Some("lz4"));
    assert_eq!(get("stream.0.type"), Some("EVTS"));
    assert_eq!(get("stream.0.source"), Some("DAVIS346_00000002"));
    assert_eq!(get("stream.0.tsOffset"), Some("1589163005536052"));
    assert_eq!(get("stream.1.type"), Some("FRME"));
    let rec = r.read_all().unwrap();
    let c = rec.aedat4.unwrap();
    assert_eq!(c.frames, aedat4_golden::AEDAT4_FRAMES);
    assert_eq!(c.imu_samples, aedat4_golden::AEDAT4_IMU_SAMPLES);
    assert_eq!(c.trigger_records, aedat4_golden::AEDAT4_TRIGGER_RECORDS);
    // the file's triggers are all frame and exposure markers (sources 6-9): none is an
    // external trigger, so none becomes a TriggerEvent
    assert!(aedat4_golden::AEDAT4_TRIGGER_SOURCES
        .iter()
        .all(|&(s, _)| (6..=9).contains(&s)));
    assert!(rec.triggers.is_empty());
    assert_eq!(c.packets, 236 + 59 + 236 + 177);
    assert_eq!(c.skipped_packets, 0);
    assert!(c.data_table_bytes > 0, "the packet index is read past");
}

#[test]
fn chunked_reading_gives_the_same_stream() {
    let Some(dir) = shared("chunked_reading_gives_the_same_stream") else {
        return;
    };
    for (name, _, g, _) in recordings() {
        for chunk in [1, 997, 1 << 16] {
            if chunk == 1 && g.count > 100_000 {
                continue;
            }
            let mut r = events::open(&dir.join(name))
                .unwrap()
                .with_chunk_events(chunk);
            let mut d = echos_core::events::EventsDigest::new();
            let mut buf = Vec::new();
            let mut total = 0;
            loop {
                let n = r.next_chunk(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                assert!(n <= chunk);
                d.update(&buf);
                total += n;
            }
            assert_eq!(total, g.count, "{name} chunk {chunk}");
            assert_eq!(d.finish(), g.digest, "{name} chunk {chunk}");
            // exhausted: stays at 0
            assert_eq!(r.next_chunk(&mut buf).unwrap(), 0);
        }
    }
}

fn round_trip(src: &[DvsEvent], size: (u16, u16), out: &Path, raw: RawEncoding) -> Vec<DvsEvent> {
    let opts = WriteOptions {
        width: size.0,
        height: size.1,
        raw,
    };
    let s = events::write_events(out, src, &[], opts).unwrap();
    assert_eq!(s.events as usize, src.len());
    events::open(out).unwrap().read_all().unwrap().events
}

#[test]
fn every_recording_survives_every_writer() {
    let Some(dir) = shared("every_recording_survives_every_writer") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (name, _, _, size) in recordings() {
        let src = events::open(&dir.join(name))
            .unwrap()
            .read_all()
            .unwrap()
            .events;
        for (ext, raw, format) in [
            ("raw", RawEncoding::Evt3, EventFormat::Evt3),
            ("raw", RawEncoding::Evt2, EventFormat::Evt2),
            ("dat", RawEncoding::Evt3, EventFormat::Dat),
            ("npy", RawEncoding::Evt3, EventFormat::Npy),
            ("csv", RawEncoding::Evt3, EventFormat::Csv),
        ] {
            if ext == "csv" && src.len() > 100_000 {
                continue;
            }
            let out = tmp.path().join(format!("copy.{ext}"));
            let back = round_trip(&src, size, &out, raw);
            assert_eq!(events::open(&out).unwrap().info().format, format);
            assert!(back == src, "{name} through {ext} ({raw:?}) differs");
        }
    }
}

#[test]
fn npy_output_is_the_structured_array_numpy_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("e.npy");
    let ev = [
        DvsEvent::new(7, 1, 2, 1),
        DvsEvent::new(u64::MAX, 65535, 3, 0),
    ];
    let opts = WriteOptions {
        width: 65535,
        height: 65535,
        raw: RawEncoding::Evt3,
    };
    events::write_events(&p, &ev, &[], opts).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let h = echos_npy::RecordsHeader::parse(&bytes).unwrap();
    assert_eq!((h.len, h.layout.itemsize), (2, 13));
    let text = String::from_utf8_lossy(&bytes[10..h.data_start]);
    assert!(
        text.starts_with("{'descr': [('t', '<u8'), ('x', '<u2'), ('y', '<u2'), ('p', '|u1')], 'fortran_order': False, 'shape': (2,"),
        "{text}"
    );
    assert_eq!(bytes.len(), h.data_start + 26);
    assert_eq!(events::open(&p).unwrap().read_all().unwrap().events, ev);
}

#[test]
fn triggers_are_merged_into_raw_files_by_time_and_dropped_elsewhere() {
    use echos_core::events::TriggerEvent;
    let tmp = tempfile::tempdir().unwrap();
    let ev: Vec<DvsEvent> = (0..200_000u64)
        .map(|i| {
            DvsEvent::new(
                1000 + i * 3,
                (i % 640) as u16,
                (i % 480) as u16,
                (i % 2) as u8,
            )
        })
        .collect();
    let tr: Vec<TriggerEvent> = [999u64, 1000, 5000, 400_000, 700_000, 900_000]
        .iter()
        .enumerate()
        .map(|(i, &t)| TriggerEvent {
            t,
            channel: 0,
            value: (i % 2) as u8,
        })
        .collect();
    for raw in [RawEncoding::Evt3, RawEncoding::Evt2] {
        let p = tmp.path().join("t.raw");
        let opts = WriteOptions {
            width: 640,
            height: 480,
            raw,
        };
        let s = events::write_events(&p, &ev, &tr, opts).unwrap();
        assert_eq!((s.events, s.triggers, s.triggers_dropped), (200_000, 6, 0));
        let back = events::open(&p).unwrap().read_all().unwrap();
        assert!(back.events == ev, "{raw:?}");
        assert_eq!(back.triggers, tr, "{raw:?}");
    }
    let p = tmp.path().join("t.npy");
    let opts = WriteOptions {
        width: 640,
        height: 480,
        raw: RawEncoding::Evt3,
    };
    let s = events::write_events(&p, &ev, &tr, opts).unwrap();
    assert_eq!((s.events, s.triggers, s.triggers_dropped), (200_000, 0, 6));
}

#[test]
fn damaged_files_are_errors_naming_the_file_offset() {
    let Some(dir) = shared("damaged_files_are_errors_naming_the_file_offset") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(dir.join("davis346.aedat4")).unwrap();
    let h = echos_host::events::Aedat4Header::parse(&bytes).unwrap();
    // cut 100 bytes into the first packet's body
    let p = tmp.path().join("cut.aedat4");
    std::fs::write(&p, &bytes[..h.len + 108]).unwrap();
    let e = events::open(&p)
        .unwrap()
        .read_all()
        .unwrap_err()
        .to_string();
    let size = u32::from_le_bytes(bytes[h.len + 4..h.len + 8].try_into().unwrap());
    assert_eq!(
        e,
        format!(
            "{}: the stream ends inside a record at byte {}: 108 of its {} bytes are present",
            p.display(),
            h.len,
            size + 8
        )
    );
    // a corrupt LZ4 frame in the second packet
    let mut bad = bytes.clone();
    let second = h.len + 8 + size as usize;
    bad[second + 8..second + 12].copy_from_slice(b"\0\0\0\0");
    std::fs::write(&p, &bad).unwrap();
    let e = events::open(&p)
        .unwrap()
        .read_all()
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with(&format!(
            "corrupt data at byte {second}: the packet's LZ4 frame is corrupt"
        )),
        "{e}"
    );
    // a .npy whose header promises more records than follow
    let np = tmp.path().join("short.npy");
    let mut f = echos_npy::structured_header(events::write::NPY_FIELDS, 10);
    f.extend_from_slice(&[0; 13 * 9]);
    std::fs::write(&np, &f).unwrap();
    let e = events::open(&np).err().unwrap().to_string();
    assert!(
        e.contains("announces 10 records (130 bytes) but 117 bytes"),
        "{e}"
    );
    // nothing recognisable, with an unknown extension
    let unk = tmp.path().join("x.bin2");
    std::fs::write(&unk, b"hello world").unwrap();
    assert!(matches!(
        events::open(&unk),
        Err(events::EventsError::UnknownFormat { .. })
    ));
    // a CSV row that is not numbers, and one cut at the end without its newline
    let c = tmp.path().join("e.csv");
    std::fs::write(&c, "t,x,y,p\n1,2,3,1\n2,x,3,0\n").unwrap();
    let e = events::open(&c)
        .unwrap()
        .read_all()
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("corrupt data at byte 16: a CSV field is not a non-negative integer"),
        "{e}"
    );
    std::fs::write(&c, "1,2,3,1\n5,6,7,0").unwrap();
    let r = events::open(&c).unwrap().read_all().unwrap();
    assert_eq!(
        r.events,
        vec![DvsEvent::new(1, 2, 3, 1), DvsEvent::new(5, 6, 7, 0)]
    );
}

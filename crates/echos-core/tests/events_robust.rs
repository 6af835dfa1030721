//! Event decoders, writers, the queue and the encoders under hostile or awkward use: a record
//! split at every possible byte, random bytes into every decoder (no panic, no hang, bounded
//! calls), random event streams through every writer and back, two threads on the queue, and
//! no allocation on the decode and encode paths.

use echos_core::events::{
    decode_all, DatDecoder, DatRecordKind, DatVersion, DatWriter, DecodeError, Denoise, DvsEvent,
    EventCounts, EventDecoder, EventEncoder, EventFilter, EventQueue, Evt21Decoder, Evt21Layout,
    Evt2Decoder, Evt2Writer, Evt3Decoder, Evt3Writer, Format, Grid, Header, LatePolicy,
    NmnistDecoder, OverflowPolicy, PushOutcome, TimeBin, TimeSurface, TriggerEvent, VoxelGrid,
};
use proptest::prelude::*;
use std::path::Path;

#[global_allocator]
static GLOBAL: echos_testalloc::TestAlloc = echos_testalloc::TestAlloc;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/events_data")
            .join(name),
    )
    .unwrap()
}

fn payload(bytes: &[u8]) -> &[u8] {
    &bytes[Header::parse(bytes).unwrap().len..]
}

/// Feed `chunks` one after another with small output buffers; every call must make progress.
fn feed(
    d: &mut dyn EventDecoder,
    chunks: &[&[u8]],
    cap: usize,
) -> Result<Vec<DvsEvent>, DecodeError> {
    let mut out = Vec::new();
    let mut ev = vec![DvsEvent::default(); cap];
    let mut tr = vec![TriggerEvent::default(); 2];
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut calls = 0usize;
    for chunk in chunks {
        let mut rest = *chunk;
        loop {
            let p = d.decode(rest, &mut ev, &mut tr)?;
            calls += 1;
            // each call consumes input or fills a buffer: the number of calls is bounded
            assert!(p.consumed > 0 || p.events > 0 || p.triggers > 0 || rest.is_empty());
            assert!(calls <= 2 * total + 2 * chunks.len() + 64 * total / cap.max(1) + 8);
            out.extend_from_slice(&ev[..p.events]);
            rest = &rest[p.consumed..];
            if rest.is_empty() && !p.output_full {
                break;
            }
        }
    }
    d.finish()?;
    Ok(out)
}

type Make = fn() -> Box<dyn EventDecoder>;

fn decoders() -> Vec<(&'static str, Make)> {
    vec![
        ("evt3", || Box::new(Evt3Decoder::new(320, 240))),
        ("evt2", || Box::new(Evt2Decoder::new(320, 240))),
        ("evt21", || Box::new(Evt21Decoder::new(320, 240))),
        ("evt21-legacy", || {
            Box::new(Evt21Decoder::new(320, 240).with_layout(Evt21Layout::Legacy32))
        }),
        ("dat2", || {
            Box::new(DatDecoder::new(DatVersion::V2, 320, 240))
        }),
        ("dat1", || {
            Box::new(DatDecoder::new(DatVersion::V1, 320, 240))
        }),
        ("nmnist", || Box::new(NmnistDecoder::default())),
    ]
}

#[test]
fn a_record_split_at_every_byte_decodes_the_same() {
    let nmnist: Vec<u8> = (0..400u32)
        .flat_map(|i| {
            let t = i * 37;
            let y = if i % 97 == 50 { 240 } else { (i % 34) as u8 };
            [
                (i % 34) as u8,
                y,
                ((i % 2) << 7) as u8 | (t >> 16) as u8,
                (t >> 8) as u8,
                t as u8,
            ]
        })
        .collect();
    let cases: Vec<(&str, Make, Vec<u8>)> = vec![
        (
            "evt3",
            decoders()[0].1,
            payload(&fixture("synthetic_evt3.raw"))[..3000].to_vec(),
        ),
        (
            "evt2",
            decoders()[1].1,
            payload(&fixture("synthetic_evt2.raw"))[..3000].to_vec(),
        ),
        (
            "dat2",
            decoders()[4].1,
            payload(&fixture("synthetic_v2.dat"))[..3002].to_vec(),
        ),
        (
            "dat1",
            decoders()[5].1,
            payload(&fixture("synthetic_v1.dat"))[..3002].to_vec(),
        ),
        ("nmnist", decoders()[6].1, nmnist),
    ];
    for (name, make, bytes) in cases {
        let whole = feed(&mut *make(), &[&bytes], 1 << 12).unwrap();
        assert!(whole.len() > 100, "{name}: {} events", whole.len());
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            let got = feed(&mut *make(), &[a, b], 7).unwrap();
            assert!(
                got == whole,
                "{name}: split at byte {split} changes the events"
            );
        }
        // and byte by byte, with a one-event output buffer
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert!(
            feed(&mut *make(), &singles, 1).unwrap() == whole,
            "{name}: byte by byte"
        );
    }
}

#[test]
fn vector_words_resume_with_a_one_event_buffer() {
    let bytes = payload(&fixture("synthetic_evt3.raw")).to_vec();
    let whole = feed(&mut Evt3Decoder::new(320, 240), &[&bytes], 1 << 16).unwrap();
    assert_eq!(
        feed(&mut Evt3Decoder::new(320, 240), &[&bytes], 1).unwrap(),
        whole
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600, cap in 1usize..40) {
        let cut = cut.min(bytes.len());
        for (_, make) in decoders() {
            let r = feed(&mut *make(), &[&bytes[..cut], &bytes[cut..]], cap);
            match r {
                Ok(_) | Err(DecodeError::Truncated { .. }) | Err(DecodeError::UnsupportedRecord { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
        let _ = Header::parse(&bytes);
        let _ = Format::detect(&bytes);
    }

    #[test]
    fn random_words_of_every_type_never_panic(words in proptest::collection::vec(any::<u16>(), 0..400), cap in 1usize..30) {
        // random payloads with the interesting types over-represented
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let _ = feed(&mut Evt3Decoder::new(64, 64), &[&bytes], cap).unwrap();
        let mut with_header = b"% evt 3.0\n% geometry 64x64\n".to_vec();
        with_header.extend_from_slice(&bytes);
        prop_assert_eq!(Format::detect(&with_header), Some(Format::Evt3));
    }

    #[test]
    fn writers_round_trip(raw in proptest::collection::vec((0u64..5000, 0u16..300, 0u16..200, 0u8..2), 1..300), origin in 0u64..1_000_000) {
        let mut t = origin;
        let events: Vec<DvsEvent> = raw.iter().map(|&(dt, x, y, p)| {
            // mostly small steps, sometimes none (same-time rows), sometimes a long gap
            t += if dt > 4990 { dt << 22 } else if dt < 2000 { 0 } else { dt };
            DvsEvent::new(t, x, y, p)
        }).collect();
        let (w, h) = (300, 200);

        let mut out = Vec::new();
        let mut e3 = Evt3Writer::new(w, h).unwrap().with_origin(origin);
        e3.write_events(&events, &mut out).unwrap();
        let hd = Header::parse(&out).unwrap();
        let mut d = Evt3Decoder::new(w, h).with_time_offset(hd.t0.unwrap_or(0));
        prop_assert_eq!(&decode_all(&mut d, &out[hd.len..]).unwrap().0, &events);

        let mut out = Vec::new();
        let mut e2 = Evt2Writer::new(w, h).unwrap();
        e2.write_events(&events, &mut out).unwrap();
        let hd = Header::parse(&out).unwrap();
        prop_assert_eq!(&decode_all(&mut Evt2Decoder::new(w, h), &out[hd.len..]).unwrap().0, &events);

        for v in [DatVersion::V1, DatVersion::V2] {
            let mut out = Vec::new();
            let mut dw = DatWriter::new(v, DatRecordKind::Cd, w, h).unwrap().with_origin(origin);
            match dw.write_events(&events, &mut out) {
                Ok(()) => {
                    let hd = Header::parse(&out).unwrap();
                    let mut d = DatDecoder::new(hd.dat_version(), w, h).with_time_offset(hd.t0.unwrap_or(0));
                    prop_assert_eq!(&decode_all(&mut d, &out[hd.len..]).unwrap().0, &events);
                }
                // DAT holds a first time under 2^32 µs and steps under 2^31 µs: only long
                // gaps may be refused
                Err(echos_core::events::WriteError::TimeNotRepresentable { .. }) => {
                    prop_assert!(events[0].t - origin >= 1 << 32
                        || events.windows(2).any(|p| p[1].t - p[0].t >= 1 << 31));
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}

#[test]
fn queue_two_threads_refuse_delivers_everything_in_order() {
    const N: u64 = 2_000_000;
    let mut q = EventQueue::new(1024, OverflowPolicy::Refuse, LatePolicy::Drop).unwrap();
    let (mut p, mut c) = q.split();
    std::thread::scope(|s| {
        s.spawn(move || {
            for t in 0..N {
                let e = DvsEvent::new(t, (t % 1280) as u16, (t % 720) as u16, (t & 1) as u8);
                while p.push(e).is_err() {
                    std::hint::spin_loop();
                }
            }
        });
        s.spawn(move || {
            let mut next = 0u64;
            let mut out = [DvsEvent::default(); 300];
            let mut window_end = 0u64;
            while next < N {
                window_end += 997;
                loop {
                    let k = c.pop_until(window_end, &mut out);
                    for e in &out[..k] {
                        assert_eq!(e.t, next);
                        assert_eq!(
                            (e.x, e.y, e.p),
                            ((next % 1280) as u16, (next % 720) as u16, (next & 1) as u8)
                        );
                        assert!(e.t < window_end);
                        next += 1;
                    }
                    if next >= window_end.min(N) {
                        break;
                    }
                    std::hint::spin_loop();
                }
            }
        });
    });
    assert_eq!((q.dropped(), q.late(), q.len()), (0, 0, 0));
}

#[test]
fn queue_two_threads_drop_newest_counts_every_loss() {
    const N: u64 = 1_000_000;
    let mut q = EventQueue::new(64, OverflowPolicy::DropNewest, LatePolicy::Drop).unwrap();
    let (mut p, mut c) = q.split();
    let (tally, received) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let (mut queued, mut full, mut late, mut sentinel_drops) = (0u64, 0u64, 0u64, 0u64);
            for t in 0..N {
                // every 1000th event goes back to t = 0: late, so dropped and counted
                let t = if t % 1000 == 999 { 0 } else { t };
                match p.push(DvsEvent::new(t, 0, 0, 0)).unwrap() {
                    PushOutcome::Queued => queued += 1,
                    PushOutcome::DroppedFull => full += 1,
                    PushOutcome::DroppedLate => late += 1,
                    PushOutcome::Clamped => panic!("clamped under LatePolicy::Drop"),
                }
            }
            // the end marker must get through: retry while the queue is full
            while p.push(DvsEvent::new(u64::MAX, 0, 0, 0)).unwrap() == PushOutcome::DroppedFull {
                sentinel_drops += 1;
                std::hint::spin_loop();
            }
            (queued, full, late, sentinel_drops)
        });
        let consumer = s.spawn(move || {
            let mut last = None::<u64>;
            let mut n = 0u64;
            let mut out = [DvsEvent::default(); 16];
            loop {
                let k = c.pop_into(&mut out);
                for e in &out[..k] {
                    if e.t == u64::MAX {
                        return n;
                    }
                    assert!(last.is_none_or(|l| e.t > l), "order broken");
                    last = Some(e.t);
                    n += 1;
                }
            }
        });
        (producer.join().unwrap(), consumer.join().unwrap())
    });
    let (queued, full, late, sentinel_drops) = tally;
    assert_eq!(queued + full + late, N);
    assert_eq!(received, queued);
    assert_eq!(q.dropped(), full + sentinel_drops);
    assert_eq!(q.late(), late);
    assert!(late > 0);
}

#[test]
fn decode_and_encode_paths_do_not_allocate() {
    echos_testalloc::assert_counter_works();
    let bytes = payload(&fixture("synthetic_evt3.raw")).to_vec();
    let dat = payload(&fixture("synthetic_v2.dat")).to_vec();
    let mut ev = vec![DvsEvent::default(); 256];
    let mut tr = vec![TriggerEvent::default(); 4];
    let mut d3 = Evt3Decoder::new(320, 240);
    let mut dd = DatDecoder::new(DatVersion::V2, 320, 240);
    let mut counts = EventCounts::new(Grid::new(320, 240, 40, 30).unwrap(), false);
    let mut surf = TimeSurface::new(Grid::new(320, 240, 40, 30).unwrap(), false, 5000.0).unwrap();
    let mut vox = VoxelGrid::new(Grid::new(320, 240, 40, 30).unwrap(), 5).unwrap();
    let mut den = Denoise::new(320, 240, 10_000).unwrap();
    let mut out = vec![0f32; 2 * 40 * 30];
    let mut vout = vec![0f32; 5 * 40 * 30];
    let (n, total) = echos_testalloc::count_allocations(|| {
        let mut total = 0;
        for (d, input) in [(&mut d3 as &mut dyn EventDecoder, &bytes), (&mut dd, &dat)] {
            let mut rest = &input[..];
            loop {
                let p = d
                    .decode(&rest[..rest.len().min(333)], &mut ev, &mut tr)
                    .unwrap();
                rest = &rest[p.consumed..];
                total += p.events;
                let bin = TimeBin {
                    start: 0,
                    end: ev[..p.events].last().map_or(0, |e| e.t + 1),
                };
                counts.encode(&ev[..p.events], bin, &mut out).unwrap();
                surf.encode(&ev[..p.events], bin, &mut out).unwrap();
                vox.encode(&ev[..p.events], bin, &mut vout).unwrap();
                den.filter(&mut ev[..p.events]);
                if rest.is_empty() && !p.output_full {
                    break;
                }
            }
            d.finish().unwrap();
        }
        total
    });
    assert!(total > 10_000);
    assert_eq!(n, 0, "the decode/encode loop allocated {n} times");
}

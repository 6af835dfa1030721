//! Criterion benchmarks of the event path: EVT 3.0 / EVT 2.0 decode rates (events and bytes
//! per second) on the shared recordings (`../shared/data/events`; when absent, the committed
//! synthetic files, with a loud warning that the figures are not the recording's) and the
//! pooled time surface and counts on a 1280×720 sensor. AEDAT 4.0 is in echos-host's bench.
//! Run: `cargo bench -p echos-core --bench events`; `-- --test` runs each once as a check.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use echos_core::events::{
    decoder_for, DvsEvent, EventCounts, EventDecoder, EventEncoder, Format, Grid, Header, TimeBin,
    TimeSurface, TriggerEvent,
};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn recording(name: &str, fallback: &str) -> Vec<u8> {
    let shared = std::env::var_os("ECHOS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("events")
        .join(name);
    std::fs::read(&shared).unwrap_or_else(|e| {
        // Loudly: the synthetic stand-in is small and regular, its rates are not the
        // recording's and must not be reported as such.
        eprintln!(
            "WARNING: {} unreadable ({e}); benchmarking the committed synthetic {fallback} \
             instead: these figures are NOT the shared recording's (set ECHOS_SHARED_DATA)",
            shared.display()
        );
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/events_data")
                .join(fallback),
        )
        .expect("no recording to benchmark")
    })
}

/// Decode a whole file through a 64 Ki-event buffer; returns the event count.
fn decode(
    d: &mut dyn EventDecoder,
    payload: &[u8],
    ev: &mut [DvsEvent],
    tr: &mut [TriggerEvent],
) -> usize {
    let mut n = 0;
    let mut rest = payload;
    loop {
        let p = d.decode(rest, ev, tr).unwrap();
        n += p.events;
        black_box(&ev[..p.events]);
        rest = &rest[p.consumed..];
        if rest.is_empty() && !p.output_full {
            return n;
        }
    }
}

fn bench_decode(c: &mut Criterion) {
    let mut ev = vec![DvsEvent::default(); 1 << 16];
    let mut tr = vec![TriggerEvent::default(); 1024];
    for (name, fallback) in [
        ("evt3.raw", "synthetic_evt3.raw"),
        ("evt2.raw", "synthetic_evt2.raw"),
    ] {
        let bytes = recording(name, fallback);
        let header = Header::parse(&bytes).unwrap();
        let format = Format::detect(&bytes).unwrap();
        let payload = &bytes[header.len..];
        let count = decode(
            &mut *decoder_for(format, &header).unwrap(),
            payload,
            &mut ev,
            &mut tr,
        );
        let mut g = c.benchmark_group("decode");
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut d = decoder_for(format, &header).unwrap();
                decode(&mut *d, payload, &mut ev, &mut tr)
            })
        });
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function(format!("{name} (bytes)"), |b| {
            b.iter(|| {
                let mut d = decoder_for(format, &header).unwrap();
                decode(&mut *d, payload, &mut ev, &mut tr)
            })
        });
        g.finish();
    }
}

fn bench_encode(c: &mut Criterion) {
    let bytes = recording("evt3.raw", "synthetic_evt3.raw");
    let header = Header::parse(&bytes).unwrap();
    let format = Format::detect(&bytes).unwrap();
    let (events, _, _) = echos_core::events::decode_all(
        &mut *decoder_for(format, &header).unwrap(),
        &bytes[header.len..],
    )
    .unwrap();
    let events = &events[..events.len().min(1 << 20)];
    let bin = TimeBin {
        start: events[0].t,
        end: events[events.len() - 1].t + 1,
    };
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(events.len() as u64));
    let mut ts = TimeSurface::new(Grid::new(1280, 720, 80, 45).unwrap(), false, 10_000.0).unwrap();
    let mut out = vec![0f32; ts.output_len()];
    g.bench_function("timesurface_80x45_1280x720", |b| {
        b.iter(|| ts.encode(black_box(events), bin, &mut out).unwrap())
    });
    let mut counts = EventCounts::new(Grid::new(1280, 720, 80, 45).unwrap(), false);
    let mut out = vec![0f32; counts.output_len()];
    g.bench_function("counts_80x45_1280x720", |b| {
        b.iter(|| counts.encode(black_box(events), bin, &mut out).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);

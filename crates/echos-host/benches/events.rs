//! Criterion benchmark of the host-side event decoders: AEDAT 4.0 (davis346.aedat4 from the
//! shared data: LZ4 packets, the event packets decompressed and decoded, frames skipped) in
//! events and bytes per second; the EVT formats are in echos-core's `events` bench.
//! Run: `cargo bench -p echos-host --bench events`. The recording is needed: without it the
//! bench says so loudly and measures nothing (there is no synthetic AEDAT 4 stand-in).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use echos_core::events::EventDecoder;
use echos_host::events::{Aedat4Decoder, Aedat4Header, DvsEvent, TriggerEvent};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn decode(bytes: &[u8], h: &Aedat4Header, ev: &mut [DvsEvent], tr: &mut [TriggerEvent]) -> usize {
    let payload = &bytes[h.len..];
    let mut d = Aedat4Decoder::new(h, None).with_input_len(payload.len() as u64);
    let mut n = 0;
    let mut rest = payload;
    loop {
        let p = d.decode(rest, ev, tr).unwrap();
        n += p.events;
        black_box(&ev[..p.events]);
        rest = &rest[p.consumed..];
        if rest.is_empty() && !p.output_full {
            d.finish().unwrap();
            return n;
        }
    }
}

fn bench_aedat4(c: &mut Criterion) {
    let path = std::env::var_os("ECHOS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("events/davis346.aedat4");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!(
            "SKIPPED: {} is absent: no AEDAT 4.0 figure (set ECHOS_SHARED_DATA)",
            path.display()
        );
        return;
    };
    let h = Aedat4Header::parse(&bytes).unwrap();
    let mut ev = vec![DvsEvent::default(); 1 << 16];
    let mut tr = vec![TriggerEvent::default(); 1024];
    let count = decode(&bytes, &h, &mut ev, &mut tr);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(count as u64));
    g.bench_function("davis346.aedat4", |b| {
        b.iter(|| decode(&bytes, &h, &mut ev, &mut tr))
    });
    g.throughput(Throughput::Bytes((bytes.len() - h.len) as u64));
    g.bench_function("davis346.aedat4 (bytes)", |b| {
        b.iter(|| decode(&bytes, &h, &mut ev, &mut tr))
    });
    g.finish();
}

criterion_group!(benches, bench_aedat4);
criterion_main!(benches);

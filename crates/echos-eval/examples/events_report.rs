//! Rust-level event decode rates against the machine's memory read bandwidth, and the pooled
//! time-surface encoder rate (docs/performance.md, "Event files"):
//! `cargo run --release -p echos-eval --example events_report [--rounds N] [--data DIR]`.
//!
//! On the shared recordings (`<repo>/../shared/data/events`, or `--data`): EVT 3.0 and EVT 2.0
//! through the core decoders, AEDAT 4.0 through the host's packet decoder (LZ4 decompression
//! included), each decoding the whole in-memory payload through a 64 Ki-event buffer; the
//! time surface (80×45 cells pooled over a 1280×720 sensor) over the first 2^20 events of
//! evt3.raw. The ceiling is `echos_eval::limits::read_bandwidth` (the probe `echos esn bench`
//! uses) over a 256 MiB working set, i.e. DRAM. Every round measures every item once, in the
//! same order, all in this thread's CPU time (other processes on the cores do not count
//! against either side); the report is the median over rounds (default 7, at least 5).
//! `in/bw` is the payload read rate over the DRAM read bandwidth; `in+out/bw` adds the
//! 16-byte events written (into a 1 MiB buffer that stays in cache, so it may exceed 100%).

use cpu_time::ThreadTime;
use echos_core::events::{
    decoder_for, DvsEvent, EventDecoder, EventEncoder, Format, Grid, Header, TimeBin, TimeSurface,
    TriggerEvent,
};
use echos_core::kernels::Kernel;
use echos_eval::limits::read_bandwidth;
use echos_host::bench::median;
use echos_host::events::{Aedat4Decoder, Aedat4Header};
use std::hint::black_box;
use std::path::PathBuf;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The engine's `no_std` errors implement Display only.
fn err(e: impl std::fmt::Display) -> Box<dyn std::error::Error> {
    e.to_string().into()
}

/// Decode a whole payload through the buffers; returns the event count.
fn drain(
    d: &mut dyn EventDecoder,
    payload: &[u8],
    ev: &mut [DvsEvent],
    tr: &mut [TriggerEvent],
) -> Res<usize> {
    let mut n = 0;
    let mut rest = payload;
    loop {
        let p = d.decode(rest, ev, tr).map_err(err)?;
        n += p.events;
        black_box(&ev[..p.events]);
        rest = &rest[p.consumed..];
        if rest.is_empty() && !p.output_full {
            d.finish().map_err(err)?;
            return Ok(n);
        }
    }
}

enum Item {
    Prophesee(&'static str, Format, Header, Vec<u8>),
    Aedat4(Aedat4Header, Vec<u8>),
}

impl Item {
    fn name(&self) -> &'static str {
        match self {
            Item::Prophesee(name, ..) => name,
            Item::Aedat4(..) => "AEDAT 4.0",
        }
    }
    fn payload(&self) -> &[u8] {
        match self {
            Item::Prophesee(_, _, h, bytes) => &bytes[h.len..],
            Item::Aedat4(h, bytes) => &bytes[h.len..],
        }
    }
    fn decoder(&self) -> Box<dyn EventDecoder> {
        match self {
            Item::Prophesee(_, f, h, _) => match decoder_for(*f, h) {
                Some(d) => d,
                None => unreachable!("EVT formats have core decoders"),
            },
            Item::Aedat4(h, bytes) => {
                Box::new(Aedat4Decoder::new(h, None).with_input_len((bytes.len() - h.len) as u64))
            }
        }
    }
}

fn main() -> Res<()> {
    let mut rounds = 7usize;
    let mut data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().ok_or("--rounds needs a number")?.parse()?,
            "--data" => data = args.next().ok_or("--data needs a directory")?.into(),
            _ => return Err(format!("unknown argument {a:?} (--rounds N, --data DIR)").into()),
        }
    }
    if rounds < 5 {
        return Err("--rounds must be at least 5".into());
    }
    let dir = data.join("events");
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| {
            format!(
                "{}: {e} (the shared data is needed; pass --data)",
                dir.join(name).display()
            )
        })
    };
    let mut items = Vec::new();
    for (name, file) in [("EVT 3.0", "evt3.raw"), ("EVT 2.0", "evt2.raw")] {
        let bytes = read(file)?;
        let h = Header::parse(&bytes).map_err(err)?;
        let f = Format::detect(&bytes).ok_or("unrecognised recording")?;
        items.push(Item::Prophesee(name, f, h, bytes));
    }
    let bytes = read("davis346.aedat4")?;
    items.push(Item::Aedat4(Aedat4Header::parse(&bytes)?, bytes));

    let mut ev = vec![DvsEvent::default(); 1 << 16];
    let mut tr = vec![TriggerEvent::default(); 1024];
    let counts: Vec<usize> = items
        .iter()
        .map(|it| drain(&mut *it.decoder(), it.payload(), &mut ev, &mut tr))
        .collect::<Res<_>>()?;

    let Item::Prophesee(_, f, h, bytes) = &items[0] else {
        unreachable!()
    };
    let (events, _, _) = echos_core::events::decode_all(
        &mut *decoder_for(*f, h).ok_or("no decoder")?,
        &bytes[h.len..],
    )
    .map_err(err)?;
    let events = &events[..events.len().min(1 << 20)];
    let bin = TimeBin {
        start: events[0].t,
        end: events[events.len() - 1].t + 1,
    };
    let mut ts = TimeSurface::new(Grid::new(1280, 720, 80, 45).map_err(err)?, false, 10_000.0)
        .map_err(err)?;
    let mut surface = vec![0f32; ts.output_len()];

    let kernel = Kernel::best();
    let mut bandwidth = Vec::new();
    let mut decode_s = vec![Vec::new(); items.len()];
    let mut encode_s = Vec::new();
    for _ in 0..rounds {
        bandwidth.push(read_bandwidth(kernel, 256 << 20, 1));
        for (k, it) in items.iter().enumerate() {
            let t = ThreadTime::now();
            black_box(drain(&mut *it.decoder(), it.payload(), &mut ev, &mut tr)?);
            decode_s[k].push(t.elapsed().as_secs_f64());
        }
        let t = ThreadTime::now();
        ts.encode(black_box(events), bin, &mut surface)
            .map_err(err)?;
        black_box(&surface);
        encode_s.push(t.elapsed().as_secs_f64());
    }

    let bw = median(&bandwidth);
    println!(
        "read bandwidth ({} loads, 256 MiB working set): {:.2} GB/s (median of {rounds})",
        kernel.variant().name(),
        bw / 1e9
    );
    println!(
        "{:<10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>8} {:>10}",
        "format", "events", "median ms", "M ev/s", "in MB/s", "out MB/s", "in/bw", "in+out/bw"
    );
    for (k, it) in items.iter().enumerate() {
        let s = median(&decode_s[k]);
        let input = it.payload().len() as f64 / s;
        let output = (counts[k] * std::mem::size_of::<DvsEvent>()) as f64 / s;
        println!(
            "{:<10} {:>9} {:>10.3} {:>10.1} {:>9.0} {:>10.0} {:>7.1}% {:>9.1}%",
            it.name(),
            counts[k],
            s * 1e3,
            counts[k] as f64 / s / 1e6,
            input / 1e6,
            output / 1e6,
            100.0 * input / bw,
            100.0 * (input + output) / bw
        );
    }
    let s = median(&encode_s);
    println!(
        "time surface 80x45 over 1280x720: {} events in {:.3} ms = {:.1} M ev/s (goal >= 100)",
        events.len(),
        s * 1e3,
        events.len() as f64 / s / 1e6
    );
    Ok(())
}

//! The event-recording source: replaying a committed recording in (scaled) real time through
//! the event queue gives the frames of encoding the file offline with the same bin
//! (`echos_host::events::bins::encode`, what `echos events encode` runs), for every encoder;
//! a queue too small for the event rate drops events and counts every one; bad keys and files
//! are typed errors naming them.

use std::path::PathBuf;

use echos_host::events::bins::{self, BinSpec, Representation};
use echos_rt::config::ConfigFile;
use echos_rt::{clock, EventSource, EventSourceSpec, Overflow, Poll, Source, Tick};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../echos-core/tests/events_data")
        .join(name)
}

fn spec(path: PathBuf, speed: f64, representation: Representation) -> EventSourceSpec {
    EventSourceSpec {
        path,
        speed,
        representation,
        grid: Some((8, 6)),
        merge_polarity: false,
        width: None,
        height: None,
        queue_events: 65536,
        overflow: Overflow::Drop,
    }
}

/// Polls the source at every release of a `period_ns` loop (as the pipeline does) until it
/// ends; returns the frames, row-major, and the idle periods.
fn replay(s: &mut EventSource, period_ns: u64) -> (Vec<f64>, u64) {
    let start = clock::now_ns();
    let mut u = vec![0.0; s.inputs()];
    let mut frames = Vec::new();
    let mut idle = 0;
    for k in 0.. {
        let release = start + k * period_ns;
        clock::sleep_until(release);
        let tick = Tick {
            period: k,
            start_ns: start,
            release_ns: release,
            now_ns: clock::now_ns(),
        };
        match s.poll(&tick, &mut u) {
            Poll::Ready => frames.extend_from_slice(&u),
            Poll::Idle => idle += 1,
            Poll::End => break,
        }
        assert!(k < 100_000, "the source never ended");
    }
    s.finish().unwrap();
    (frames, idle)
}

#[test]
fn replay_gives_the_offline_encoding() {
    let period_ns = 1_000_000;
    let speed = 25.0; // 25 ms of recording per 1 ms period: the 3.1 s file in ~125 periods
    for file in [
        "synthetic_evt3.raw",
        "synthetic_evt2.raw",
        "synthetic_v2.dat",
    ] {
        let rec = echos_host::events::open(&data(file))
            .unwrap()
            .read_all()
            .unwrap();
        let (w, h) = (rec.info.width.unwrap(), rec.info.height.unwrap());
        for repr in [
            Representation::Counts,
            Representation::TimeSurface { tau_us: 20_000.0 },
            Representation::Voxel { bins: 3 },
        ] {
            let sp = spec(data(file), speed, repr);
            let offline = bins::encode(
                &rec.events,
                &BinSpec {
                    representation: repr,
                    bin_us: 25_000,
                    width: w,
                    height: h,
                    grid: (8, 6),
                    merge_polarity: false,
                },
            )
            .unwrap();
            let mut s = EventSource::open(&sp, period_ns, offline.cols).unwrap();
            assert_eq!(s.bin_us(), 25_000);
            let (frames, _idle) = replay(&mut s, period_ns);
            assert_eq!(s.dropped(), 0, "{file}");
            assert_eq!(s.offered(), rec.events.len() as u64, "{file}");
            assert_eq!(s.frames() as usize, offline.rows, "{file} {repr:?}");
            // Bit-identical frames, in order.
            let same = frames
                .iter()
                .zip(&offline.values)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same && frames.len() == offline.values.len(),
                "{file} {repr:?}"
            );
        }
    }
}

#[test]
fn a_small_queue_drops_and_counts_every_drop() {
    // 1000 ms of recording per 1 ms period into an 8-event queue: most events are dropped.
    let period_ns = 1_000_000;
    let mut sp = spec(data("synthetic_evt3.raw"), 1000.0, Representation::Counts);
    sp.queue_events = 8;
    let mut s = EventSource::open(&sp, period_ns, 96).unwrap();
    let (frames, _) = replay(&mut s, period_ns);
    let kept: f64 = frames.iter().sum();
    assert!(s.dropped() > 0, "nothing was dropped");
    assert_eq!(s.offered(), 5951);
    // Every event offered is counted in a frame, dropped, late or outside the sensor.
    assert_eq!(
        kept as u64 + s.dropped() + s.late() + s.ignored(),
        s.offered(),
        "counts {kept}, dropped {}, late {}, ignored {}",
        s.dropped(),
        s.late(),
        s.ignored()
    );
    assert!(s.note().unwrap().contains("dropped"));

    // overflow = "wait": the reader waits instead, nothing is dropped by the queue (a bin
    // larger than the queue is still cut to it, counted).
    sp.overflow = Overflow::Wait;
    sp.queue_events = 4096;
    let mut s = EventSource::open(&sp, period_ns, 96).unwrap();
    let (frames, _) = replay(&mut s, period_ns);
    let kept: f64 = frames.iter().sum();
    assert_eq!(s.dropped(), 0);
    assert_eq!(kept as u64, 5951);
}

#[test]
fn bad_files_and_sizes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not events\n").unwrap();
    let e = EventSource::open(&spec(text, 1.0, Representation::Counts), 1_000_000, 96)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a recognised event file"), "{e}");

    let e = EventSource::open(
        &spec(data("synthetic_evt3.raw"), 1.0, Representation::Counts),
        1_000_000,
        10,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("96 columns") && e.contains("10 inputs"), "{e}");

    let mut sp = spec(data("synthetic_evt3.raw"), 1.0, Representation::Counts);
    sp.grid = Some((400, 6));
    let e = EventSource::open(&sp, 1_000_000, 96)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not fit the 320x240 sensor"), "{e}");
}

fn check(source: &str) -> Result<echos_rt::config::Checked, String> {
    let text = format!(
        "[model]\npath = \"m.safetensors\"\n[loop]\nperiod_us = 1000\n[source]\n{source}\n"
    );
    let c: ConfigFile = echos_rt::config::parse(&text, std::path::Path::new("t.toml"))
        .map_err(|e| e.to_string())?;
    c.check().map_err(|e| e.to_string())
}

#[test]
fn event_keys_are_checked_by_name() {
    let ok = check("kind = \"events\"\npath = \"a.raw\"\nencoder = \"timesurface\"\ntau_us = 5000\ngrid = [8, 6]\nspeed = 2.5").unwrap();
    let ev = ok.events.unwrap();
    assert_eq!(
        ev.representation,
        Representation::TimeSurface { tau_us: 5000.0 }
    );
    assert_eq!((ev.speed, ev.grid), (2.5, Some((8, 6))));
    for (keys, named) in [
        ("colour = 1", "colour"),
        ("speed = 0", "source.speed"),
        // Inside the tagged [source] table toml names the section and the type, not the key.
        ("speed = \"fast\"", "expected f64"),
        ("encoder = \"pixels\"", "source.encoder"),
        ("tau_us = 10", "source.tau_us"),
        ("encoder = \"voxel\"\nvoxel_bins = 0", "source.voxel_bins"),
        ("grid = [0, 4]", "source.grid"),
        ("queue_events = 0", "source.queue_events"),
        ("overflow = \"block\"", "source.overflow"),
    ] {
        let e = check(&format!("kind = \"events\"\npath = \"a.raw\"\n{keys}")).unwrap_err();
        assert!(e.contains(named), "{keys}: {e}");
    }
}

/// The whole path: a config naming the recording and a model trained on its offline encoding,
/// run by the runtime's own runner at 1 kHz (speed 25) with a file sink, writes the outputs
/// `EsnModel::run` gives on the offline encoding, bit for bit.
#[test]
fn a_configured_run_on_a_recording_matches_the_offline_model_run() {
    use echos_core::model::Generative;
    use echos_host::training::{train, Solver, TrainOptions};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let rec = echos_host::events::open(&data("synthetic_evt3.raw"))
        .unwrap()
        .read_all()
        .unwrap();
    let enc = bins::encode(
        &rec.events,
        &BinSpec {
            representation: Representation::Counts,
            bin_us: 25_000,
            width: 320,
            height: 240,
            grid: (8, 6),
            merge_polarity: false,
        },
    )
    .unwrap();
    let x = echos_host::Array2::new(enc.rows, enc.cols, enc.values.clone()).unwrap();
    // Target: the next bin's total count (any target will do; the bits are what is compared).
    let sums: Vec<f64> = enc
        .values
        .chunks(enc.cols)
        .map(|r| r.iter().sum())
        .collect();
    let y: Vec<f64> = (0..enc.rows)
        .map(|i| sums[(i + 1).min(enc.rows - 1)] / 100.0)
        .collect();
    let y = echos_host::Array2::new(enc.rows, 1, y).unwrap();
    let opts = TrainOptions {
        units: 30,
        spectral_radius: 0.9,
        leak_rate: 0.5,
        input_scaling: 0.05,
        bias_scaling: 0.1,
        connectivity: 0.2,
        topology: Default::default(),
        ridge: 1e-4,
        washout: 5,
        input_features: false,
        generative: Generative::None,
        feedback_scaling: 0.0,
        noise: 0.0,
        solver: Solver::NormalEquations,
        seed: 5,
        kernel: Default::default(),
    };
    let trained = train(&opts, &x, &y).unwrap();
    echos_host::model_file::save(&dir.path().join("m.safetensors"), &trained).unwrap();
    let want = trained.clone().run(&x).unwrap();
    std::fs::copy(data("synthetic_evt3.raw"), dir.path().join("rec.raw")).unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        "[model]\npath = \"m.safetensors\"\n[loop]\nperiod_us = 1000\n\
         [sched]\npolicy = \"other\"\nlock_memory = false\n\
         [source]\nkind = \"events\"\npath = \"rec.raw\"\nspeed = 25\ngrid = [8, 6]\n\
         [sink]\nfile = \"y.npy\"\n",
    )
    .unwrap();
    let checked = echos_rt::config::read(&cfg).unwrap().check().unwrap();
    let plan = echos_rt::configure(&checked).unwrap();
    let report = echos_rt::run(plan, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.source.contains("25000 µs bins"), "{}", report.source);
    let note = report
        .notes
        .iter()
        .find(|n| n.starts_with("events:"))
        .unwrap();
    assert!(note.contains(" 0 dropped"), "{note}");
    let got = echos_host::read_array(&dir.path().join("y.npy")).unwrap();
    assert_eq!((got.rows(), got.cols()), (want.rows(), want.cols()));
    let same = got
        .data()
        .iter()
        .zip(want.data())
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(
        same,
        "outputs differ from EsnModel::run on the offline encoding"
    );
}

//! `echos events …`: look at an event-camera recording (`info`), convert it between formats
//! (`convert`) and turn it into reservoir input rows (`encode`). Reading, writing and encoding
//! live in echos_host::events; this file parses arguments and prints.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use echos_core::events::DvsEvent;
use echos_host::events::bins::{self, BinSpec, Representation};
use echos_host::events::{
    self, summary, EventReader, EventWriter, OutputKind, RawEncoding, Summary, WriteOptions,
};
use echos_host::{write_array, Array2};

use crate::{output, progress};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Format, sensor size, event and trigger counts, time span and rates of an event file.
    Info(InfoArgs),
    /// Copy the events of any readable file into .raw (EVT 3.0; --evt2 for EVT 2.0), .dat,
    /// .npy (structured t, x, y, p) or .csv (t,x,y,p).
    Convert(ConvertArgs),
    /// Time bins of events as reservoir input: one row per bin, a float64 .npy that
    /// `echos esn train --input` takes.
    Encode(EncodeArgs),
    /// Event tasks with a reservoir, each beside a baseline without one (docs/events.md).
    #[command(subcommand)]
    Task(TaskCommand),
}

#[derive(Subcommand)]
pub enum TaskCommand {
    /// Classify scikit-learn's 8x8 digits turned into event streams by a simulated sensor
    /// (three saccades, as N-MNIST); reports accuracy and the no-reservoir baseline.
    Digits(DigitsArgs),
    /// Predict a recording's next bin of pooled event counts; NRMSE beside persistence.
    Forecast(ForecastArgs),
}

#[derive(Args)]
pub struct DigitsArgs {
    /// Reservoir units.
    #[arg(long, default_value_t = 400, allow_negative_numbers = true)]
    units: usize,
    /// Seed of the reservoir, the split and the sensor noise.
    #[arg(long, default_value_t = 42, allow_negative_numbers = true)]
    seed: u64,
    /// Use only the first N digits (all 1,797 by default).
    #[arg(long, allow_negative_numbers = true)]
    limit: Option<usize>,
    /// Skip the full-resolution frame baseline (2,313 features; most of the run's time).
    #[arg(long)]
    no_full_baseline: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ForecastArgs {
    /// An event recording (any format `echos events info` reads).
    file: PathBuf,
    /// Reservoir units.
    #[arg(long, default_value_t = 300, allow_negative_numbers = true)]
    units: usize,
    /// Bin length in µs.
    #[arg(long, default_value_t = 10_000, allow_negative_numbers = true)]
    bin_us: u64,
    /// Pooled grid CXxCY (cells across x down).
    #[arg(long, default_value = "4x4")]
    grid: String,
    #[arg(long, default_value_t = 42, allow_negative_numbers = true)]
    seed: u64,
    /// Ridge strength of the readout (default: chosen on the last fifth of the training bins).
    #[arg(long, allow_negative_numbers = true)]
    ridge: Option<f64>,
    /// Input scaling of the reservoir.
    #[arg(long, default_value_t = 0.3, allow_negative_numbers = true)]
    input_scaling: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    /// An event file (.raw, .dat, .aedat4, N-MNIST .bin, .npy, .csv; recognised by content).
    file: PathBuf,
    /// Print one JSON object instead of a readable summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// The file to read.
    input: PathBuf,
    /// The file to write; its extension chooses the format (.raw, .dat, .npy, .csv).
    output: PathBuf,
    /// Write .raw files as EVT 2.0 instead of EVT 3.0.
    #[arg(long)]
    evt2: bool,
    /// Sensor width for the output header (default: the input's, else its largest x + 1).
    #[arg(long)]
    width: Option<u16>,
    /// Sensor height for the output header (default: the input's, else its largest y + 1).
    #[arg(long)]
    height: Option<u16>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReprArg {
    /// Events per cell and polarity (OFF plane, then ON).
    Counts,
    /// exp(-(bin end - last event) / tau) per cell and polarity.
    Timesurface,
    /// --bins sub-bins per bin, bilinear in time, polarity ±1.
    Voxel,
}

#[derive(Args)]
pub struct EncodeArgs {
    /// The event file to encode.
    file: PathBuf,
    /// The representation of each bin.
    #[arg(long, value_enum)]
    repr: ReprArg,
    /// Bin length in microseconds.
    #[arg(long, default_value_t = 1000)]
    bin_us: u64,
    /// Pooled grid GXxGY (cells across and down); the sensor is divided evenly.
    #[arg(long, default_value = "16x16")]
    grid: String,
    /// Time-surface decay constant in microseconds.
    #[arg(long, default_value_t = 5000.0)]
    tau_us: f32,
    /// Voxel-grid sub-bins per bin.
    #[arg(long, default_value_t = 5)]
    bins: usize,
    /// One plane for both polarities (counts, time surfaces).
    #[arg(long)]
    merge_polarity: bool,
    /// The output .npy (rows = time bins, columns = the encoder's vector).
    #[arg(long)]
    out: PathBuf,
    /// Print a JSON summary instead of a readable one.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::Info(a) => info(a),
        EventsCommand::Convert(a) => convert(a),
        EventsCommand::Encode(a) => encode(a),
        EventsCommand::Task(TaskCommand::Digits(a)) => task_digits(a),
        EventsCommand::Task(TaskCommand::Forecast(a)) => task_forecast(a),
    }
}

fn task_digits(a: DigitsArgs) -> anyhow::Result<()> {
    use echos_host::events::task::{digits_task, DigitsOptions};
    if a.units == 0 || a.units > 20_000 {
        bail!("--units must be between 1 and 20000, got {}", a.units);
    }
    let opts = DigitsOptions {
        units: a.units,
        seed: a.seed,
        limit: a.limit,
        full_baseline: !a.no_full_baseline,
        ..DigitsOptions::default()
    };
    let quiet = a.json;
    let r = digits_task(&opts, &mut |phase| {
        if !quiet {
            let _ = output::note(format_args!("digits: {phase}"));
        }
    })?;
    if a.json {
        return Ok(output::println(serde_json::to_string(&r)?)?);
    }
    let full = r.baseline_full_accuracy.map_or(String::new(), |a| {
        format!(", {a:.4} on the full-resolution frame")
    });
    output::println(format_args!(
        "digits: accuracy {:.4} with a {}-unit reservoir; without one (ridge on the summed \
         event frame) {:.4} on the same pooled input{full}; {} train / {} test digits, {:.0} \
         events per digit, {:.1} s\n  setup: {}",
        r.accuracy,
        r.units,
        r.baseline_accuracy,
        r.train_samples,
        r.test_samples,
        r.events_per_sample_mean,
        r.seconds,
        r.setup
    ))?;
    Ok(())
}

fn task_forecast(a: ForecastArgs) -> anyhow::Result<()> {
    use echos_host::events::task::{forecast_task, ForecastOptions};
    if a.units == 0 || a.units > 20_000 {
        bail!("--units must be between 1 and 20000, got {}", a.units);
    }
    let grid = a
        .grid
        .split_once(['x', 'X'])
        .and_then(|(x, y)| Some((x.trim().parse::<u16>().ok()?, y.trim().parse::<u16>().ok()?)))
        .filter(|&(x, y)| x > 0 && y > 0)
        .with_context(|| format!("--grid `{}`: expected CXxCY, e.g. 4x4", a.grid))?;
    let reader = echos_host::events::open(&a.file)?;
    let info = reader.info().clone();
    let (Some(w), Some(h)) = (info.width, info.height) else {
        bail!(
            "`{}` does not say its sensor size, which the pooled grid needs",
            a.file.display()
        );
    };
    let rec = reader.read_all()?;
    let opts = ForecastOptions {
        units: a.units,
        bin_us: a.bin_us,
        grid,
        seed: a.seed,
        ridge: a.ridge,
        input_scaling: a.input_scaling,
        ..ForecastOptions::default()
    };
    let r = forecast_task(&rec.events, w, h, &opts)?;
    if a.json {
        return Ok(output::println(serde_json::to_string(&r)?)?);
    }
    output::println(format_args!(
        "forecast: NRMSE {:.4} with a {}-unit reservoir; persistence {:.4}, training mean {:.4} \
         ({} train / {} test bins, {:.1} s)\n  setup: {}",
        r.nrmse,
        r.units,
        r.persistence_nrmse,
        r.mean_nrmse,
        r.train_bins,
        r.test_bins,
        r.seconds,
        r.setup
    ))?;
    Ok(())
}

/// A progress bar for files big enough to need one (64 MiB and more).
fn bar_for(reader: &EventReader, message: &str) -> indicatif::ProgressBar {
    if reader.file_len() > 64 << 20 {
        progress::bar(reader.file_len(), message)
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// Read the whole file in chunks, with a progress bar on big files.
fn scan(
    reader: &mut EventReader,
    mut each: impl FnMut(&[DvsEvent], &mut EventReader) -> anyhow::Result<()>,
    message: &str,
) -> anyhow::Result<()> {
    let bar = bar_for(reader, message);
    let mut buf = Vec::new();
    while reader.next_chunk(&mut buf)? > 0 {
        each(&buf, reader)?;
        bar.set_position(reader.position());
    }
    bar.finish_and_clear();
    Ok(())
}

fn info(a: InfoArgs) -> anyhow::Result<()> {
    let r = events::open(&a.file)?.with_chunk_events(1 << 18);
    let bar = bar_for(&r, "reading");
    let sum = Summary::of(r, |pos| bar.set_position(pos))?;
    bar.finish_and_clear();
    let (header, tally, stats, triggers) = (sum.info, sum.tally, sum.stats, sum.triggers);
    let first = tally.first_t;
    let duration = tally.duration_us();
    let mean_rate = tally.mean_rate_hz();
    let peak_rate = tally.peak_rate_hz();
    let aedat = sum.aedat4;
    if a.json {
        let entries: serde_json::Map<String, serde_json::Value> = header
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut j = serde_json::json!({
            "file": a.file,
            "format": header.format.name(),
            "version": header.version,
            "width": header.width,
            "height": header.height,
            "date": header.date,
            "events": tally.events,
            "events_on": tally.on,
            "events_off": tally.events - tally.on,
            "triggers": triggers,
            "t_first_us": first,
            "t_last_us": first.map(|_| tally.last_t),
            "duration_us": duration,
            "mean_rate_hz": mean_rate,
            "peak_rate_hz": peak_rate,
            "peak_bin_us": summary::PEAK_BIN_US,
            "out_of_bounds": stats.out_of_bounds,
            "time_jumps_back": stats.time_jumps_back,
            "skipped_words": stats.skipped_total(),
            "header": entries,
        });
        if let Some(c) = aedat {
            j["frames"] = c.frames.into();
            j["imu_samples"] = c.imu_samples.into();
            j["trigger_records"] = c.trigger_records.into();
        }
        return Ok(output::println(j)?);
    }
    let size = match (header.width, header.height) {
        (Some(w), Some(h)) => format!("{w} x {h}"),
        _ => "not declared".into(),
    };
    let mut text = format!(
        "{}: {}{}, sensor {size}\n",
        a.file.display(),
        header.format.name(),
        header
            .version
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default(),
    );
    if let Some(d) = &header.date {
        text.push_str(&format!("  recorded     {d}\n"));
    }
    text.push_str(&format!(
        "  events       {} ({} ON, {} OFF), {triggers} triggers\n",
        tally.events,
        tally.on,
        tally.events - tally.on
    ));
    if let (Some(f), Some(d)) = (first, duration) {
        text.push_str(&format!(
            "  time         {f} .. {} µs ({:.6} s)\n",
            tally.last_t,
            d as f64 * 1e-6
        ));
    }
    if let Some(m) = mean_rate {
        text.push_str(&format!("  mean rate    {:.3} M events/s\n", m * 1e-6));
    }
    if let Some(p) = peak_rate {
        text.push_str(&format!(
            "  peak rate    {:.3} M events/s (1 ms bins)\n",
            p * 1e-6
        ));
    }
    if let Some(c) = aedat {
        text.push_str(&format!(
            "  also         {} frames, {} IMU samples, {} trigger records\n",
            c.frames, c.imu_samples, c.trigger_records
        ));
    }
    if stats.out_of_bounds > 0 || stats.time_jumps_back > 0 {
        text.push_str(&format!(
            "  oddities     {} events outside the sensor (dropped), {} times going back\n",
            stats.out_of_bounds, stats.time_jumps_back
        ));
    }
    Ok(output::print(text)?)
}

fn convert(a: ConvertArgs) -> anyhow::Result<()> {
    let Some(kind) = OutputKind::of(&a.output) else {
        bail!(
            "{}: unknown output type (expected .raw, .dat, .npy or .csv)",
            a.output.display()
        );
    };
    let mut r = events::open(&a.input)?.with_chunk_events(1 << 18);
    let (mut w, mut h) = (a.width.or(r.info().width), a.height.or(r.info().height));
    if w.is_none() || h.is_none() {
        // no geometry in the input (an .npy or .csv): its largest coordinates, in a first pass
        let r = events::open(&a.input)?;
        let bar = bar_for(&r, "sizing");
        let t = Summary::of(r, |pos| bar.set_position(pos))?.tally;
        bar.finish_and_clear();
        w = w.or(Some(t.max_x.saturating_add(1)));
        h = h.or(Some(t.max_y.saturating_add(1)));
    }
    let opts = WriteOptions {
        width: w.unwrap_or(1),
        height: h.unwrap_or(1),
        raw: if a.evt2 {
            RawEncoding::Evt2
        } else {
            RawEncoding::Evt3
        },
    };
    if a.evt2 && kind != OutputKind::Raw {
        output::warn("--evt2 applies to .raw outputs only; ignored");
    }
    let mut writer = EventWriter::create(&a.output, opts)?;
    scan(
        &mut r,
        |chunk, r| {
            let triggers = r.take_triggers();
            Ok(writer.write(chunk, &triggers)?)
        },
        "converting",
    )?;
    let triggers = r.take_triggers();
    writer.write(&[], &triggers)?;
    let s = writer.finish()?;
    if s.triggers_dropped > 0 {
        output::warn(format!(
            "{} triggers dropped: {} files hold change events only",
            s.triggers_dropped,
            a.output.extension().and_then(|e| e.to_str()).unwrap_or("")
        ));
    }
    output::println(format!(
        "{}: {} events, {} triggers written",
        a.output.display(),
        s.events,
        s.triggers
    ))?;
    Ok(())
}

fn parse_grid(s: &str) -> anyhow::Result<(u16, u16)> {
    let parse = || -> Option<(u16, u16)> {
        let (x, y) = s.split_once(['x', 'X'])?;
        Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
    };
    match parse() {
        Some((x, y)) if x > 0 && y > 0 => Ok((x, y)),
        _ => bail!("--grid {s:?}: expected GXxGY with two positive numbers, e.g. 16x16"),
    }
}

fn encode(a: EncodeArgs) -> anyhow::Result<()> {
    if !has_extension(&a.out, "npy") {
        bail!("--out {}: the encoding is written as .npy", a.out.display());
    }
    if a.bin_us == 0 {
        bail!("--bin-us must be at least 1");
    }
    let grid = parse_grid(&a.grid)?;
    let representation = match a.repr {
        ReprArg::Counts => Representation::Counts,
        ReprArg::Timesurface => {
            if !(a.tau_us.is_finite() && a.tau_us > 0.0) {
                bail!("--tau-us must be a positive number, got {}", a.tau_us);
            }
            Representation::TimeSurface { tau_us: a.tau_us }
        }
        ReprArg::Voxel => {
            if a.bins == 0 || a.bins > 1024 {
                bail!("--bins must be between 1 and 1024, got {}", a.bins);
            }
            Representation::Voxel { bins: a.bins }
        }
    };
    let rec = events::open(&a.file)?.read_all()?;
    let (width, height) = match (rec.info.width, rec.info.height) {
        (Some(w), Some(h)) => (w, h),
        _ => {
            let mx = rec.events.iter().map(|e| e.x).max().unwrap_or(0);
            let my = rec.events.iter().map(|e| e.y).max().unwrap_or(0);
            (mx.saturating_add(1), my.saturating_add(1))
        }
    };
    if grid.0 > width || grid.1 > height {
        bail!(
            "--grid {}x{} is finer than the {width}x{height} sensor",
            grid.0,
            grid.1
        );
    }
    if rec.events.is_empty() {
        bail!("{}: no events to encode", a.file.display());
    }
    if rec.stats.time_jumps_back > 0 {
        output::warn(format!(
            "{} timestamps go back in time; events are binned in file order",
            rec.stats.time_jumps_back
        ));
    }
    let spec = BinSpec {
        representation,
        bin_us: a.bin_us,
        width,
        height,
        grid,
        merge_polarity: a.merge_polarity,
    };
    let b = bins::encode(&rec.events, &spec)?;
    let array = Array2::new(b.rows, b.cols, b.values)?;
    write_array(&a.out, &array).with_context(|| format!("writing {}", a.out.display()))?;
    if a.json {
        output::println(serde_json::json!({
            "out": a.out,
            "rows": b.rows,
            "cols": b.cols,
            "bin_us": a.bin_us,
            "start_us": b.start_us,
            "events": rec.events.len(),
            "ignored": b.ignored,
            "width": width,
            "height": height,
            "grid": [grid.0, grid.1],
        }))?;
    } else {
        output::println(format!(
            "{}: {} bins of {} µs x {} values ({} events from {})",
            a.out.display(),
            b.rows,
            a.bin_us,
            b.cols,
            rec.events.len(),
            a.file.display()
        ))?;
    }
    Ok(())
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

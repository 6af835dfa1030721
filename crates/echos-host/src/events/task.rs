//! Event tasks with a reservoir, each reported beside a baseline without one, in the same run:
//!
//! - **digits**: scikit-learn's 1,797 8×8 handwritten digits (shipped in `data/digits.u8`)
//!   become event streams the way N-MNIST was made ([`super::simulate`]: three saccades of a
//!   simulated 34 × 34 sensor), binned into pooled per-polarity counts, and classified by an
//!   ESN whose states at the end of each saccade feed a ridge classifier; the baseline is the
//!   same ridge on the summed event frame (the same pooled counts over the whole stream).
//! - **forecast**: a real recording binned into pooled per-polarity counts; an ESN predicts the
//!   next bin's counts one step ahead (trained teacher-forced on the first 70 % of the bins),
//!   scored by NRMSE on the rest beside persistence (next = current) and the training mean.
//!
//! Counts enter as `ln(1 + count)`, a documented squashing that keeps busy cells from
//! saturating the reservoir. Everything is seeded and deterministic.

use std::time::Instant;

use echos_core::esn::{Esn, EsnConfig};
use echos_core::events::{DvsEvent, EventCounts, EventEncoder, Grid, TimeBin};
use echos_core::readout::Ridge;
use echos_core::rng::Rng;
use rayon::prelude::*;

use super::simulate::{Image, SensorModel, SimulateError, Simulator};
use crate::Array2;

/// The digits, as shipped: 1,797 records of 64 pixels (0–16) and a label (data/README.md).
const DIGITS: &[u8] = include_bytes!("../../data/digits.u8");
const DIGIT_RECORD: usize = 65;

/// One digit image (pixels scaled to [0, 1]) and its label.
pub fn digits() -> impl ExactSizeIterator<Item = ([f64; 64], u8)> {
    DIGITS.chunks_exact(DIGIT_RECORD).map(|r| {
        let mut px = [0.0; 64];
        for (p, &v) in px.iter_mut().zip(&r[..64]) {
            *p = f64::from(v) / 16.0;
        }
        (px, r[64])
    })
}

/// Why a task could not run.
#[derive(Debug, thiserror::Error)]
pub enum EventTaskError {
    #[error("{0}")]
    Simulate(#[from] SimulateError),
    #[error("{name} must be {expected}, got {value}")]
    OutOfRange {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("the reservoir: {0}")]
    Esn(String),
    #[error("the readout: {0}")]
    Readout(String),
    #[error("the recording: {0}")]
    Recording(String),
}

fn out_of_range(
    name: &'static str,
    expected: &'static str,
    value: impl ToString,
) -> EventTaskError {
    EventTaskError::OutOfRange {
        name,
        expected,
        value: value.to_string(),
    }
}

/// The digits task's settings (defaults: the documented setup in docs/events.md).
#[derive(Clone, Debug, PartialEq)]
pub struct DigitsOptions {
    pub units: usize,
    pub spectral_radius: f64,
    pub leak_rate: f64,
    pub input_scaling: f64,
    pub connectivity: f64,
    /// Bin length (µs) of the reservoir's input steps.
    pub bin_us: u64,
    /// Pooled grid of the counts (cells across, down).
    pub grid: (u16, u16),
    /// Sensor pixels per image pixel (8×8 digits → 24×24 on the 34×34 sensor).
    pub scale: f64,
    pub sensor: SensorModel,
    /// Seed of the reservoir, the split and the noise.
    pub seed: u64,
    /// Use only the first `limit` digits (tests); `None`: all 1,797.
    pub limit: Option<usize>,
    /// Share of the digits used for training (the rest is the test set).
    pub train_fraction: f64,
    /// Also fit the full-resolution frame baseline (2,313 features: the slowest part).
    pub full_baseline: bool,
}

impl Default for DigitsOptions {
    fn default() -> Self {
        DigitsOptions {
            units: 400,
            spectral_radius: 0.9,
            leak_rate: 0.5,
            input_scaling: 0.3,
            connectivity: 0.1,
            bin_us: 10_000,
            grid: (12, 12),
            scale: 3.0,
            sensor: SensorModel::default(),
            seed: 42,
            limit: None,
            train_fraction: 0.7,
            full_baseline: true,
        }
    }
}

/// What the digits task measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DigitsReport {
    pub task: &'static str,
    /// Test accuracy of the reservoir + ridge classifier.
    pub accuracy: f64,
    /// Test accuracy of ridge on the summed event frame (no reservoir) on the reservoir's
    /// pooled grid, same split: the same input without the reservoir.
    pub baseline_accuracy: f64,
    /// The same on the full-resolution frame (every pixel, both polarities): the strongest
    /// linear baseline without a reservoir.
    pub baseline_full_accuracy: Option<f64>,
    pub train_samples: usize,
    pub test_samples: usize,
    pub units: usize,
    pub inputs: usize,
    /// Ridge strengths chosen on a validation fifth of the training set.
    pub ridge: f64,
    pub baseline_ridge: f64,
    pub baseline_full_ridge: Option<f64>,
    pub events_total: u64,
    pub events_per_sample_mean: f64,
    pub seconds: f64,
    pub simulate_seconds: f64,
    pub setup: String,
}

/// Ridge strengths tried on the validation split.
const RIDGES: [f64; 11] = [
    1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4,
];

/// Pooled per-polarity counts of `events` in consecutive bins from 0 to `duration`, as
/// `ln(1 + count)`: `bins` rows of `cols` values.
fn binned_counts(
    events: &[DvsEvent],
    grid: Grid,
    bin_us: u64,
    bins: usize,
) -> Result<(Vec<f64>, usize), EventTaskError> {
    let mut enc = EventCounts::new(grid, false);
    let cols = enc.output_len();
    let mut row = vec![0f32; cols];
    let mut out = Vec::with_capacity(bins * cols);
    let mut from = 0;
    for b in 0..bins as u64 {
        let bin = TimeBin {
            start: b * bin_us,
            end: (b + 1) * bin_us,
        };
        let n = events[from..].partition_point(|e| e.t < bin.end);
        enc.encode(&events[from..from + n], bin, &mut row)
            .map_err(|e| EventTaskError::Recording(e.to_string()))?;
        from += n;
        out.extend(row.iter().map(|&c| f64::from(c).ln_1p()));
    }
    Ok((out, cols))
}

/// Index of the largest value (the predicted class).
fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

/// A ridge classifier (one-hot targets, argmax) whose strength is chosen on `val`; returns
/// the test accuracy and the chosen ridge.
fn classify(
    features: &[Vec<f64>],
    labels: &[u8],
    fit: &[usize],
    val: &[usize],
    test: &[usize],
) -> Result<(f64, f64), EventTaskError> {
    let dim = features[0].len();
    let err = |e: echos_core::readout::ReadoutError| EventTaskError::Readout(e.to_string());
    let mut ridge = Ridge::new(dim, 10, RIDGES[0]).map_err(err)?;
    let onehot = |l: u8| {
        let mut y = [0.0; 10];
        y[usize::from(l)] = 1.0;
        y
    };
    for &i in fit {
        ridge
            .accumulate(&features[i], &onehot(labels[i]))
            .map_err(err)?;
    }
    let accuracy =
        |w: &echos_core::readout::Linear, set: &[usize]| -> Result<f64, EventTaskError> {
            let mut y = [0.0; 10];
            let mut right = 0;
            for &i in set {
                w.predict(&features[i], &mut y).map_err(err)?;
                right += usize::from(argmax(&y) == usize::from(labels[i]));
            }
            Ok(right as f64 / set.len().max(1) as f64)
        };
    let mut best = (f64::NEG_INFINITY, RIDGES[0]);
    for &lambda in &RIDGES {
        let Ok(w) = ridge.fit_with(lambda) else {
            continue;
        };
        let a = accuracy(&w, val)?;
        if a > best.0 {
            best = (a, lambda);
        }
    }
    for &i in val {
        ridge
            .accumulate(&features[i], &onehot(labels[i]))
            .map_err(err)?;
    }
    let w = ridge.fit_with(best.1).map_err(err)?;
    Ok((accuracy(&w, test)?, best.1))
}

/// Runs the digits task; `progress` hears about each phase (for a person watching).
pub fn digits_task(
    opts: &DigitsOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<DigitsReport, EventTaskError> {
    let started = Instant::now();
    if !(opts.train_fraction > 0.1 && opts.train_fraction < 0.95) {
        return Err(out_of_range(
            "train_fraction",
            "in (0.1, 0.95)",
            opts.train_fraction,
        ));
    }
    if opts.bin_us == 0 {
        return Err(out_of_range("bin_us", "at least 1", 0));
    }
    let sim = Simulator::new(opts.sensor.clone())?;
    let (sw, sh) = (opts.sensor.width, opts.sensor.height);
    let grid = Grid::new(sw, sh, opts.grid.0, opts.grid.1)
        .map_err(|e| out_of_range("grid", "1..=sensor size cells each way", e))?;
    let bins = sim.duration_us().div_ceil(opts.bin_us) as usize;
    let saccades = opts.sensor.path.len();
    let all: Vec<([f64; 64], u8)> = digits().collect();
    let n = opts.limit.unwrap_or(all.len()).min(all.len());
    if n < 30 {
        return Err(out_of_range("limit", "at least 30 digits", n));
    }
    // Centre the scaled image on the sensor's travel.
    let side = 8.0 * opts.scale;
    let (span_x, span_y) = opts
        .sensor
        .path
        .iter()
        .fold((0.0f64, 0.0f64), |(a, b), &(x, y)| (a.max(x), b.max(y)));
    let x0 = (f64::from(sw) - side - span_x) / 2.0;
    let y0 = (f64::from(sh) - side - span_y) / 2.0;

    progress(&format!("simulating the event camera over {n} digits"));
    let t_sim = Instant::now();
    let streams: Vec<Vec<DvsEvent>> = all[..n]
        .par_iter()
        .enumerate()
        .map(|(i, (px, _))| {
            let img = Image {
                width: 8,
                height: 8,
                pixels: px,
            };
            sim.record(
                &img,
                x0,
                y0,
                opts.scale,
                opts.seed ^ (i as u64).wrapping_mul(0x9e37),
            )
        })
        .collect::<Result<_, _>>()?;
    let simulate_seconds = t_sim.elapsed().as_secs_f64();
    let events_total: u64 = streams.iter().map(|s| s.len() as u64).sum();

    let inputs = 2 * grid.cells();
    let config = EsnConfig {
        units: opts.units,
        inputs,
        spectral_radius: opts.spectral_radius,
        leak_rate: opts.leak_rate,
        input_scaling: opts.input_scaling,
        connectivity: opts.connectivity,
        seed: opts.seed,
        ..EsnConfig::default()
    };
    let esn = Esn::<f64>::new(&config).map_err(|e| EventTaskError::Esn(e.to_string()))?;
    progress(&format!(
        "running a {}-unit reservoir over {bins} bins of each stream",
        opts.units
    ));
    // Per digit: the reservoir's states at the end of each saccade, and the summed frame.
    let per_saccade = bins / saccades;
    let full_grid = Grid::full(sw, sh).map_err(|e| EventTaskError::Recording(e.to_string()))?;
    let full_frames: Vec<Vec<f64>> = if opts.full_baseline {
        streams
            .par_iter()
            .map(|ev| {
                let span = bins as u64 * opts.bin_us;
                binned_counts(ev, full_grid.clone(), span, 1).map(|(f, _)| f)
            })
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let features: Vec<(Vec<f64>, Vec<f64>)> = streams
        .par_iter()
        .map_init(
            || esn.clone(),
            |esn, ev| -> Result<(Vec<f64>, Vec<f64>), EventTaskError> {
                let (u, cols) = binned_counts(ev, grid.clone(), opts.bin_us, bins)?;
                esn.reset();
                let mut states = Vec::with_capacity(saccades * opts.units);
                let mut frame = vec![0.0; cols];
                let mut raw = vec![0.0; cols];
                for b in 0..bins {
                    let row = &u[b * cols..(b + 1) * cols];
                    for (f, &v) in raw.iter_mut().zip(row) {
                        *f += v.exp_m1();
                    }
                    let x = esn
                        .step(row, None)
                        .map_err(|e| EventTaskError::Esn(e.to_string()))?;
                    if (b + 1) % per_saccade == 0 && states.len() < saccades * opts.units {
                        states.extend_from_slice(x);
                    }
                }
                for (f, r) in frame.iter_mut().zip(&raw) {
                    *f = r.ln_1p();
                }
                Ok((states, frame))
            },
        )
        .collect::<Result<_, _>>()?;
    let labels: Vec<u8> = all[..n].iter().map(|d| d.1).collect();

    // A seeded shuffle, then train / test; the last fifth of train validates the ridge.
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(opts.seed ^ 0x5eed);
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let n_train = (n as f64 * opts.train_fraction) as usize;
    let (train, test) = order.split_at(n_train);
    let (fit, val) = train.split_at(train.len() * 4 / 5);
    progress("fitting the ridge classifiers (reservoir, and the summed frame without one)");
    let (states, frames): (Vec<Vec<f64>>, Vec<Vec<f64>>) = features.into_iter().unzip();
    let (accuracy, ridge) = classify(&states, &labels, fit, val, test)?;
    let (baseline_accuracy, baseline_ridge) = classify(&frames, &labels, fit, val, test)?;
    let (baseline_full_accuracy, baseline_full_ridge) = if opts.full_baseline {
        let (a, r) = classify(&full_frames, &labels, fit, val, test)?;
        (Some(a), Some(r))
    } else {
        (None, None)
    };
    let s = &opts.sensor;
    let setup = format!(
        "sklearn digits (8x8, {n} images) x{} on a {}x{} sensor, {} saccades of {} ms along {:?} px, \
         threshold {} +- {}, refractory {} us, noise {} Hz/pixel, step {} us; input: ln(1+count) on a \
         {}x{} grid x 2 polarities per {} ms bin; ESN units {} sr {} leak {} input scaling {} \
         connectivity {} seed {}; features: states at the end of each saccade; ridge chosen on a \
         validation fifth of {} training samples from {:?}",
        opts.scale,
        s.width,
        s.height,
        saccades,
        s.saccade_us / 1000,
        s.path,
        s.contrast_threshold,
        s.threshold_sigma,
        s.refractory_us,
        s.noise_hz,
        s.step_us,
        opts.grid.0,
        opts.grid.1,
        opts.bin_us / 1000,
        opts.units,
        opts.spectral_radius,
        opts.leak_rate,
        opts.input_scaling,
        opts.connectivity,
        opts.seed,
        train.len(),
        RIDGES
    );
    Ok(DigitsReport {
        task: "digits",
        accuracy,
        baseline_accuracy,
        baseline_full_accuracy,
        train_samples: train.len(),
        test_samples: test.len(),
        units: opts.units,
        inputs,
        ridge,
        baseline_ridge,
        baseline_full_ridge,
        events_total,
        events_per_sample_mean: events_total as f64 / n as f64,
        seconds: started.elapsed().as_secs_f64(),
        simulate_seconds,
        setup,
    })
}

/// The forecasting task's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastOptions {
    pub units: usize,
    pub bin_us: u64,
    /// Pooled grid (cells across, down).
    pub grid: (u16, u16),
    pub seed: u64,
    /// Share of the bins used for training.
    pub train_fraction: f64,
    pub washout: usize,
    pub input_scaling: f64,
    /// Ridge strength; `None`: chosen from 10⁻³…10³ on the last fifth of the training bins.
    pub ridge: Option<f64>,
}

impl Default for ForecastOptions {
    fn default() -> Self {
        ForecastOptions {
            units: 300,
            bin_us: 10_000,
            grid: (4, 4),
            seed: 42,
            train_fraction: 0.7,
            washout: 20,
            input_scaling: 0.3,
            ridge: None,
        }
    }
}

/// What the forecasting task measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ForecastReport {
    pub task: &'static str,
    pub bins: usize,
    pub inputs: usize,
    pub train_bins: usize,
    pub test_bins: usize,
    /// NRMSE of the reservoir's one-step-ahead prediction on the test bins.
    pub nrmse: f64,
    /// NRMSE of persistence (the next bin equals this one).
    pub persistence_nrmse: f64,
    /// NRMSE of the training mean.
    pub mean_nrmse: f64,
    pub units: usize,
    /// The ridge strength used (given, or chosen on validation bins).
    pub ridge: f64,
    pub seconds: f64,
    pub setup: String,
}

/// The forecasting task on time-sorted `events` of a `width × height` sensor.
pub fn forecast_task(
    events: &[DvsEvent],
    width: u16,
    height: u16,
    opts: &ForecastOptions,
) -> Result<ForecastReport, EventTaskError> {
    let started = Instant::now();
    if opts.bin_us == 0 {
        return Err(out_of_range("bin_us", "at least 1", 0));
    }
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(EventTaskError::Recording("it holds no events".into()));
    };
    let grid = Grid::new(width, height, opts.grid.0, opts.grid.1)
        .map_err(|e| out_of_range("grid", "1..=sensor size cells each way", e))?;
    let origin = first.t;
    let bins = ((last.t - origin) / opts.bin_us + 1) as usize;
    if bins < 100 {
        return Err(EventTaskError::Recording(format!(
            "{bins} bins of {} µs: at least 100 are needed (use a shorter --bin-us)",
            opts.bin_us
        )));
    }
    if bins > 10_000_000 {
        return Err(out_of_range(
            "bin_us",
            "long enough for at most 10^7 bins",
            opts.bin_us,
        ));
    }
    let shifted: Vec<DvsEvent> = events
        .iter()
        .map(|e| DvsEvent {
            t: e.t - origin,
            ..*e
        })
        .collect();
    let (u, cols) = binned_counts(&shifted, grid, opts.bin_us, bins)?;
    let series =
        Array2::new(bins, cols, u).map_err(|e| EventTaskError::Recording(e.to_string()))?;
    let n_train = (bins as f64 * opts.train_fraction) as usize;
    if n_train <= opts.washout + 10 || bins - n_train < 10 {
        return Err(out_of_range(
            "train_fraction",
            "leaving >= 10 bins on each side",
            opts.train_fraction,
        ));
    }
    let rows = |a: usize, b: usize| -> Result<Array2, EventTaskError> {
        let d = series.data()[a * cols..b * cols].to_vec();
        Array2::new(b - a, cols, d).map_err(|e| EventTaskError::Recording(e.to_string()))
    };
    // Input bin t, target bin t + 1.
    let (x_train, y_train) = (rows(0, n_train - 1)?, rows(1, n_train)?);
    let (x_test, y_test) = (rows(n_train - 1, bins - 1)?, rows(n_train, bins)?);
    let c = EsnConfig::default();
    let options = |ridge: f64| crate::training::TrainOptions {
        units: opts.units,
        spectral_radius: c.spectral_radius,
        leak_rate: c.leak_rate,
        input_scaling: opts.input_scaling,
        bias_scaling: c.bias_scaling,
        connectivity: c.connectivity,
        topology: c.topology,
        ridge,
        washout: opts.washout,
        input_features: true,
        generative: echos_core::model::Generative::None,
        feedback_scaling: 0.0,
        noise: 0.0,
        solver: crate::training::Solver::NormalEquations,
        seed: opts.seed,
        kernel: Default::default(),
    };
    let esn_err = |e: crate::training::TrainError| EventTaskError::Esn(e.to_string());
    // The ridge strength: given, or the best of a path on the last fifth of the training bins
    // (never the test bins).
    let ridge = match opts.ridge {
        Some(r) => r,
        None => {
            let n_fit = n_train * 4 / 5;
            let (x_fit, y_fit) = (rows(0, n_fit - 1)?, rows(1, n_fit)?);
            let (x_val, y_val) = (rows(n_fit - 1, n_train - 1)?, rows(n_fit, n_train)?);
            let mut best = (f64::INFINITY, 1.0);
            for r in [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3] {
                let mut m = crate::training::train(&options(r), &x_fit, &y_fit).map_err(esn_err)?;
                let p = m.run(&x_val).map_err(esn_err)?;
                let e = echos_core::metrics::nrmse(p.data(), y_val.data()).unwrap_or(f64::NAN);
                if e < best.0 {
                    best = (e, r);
                }
            }
            best.1
        }
    };
    let mut model = crate::training::train(&options(ridge), &x_train, &y_train).map_err(esn_err)?;
    let pred = model.run(&x_test).map_err(esn_err)?;
    let nrmse = |p: &[f64]| echos_core::metrics::nrmse(p, y_test.data()).unwrap_or(f64::NAN);
    let mut mean = vec![0.0; cols];
    for r in 0..y_train.rows() {
        for (m, v) in mean.iter_mut().zip(y_train.row(r)) {
            *m += v / y_train.rows() as f64;
        }
    }
    let mean_pred: Vec<f64> = (0..y_test.rows())
        .flat_map(|_| mean.iter().copied())
        .collect();
    Ok(ForecastReport {
        task: "forecast",
        bins,
        inputs: cols,
        train_bins: n_train,
        test_bins: bins - n_train,
        nrmse: nrmse(pred.data()),
        persistence_nrmse: nrmse(x_test.data()),
        mean_nrmse: nrmse(&mean_pred),
        units: opts.units,
        ridge,
        seconds: started.elapsed().as_secs_f64(),
        setup: format!(
            "ln(1+count) on a {}x{} grid x 2 polarities per {} ms bin of a {width}x{height} \
             recording; ESN {} units (engine defaults otherwise, input scaling {}, ridge {} ({}), input features), seed {}, washout {}, \
             trained teacher-forced on the first {} bins, scored on the next {}",
            opts.grid.0,
            opts.grid.1,
            opts.bin_us as f64 / 1000.0,
            opts.units,
            opts.input_scaling,
            ridge,
            if opts.ridge.is_some() { "given" } else { "chosen on the last fifth of the training bins" },
            opts.seed,
            opts.washout,
            n_train,
            bins - n_train
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_digits_are_the_sklearn_set() {
        let d: Vec<_> = digits().collect();
        assert_eq!(d.len(), 1797);
        let mut per_class = [0usize; 10];
        for (_, l) in &d {
            per_class[usize::from(*l)] += 1;
        }
        // load_digits' class counts.
        assert_eq!(
            per_class,
            [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        // The first image of load_digits (a 0), row 1.
        let row1: Vec<u8> = d[0].0[8..16].iter().map(|v| (v * 16.0) as u8).collect();
        assert_eq!(row1, [0, 0, 13, 15, 10, 15, 5, 0]);
    }

    #[test]
    fn a_small_digits_run_beats_chance_and_is_deterministic() {
        let opts = DigitsOptions {
            units: 100,
            limit: Some(300),
            full_baseline: false,
            ..DigitsOptions::default()
        };
        let a = digits_task(&opts, &mut |_| {}).unwrap();
        assert_eq!(a.train_samples + a.test_samples, 300);
        // Ten classes: chance is 0.1; both classifiers must be far above it even on 210
        // training digits.
        assert!(a.accuracy > 0.6 && a.baseline_accuracy > 0.6, "{a:?}");
        assert_eq!(a.baseline_full_accuracy, None);
        let b = digits_task(&opts, &mut |_| {}).unwrap();
        assert_eq!(
            (a.accuracy, a.baseline_accuracy, a.events_total),
            (b.accuracy, b.baseline_accuracy, b.events_total)
        );
    }

    /// A synthetic recording with a predictable rhythm: bursts of ON events in one corner
    /// every 50 ms and OFF events in another every 70 ms, plus sparse noise.
    fn rhythm() -> Vec<DvsEvent> {
        let mut rng = Rng::new(3);
        let mut ev = Vec::new();
        for t in (0..3_000_000u64).step_by(500) {
            if (t / 10_000) % 5 == 0 {
                ev.push(DvsEvent::new(t, 5 + rng.below(20) as u16, 5, 1));
            }
            if (t / 10_000) % 7 == 0 {
                ev.push(DvsEvent::new(t, 90, 70 + rng.below(20) as u16, 0));
            }
            if rng.below(8) == 0 {
                ev.push(DvsEvent::new(
                    t,
                    rng.below(100) as u16,
                    rng.below(100) as u16,
                    1,
                ));
            }
        }
        ev
    }

    #[test]
    fn forecasting_a_rhythm_beats_persistence_and_the_mean() {
        let r = forecast_task(&rhythm(), 100, 100, &ForecastOptions::default()).unwrap();
        assert_eq!(r.bins, 300);
        assert!(
            r.nrmse < r.persistence_nrmse && r.nrmse < r.mean_nrmse,
            "{r:?}"
        );
        // Bad settings are named; too short a recording is refused.
        let short: Vec<DvsEvent> = rhythm().into_iter().take(50).collect();
        assert!(matches!(
            forecast_task(&short, 100, 100, &ForecastOptions::default()),
            Err(EventTaskError::Recording(_))
        ));
        assert!(matches!(
            forecast_task(
                &rhythm(),
                100,
                100,
                &ForecastOptions {
                    bin_us: 0,
                    ..Default::default()
                }
            ),
            Err(EventTaskError::OutOfRange { name: "bin_us", .. })
        ));
    }
}

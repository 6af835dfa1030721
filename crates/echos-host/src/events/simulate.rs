//! An event-camera simulator: still images seen by a moving sensor become DVS event streams,
//! the way N-MNIST was recorded (Orchard et al. 2015: a sensor on a pan-tilt unit making three
//! saccades, a triangle of movements, over a still image on a monitor).
//!
//! The pixel model is the usual one of event-camera simulators (ESIM, v2e): each pixel keeps a
//! reference log intensity and emits an ON (OFF) event each time its log intensity rises (falls)
//! by its contrast threshold from that reference, which then moves by one threshold. Thresholds
//! vary per pixel (mismatch σ, fixed per sensor), a pixel that fired stays silent for the
//! refractory period (its reference still follows), and shot noise adds events of random
//! polarity at a rate per pixel. Log intensity is `ln(ε + I)` with `I ∈ [0, 1]`, the image
//! sampled bilinearly at the moving sensor's sub-pixel position; event times are interpolated
//! within a time step. Everything is deterministic from the seeds (the engine's RNG).

use echos_core::events::DvsEvent;
use echos_core::rng::Rng;

/// The sensor and its motion. Defaults: a 34 × 34 sensor (N-MNIST's), three saccades of
/// 100 ms along a triangle with 4-pixel legs, 1 ms steps, threshold 0.15 ± 0.03, 0.5 ms
/// refractory period, 0.2 Hz of noise per pixel, ε = 0.1.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorModel {
    pub width: u16,
    pub height: u16,
    /// Mean contrast threshold in log intensity (> 0).
    pub contrast_threshold: f64,
    /// Standard deviation of the per-pixel threshold (≥ 0); thresholds are clamped to ≥ 0.01.
    pub threshold_sigma: f64,
    /// µs a pixel stays silent after an event.
    pub refractory_us: u64,
    /// Shot-noise events per pixel per second (≥ 0).
    pub noise_hz: f64,
    /// ε of `ln(ε + I)` (> 0): how dark pixels respond.
    pub log_eps: f64,
    /// Simulation step in µs (≥ 1).
    pub step_us: u64,
    /// Duration of each saccade in µs.
    pub saccade_us: u64,
    /// The saccades' end points relative to the start, in sensor pixels; the sensor moves
    /// from (0, 0) through each in turn (N-MNIST: three, back to the start).
    pub path: Vec<(f64, f64)>,
    /// Seed of the per-pixel thresholds (a property of the sensor).
    pub sensor_seed: u64,
}

impl Default for SensorModel {
    fn default() -> Self {
        SensorModel {
            width: 34,
            height: 34,
            contrast_threshold: 0.15,
            threshold_sigma: 0.03,
            refractory_us: 500,
            noise_hz: 0.2,
            log_eps: 0.1,
            step_us: 1_000,
            saccade_us: 100_000,
            path: vec![(4.0, 4.0), (8.0, 0.0), (0.0, 0.0)],
            sensor_seed: 1,
        }
    }
}

/// A simulator setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimulateError {
    #[error("{name} must be {expected}, got {value}")]
    OutOfRange {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("the image has {got} pixels, but its size says {width} x {height}")]
    ImageSize {
        width: usize,
        height: usize,
        got: usize,
    },
}

/// A grey image, values in [0, 1], row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Image<'a> {
    pub width: usize,
    pub height: usize,
    pub pixels: &'a [f64],
}

/// A sensor with its fixed per-pixel thresholds.
pub struct Simulator {
    model: SensorModel,
    thresholds: Vec<f64>,
}

impl Simulator {
    pub fn new(model: SensorModel) -> Result<Simulator, SimulateError> {
        let bad = |name, expected, value: String| {
            Err(SimulateError::OutOfRange {
                name,
                expected,
                value,
            })
        };
        if model.width == 0 || model.height == 0 || model.width > 1024 || model.height > 1024 {
            return bad(
                "sensor size",
                "1..=1024 pixels each way",
                format!("{}x{}", model.width, model.height),
            );
        }
        if !(model.contrast_threshold.is_finite() && model.contrast_threshold > 0.0) {
            return bad(
                "contrast_threshold",
                "a finite number > 0",
                model.contrast_threshold.to_string(),
            );
        }
        if !(model.threshold_sigma.is_finite() && model.threshold_sigma >= 0.0) {
            return bad(
                "threshold_sigma",
                "a finite number >= 0",
                model.threshold_sigma.to_string(),
            );
        }
        if !(model.noise_hz.is_finite() && (0.0..=1e6).contains(&model.noise_hz)) {
            return bad("noise_hz", "in [0, 1e6]", model.noise_hz.to_string());
        }
        if !(model.log_eps.is_finite() && model.log_eps > 0.0) {
            return bad("log_eps", "a finite number > 0", model.log_eps.to_string());
        }
        if model.step_us == 0 || model.saccade_us < model.step_us {
            return bad(
                "step_us / saccade_us",
                "step_us >= 1 and saccade_us >= step_us",
                format!("{} / {}", model.step_us, model.saccade_us),
            );
        }
        let steps = (model.saccade_us / model.step_us).saturating_mul(model.path.len() as u64);
        if model.path.is_empty() || steps > 1_000_000 {
            return bad(
                "path",
                "1 or more saccades of at most 1,000,000 steps in all",
                format!("{} saccades, {steps} steps", model.path.len()),
            );
        }
        if model
            .path
            .iter()
            .any(|&(x, y)| !(x.is_finite() && y.is_finite() && x.abs() <= 1e4 && y.abs() <= 1e4))
        {
            return bad(
                "path",
                "finite points within ±10^4 pixels",
                format!("{:?}", model.path),
            );
        }
        let mut rng = Rng::new(model.sensor_seed);
        let n = usize::from(model.width) * usize::from(model.height);
        let thresholds = (0..n)
            .map(|_| (model.contrast_threshold + model.threshold_sigma * rng.normal()).max(0.01))
            .collect();
        Ok(Simulator { model, thresholds })
    }

    pub fn model(&self) -> &SensorModel {
        &self.model
    }

    /// Total duration of one recording in µs.
    pub fn duration_us(&self) -> u64 {
        self.model.saccade_us * self.model.path.len() as u64
    }

    /// The sensor's offset at time `t` (µs): along the path, each saccade eased (half cosine),
    /// so the motion starts and stops smoothly as a pan-tilt unit's does.
    fn offset(&self, t: u64) -> (f64, f64) {
        let m = &self.model;
        let k = ((t / m.saccade_us) as usize).min(m.path.len() - 1);
        let from = if k == 0 { (0.0, 0.0) } else { m.path[k - 1] };
        let to = m.path[k];
        let s = ((t - k as u64 * m.saccade_us) as f64 / m.saccade_us as f64).clamp(0.0, 1.0);
        let e = 0.5 - 0.5 * (std::f64::consts::PI * s).cos();
        (from.0 + (to.0 - from.0) * e, from.1 + (to.1 - from.1) * e)
    }

    /// The events of `image` placed at (`x0`, `y0`) on the sensor (then moved along the path),
    /// scaled by `scale` sensor pixels per image pixel; `noise_seed` seeds the shot noise.
    /// Time-sorted, `t` from 0.
    pub fn record(
        &self,
        image: &Image<'_>,
        x0: f64,
        y0: f64,
        scale: f64,
        noise_seed: u64,
    ) -> Result<Vec<DvsEvent>, SimulateError> {
        if image.width == 0
            || image.height == 0
            || image.width.checked_mul(image.height) != Some(image.pixels.len())
        {
            return Err(SimulateError::ImageSize {
                width: image.width,
                height: image.height,
                got: image.pixels.len(),
            });
        }
        if !(scale.is_finite() && scale > 0.0 && x0.is_finite() && y0.is_finite()) {
            return Err(SimulateError::OutOfRange {
                name: "placement",
                expected: "finite x0, y0 and a scale > 0",
                value: format!("({x0}, {y0}) x {scale}"),
            });
        }
        let m = &self.model;
        let (w, h) = (usize::from(m.width), usize::from(m.height));
        let sample = |sx: f64, sy: f64| -> f64 {
            // Sensor pixel centre → image coordinates (pixel centres at k + 0.5).
            let u = sx / scale - 0.5;
            let v = sy / scale - 0.5;
            let at = |i: i64, j: i64| -> f64 {
                if i < 0 || j < 0 || i >= image.width as i64 || j >= image.height as i64 {
                    0.0
                } else {
                    image.pixels[j as usize * image.width + i as usize].clamp(0.0, 1.0)
                }
            };
            let (i, j) = (u.floor(), v.floor());
            let (fx, fy) = (u - i, v - j);
            let (i, j) = (i as i64, j as i64);
            at(i, j) * (1.0 - fx) * (1.0 - fy)
                + at(i + 1, j) * fx * (1.0 - fy)
                + at(i, j + 1) * (1.0 - fx) * fy
                + at(i + 1, j + 1) * fx * fy
        };
        let log_frame = |t: u64, out: &mut [f64]| {
            let (ox, oy) = self.offset(t);
            for y in 0..h {
                for x in 0..w {
                    // The sensor moving by +o sees the image moving by −o.
                    let sx = x as f64 + 0.5 - x0 + ox;
                    let sy = y as f64 + 0.5 - y0 + oy;
                    out[y * w + x] = (m.log_eps + sample(sx, sy)).ln();
                }
            }
        };
        let mut reference = vec![0.0; w * h];
        log_frame(0, &mut reference);
        let mut prev = reference.clone();
        let mut now = vec![0.0; w * h];
        let mut last_event = vec![None::<u64>; w * h];
        let mut rng = Rng::new(noise_seed);
        let p_noise = m.noise_hz * m.step_us as f64 * 1e-6;
        let mut events = Vec::new();
        let mut frame = Vec::new();
        let end = self.duration_us();
        let mut t0 = 0;
        while t0 < end {
            let t1 = (t0 + m.step_us).min(end);
            log_frame(t1, &mut now);
            frame.clear();
            for p in 0..w * h {
                let c = self.thresholds[p];
                let change = now[p] - prev[p];
                let mut d = now[p] - reference[p];
                while d.abs() >= c {
                    let sign = d.signum();
                    reference[p] += sign * c;
                    d -= sign * c;
                    // When, within the step, the log intensity crossed the new reference.
                    let frac = if change.abs() > 1e-12 {
                        ((reference[p] - prev[p]) / change).clamp(0.0, 1.0)
                    } else {
                        1.0
                    };
                    let t = t0 + (frac * (t1 - t0) as f64) as u64;
                    if last_event[p].is_some_and(|l| t < l + m.refractory_us) {
                        continue;
                    }
                    last_event[p] = Some(t);
                    frame.push(event(t, p, w, sign > 0.0));
                }
                if p_noise > 0.0 && rng.uniform01() < p_noise {
                    let t = t0 + rng.below(t1 - t0);
                    frame.push(event(t, p, w, rng.uniform01() < 0.5));
                }
            }
            frame.sort_by_key(|e| (e.t, e.y, e.x));
            events.extend_from_slice(&frame);
            std::mem::swap(&mut prev, &mut now);
            t0 = t1;
        }
        Ok(events)
    }
}

fn event(t: u64, p: usize, w: usize, on: bool) -> DvsEvent {
    DvsEvent::new(t, (p % w) as u16, (p / w) as u16, u8::from(on))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(model: SensorModel) -> Simulator {
        Simulator::new(SensorModel {
            noise_hz: 0.0,
            ..model
        })
        .unwrap()
    }

    #[test]
    fn a_uniform_image_gives_no_events_without_noise() {
        let px = vec![0.7; 64];
        let img = Image {
            width: 8,
            height: 8,
            pixels: &px,
        };
        // A uniform image wider than the sensor's travel: motion changes nothing.
        let s = quiet(SensorModel::default());
        let ev = s.record(&img, -40.0, -40.0, 20.0, 1).unwrap();
        assert!(ev.is_empty(), "{} events", ev.len());
    }

    #[test]
    fn noise_comes_at_its_rate() {
        let px = vec![0.5; 64];
        let img = Image {
            width: 8,
            height: 8,
            pixels: &px,
        };
        let s = Simulator::new(SensorModel {
            noise_hz: 50.0,
            ..SensorModel::default()
        })
        .unwrap();
        let ev = s.record(&img, -40.0, -40.0, 20.0, 3).unwrap();
        // 34 × 34 pixels × 50 Hz × 0.3 s = 17,340 expected (one event per step at most).
        let want = 34.0 * 34.0 * 50.0 * 0.3;
        assert!(
            (ev.len() as f64 - want).abs() < 5.0 * want.sqrt(),
            "{} vs {want}",
            ev.len()
        );
        let on = ev.iter().filter(|e| e.p == 1).count() as f64;
        assert!((on / ev.len() as f64 - 0.5).abs() < 0.02);
    }

    #[test]
    fn an_edge_sweeping_a_pixel_fires_the_threshold_count() {
        // A bright half-plane moving onto dark pixels: each pixel it passes sees ln(1.1/0.1),
        // i.e. 2.40 in log intensity, and fires ⌊2.40 / C⌋ ON events (C = 0.3, no mismatch, no
        // refractory period): 7.
        let mut px = vec![0.0; 16 * 16];
        for y in 0..16 {
            for x in 8..16 {
                px[y * 16 + x] = 1.0;
            }
        }
        let img = Image {
            width: 16,
            height: 16,
            pixels: &px,
        };
        let s = quiet(SensorModel {
            width: 8,
            height: 8,
            contrast_threshold: 0.3,
            threshold_sigma: 0.0,
            refractory_us: 0,
            path: vec![(6.0, 0.0)],
            ..SensorModel::default()
        });
        // Image pixel columns 8.. are bright; the sensor starts over columns 0..8 (dark) and
        // moves 6 px right, so sensor columns 2..8 end up bright.
        let ev = s.record(&img, 0.0, 0.0, 1.0, 0).unwrap();
        assert!(ev.iter().all(|e| e.p == 1), "only ON events");
        for x in 3..8u16 {
            let n = ev.iter().filter(|e| e.x == x && e.y == 4).count();
            assert_eq!(n, 7, "column {x}");
        }
        assert_eq!(ev.iter().filter(|e| e.x == 0).count(), 0);
        assert!(ev.windows(2).all(|p| p[0].t <= p[1].t), "time-sorted");
    }

    #[test]
    fn the_refractory_period_spaces_a_pixels_events() {
        let mut px = vec![0.0; 16 * 16];
        for y in 0..16 {
            for x in 8..16 {
                px[y * 16 + x] = 1.0;
            }
        }
        let img = Image {
            width: 16,
            height: 16,
            pixels: &px,
        };
        let s = quiet(SensorModel {
            width: 8,
            height: 8,
            contrast_threshold: 0.3,
            threshold_sigma: 0.0,
            refractory_us: 5_000,
            path: vec![(6.0, 0.0)],
            ..SensorModel::default()
        });
        let ev = s.record(&img, 0.0, 0.0, 1.0, 0).unwrap();
        for x in 0..8u16 {
            let ts: Vec<u64> = ev
                .iter()
                .filter(|e| e.x == x && e.y == 4)
                .map(|e| e.t)
                .collect();
            assert!(
                ts.windows(2).all(|w| w[1] - w[0] >= 5_000),
                "column {x}: {ts:?}"
            );
        }
    }

    #[test]
    fn deterministic_by_seed_and_bad_settings_are_named() {
        let px: Vec<f64> = (0..64).map(|i| (i % 7) as f64 / 7.0).collect();
        let img = Image {
            width: 8,
            height: 8,
            pixels: &px,
        };
        let s = Simulator::new(SensorModel::default()).unwrap();
        let a = s.record(&img, 1.0, 3.0, 3.0, 9).unwrap();
        assert!(a.len() > 100);
        assert_eq!(a, s.record(&img, 1.0, 3.0, 3.0, 9).unwrap());
        assert_ne!(a, s.record(&img, 1.0, 3.0, 3.0, 10).unwrap());
        assert!(a.iter().all(|e| e.x < 34 && e.y < 34));
        for (m, name) in [
            (
                SensorModel {
                    contrast_threshold: 0.0,
                    ..SensorModel::default()
                },
                "contrast_threshold",
            ),
            (
                SensorModel {
                    noise_hz: f64::NAN,
                    ..SensorModel::default()
                },
                "noise_hz",
            ),
            (
                SensorModel {
                    path: vec![],
                    ..SensorModel::default()
                },
                "path",
            ),
            (
                SensorModel {
                    step_us: 0,
                    ..SensorModel::default()
                },
                "step_us / saccade_us",
            ),
        ] {
            match Simulator::new(m) {
                Err(SimulateError::OutOfRange { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {:?}", other.map(|_| ())),
            }
        }
        let short = Image {
            width: 8,
            height: 8,
            pixels: &px[..10],
        };
        assert!(matches!(
            s.record(&short, 0.0, 0.0, 1.0, 0),
            Err(SimulateError::ImageSize { .. })
        ));
    }
}

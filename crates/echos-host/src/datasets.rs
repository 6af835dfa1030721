//! Benchmark time series for reservoir tasks: Mackey-Glass (delay differential equation, Euler as
//! in Jaeger's GMD Report 148 or RK4), NARMA10, Lorenz and the Santa Fe laser series. Pure
//! functions of their parameters and seed, computed with `libm` so every machine gets the same
//! bits.

use std::path::Path;

use echos_core::rng::Rng;

use crate::array::Array2;
use crate::error::DataError;

/// How the Mackey-Glass delay differential equation is integrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrator {
    /// Forward Euler: Jaeger's GMD Report 148 setup (step 0.1, subsampled by 10).
    Euler,
    /// Classical Runge-Kutta 4; the delayed value at half steps is linearly interpolated.
    Rk4,
}

/// dy/dt = beta·y(t−tau) / (1 + y(t−tau)^n) − gamma·y(t), sampled every `dt·subsample`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MackeyGlass {
    pub tau: f64,
    pub beta: f64,
    pub gamma: f64,
    pub n: f64,
    pub dt: f64,
    pub subsample: usize,
    pub integrator: Integrator,
    /// Samples (after subsampling) dropped at the start so the series is on the attractor.
    pub discard: usize,
    /// Seeds the initial history: constant 1.2 plus U[−0.1, 0.1] per history point.
    pub seed: u64,
}

impl Default for MackeyGlass {
    /// Jaeger's setup: tau = 17, Euler step 0.1, one sample per time unit.
    fn default() -> Self {
        Self {
            tau: 17.0,
            beta: 0.2,
            gamma: 0.1,
            n: 10.0,
            dt: 0.1,
            subsample: 10,
            integrator: Integrator::Euler,
            discard: 1000,
            seed: 0,
        }
    }
}

/// Problems with dataset parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DatasetError {
    #[error("{name} must be {requirement} (got {value})")]
    Parameter {
        name: &'static str,
        requirement: &'static str,
        value: f64,
    },
    #[error(
        "the generated series left the finite range at step {step}; the parameters make it diverge"
    )]
    Diverged { step: usize },
}

fn positive(name: &'static str, value: f64) -> Result<(), DatasetError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(DatasetError::Parameter {
            name,
            requirement: "finite and > 0",
            value,
        })
    }
}

impl MackeyGlass {
    /// `len` samples of the series (unsquashed; see [`squash`]).
    pub fn generate(&self, len: usize) -> Result<Vec<f64>, DatasetError> {
        positive("tau", self.tau)?;
        positive("dt", self.dt)?;
        positive("beta", self.beta)?;
        positive("gamma", self.gamma)?;
        positive("n", self.n)?;
        positive("subsample", self.subsample as f64)?;
        let delay = libm::round(self.tau / self.dt);
        if !(1.0..=1e7).contains(&delay) {
            return Err(DatasetError::Parameter {
                name: "tau / dt",
                requirement: "between 1 and 1e7 integration steps",
                value: delay,
            });
        }
        let delay = delay as usize;
        let mut rng = Rng::new(self.seed);
        // Ring of the last `delay + 1` values: history[(k) % len] holds y at step k.
        let cap = delay + 1;
        let mut history: Vec<f64> = (0..cap).map(|_| 1.2 + rng.uniform(-0.1, 0.1)).collect();
        let f = |y: f64, y_tau: f64| {
            self.beta * y_tau / (1.0 + libm::pow(y_tau, self.n)) - self.gamma * y
        };
        let total = (self.discard + len) * self.subsample;
        let mut out = Vec::with_capacity(len);
        // Step k integrates from k to k+1; y(k) is at history[k % cap], y(k − delay) at
        // history[(k + 1) % cap] (the oldest entry).
        let mut y = history[delay];
        for k in 0..total {
            let now = (k + delay) % cap;
            let tau_now = history[(k + delay + 1) % cap];
            let next = match self.integrator {
                Integrator::Euler => y + self.dt * f(y, tau_now),
                Integrator::Rk4 => {
                    let tau_next = history[(k + delay + 2) % cap];
                    let tau_mid = 0.5 * (tau_now + tau_next);
                    let h = self.dt;
                    let k1 = f(y, tau_now);
                    let k2 = f(y + 0.5 * h * k1, tau_mid);
                    let k3 = f(y + 0.5 * h * k2, tau_mid);
                    let k4 = f(y + h * k3, tau_next);
                    y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
                }
            };
            debug_assert_eq!(history[now], y);
            if !next.is_finite() {
                return Err(DatasetError::Diverged { step: k });
            }
            history[(k + delay + 1) % cap] = next;
            y = next;
            let step = k + 1;
            if step % self.subsample == 0 && step / self.subsample > self.discard {
                out.push(y);
            }
        }
        Ok(out)
    }
}

/// Jaeger's squashing of Mackey-Glass into the range of tanh units: tanh(y − 1).
pub fn squash(y: f64) -> f64 {
    libm::tanh(y - 1.0)
}

/// The inverse of [`squash`]: atanh(s) + 1.
pub fn unsquash(s: f64) -> f64 {
    libm::atanh(s) + 1.0
}

/// NARMA10 targets for input `u`: `target[t] = y(t+1)` with
/// y(t+1) = 0.3·y(t) + 0.05·y(t)·Σ_{i=0}^{9} y(t−i) + 1.5·u(t−9)·u(t) + 0.1,
/// y(t) = 0 for t ≤ 9 (and `target[t] = 0` for t < 9, before the recursion has its inputs).
pub fn narma10_targets(u: &[f64]) -> Result<Vec<f64>, DatasetError> {
    let mut y = vec![0.0; u.len() + 1];
    for t in 9..u.len() {
        let sum: f64 = y[t - 9..=t].iter().sum();
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * sum + 1.5 * u[t - 9] * u[t] + 0.1;
        if !y[t + 1].is_finite() {
            return Err(DatasetError::Diverged { step: t });
        }
    }
    y.remove(0);
    Ok(y)
}

/// `len` NARMA10 pairs: input u(t) ~ U[0, 0.5] from `seed`, target y(t+1).
pub fn narma10(len: usize, seed: u64) -> Result<(Vec<f64>, Vec<f64>), DatasetError> {
    let mut rng = Rng::new(seed);
    let u: Vec<f64> = (0..len).map(|_| rng.uniform(0.0, 0.5)).collect();
    let y = narma10_targets(&u)?;
    Ok((u, y))
}

/// The Lorenz system (sigma 10, rho 28, beta 8/3) by RK4 with step `dt` from `start`:
/// `len × 3` samples, one per step after the start point.
pub fn lorenz(len: usize, dt: f64, start: [f64; 3]) -> Result<Array2, DatasetError> {
    positive("dt", dt)?;
    let f = |s: [f64; 3]| {
        [
            10.0 * (s[1] - s[0]),
            s[0] * (28.0 - s[2]) - s[1],
            s[0] * s[1] - 8.0 / 3.0 * s[2],
        ]
    };
    let add =
        |a: [f64; 3], b: [f64; 3], h: f64| [a[0] + h * b[0], a[1] + h * b[1], a[2] + h * b[2]];
    let mut s = start;
    let mut data = Vec::with_capacity(len * 3);
    for step in 0..len {
        let k1 = f(s);
        let k2 = f(add(s, k1, dt / 2.0));
        let k3 = f(add(s, k2, dt / 2.0));
        let k4 = f(add(s, k3, dt));
        for i in 0..3 {
            s[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        if s.iter().any(|v| !v.is_finite()) {
            return Err(DatasetError::Diverged { step });
        }
        data.extend_from_slice(&s);
    }
    Array2::new(len, 3, data).map_err(|_| DatasetError::Diverged { step: len })
}

/// The Santa Fe laser series (competition set A, 10,093 samples) from the shared data directory.
pub fn santafe(shared_data: &Path) -> Result<Array2, DataError> {
    crate::npy::read(&shared_data.join("timeseries/santafe_laser.npy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narma10_matches_hand_computed_values() {
        let u: Vec<f64> = (0..13).map(|i| 0.01 * (i + 1) as f64).collect();
        let y = narma10_targets(&u).unwrap();
        assert!(y[..9].iter().all(|&v| v == 0.0));
        // y(10) = 0.1 + 1.5·u(0)·u(9)   (all earlier y are 0)
        let y10 = 0.1 + 1.5 * 0.01 * 0.10;
        assert_eq!(y[9], y10);
        // y(11) = 0.3·y(10) + 0.05·y(10)·(y(10) + y(9..1) = y(10)) + 1.5·u(1)·u(10) + 0.1
        let y11 = 0.3 * y10 + 0.05 * y10 * y10 + 1.5 * 0.02 * 0.11 + 0.1;
        assert!((y[10] - y11).abs() < 1e-15);
        let y12 = 0.3 * y11 + 0.05 * y11 * (y11 + y10) + 1.5 * 0.03 * 0.12 + 0.1;
        assert!((y[11] - y12).abs() < 1e-15);
        let (u, y) = narma10(5000, 7).unwrap();
        assert!(u.iter().all(|v| (0.0..0.5).contains(v)));
        assert!(y.iter().all(|v| v.is_finite() && *v < 1.0));
    }

    #[test]
    fn mackey_glass_is_chaotic_in_the_usual_range_and_deterministic() {
        let mg = MackeyGlass::default();
        let a = mg.generate(2000).unwrap();
        assert_eq!(a, mg.generate(2000).unwrap());
        let (lo, hi) = a
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        // The tau = 17 attractor spans roughly [0.4, 1.35].
        assert!(lo > 0.3 && lo < 0.5 && hi > 1.2 && hi < 1.4, "{lo} {hi}");
        // The tau = 17 series has variance about 0.051 (measured here with Euler 0.1, Euler
        // 0.01, RK4 0.1 and RK4 0.01 alike, over 20,000 samples).
        let mean = a.iter().sum::<f64>() / 2000.0;
        let var = a.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / 2000.0;
        assert!((var - 0.051).abs() < 0.005, "{var}");
        assert!((unsquash(squash(0.8)) - 0.8).abs() < 1e-12);
        let rk4 = MackeyGlass {
            integrator: Integrator::Rk4,
            ..MackeyGlass::default()
        };
        let b = rk4.generate(500).unwrap();
        assert!(b.iter().all(|v| (0.2..1.5).contains(v)));
        let bad = MackeyGlass {
            tau: -1.0,
            ..MackeyGlass::default()
        };
        assert!(matches!(
            bad.generate(10),
            Err(DatasetError::Parameter { name: "tau", .. })
        ));
    }

    #[test]
    fn lorenz_stays_on_the_attractor() {
        let a = lorenz(5000, 0.01, [1.0, 1.0, 1.0]).unwrap();
        let z = a.column_values(2);
        assert!(z[1000..].iter().all(|&z| (0.0..55.0).contains(&z)));
        assert!(a.column_values(0)[1000..].iter().any(|&x| x < -5.0));
    }
}

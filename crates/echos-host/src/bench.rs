//! `echos esn bench`'s measurement: the reservoir a user builds (`Esn::new` with the fused
//! kernel of the variant under test, [`reservoir`]), its step timed alone, in a batch, in an
//! ensemble or split over two threads, and that rate set against this CPU's ceilings (the read
//! bandwidth of the working set, gathers or lane mul-adds) as a [`Ceilings`] measures them. The
//! micro-kernels behind the measured ceilings are research code, outside the libraries
//! (`echos-eval`'s `limits`).

use cpu_time::ProcessTime;
use echos_core::esn::{ConfigError, Esn, EsnConfig, StepKernel};
use echos_core::kernels::reservoir::FusedReservoir;
use echos_core::kernels::{Kernel, KernelError, Variant};
use echos_core::rng::Rng;
use echos_core::topology::{MatrixFormat, Topology, WeightDistribution};
use std::hint::black_box;
use std::time::Instant;
use thiserror::Error;

/// Why a benchmark reservoir could not be made.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A size or rate is out of range.
    #[error("{what} = {value} is out of range: {why}")]
    Parameter {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    /// The engine refused the reservoir's configuration.
    #[error("the engine refused the reservoir: {0}")]
    Config(ConfigError),
    /// The kernels refused the reservoir (shape, variant, …).
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// The hardware ceilings a step is set against, each measured on this CPU with the kernel
/// variant under test on one thread. `echos esn bench` passes `echos_eval::limits::Measured`;
/// tests pass fixed rates, so the arithmetic of the limits can be checked exactly.
pub trait Ceilings {
    /// Read bandwidth (bytes/s) of a working set of `bytes`, streamed with `kernel`'s loads.
    fn read_bandwidth(&self, kernel: Kernel, bytes: usize) -> f64;
    /// Elements per second `kernel` gathers from an `x_len`-long vector at `indices`.
    fn gather_rate(&self, kernel: Kernel, x_len: usize, indices: &[u32]) -> f64;
    /// Lane multiply-adds (separate multiply and add, as the batched kernels do) per second.
    fn muladd_rate(&self, kernel: Kernel) -> f64;
    /// Lane products per second of `vdpbf16ps`, or `None` where the CPU lacks AVX-512 BF16.
    fn dpbf16_rate(&self) -> Option<f64>;
}

/// Parameters of a benchmark reservoir: the shape ReservoirPy is compared on (uniform weights,
/// leak rate 0.3, spectral radius 0.9).
#[derive(Clone, Copy, Debug)]
pub struct ReservoirSpec {
    /// Reservoir units N.
    pub units: usize,
    /// Inputs.
    pub inputs: usize,
    /// Fraction of non-zero recurrent weights per row; 1.0 builds a dense matrix.
    pub connectivity: f64,
    /// Spectral radius W is scaled to (by the engine).
    pub spectral_radius: f64,
    /// Leak rate a.
    pub leak_rate: f64,
    /// Input weights are uniform in [−input_scaling, input_scaling].
    pub input_scaling: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for ReservoirSpec {
    fn default() -> Self {
        ReservoirSpec {
            units: 100,
            inputs: 1,
            connectivity: 0.1,
            spectral_radius: 0.9,
            leak_rate: 0.3,
            input_scaling: 1.0,
            seed: 42,
        }
    }
}

impl ReservoirSpec {
    /// The configuration a user would write for this reservoir with `topology`, stepped by
    /// the fused kernel `variant`: weights uniform in [−1, 1] before scaling, dense inputs,
    /// bias uniform in [−0.1, 0.1]; a random W is stored sparse (CSR, SELL-16 for the step)
    /// below connectivity 1 and dense at 1, whatever its size.
    pub fn config(&self, topology: Topology, variant: Variant) -> EsnConfig {
        EsnConfig {
            units: self.units,
            inputs: self.inputs,
            spectral_radius: self.spectral_radius,
            leak_rate: self.leak_rate,
            input_scaling: self.input_scaling,
            bias_scaling: 0.1,
            connectivity: self.connectivity,
            distribution: WeightDistribution::Uniform,
            topology,
            format: if self.connectivity >= 1.0 {
                MatrixFormat::Dense
            } else {
                MatrixFormat::Csr
            },
            seed: self.seed,
            kernel: StepKernel::Fused(variant),
            ..EsnConfig::default()
        }
    }
}

/// Largest reservoir the benchmark builds (the dense form would need 4·N² bytes).
pub const MAX_UNITS: usize = 1 << 16;

fn check_spec(spec: &ReservoirSpec) -> Result<(), BenchError> {
    let n = spec.units;
    if n == 0 || n > MAX_UNITS {
        return Err(BenchError::Parameter {
            what: "units",
            value: n.to_string(),
            why: "must be in 1..=65536",
        });
    }
    if !(spec.connectivity > 0.0 && spec.connectivity <= 1.0) {
        return Err(BenchError::Parameter {
            what: "connectivity",
            value: spec.connectivity.to_string(),
            why: "must be in (0, 1]",
        });
    }
    if spec.inputs == 0 || spec.inputs > 4096 {
        return Err(BenchError::Parameter {
            what: "inputs",
            value: spec.inputs.to_string(),
            why: "must be in 1..=4096",
        });
    }
    Ok(())
}

/// The fused reservoir `Esn::new` builds for `spec` — random, or block-sparse with groups of
/// `block_size` units (`Topology::Block`) — for the kernel `variant`: the one `Esn::step`
/// runs, so the benchmark times what a user gets.
pub fn reservoir(
    spec: &ReservoirSpec,
    block_size: Option<usize>,
    variant: Variant,
) -> Result<FusedReservoir, BenchError> {
    check_spec(spec)?;
    let topology = match block_size {
        None => Topology::Random,
        Some(size) if size == 0 || size > spec.units => {
            return Err(BenchError::Parameter {
                what: "block size",
                value: size.to_string(),
                why: "must be in 1..=units",
            })
        }
        Some(size) => Topology::Block { size },
    };
    let esn = Esn::<f32>::new(&spec.config(topology, variant)).map_err(BenchError::Config)?;
    Ok(esn
        .fused_reservoir()
        .expect("the configuration names a fused kernel")
        .clone())
}

/// Median of the samples (sorted copy); NaN for none.
pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

/// What `echos esn bench` measures.
#[derive(Clone, Debug)]
pub struct StepBench {
    /// The reservoir (its seed is offset per ensemble member).
    pub spec: ReservoirSpec,
    /// Time steps per timed run.
    pub steps: usize,
    /// Sequences through one reservoir (1 = single sequence).
    pub batch: usize,
    /// Independent reservoirs stepped together (1 = none).
    pub ensemble: usize,
    /// Timed runs; the report gives their median.
    pub repeats: usize,
    /// Threads for batch and ensemble runs.
    pub threads: usize,
    /// Batches: also cut the reservoir's rows across threads (see
    /// [`crate::ensemble::BatchRunner::with_split`]).
    pub split_rows: bool,
    /// One sequence: share each step between two threads ([`crate::ensemble::SplitStep`],
    /// sparse only).
    pub split_step: bool,
    /// `Some(size)`: a block-sparse reservoir (`Topology::Block`, see [`reservoir`]) instead
    /// of the random one.
    pub block_size: Option<usize>,
    /// Batches of a block reservoir in the opt-in bf16-products format
    /// ([`echos_core::kernels::block_bf16::BlockBf16`]) instead of f32.
    pub bf16: bool,
}

/// The result of one [`StepBench`] for one kernel; `steps_per_s` is per sequence (per
/// reservoir for ensembles), the median over the timed runs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepBenchReport {
    pub kernel: &'static str,
    /// `random` or `block` (the reservoir's topology).
    pub topology: &'static str,
    /// `f32`, or `bf16` for the opt-in bf16-products batch format.
    pub format: &'static str,
    /// Rows per group of a block reservoir (0 for random).
    pub block_size: usize,
    pub units: usize,
    pub connectivity: f64,
    pub nnz: usize,
    pub steps: usize,
    pub batch: usize,
    pub ensemble: usize,
    pub threads: usize,
    pub steps_per_s: f64,
    pub steps_per_s_runs: Vec<f64>,
    /// The same per CPU-second of the working threads (process CPU time ÷ threads): what the
    /// hardware does when other processes take turns on the cores; wall-clock is the figure.
    pub steps_per_cpu_s: f64,
    /// steps_per_s × batch × ensemble.
    pub total_steps_per_s: f64,
    /// Bytes of weights and state one thread reads per step of its group (the matrix once).
    pub bytes_per_step: usize,
    /// Weights plus states one thread touches: the working set whose bandwidth binds.
    pub working_set_bytes: usize,
    /// Read bandwidth measured for that working set with the same kernel variant, one thread.
    pub bandwidth_bytes_per_s: f64,
    /// Per-sequence steps/s if every step only had to read its bytes at that bandwidth.
    pub bandwidth_limit_steps_per_s: f64,
    /// steps_per_cpu_s ÷ bandwidth_limit_steps_per_s (1.0 = at the limit; limits and this
    /// ratio use CPU time, so a shared machine does not distort them).
    pub fraction_of_bandwidth_limit: f64,
    /// What the compute limit counts: `gathers` (sparse single sequence / ensemble),
    /// `mul-adds` (batched and dense).
    pub compute_limit_kind: &'static str,
    /// Per-sequence steps/s if the step only had to do its gathers or mul-adds at the rate
    /// measured on this CPU with the same variant (one thread).
    pub compute_limit_steps_per_s: f64,
    /// `bandwidth` or `compute`: the lower of the two limits.
    pub binding_limit: &'static str,
    /// steps_per_cpu_s ÷ the lower limit.
    pub fraction_of_limit: f64,
    /// The code that ran, e.g. `avx512-sell16`, `avx512-batch`, `scalar-csr`.
    pub step_kernel: &'static str,
    /// Bytes held per reservoir: weights, input weights, bias, state buffers.
    pub reservoir_bytes: usize,
}

impl StepBench {
    fn check(&self) -> Result<(), BenchError> {
        let bad = |what, value: usize, why| {
            Err(BenchError::Parameter {
                what,
                value: value.to_string(),
                why,
            })
        };
        if self.steps == 0 || self.steps > 100_000_000 {
            return bad("steps", self.steps, "must be in 1..=100000000");
        }
        if self.batch == 0 || self.batch > 4096 {
            return bad("batch", self.batch, "must be in 1..=4096");
        }
        if self.ensemble == 0 || self.ensemble > 4096 {
            return bad("ensemble", self.ensemble, "must be in 1..=4096");
        }
        if self.split_step && (self.batch > 1 || self.ensemble > 1) {
            return bad(
                "batch",
                self.batch.max(self.ensemble),
                "split-step is for one sequence (batch 1, ensemble 1)",
            );
        }
        if self.batch > 1 && self.ensemble > 1 {
            return bad(
                "ensemble",
                self.ensemble,
                "batch and ensemble cannot be combined",
            );
        }
        if self.split_step && self.block_size.is_some() {
            return bad(
                "block size",
                self.block_size.unwrap_or(0),
                "split-step runs the SELL-16 form of a random reservoir; block reservoirs step on one thread",
            );
        }
        if self.split_rows && self.block_size.is_some() {
            return bad(
                "block size",
                self.block_size.unwrap_or(0),
                "the row split runs the CSR batch kernel; block batches split by sequences",
            );
        }
        if self.bf16 && (self.block_size.is_none() || self.batch < 2) {
            return bad(
                "batch",
                self.batch,
                "the bf16 format is a batch format (batch >= 2) of block reservoirs (--topology block)",
            );
        }
        if self.repeats == 0 || self.repeats > 1000 {
            return bad("repeats", self.repeats, "must be in 1..=1000");
        }
        if self.threads == 0 || self.threads > 1024 {
            return bad("threads", self.threads, "must be in 1..=1024");
        }
        let floats =
            self.steps as u128 * self.batch.max(self.ensemble) as u128 * self.spec.inputs as u128;
        if floats > 1 << 28 {
            return bad(
                "steps × batch × inputs",
                self.steps,
                "the input buffer would exceed 1 GiB",
            );
        }
        Ok(())
    }

    /// Builds the reservoir(s) for `kernel`'s variant, runs the timed steps with `kernel` and
    /// sets the rate against the bandwidth and compute limits `ceilings` measures for the same
    /// working set.
    pub fn run(
        &self,
        kernel: Kernel,
        ceilings: &dyn Ceilings,
    ) -> Result<StepBenchReport, BenchError> {
        use crate::ensemble::{BatchRunner, Ensemble, SplitStep};
        self.check()?;
        let variant = kernel.variant();
        let reservoir = reservoir(&self.spec, self.block_size, variant)?;
        // Members are built once; each run steps fresh copies (states at zero).
        let members = if self.ensemble > 1 {
            (0..self.ensemble)
                .map(|m| {
                    let spec = ReservoirSpec {
                        seed: self.spec.seed.wrapping_add(m as u64),
                        ..self.spec
                    };
                    self::reservoir(&spec, self.block_size, variant)
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        let n = self.spec.units;
        let lanes = self.batch.max(self.ensemble);
        let mut rng = Rng::new(self.spec.seed ^ 0xB1A5);
        let inputs: Vec<f32> = (0..self.steps * lanes * self.spec.inputs)
            .map(|_| rng.uniform(-1.0, 1.0) as f32)
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|_| BenchError::Parameter {
                what: "threads",
                value: self.threads.to_string(),
                why: "could not start the thread pool",
            })?;
        let map_err = |e: crate::ensemble::EnsembleError| match e {
            crate::ensemble::EnsembleError::Kernel(k) => BenchError::Kernel(k),
            other => BenchError::Parameter {
                what: "batch/ensemble",
                value: other.to_string(),
                why: "refused",
            },
        };
        let mut runs = Vec::with_capacity(self.repeats);
        let mut cpu_runs = Vec::with_capacity(self.repeats);
        let mut batch_kernel = None;
        // One untimed run warms caches and the pool; then the timed runs.
        for rep in 0..=self.repeats {
            let (seconds, cpu_seconds) = if self.batch > 1 {
                let mut runner = if self.bf16 {
                    BatchRunner::new_bf16(&reservoir, kernel, self.batch, self.threads)
                } else {
                    BatchRunner::with_split(
                        &reservoir,
                        kernel,
                        self.batch,
                        self.threads,
                        self.split_rows,
                    )
                }
                .map_err(map_err)?;
                let workers = runner.workers();
                batch_kernel = Some(runner.step_kernel());
                let (t, c) = (Instant::now(), ProcessTime::now());
                pool.install(|| runner.run(self.steps, &inputs))
                    .map_err(map_err)?;
                (
                    t.elapsed().as_secs_f64(),
                    c.elapsed().as_secs_f64() / workers as f64,
                )
            } else if self.ensemble > 1 {
                let mut e = Ensemble::new(members.clone(), kernel).map_err(map_err)?;
                let (t, c) = (Instant::now(), ProcessTime::now());
                pool.install(|| e.run(self.steps, &inputs))
                    .map_err(map_err)?;
                let active = self.threads.min(self.ensemble) as f64;
                (
                    t.elapsed().as_secs_f64(),
                    c.elapsed().as_secs_f64() / active,
                )
            } else if self.split_step {
                let mut r = SplitStep::new(&reservoir, kernel).map_err(map_err)?;
                let (t, c) = (Instant::now(), ProcessTime::now());
                pool.install(|| -> Result<(), BenchError> {
                    for u in inputs.chunks_exact(self.spec.inputs).take(self.steps) {
                        black_box(r.step(black_box(u)).map_err(map_err)?);
                    }
                    Ok(())
                })?;
                // Total CPU of both threads (join waits included): work per step, comparable
                // with the one-core limits below; wall-clock is the speed figure.
                (t.elapsed().as_secs_f64(), c.elapsed().as_secs_f64())
            } else {
                let mut r = reservoir.clone();
                let (t, c) = (Instant::now(), ProcessTime::now());
                for u in inputs.chunks_exact(self.spec.inputs).take(self.steps) {
                    black_box(r.step(kernel, black_box(u))?);
                }
                (t.elapsed().as_secs_f64(), c.elapsed().as_secs_f64())
            };
            if rep > 0 {
                runs.push(self.steps as f64 / seconds);
                cpu_runs.push(self.steps as f64 / cpu_seconds.max(1e-9));
            }
        }
        let steps_per_s = median(&runs);
        // Per thread and step: the matrix (and input weights, bias) once, plus the states of the
        // sequences that thread carries (read x, write x').
        let state_bytes = n * 4 * 2;
        let per_thread_lanes = lanes.div_ceil(self.threads.min(lanes));
        let weight_bytes = if self.batch > 1 && reservoir.block().is_none() {
            reservoir.bytes_per_step() - n * 4
        } else {
            reservoir.bytes_read_per_step(kernel) - n * 4
        };
        let (bytes_per_step, working_set) = if self.ensemble > 1 {
            // Each member runs all its steps before the next starts: one reservoir is hot at a time.
            (weight_bytes + state_bytes, weight_bytes + state_bytes)
        } else {
            (
                weight_bytes + per_thread_lanes * state_bytes,
                weight_bytes + per_thread_lanes * state_bytes,
            )
        };
        let bandwidth = ceilings.read_bandwidth(kernel, working_set);
        // Steps of one sequence per second at the limit: a thread advances per_thread_lanes
        // sequences per group step (batch) or one reservoir per step (ensemble).
        let limit = if self.ensemble > 1 {
            bandwidth / bytes_per_step as f64 / per_thread_lanes as f64
        } else {
            bandwidth / bytes_per_step as f64
        };
        let nnz = reservoir.csr_ref().map_or(n * n, |c| c.nnz());
        let width = per_thread_lanes as f64;
        let (kind, compute_limit) = match (reservoir.block(), reservoir.csr_ref()) {
            (Some(b), _) if self.batch == 1 => {
                // The block step does one lane multiply-add per stored weight (padding lanes
                // included) and gathers nothing.
                let m = ceilings.muladd_rate(kernel);
                let padded = b.padded_nnz();
                let per_member = if self.ensemble > 1 { width } else { 1.0 };
                ("mul-adds", m / padded as f64 / per_member)
            }
            (Some(b), _) => {
                // The batched block step: one lane multiply-add per stored weight (padding
                // included) per sequence of the thread's group.
                let per_step = b.padded_nnz() as f64 * width.max(1.0);
                let native = self.bf16 && kernel.variant() == Variant::Avx512;
                match if native { ceilings.dpbf16_rate() } else { None } {
                    // The bf16 instruction's own ceiling (products per second).
                    Some(rate) => ("bf16 dot-products", rate / per_step),
                    // bf16 on the portable path is judged against the f32 arithmetic limit.
                    None if self.bf16 => ("f32 mul-adds", ceilings.muladd_rate(kernel) / per_step),
                    None => ("mul-adds", ceilings.muladd_rate(kernel) / per_step),
                }
            }
            (_, Some(c)) if self.batch == 1 => {
                let g = ceilings.gather_rate(kernel, n, c.indices());
                let per_member = if self.ensemble > 1 { width } else { 1.0 };
                ("gathers", g / nnz as f64 / per_member)
            }
            _ => {
                let m = ceilings.muladd_rate(kernel);
                let per_step = if self.ensemble > 1 {
                    nnz as f64 * width
                } else {
                    nnz as f64 * width.max(1.0)
                };
                ("mul-adds", m / per_step)
            }
        };
        let (binding, bound) = if compute_limit < limit {
            ("compute", compute_limit)
        } else {
            ("bandwidth", limit)
        };
        let step_kernel = if let Some(name) = batch_kernel {
            name
        } else if self.split_step {
            match kernel.variant() {
                echos_core::kernels::Variant::Avx512 => "avx512-sell16-split2",
                _ => "portable-sell16-split2",
            }
        } else {
            reservoir.step_kernel_name(kernel)
        };
        Ok(StepBenchReport {
            topology: if self.block_size.is_some() {
                "block"
            } else {
                "random"
            },
            block_size: self.block_size.unwrap_or(0),
            format: if self.bf16 { "bf16" } else { "f32" },
            compute_limit_kind: kind,
            compute_limit_steps_per_s: compute_limit,
            binding_limit: binding,
            fraction_of_limit: median(&cpu_runs) / bound,
            step_kernel,
            kernel: kernel.variant().name(),
            units: n,
            connectivity: self.spec.connectivity,
            nnz,
            steps: self.steps,
            batch: self.batch,
            ensemble: self.ensemble,
            threads: self.threads,
            steps_per_s,
            steps_per_s_runs: runs,
            steps_per_cpu_s: median(&cpu_runs),
            total_steps_per_s: steps_per_s * lanes as f64,
            bytes_per_step,
            working_set_bytes: working_set,
            bandwidth_bytes_per_s: bandwidth,
            bandwidth_limit_steps_per_s: limit,
            fraction_of_bandwidth_limit: median(&cpu_runs) / limit,
            reservoir_bytes: reservoir.bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use echos_core::esn::Esn;

    /// Round rates, so every limit in a report is a known quotient.
    struct Fixed;

    impl Ceilings for Fixed {
        fn read_bandwidth(&self, _: Kernel, _: usize) -> f64 {
            1e11
        }
        fn gather_rate(&self, _: Kernel, _: usize, _: &[u32]) -> f64 {
            1e9
        }
        fn muladd_rate(&self, _: Kernel) -> f64 {
            1e10
        }
        fn dpbf16_rate(&self) -> Option<f64> {
            None
        }
    }

    #[test]
    fn reservoir_has_the_requested_shape_and_density() {
        let r = reservoir(
            &ReservoirSpec {
                units: 300,
                connectivity: 0.1,
                ..Default::default()
            },
            None,
            Variant::Scalar,
        )
        .unwrap();
        let c = r.csr_ref().unwrap();
        assert_eq!((c.rows(), c.nnz()), (300, 300 * 30));
        assert!(r.sell().is_some(), "sparse reservoirs step in SELL-16");
        let d = reservoir(
            &ReservoirSpec {
                units: 20,
                connectivity: 1.0,
                ..Default::default()
            },
            None,
            Variant::Scalar,
        )
        .unwrap();
        assert!(d.csr_ref().is_none());
    }

    /// The benchmark builds no reservoir of its own: it steps exactly the one a user gets
    /// from `Esn::new` with the configuration written out here.
    #[test]
    fn the_bench_steps_the_reservoir_a_user_configures() {
        for (topology, block_size) in [
            (Topology::Random, None),
            (Topology::Block { size: 8 }, Some(8)),
        ] {
            let user = EsnConfig {
                units: 120,
                inputs: 2,
                spectral_radius: 0.9,
                leak_rate: 0.3,
                input_scaling: 1.0,
                bias_scaling: 0.1,
                connectivity: 0.1,
                distribution: WeightDistribution::Uniform,
                topology,
                format: MatrixFormat::Csr,
                seed: 7,
                kernel: StepKernel::Fused(Variant::Scalar),
                ..EsnConfig::default()
            };
            let mut esn = Esn::<f32>::new(&user).unwrap();
            let spec = ReservoirSpec {
                units: 120,
                inputs: 2,
                seed: 7,
                ..Default::default()
            };
            let mut r = reservoir(&spec, block_size, Variant::Scalar).unwrap();
            assert_eq!(r.block().is_some(), block_size.is_some());
            for t in 0..20 {
                let u = [(t as f32 * 0.3).sin(), 0.5];
                let want = esn.step(&u, None).unwrap().to_vec();
                let got = r.step(Kernel::scalar(), &u).unwrap();
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{topology:?} step {t}"
                );
            }
        }
    }

    #[test]
    fn bad_specs_are_errors() {
        for spec in [
            ReservoirSpec {
                units: 0,
                ..Default::default()
            },
            ReservoirSpec {
                units: MAX_UNITS + 1,
                ..Default::default()
            },
            ReservoirSpec {
                inputs: 0,
                ..Default::default()
            },
            ReservoirSpec {
                connectivity: 0.0,
                ..Default::default()
            },
            ReservoirSpec {
                connectivity: f64::NAN,
                ..Default::default()
            },
            ReservoirSpec {
                connectivity: 1.5,
                ..Default::default()
            },
            ReservoirSpec {
                spectral_radius: f64::INFINITY,
                ..Default::default()
            },
            ReservoirSpec {
                leak_rate: 0.0,
                ..Default::default()
            },
        ] {
            assert!(reservoir(&spec, None, Variant::Scalar).is_err(), "{spec:?}");
        }
    }

    /// Each limit is the ceiling divided by the work one step asks of it: gathers per
    /// non-zero for one sparse sequence (and per member of the thread's share of an ensemble),
    /// lane mul-adds per non-zero and sequence for a batch, per padded weight for a block step.
    #[test]
    fn limits_divide_the_ceilings_by_the_work_of_a_step() {
        let one = StepBench {
            spec: ReservoirSpec::default(),
            steps: 20,
            batch: 1,
            ensemble: 1,
            repeats: 1,
            threads: 1,
            split_rows: false,
            split_step: false,
            block_size: None,
            bf16: false,
        };
        let k = Kernel::scalar();
        let r = one.run(k, &Fixed).unwrap();
        assert_eq!((r.nnz, r.compute_limit_kind), (1000, "gathers"));
        assert_eq!(r.compute_limit_steps_per_s, 1e9 / 1000.0);
        assert_eq!(
            r.bandwidth_limit_steps_per_s,
            1e11 / r.bytes_per_step as f64
        );
        assert_eq!(r.binding_limit, "compute");
        assert_eq!(r.fraction_of_limit, r.steps_per_cpu_s / 1e6);
        let batch = StepBench {
            batch: 4,
            ..one.clone()
        }
        .run(k, &Fixed)
        .unwrap();
        assert_eq!(batch.compute_limit_kind, "mul-adds");
        assert_eq!(batch.compute_limit_steps_per_s, 1e10 / (1000.0 * 4.0));
        let ensemble = StepBench {
            ensemble: 3,
            ..one.clone()
        }
        .run(k, &Fixed)
        .unwrap();
        assert_eq!(ensemble.compute_limit_kind, "gathers");
        assert_eq!(ensemble.compute_limit_steps_per_s, 1e9 / 1000.0 / 3.0);
        let spec = ReservoirSpec {
            units: 160,
            ..ReservoirSpec::default()
        };
        let padded = reservoir(&spec, Some(16), Variant::Scalar)
            .unwrap()
            .block()
            .unwrap()
            .padded_nnz();
        let block = StepBench {
            spec,
            block_size: Some(16),
            ..one.clone()
        }
        .run(k, &Fixed)
        .unwrap();
        assert_eq!(
            (block.nnz, block.compute_limit_kind),
            (160 * 16, "mul-adds")
        );
        assert_eq!(block.compute_limit_steps_per_s, 1e10 / padded as f64);
    }

    #[test]
    fn bad_bench_parameters_are_errors_before_any_work() {
        let ok = StepBench {
            spec: ReservoirSpec::default(),
            steps: 10,
            batch: 1,
            ensemble: 1,
            repeats: 1,
            threads: 1,
            split_rows: false,
            split_step: false,
            block_size: None,
            bf16: false,
        };
        assert!(ok.run(Kernel::scalar(), &Fixed).is_ok());
        let split = StepBench {
            split_step: true,
            threads: 2,
            ..ok.clone()
        };
        assert_eq!(
            split.run(Kernel::best(), &Fixed).unwrap().step_kernel,
            if Kernel::best().variant() == echos_core::kernels::Variant::Avx512 {
                "avx512-sell16-split2"
            } else {
                "portable-sell16-split2"
            }
        );
        for bad in [
            StepBench {
                steps: 0,
                ..ok.clone()
            },
            StepBench {
                split_step: true,
                batch: 4,
                ..ok.clone()
            },
            StepBench {
                batch: 0,
                ..ok.clone()
            },
            StepBench {
                ensemble: 0,
                ..ok.clone()
            },
            StepBench {
                batch: 4,
                ensemble: 4,
                ..ok.clone()
            },
            StepBench {
                repeats: 0,
                ..ok.clone()
            },
            StepBench {
                threads: 0,
                ..ok.clone()
            },
            StepBench {
                steps: 100_000_000,
                batch: 4096,
                ..ok.clone()
            },
            StepBench {
                spec: ReservoirSpec {
                    units: 0,
                    ..ReservoirSpec::default()
                },
                ..ok.clone()
            },
        ] {
            assert!(bad.run(Kernel::scalar(), &Fixed).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bench_report_names_the_kernel_and_a_binding_limit() {
        let b = StepBench {
            spec: ReservoirSpec {
                units: 64,
                ..ReservoirSpec::default()
            },
            steps: 50,
            batch: 5,
            ensemble: 1,
            repeats: 1,
            threads: 2,
            split_rows: false,
            split_step: false,
            block_size: None,
            bf16: false,
        };
        let r = b.run(Kernel::best(), &Fixed).unwrap();
        assert_eq!(r.kernel, Kernel::best().variant().name());
        assert!(r.steps_per_s > 0.0 && r.total_steps_per_s > r.steps_per_s);
        assert!(["bandwidth", "compute"].contains(&r.binding_limit));
        assert!(r.fraction_of_limit > 0.0);
    }

    #[test]
    fn block_bench_runs_the_block_kernel_and_refuses_bad_sizes() {
        let b = StepBench {
            spec: ReservoirSpec {
                units: 100,
                ..ReservoirSpec::default()
            },
            steps: 20,
            batch: 1,
            ensemble: 1,
            repeats: 1,
            threads: 1,
            split_rows: false,
            split_step: false,
            block_size: Some(16),
            bf16: false,
        };
        for k in Kernel::available() {
            let r = b.run(k, &Fixed).unwrap();
            assert_eq!(r.step_kernel, format!("{}-block", k.variant().name()));
            assert_eq!((r.topology, r.block_size, r.nnz), ("block", 16, 1000));
            assert_eq!(r.compute_limit_kind, "mul-adds");
        }
        for size in [0, 101] {
            let bad = StepBench {
                block_size: Some(size),
                ..b.clone()
            };
            assert!(matches!(
                bad.run(Kernel::scalar(), &Fixed),
                Err(BenchError::Parameter {
                    what: "block size",
                    ..
                })
            ));
        }
        let split = StepBench {
            split_step: true,
            threads: 2,
            ..b.clone()
        };
        assert!(split.run(Kernel::scalar(), &Fixed).is_err());
        // Batches of block reservoirs run the batched block kernel; ensembles the block step.
        for k in Kernel::available() {
            let r = StepBench {
                batch: 4,
                threads: 2,
                ..b.clone()
            }
            .run(k, &Fixed)
            .unwrap();
            let want = if k.variant() == echos_core::kernels::Variant::Avx512 {
                "avx512-block-batch"
            } else {
                "portable-block-batch"
            };
            assert_eq!((r.step_kernel, r.compute_limit_kind), (want, "mul-adds"));
            assert!(r.steps_per_s > 0.0);
        }
        let r = StepBench {
            ensemble: 3,
            threads: 2,
            ..b.clone()
        }
        .run(Kernel::best(), &Fixed)
        .unwrap();
        assert!(r.steps_per_s > 0.0);
        assert!(StepBench {
            batch: 4,
            split_rows: true,
            ..b.clone()
        }
        .run(Kernel::scalar(), &Fixed)
        .is_err());
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}

//! `echos esn …`: benchmark tasks, training, teacher-forced runs, closed-loop generation and
//! evaluation of echo state networks. Everything numeric is in echos-host / echos-core.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use echos_core::esn::EsnConfig;
use echos_host::atomic::AtomicFile;
use echos_host::tasks::{self, TaskName, TaskOptions, MAX_UNITS};
use echos_host::training::{EsnModel, Generative, Solver, TrainOptions};
use echos_host::{csv_table, model_file, npy};
use echos_host::{read_array, write_array, Array2, DataError};

use crate::output;

/// The engine's defaults are the CLI's (and Python's): one home for them.
fn defaults() -> EsnConfig {
    EsnConfig::default()
}

#[derive(Subcommand)]
pub enum EsnCommand {
    /// Run a benchmark task (narma10, memory-capacity, mackey-glass, santafe) and print its figure.
    Task(TaskArgs),
    /// Train a reservoir and its ridge readout on input/target series; save the model.
    Train(TrainArgs),
    /// Teacher-forced run: feed an input series, write the readout's predictions.
    Run(RunArgs),
    /// Closed loop: from the state training ended in, feed predictions back for K steps.
    Generate(GenerateArgs),
    /// Predict an input series and score it against a target (mse, rmse, nrmse, r2).
    Eval(EvalArgs),
    /// Measure steps/s of the engine's best kernel on this CPU (medians; --json for scripts).
    Bench(crate::esn_bench::BenchArgs),
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct TaskArgs {
    /// Task name: narma10, memory-capacity, mackey-glass or santafe.
    name: TaskName,
    /// Reservoir size (each task has its own default).
    #[arg(long)]
    units: Option<usize>,
    /// Seed of the reservoir and the data; runs use seed, seed+1, ...
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Independent runs (seeds) averaged into the figure.
    #[arg(long)]
    runs: Option<usize>,
    /// Print one JSON object instead of a readable summary.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum TopologyArg {
    /// round(connectivity·units) random in-neighbours per unit.
    Random,
    /// A ring of units.
    Cycle,
    /// A chain of units.
    DelayLine,
    /// A ring plus bidirectional jumps every `--jump` units.
    CycleJumps,
    /// Random sparse with units in groups of `--block-size` sharing their in-neighbours (the
    /// fused kernels step it without gathers).
    Block,
}

#[derive(Clone, Copy, ValueEnum)]
enum SolverArg {
    /// Ridge by Cholesky on the accumulated XᵀX (little memory).
    NormalEquations,
    /// Householder QR of the state matrix (more accurate at tiny ridge).
    Qr,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Input series (.npy or .csv): time steps × input features.
    #[arg(long)]
    input: PathBuf,
    /// Target series (.npy or .csv): time steps × outputs, same number of rows as the input.
    #[arg(long)]
    target: PathBuf,
    /// Where to write the model (.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Reservoir size (at most 20000, the tasks' limit).
    #[arg(long, default_value_t = defaults().units)]
    units: usize,
    #[arg(long, default_value_t = defaults().spectral_radius)]
    spectral_radius: f64,
    /// Leak rate in (0, 1]; 1 is no leaky integration.
    #[arg(long, default_value_t = defaults().leak_rate)]
    leak_rate: f64,
    #[arg(long, default_value_t = defaults().input_scaling)]
    input_scaling: f64,
    /// Bias b ~ U(−s, s) per unit (0: no bias).
    #[arg(long, default_value_t = defaults().bias_scaling)]
    bias_scaling: f64,
    /// Fraction of nonzero recurrent weights (random topology).
    #[arg(long, default_value_t = defaults().connectivity)]
    connectivity: f64,
    #[arg(long, value_enum, default_value_t = TopologyArg::Random)]
    topology: TopologyArg,
    /// Jump size of `--topology cycle-jumps` (2 <= jump < units; default 2).
    #[arg(long)]
    jump: Option<usize>,
    /// Units per group of `--topology block` (1 <= size <= units; default 16).
    #[arg(long)]
    block_size: Option<usize>,
    /// Ridge (Tikhonov) regularisation of the readout.
    #[arg(long, default_value_t = 1e-6)]
    ridge: f64,
    /// Initial time steps whose states are not used for training.
    #[arg(long, default_value_t = 100)]
    washout: usize,
    /// Readout also sees the raw input: features [1, u(t), x(t)] instead of [1, x(t)].
    #[arg(long)]
    input_features: bool,
    /// Train for closed-loop generation with the target as the next input (one-step-ahead
    /// prediction; needs as many inputs as outputs).
    #[arg(long, conflicts_with = "feedback")]
    generative: bool,
    /// Train with output feedback (Jaeger's generator setup): the target is fed back through
    /// feedback weights, teacher-forced in training; `generate` then runs on the last input.
    #[arg(long)]
    feedback: bool,
    /// Feedback weights ~ U[−s, s] (with --feedback).
    #[arg(long, default_value_t = defaults().feedback_scaling)]
    feedback_scaling: f64,
    /// State noise U[−n, n] added during training (regularises --feedback models).
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Least-squares method of the readout.
    #[arg(long, value_enum, default_value_t = SolverArg::NormalEquations)]
    solver: SolverArg,
    /// Seed of the reservoir's weights (the same weights as Python's for the same seed).
    #[arg(long, default_value_t = defaults().seed)]
    seed: u64,
    /// Step kernel of the reservoir: exact (libm tanh, the default), fast (this CPU's best
    /// fused f32 kernel, saved under its variant name), scalar, avx2 or avx512.
    #[arg(long, default_value = "exact")]
    kernel: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    input: PathBuf,
    /// Predictions (.npy or .csv).
    #[arg(long)]
    output: PathBuf,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    #[arg(long)]
    model: PathBuf,
    /// Number of closed-loop steps.
    #[arg(long)]
    steps: usize,
    /// Generated series (.npy or .csv); CSV on stdout when absent.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    target: PathBuf,
    /// Time steps skipped before scoring.
    #[arg(long, default_value_t = 0)]
    washout: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: EsnCommand) -> anyhow::Result<()> {
    match cmd {
        EsnCommand::Task(a) => task(a),
        EsnCommand::Train(a) => train(a),
        EsnCommand::Run(a) => run_model(a),
        EsnCommand::Generate(a) => generate(a),
        EsnCommand::Eval(a) => eval(a),
        EsnCommand::Bench(a) => crate::esn_bench::run(a),
    }
}

fn read(path: &std::path::Path, what: &str) -> anyhow::Result<Array2> {
    read_array(path).with_context(|| format!("reading the {what}"))
}

fn task(a: TaskArgs) -> anyhow::Result<()> {
    let opts = TaskOptions {
        units: a.units,
        seed: a.seed,
        runs: a.runs,
        shared_data: None,
    };
    let pb = crate::progress::bar(opts.runs_or_default(a.name) as u64, a.name.as_str());
    let report = tasks::run(a.name, &opts, &mut |_| pb.inc(1))?;
    pb.finish_and_clear();
    if a.json {
        output::println(serde_json::to_string(&report)?)?;
    } else {
        output::print(report.summary())?;
    }
    Ok(())
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    // Sizes and ranges first: a reservoir of 20,000 units takes minutes to build.
    if a.units == 0 || a.units > MAX_UNITS {
        bail!(
            "--units must be between 1 and {MAX_UNITS} (the tasks' limit: the readout alone needs units² values), got {}",
            a.units
        );
    }
    // A model written over a data file (`--model y.npy`) would destroy it.
    if !has_extension(&a.model, "safetensors") {
        bail!(
            "--model {}: a model file's name ends in .safetensors",
            a.model.display()
        );
    }
    for (flag, v) in [("--ridge", a.ridge), ("--noise", a.noise)] {
        if !(v.is_finite() && v >= 0.0) {
            bail!("{flag} must be a finite number >= 0, got {v}");
        }
    }
    let input = read(&a.input, "input")?;
    let target = read(&a.target, "target")?;
    if a.washout >= input.rows() {
        bail!(
            "--washout {} must be smaller than the number of time steps in {} ({})",
            a.washout,
            a.input.display(),
            input.rows()
        );
    }
    check_training_memory(&a, input.rows(), input.cols(), target.cols())?;
    use echos_core::topology::Topology;
    // A parameter of another topology would be silently ignored: refuse it instead.
    if a.jump.is_some() && !matches!(a.topology, TopologyArg::CycleJumps) {
        bail!("--jump applies to --topology cycle-jumps only");
    }
    if a.block_size.is_some() && !matches!(a.topology, TopologyArg::Block) {
        bail!("--block-size applies to --topology block only");
    }
    let topology = match a.topology {
        TopologyArg::Random => Topology::Random,
        TopologyArg::Cycle => Topology::Cycle,
        TopologyArg::DelayLine => Topology::DelayLine,
        TopologyArg::CycleJumps => Topology::CycleJumps {
            jump: a.jump.unwrap_or(2),
        },
        TopologyArg::Block => Topology::Block {
            size: a
                .block_size
                .unwrap_or(echos_core::topology::DEFAULT_BLOCK_SIZE),
        },
    };
    let opts = TrainOptions {
        units: a.units,
        spectral_radius: a.spectral_radius,
        leak_rate: a.leak_rate,
        input_scaling: a.input_scaling,
        bias_scaling: a.bias_scaling,
        connectivity: a.connectivity,
        topology,
        ridge: a.ridge,
        washout: a.washout,
        input_features: a.input_features,
        generative: if a.generative {
            Generative::Input
        } else if a.feedback {
            Generative::Feedback
        } else {
            Generative::None
        },
        feedback_scaling: a.feedback_scaling,
        noise: a.noise,
        solver: match a.solver {
            SolverArg::NormalEquations => Solver::NormalEquations,
            SolverArg::Qr => Solver::Qr,
        },
        seed: a.seed,
        kernel: echos_core::esn::StepKernel::parse(&a.kernel)
            .map_err(|e| anyhow::anyhow!("--kernel: {e}"))?,
    };
    // The engine reports no progress from inside training; a spinner with the elapsed time
    // shows that it is working.
    let spinner = crate::progress::spinner(&format!(
        "training {} units on {} steps",
        a.units,
        input.rows()
    ));
    let model = echos_host::training::train(&opts, &input, &target);
    spinner.finish_and_clear();
    let model = model?;
    model_file::save(&a.model, &model)?;
    let fit = model.training_fit.clone();
    if a.json {
        output::println(serde_json::json!({ "model": a.model, "training": fit, "options": opts }))?;
    } else {
        output::println(format_args!(
            "trained {} units on {} steps (washout {}): training nrmse {:.4}; saved {}",
            a.units,
            input.rows(),
            a.washout,
            fit.nrmse,
            a.model.display()
        ))?;
    }
    Ok(())
}

/// An upper bound of what training allocates, in bytes (None: beyond u64): the reservoir's
/// weights, the readout's normal equations and their factor, the feature vector of every step
/// after the washout (kept for the training fit and the QR solver), and QR's matrices.
fn training_bytes(a: &TrainArgs, rows: usize, inputs: usize, outputs: usize) -> Option<u64> {
    let (n, i, o) = (a.units as u64, inputs as u64, outputs as u64);
    let features = n.checked_add(if a.input_features { i } else { 0 })?;
    let d = features.checked_add(1)?;
    let kept = rows.saturating_sub(a.washout) as u64;
    let per_row = ((a.connectivity.clamp(0.0, 1.0) * a.units as f64).round() as u64).max(1);
    let values = [
        // W (dense or sparse: 8-byte value + index per entry) and W_in, W_fb.
        n.checked_mul(n.max(per_row.checked_mul(2)?))?,
        n.checked_mul(i.checked_add(o)?)?,
        // XᵀX and its Cholesky factor.
        d.checked_mul(d)?.checked_mul(2)?,
        kept.checked_mul(features)?,
    ];
    let mut total = values.iter().try_fold(0u64, |acc, &v| acc.checked_add(v))?;
    if matches!(a.solver, SolverArg::Qr) {
        // [X; √λI] and its Q, each (kept + features) × d.
        let qr = kept.checked_add(features)?.checked_mul(d)?.checked_mul(2)?;
        total = total.checked_add(qr)?;
    }
    total.checked_mul(8)
}

/// Refuses a training run whose buffers cannot be allocated here, before building anything,
/// instead of aborting part way (a small file of many rows times many units is enough).
fn check_training_memory(
    a: &TrainArgs,
    rows: usize,
    inputs: usize,
    outputs: usize,
) -> anyhow::Result<()> {
    let bytes = training_bytes(a, rows, inputs, outputs);
    if let Some(b) = bytes.and_then(|b| usize::try_from(b).ok()) {
        // Reserving address space touches no page; the kernel refuses what it cannot back.
        if Vec::<u8>::new().try_reserve_exact(b).is_ok() {
            return Ok(());
        }
    }
    let size = bytes.map_or("more than 2^64 bytes".to_string(), |b| {
        format!("about {:.1} GB", b as f64 / 1e9)
    });
    bail!(
        "training --units {} on {rows} time steps ({inputs} input and {outputs} target columns) needs {size}, more than can be allocated here: use fewer --units or a shorter series",
        a.units
    )
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Loads a model, warning on stderr when its file is too old to carry a checksum.
fn load_model(path: &Path) -> anyhow::Result<EsnModel> {
    let (model, integrity) = model_file::load_with_integrity(path)?;
    if let Some(w) = integrity.warning(path) {
        output::warn(w);
    }
    Ok(model)
}

fn run_model(a: RunArgs) -> anyhow::Result<()> {
    let mut model = load_model(&a.model)?;
    let input = read(&a.input, "input")?;
    let out = model.run(&input)?;
    write_array(&a.output, &out)?;
    Ok(())
}

/// Steps per `EsnModel::generate` call: memory stays at this many rows whatever `--steps` is.
const GENERATE_CHUNK_STEPS: usize = 4096;

fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    if a.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let mut model = load_model(&a.model)?;
    if model.setup.generative == Generative::None {
        bail!(
            "model {} was trained without --generative or --feedback, so it cannot run closed loop: \
             train it with `echos esn train --generative` (the target is the input one step ahead) or `--feedback`",
            a.model.display()
        );
    }
    let outputs = model.outputs();
    let Some(path) = a.output else {
        let mut out = output::stdout();
        generate_chunked(&mut model, a.steps, GENERATE_CHUNK_STEPS, &mut |chunk| {
            out.write_all(csv_rows(chunk).as_bytes())?;
            Ok(())
        })?;
        return Ok(out.flush()?);
    };
    let npy = has_extension(&path, "npy");
    if !npy && !has_extension(&path, "csv") {
        return Err(DataError::UnknownExtension { path }.into());
    }
    let values = a
        .steps
        .checked_mul(outputs)
        .filter(|v| v.checked_mul(8).is_some());
    if values.is_none() {
        bail!(
            "--steps {} with {outputs} outputs is more values than a file can index (at most {})",
            a.steps,
            usize::MAX / 8 / outputs.max(1)
        );
    }
    let writing = |e: std::io::Error| DataError::Write {
        path: path.clone(),
        source: e,
    };
    let mut file = AtomicFile::create(&path).map_err(writing)?;
    if npy {
        file.write_all(&npy::header(a.steps, outputs))
            .map_err(writing)?;
    }
    let bar = crate::progress::bar(a.steps as u64, "generating");
    generate_chunked(&mut model, a.steps, GENERATE_CHUNK_STEPS, &mut |chunk| {
        let bytes = if npy {
            chunk.data().iter().flat_map(|v| v.to_le_bytes()).collect()
        } else {
            csv_rows(chunk).into_bytes()
        };
        file.write_all(&bytes).map_err(writing)?;
        bar.inc(chunk.rows() as u64);
        Ok(())
    })?;
    bar.finish_and_clear();
    file.commit().map_err(writing)?;
    Ok(())
}

fn csv_rows(a: &Array2) -> String {
    let mut text = String::new();
    for t in 0..a.rows() {
        csv_table::push_row(&mut text, a.row(t));
    }
    text
}

/// `steps` closed-loop steps, `chunk` at a time, each handed to `sink` as it is made.
/// `EsnModel::generate` continues from the model's state and last output, so the chunks join
/// into the series one call would give.
fn generate_chunked(
    model: &mut EsnModel,
    steps: usize,
    chunk: usize,
    sink: &mut dyn FnMut(&Array2) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut done = 0;
    while done < steps {
        let len = chunk.min(steps - done);
        sink(&model.generate(len)?)?;
        done += len;
    }
    Ok(())
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let mut model = load_model(&a.model)?;
    let input = read(&a.input, "input")?;
    let target = read(&a.target, "target")?;
    if a.washout >= input.rows() {
        bail!(
            "--washout {} must be smaller than the number of time steps in {} ({})",
            a.washout,
            a.input.display(),
            input.rows()
        );
    }
    let scores = model.evaluate(&input, &target, a.washout)?;
    if a.json {
        output::println(serde_json::to_string(&scores)?)?;
    } else {
        output::println(format_args!(
            "mse {:.6e}  rmse {:.6e}  nrmse {:.6}  r2 {:.6}  ({} steps scored)",
            scores.mse, scores.rmse, scores.nrmse, scores.r2, scores.steps
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    fn train_args(extra: &[&str]) -> TrainArgs {
        let base = [
            "echos",
            "--input",
            "x.csv",
            "--target",
            "y.csv",
            "--model",
            "m.safetensors",
        ];
        Cli::parse_from(base.iter().chain(extra)).train
    }

    /// Chunks of any size join into the series one `generate` call gives, bit for bit.
    #[test]
    fn chunked_generation_equals_one_call() {
        let s: Vec<f64> = (0..301).map(|t| (t as f64 * 0.3).sin() * 0.7).collect();
        let x = Array2::column(s[..300].to_vec()).unwrap();
        let y = Array2::column(s[1..].to_vec()).unwrap();
        let opts = TrainOptions {
            units: 30,
            spectral_radius: 0.9,
            leak_rate: 1.0,
            input_scaling: 1.0,
            bias_scaling: 0.5,
            connectivity: 0.2,
            topology: echos_core::topology::Topology::Random,
            ridge: 1e-8,
            washout: 20,
            input_features: false,
            generative: Generative::Input,
            feedback_scaling: 0.0,
            noise: 0.0,
            solver: Solver::NormalEquations,
            seed: 5,
            kernel: Default::default(),
        };
        let model = echos_host::training::train(&opts, &x, &y).unwrap();
        let whole = model.clone().generate(100).unwrap();
        for chunk in [1, 7, 64, 100, 1000] {
            let mut m = model.clone();
            let mut joined = Vec::new();
            generate_chunked(&mut m, 100, chunk, &mut |c| {
                assert!(c.rows() <= chunk);
                joined.extend_from_slice(c.data());
                Ok(())
            })
            .unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&joined), bits(whole.data()), "chunk {chunk}");
        }
    }

    /// The memory check refuses what cannot be allocated (a small file's many rows times many
    /// units) with the sizes named, and accepts an ordinary run.
    #[test]
    fn training_memory_is_checked_before_building() {
        let a = train_args(&["--units", "20000"]);
        let bytes = training_bytes(&a, 5_000_000, 1, 1).unwrap();
        // The states of 5 million steps alone: 5e6 × 20,000 × 8 bytes = 800 GB.
        assert!(bytes > 800_000_000_000, "{bytes}");
        let e = check_training_memory(&a, 5_000_000, 1, 1).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("--units 20000 on 5000000 time steps") && text.contains("GB"),
            "{text}"
        );
        let qr = train_args(&["--units", "200", "--solver", "qr"]);
        assert!(
            training_bytes(&qr, 1000, 1, 1)
                > training_bytes(&train_args(&["--units", "200"]), 1000, 1, 1)
        );
        check_training_memory(&train_args(&["--units", "200"]), 1000, 1, 1).unwrap();
        // Past u64: named as such, not wrapped around.
        let wide = train_args(&["--units", "20000", "--input-features"]);
        assert_eq!(training_bytes(&wide, usize::MAX, usize::MAX, 1), None);
        let e = check_training_memory(&wide, usize::MAX, usize::MAX, 1).unwrap_err();
        assert!(e.to_string().contains("more than 2^64 bytes"), "{e}");
    }
}

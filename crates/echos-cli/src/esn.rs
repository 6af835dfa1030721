//! `echos esn …`: benchmark tasks, training, teacher-forced runs, closed-loop generation and
//! evaluation of echo state networks. Everything numeric is in echos-host / echos-core.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use echos_host::model_file;
use echos_host::tasks::{self, TaskName, TaskOptions};
use echos_host::training::{Generative, Solver, TrainOptions};
use echos_host::{read_array, write_array, Array2};

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
    #[arg(long, default_value_t = 100)]
    units: usize,
    #[arg(long, default_value_t = 0.9)]
    spectral_radius: f64,
    #[arg(long, default_value_t = 0.3)]
    leak_rate: f64,
    #[arg(long, default_value_t = 1.0)]
    input_scaling: f64,
    #[arg(long, default_value_t = 0.0)]
    bias_scaling: f64,
    /// Fraction of nonzero recurrent weights (random topology).
    #[arg(long, default_value_t = 0.1)]
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
    #[arg(long, default_value_t = 0.5)]
    feedback_scaling: f64,
    /// State noise U[−n, n] added during training (regularises --feedback models).
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Least-squares method of the readout.
    #[arg(long, value_enum, default_value_t = SolverArg::NormalEquations)]
    solver: SolverArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Step kernel of the reservoir: exact (libm tanh, the default), fast (this CPU's best
    /// fused f32 kernel, saved under its variant name), scalar, avx2 or avx512.
    #[arg(long, default_value = "exact")]
    kernel: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
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
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.summary());
    }
    Ok(())
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    let input = read(&a.input, "input")?;
    let target = read(&a.target, "target")?;
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
    let model = echos_host::training::train(&opts, &input, &target)?;
    model_file::save(&a.model, &model)?;
    let fit = model.training_fit.clone();
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "model": a.model, "training": fit, "options": opts })
        );
    } else {
        println!(
            "trained {} units on {} steps (washout {}): training nrmse {:.4}; saved {}",
            a.units,
            input.rows(),
            a.washout,
            fit.nrmse,
            a.model.display()
        );
    }
    Ok(())
}

fn run_model(a: RunArgs) -> anyhow::Result<()> {
    let mut model = model_file::load(&a.model)?;
    let input = read(&a.input, "input")?;
    let out = model.run(&input)?;
    write_array(&a.output, &out)?;
    Ok(())
}

fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    if a.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let mut model = model_file::load(&a.model)?;
    let out = model.generate(a.steps)?;
    match a.output {
        Some(p) => write_array(&p, &out)?,
        None => print!("{}", echos_host::csv_table::to_string(&out)),
    }
    Ok(())
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let mut model = model_file::load(&a.model)?;
    let input = read(&a.input, "input")?;
    let target = read(&a.target, "target")?;
    let scores = model.evaluate(&input, &target, a.washout)?;
    if a.json {
        println!("{}", serde_json::to_string(&scores)?);
    } else {
        println!(
            "mse {:.6e}  rmse {:.6e}  nrmse {:.6}  r2 {:.6}  ({} steps scored)",
            scores.mse, scores.rmse, scores.nrmse, scores.r2, scores.steps
        );
    }
    Ok(())
}

//! `echos esn bench`: steps per second of the reservoir step on this CPU (single sequence,
//! batch or ensemble), which kernel ran, and how close it comes to the memory-bandwidth limit.

use anyhow::{bail, Context};
use echos_core::kernels::{Kernel, Variant};
use echos_eval::limits::Measured;
use echos_host::bench::{ReservoirSpec, StepBench};

/// Arguments of `echos esn bench`.
#[derive(clap::Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// Reservoir units N.
    #[arg(long, default_value_t = 1000)]
    pub units: usize,
    /// Fraction of non-zero recurrent weights (1.0 = dense matrix).
    #[arg(long, default_value_t = 0.1)]
    pub connectivity: f64,
    /// Time steps per timed run.
    #[arg(long, default_value_t = 10_000)]
    pub steps: usize,
    /// Sequences through one reservoir at once.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Independent reservoirs stepped together.
    #[arg(long, default_value_t = 1)]
    pub ensemble: usize,
    /// Kernel: auto (best on this CPU), scalar, avx2, avx512, or all (one result per kernel).
    #[arg(long, default_value = "auto")]
    pub kernel: String,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Threads for batch and ensemble runs (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Inputs per step.
    #[arg(long, default_value_t = 1)]
    pub inputs: usize,
    /// Seed of the random reservoir.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Batches of a random reservoir: keep 32-lane groups and cut the reservoir's rows across
    /// threads (one join per step; faster on an idle machine, slower when other processes share
    /// the cores). Block batches always split by sequences.
    #[arg(long)]
    pub row_split: bool,
    /// One sequence: share each step between two threads (SELL slices halved, one join per
    /// step); sparse reservoirs only.
    #[arg(long)]
    pub split_step: bool,
    /// Reservoir topology: `random` (sparse, SELL-16 step, CSR batch kernel) or `block` (groups
    /// of units share their in-neighbour columns; gather-free step and batch kernel).
    #[arg(long, default_value = "random")]
    pub topology: String,
    /// Rows per group of a `block` reservoir.
    #[arg(long, default_value_t = echos_core::topology::DEFAULT_BLOCK_SIZE)]
    pub block_size: usize,
    /// Number format of block batches: `f32` (default), or `bf16` (opt-in reduced precision:
    /// weights and multiplied states rounded to bfloat16, f32 accumulation and states).
    #[arg(long, default_value = "f32")]
    pub format: String,
    /// Print one JSON object per kernel instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark and prints the result.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let kernels: Vec<Kernel> = match args.kernel.as_str() {
        "auto" => vec![Kernel::best()],
        "all" => Kernel::available().collect(),
        name => {
            let Some(v) = Variant::from_name(name) else {
                bail!("unknown kernel `{name}`: use auto, all, scalar, avx2 or avx512");
            };
            vec![Kernel::new(v).with_context(|| format!("cannot run kernel `{name}`"))?]
        }
    };
    let block_size = match args.topology.as_str() {
        "random" => None,
        "block" => Some(args.block_size),
        other => bail!("unknown topology `{other}`: use random or block"),
    };
    let bf16 = match args.format.as_str() {
        "f32" => false,
        "bf16" => true,
        other => bail!("unknown format `{other}`: use f32 or bf16"),
    };
    let threads = match args.threads {
        Some(t) => t,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let bench = StepBench {
        spec: ReservoirSpec {
            units: args.units,
            inputs: args.inputs,
            connectivity: args.connectivity,
            seed: args.seed,
            ..ReservoirSpec::default()
        },
        steps: args.steps,
        batch: args.batch,
        ensemble: args.ensemble,
        repeats: args.repeats,
        threads,
        split_rows: args.row_split,
        split_step: args.split_step,
        block_size,
        bf16,
    };
    for kernel in kernels {
        let r = bench
            .run(kernel, &Measured)
            .context("benchmark refused its parameters")?;
        if args.json {
            crate::output::println(serde_json::to_string(&r)?)?;
        } else {
            crate::output::println(format_args!(
                "{:18} N {:5} p {:.3} batch {:3} ensemble {:3}: {:>10.0} steps/s per sequence ({:.0} total, {:.0} per CPU-s); \
                 limits: bandwidth {:.0} ({:.1} GB/s), {} {:.0} steps/s -> {} binds, {:.0}% of it",
                if r.block_size > 0 {
                    format!("{} ({})", r.step_kernel, r.block_size)
                } else {
                    r.step_kernel.to_string()
                },
                r.units,
                r.connectivity,
                r.batch,
                r.ensemble,
                r.steps_per_s,
                r.total_steps_per_s,
                r.steps_per_cpu_s,
                r.bandwidth_limit_steps_per_s,
                r.bandwidth_bytes_per_s / 1e9,
                r.compute_limit_kind,
                r.compute_limit_steps_per_s,
                r.binding_limit,
                100.0 * r.fraction_of_limit
            ))?;
        }
    }
    Ok(())
}

//! Stand-alone `echos esn bench` (same code as the subcommand) for running the benchmark before
//! the CLI wires it in: `cargo run --release -p echos-cli --example esn_bench -- --units 1000`.

#[path = "../src/esn_bench.rs"]
mod esn_bench;
// The bench prints through the CLI's writer; the example uses only part of it.
#[allow(dead_code)]
#[path = "../src/output.rs"]
mod output;

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: esn_bench::BenchArgs,
}

fn main() -> anyhow::Result<()> {
    esn_bench::run(Cli::parse().args)
}

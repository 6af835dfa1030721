//! `echos`: the command line front end of echo-os. Thin: numerics live in the engine and the
//! host crate; this file only parses arguments and dispatches.
#![forbid(unsafe_code)]

mod esn;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "echos",
    version,
    about = "Echo state networks, RWKV and event streams in real time"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Echo state networks: benchmark tasks, training, running, generation, evaluation.
    #[command(subcommand)]
    Esn(esn::EsnCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Esn(cmd) => esn::run(cmd),
    }
}

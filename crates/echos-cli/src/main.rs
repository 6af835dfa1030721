//! `echos`: the command line front end of echo-os. Thin: numerics live in the engine and the
//! host crates; this file only parses arguments and dispatches.
#![forbid(unsafe_code)]

mod rwkv;

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
    /// RWKV language models: generate text, logits for token files, benchmarks.
    #[command(subcommand)]
    Rwkv(rwkv::RwkvCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Rwkv(cmd) => rwkv::run(cmd),
    }
}

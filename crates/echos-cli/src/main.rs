//! `echos`: the command line front end of echo-os. Thin: numerics live in the engine and the
//! host crates; this file only parses arguments and dispatches.
#![forbid(unsafe_code)]
// Results go through `output` (errors instead of panics on a closed or full stdout).
#![deny(clippy::print_stdout)]

mod esn;
mod esn_bench;
mod events;
mod output;
mod progress;
mod rt;
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
    /// Echo state networks: benchmark tasks, training, running, generation, evaluation.
    #[command(subcommand)]
    Esn(esn::EsnCommand),
    /// RWKV language models: generate text, logits for token files, benchmarks.
    #[command(subcommand)]
    Rwkv(rwkv::RwkvCommand),
    /// The hosted real-time runtime: periodic pipelines, shared state, timing (docs/rt.md).
    #[command(subcommand)]
    Rt(rt::RtCommand),
    /// Event-camera recordings: info, format conversion, encoding into reservoir input.
    #[command(subcommand)]
    Events(events::EventsCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Esn(cmd) => esn::run(cmd),
        Command::Rwkv(cmd) => rwkv::run(cmd),
        Command::Rt(cmd) => rt::run(cmd),
        Command::Events(cmd) => events::run(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of our stdout stopped reading (`| head`): what it wanted, it got.
        Err(e) if output::is_closed_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            // Not `eprintln!`: it panics when stderr itself is closed or full.
            let _ = writeln!(std::io::stderr(), "error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, without a backtrace. Our error types already write
/// their cause into their own message, so a cause whose text is already shown is skipped.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

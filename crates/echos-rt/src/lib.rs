//! echo-os's hosted runtime for Linux: the kernel's real-time primitives for a reservoir that
//! runs under a stock kernel (docs/rt.md).
//!
//! - **Configure phase** ([`config`], [`runner::configure`]): a TOML file checked whole, the
//!   model loaded and fitted to its source, sinks opened, the shared region created — every
//!   error here, before anything runs.
//! - **Run phase** ([`runner::run`], [`pipeline`]): a thread pinned to a CPU, its memory bound
//!   to the CPU's NUMA node, locked and pre-faulted, under SCHED_FIFO (or SCHED_DEADLINE),
//!   releasing a job every period with `clock_nanosleep(TIMER_ABSTIME)`; each job runs
//!   source → reservoir + readout → sinks, allocation- and lock-free. What the machine refuses
//!   is listed as [`realtime::Degraded`], never skipped silently.
//! - **Shared state** ([`shm`], [`ring`], [`seqlock`]): a named region other processes map to
//!   read the live reservoir state, the timing counters and the outputs without ever blocking
//!   the loop.
//! - **Timing** ([`hist`], [`stats`], [`bench`]): wake-up latency and step time histograms,
//!   deadline misses and overruns, and a benchmark beside cyclictest.
//!
//! `unsafe` lives only in the private `sys` module (system calls rustix does not wrap, and the
//! shared mapping).
#![deny(unsafe_code)]

pub mod bench;
pub mod clock;
pub mod config;
pub mod demo;
pub mod event_source;
pub mod hist;
pub mod hwcounters;
pub mod introspect;
pub mod pipeline;
pub mod realtime;
pub mod ring;
pub mod runner;
pub mod seqlock;
pub mod shm;
pub mod sink;
pub mod source;
pub mod stats;
mod sys;

pub use config::{ConfigError, Timing};
pub use event_source::{EventSource, EventSourceSpec, Overflow};
pub use pipeline::{End, Outcome, Pipeline};
pub use realtime::{Applied, Degraded, Policy, SchedPlan};
pub use runner::{configure, run, run_with, Plan, Report};
pub use shm::{Attached, Region, ShmError};
pub use sink::{FileSink, MemorySink, Score, Sink, SinkError};
pub use source::{Poll, SeriesSource, Source, SourceError, StdinSource, Tick};
pub use stats::{RunStats, Summary};

#[derive(Debug, thiserror::Error)]
pub enum RtError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("model.path: {}: {source}", path.display())]
    ModelFile {
        path: std::path::PathBuf,
        source: echos_host::model_file::ModelFileError,
    },
    #[error(transparent)]
    Train(#[from] echos_host::training::TrainError),
    #[error("{what}: {reason}")]
    Mismatch { what: String, reason: String },
    #[error("{0}")]
    Thread(String),
}

//! What a run measured: wake-up latency (wake time minus the release asked for), the
//! reservoir+readout step time and the whole job's time as log-bucket histograms, and the
//! periodic-task counters of `echos_kpolicy::periodic` (deadline misses, overruns, skipped
//! jobs). Fixed-size, so the loop updates it without allocating.

use std::fmt;

use serde::Serialize;

use crate::hist::{LogHistogram, Percentiles};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Jobs run (one per period reached).
    pub periods: u64,
    /// Reservoir steps taken (periods whose source had an input).
    pub steps: u64,
    /// Periods whose source had no input ready (a stdin line not yet there).
    pub source_idle: u64,
    pub deadline_misses: u64,
    pub overruns: u64,
    /// Releases that passed while the loop was late (each also a deadline miss).
    pub skipped_jobs: u64,
    /// Outputs a sink could not take (a full file queue).
    pub sink_drops: u64,
    /// Outputs the shared ring could not take: no consumer, or one that fell behind.
    pub ring_drops: u64,
    pub wakeup: LogHistogram,
    pub step: LogHistogram,
    pub job: LogHistogram,
    /// CRC-32 of the little-endian bits of every output, in order (to compare runs bit for
    /// bit).
    pub outputs_crc32: u32,
}

/// The figures a report prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub periods: u64,
    pub steps: u64,
    pub source_idle: u64,
    pub deadline_misses: u64,
    pub overruns: u64,
    pub skipped_jobs: u64,
    pub sink_drops: u64,
    pub ring_drops: u64,
    pub wakeup: Percentiles,
    pub step: Percentiles,
    pub job: Percentiles,
    pub outputs_crc32: u32,
}

impl RunStats {
    pub fn summary(&self) -> Summary {
        Summary {
            periods: self.periods,
            steps: self.steps,
            source_idle: self.source_idle,
            deadline_misses: self.deadline_misses,
            overruns: self.overruns,
            skipped_jobs: self.skipped_jobs,
            sink_drops: self.sink_drops,
            ring_drops: self.ring_drops,
            wakeup: self.wakeup.percentiles(),
            step: self.step.percentiles(),
            job: self.job.percentiles(),
            outputs_crc32: self.outputs_crc32,
        }
    }
}

/// "12.3 µs" style, or "-" for an empty histogram.
pub fn ns(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 10_000 => format!("{v} ns"),
        Some(v) if v < 10_000_000 => format!("{:.1} µs", v as f64 / 1e3),
        Some(v) => format!("{:.2} ms", v as f64 / 1e6),
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, p: &Percentiles) -> fmt::Result {
    writeln!(
        f,
        "  {name:<8} p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}",
        ns(p.p50_ns),
        ns(p.p99_ns),
        ns(p.p999_ns),
        ns(p.max_ns)
    )
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "periods {}  steps {}  deadline misses {}  overruns {}  skipped {}  source idle {}  sink drops {}  ring drops {}",
            self.periods,
            self.steps,
            self.deadline_misses,
            self.overruns,
            self.skipped_jobs,
            self.source_idle,
            self.sink_drops,
            self.ring_drops
        )?;
        row(f, "wake-up", &self.wakeup)?;
        row(f, "step", &self.step)?;
        row(f, "job", &self.job)?;
        write!(f, "  outputs crc32 {:08x}", self.outputs_crc32)
    }
}

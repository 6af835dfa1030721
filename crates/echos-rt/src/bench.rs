//! `echos rt bench`: the loop stepping an N-unit reservoir on the fast kernel, with its wake-up
//! latency, step time, misses and overruns — and, when asked and installed, cyclictest
//! (Debian's rt-tests) run right after it in the same invocation with the same period,
//! priority and CPU, so the two sets of percentiles are comparable on a shared virtual machine.
//! A benchmark, never a timed test: its numbers depend on the machine and its neighbours.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use echos_core::esn::{Esn, EsnConfig, StepKernel};
use echos_core::matrix::Dense;
use echos_core::model::{Generative, Trained};
use echos_core::readout::Linear;
use echos_core::rng::Rng;
use echos_host::Array2;
use serde::Serialize;

use crate::config::{check_sched, SchedSection, ShmPlan, Timing};
use crate::hwcounters::HwReport;
use crate::realtime::{Degraded, Policy};
use crate::runner::{run, Plan};
use crate::source::SeriesSource;
use crate::RtError;

#[derive(Clone, Debug, PartialEq)]
pub struct BenchOptions {
    pub period_us: u64,
    pub periods: u64,
    pub units: usize,
    pub priority: u8,
    pub cpu: Option<usize>,
    pub vs_cyclictest: bool,
    /// A reader thread takes snapshots of the shared region at this rate (0: none).
    pub reader_hz: u32,
}

/// The figures, under the names the issue asks for.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BenchReport {
    pub period_us: u64,
    pub periods: u64,
    pub units: usize,
    pub kernel: String,
    pub policy: String,
    pub cpu: Option<usize>,
    pub memory_locked: bool,
    pub reader_hz: u32,
    pub reader_snapshots: u64,
    pub wakeup_p50_ns: Option<u64>,
    pub wakeup_p99_ns: Option<u64>,
    pub wakeup_p999_ns: Option<u64>,
    pub wakeup_max_ns: Option<u64>,
    pub step_p50_ns: Option<u64>,
    pub step_p99_ns: Option<u64>,
    pub step_max_ns: Option<u64>,
    pub deadline_misses: u64,
    pub overruns: u64,
    pub degraded: Vec<Degraded>,
    /// Cycles, instructions, cache references and misses per step and the cache hit rate
    /// (`perf_event_open`), or "not available here: <reason>".
    pub hardware_counters: Option<HwReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cyclictest_p50_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cyclictest_p99_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cyclictest_max_ns: Option<u64>,
    /// Why cyclictest's figures are missing, when they were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cyclictest_note: Option<String>,
}

/// An N-unit reservoir on the fastest fused kernel this CPU has, with a fixed random readout
/// (the step's cost does not depend on what the readout learned).
pub fn bench_model(units: usize, seed: u64) -> Result<Trained<f64>, RtError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| RtError::Mismatch {
        what: what.into(),
        reason: e.to_string(),
    };
    let cfg = EsnConfig {
        units,
        inputs: 1,
        kernel: StepKernel::fast(),
        seed,
        ..EsnConfig::default()
    };
    let esn = Esn::<f64>::new(&cfg).map_err(|e| bad("bench reservoir", &e))?;
    let mut rng = Rng::new(seed ^ 0x5eed);
    let w: Vec<f64> = (0..=units).map(|_| rng.uniform(-0.1, 0.1)).collect();
    let w = Dense::new(1, units + 1, w).map_err(|e| bad("bench readout", &e))?;
    let readout = Linear::from_weights(w).map_err(|e| bad("bench readout", &e))?;
    Trained::new(esn, readout, false, Generative::None).map_err(|e| bad("bench model", &e))
}

/// A sine input of `rows` steps (period 50 steps), repeated.
pub fn sine_source(rows: usize) -> Result<SeriesSource, RtError> {
    let data = (0..rows)
        .map(|t| libm::sin(t as f64 * 2.0 * std::f64::consts::PI / 50.0) * 0.5)
        .collect();
    let a = Array2::new(rows, 1, data).map_err(|e| RtError::Mismatch {
        what: "sine".into(),
        reason: e.to_string(),
    })?;
    Ok(SeriesSource::new(a, true, "built-in sine")?)
}

/// Where cyclictest is, if installed.
pub fn find_cyclictest() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("cyclictest"))
        .find(|p| p.is_file())
}

/// cyclictest's p50, p99 and max in ns (its resolution is 1 µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cyclictest {
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Reads cyclictest's `--json` file: thread 0's histogram (µs → count), cycles and max.
/// Samples past the histogram (overflows) count at the maximum.
pub fn parse_cyclictest_json(text: &str) -> Result<Cyclictest, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let t = &v["thread"]["0"];
    let cycles = t["cycles"].as_u64().ok_or("no thread 0 cycles")?;
    let max_us = t["max"].as_u64().ok_or("no thread 0 max")?;
    let hist = t["histogram"].as_object().ok_or("no thread 0 histogram")?;
    let mut buckets: Vec<(u64, u64)> = hist
        .iter()
        .filter_map(|(k, c)| Some((k.parse().ok()?, c.as_u64()?)))
        .collect();
    buckets.sort_unstable();
    if cycles == 0 {
        return Err("cyclictest ran no cycles".into());
    }
    let quantile = |q: f64| {
        let rank = ((q * cycles as f64).ceil() as u64).clamp(1, cycles);
        let mut seen = 0;
        for &(us, c) in &buckets {
            seen += c;
            if seen >= rank {
                return us * 1000;
            }
        }
        max_us * 1000
    };
    Ok(Cyclictest {
        p50_ns: quantile(0.5),
        p99_ns: quantile(0.99),
        max_ns: max_us * 1000,
    })
}

/// Runs cyclictest with our period, priority and CPU for `loops` cycles.
pub fn run_cyclictest(
    exe: &Path,
    period_us: u64,
    loops: u64,
    priority: u8,
    cpu: Option<usize>,
) -> Result<Cyclictest, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let json = dir.path().join("cyclictest.json");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["-q", "-m", "-t", "1", "-h", "20000"])
        .arg(format!("-p{priority}"))
        .arg(format!("-i{period_us}"))
        .arg(format!("-l{loops}"))
        .arg(format!("--json={}", json.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(c) = cpu {
        cmd.arg(format!("-a{c}"));
    }
    let out = cmd
        .output()
        .map_err(|e| format!("could not run {}: {e}", exe.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "cyclictest failed ({}): {}",
            out.status,
            err.lines().last().unwrap_or("")
        ));
    }
    let text = std::fs::read_to_string(&json).map_err(|e| format!("reading its JSON: {e}"))?;
    parse_cyclictest_json(&text)
}

/// Longest bench run accepted (periods).
pub const MAX_BENCH_PERIODS: u64 = 100_000_000;

pub fn bench(o: &BenchOptions, stop: Arc<AtomicBool>) -> Result<BenchReport, RtError> {
    let invalid = |key: &'static str, reason: String| crate::ConfigError::Invalid { key, reason };
    if o.units == 0 || o.units > echos_host::tasks::MAX_UNITS {
        return Err(invalid(
            "--units",
            format!(
                "{} is outside 1..={}",
                o.units,
                echos_host::tasks::MAX_UNITS
            ),
        )
        .into());
    }
    if o.periods == 0 || o.periods > MAX_BENCH_PERIODS {
        return Err(invalid(
            "--periods",
            format!("{} is outside 1..={MAX_BENCH_PERIODS}", o.periods),
        )
        .into());
    }
    let timing =
        Timing::from_us(o.period_us, None, None, Some(o.periods)).map_err(|e| match e {
            crate::ConfigError::Invalid { reason, .. } => invalid("--period-us", reason),
            e => e,
        })?;
    let sched = check_sched(
        &SchedSection {
            policy: Policy::Fifo,
            priority: o.priority,
            cpu: o.cpu,
            ..SchedSection::default()
        },
        &timing,
    )
    .map_err(|e| match e {
        crate::ConfigError::Invalid { key, reason } => invalid(
            match key {
                "sched.cpu" => "--cpu",
                "sched.priority" => "--priority",
                k => k,
            },
            reason,
        ),
        e => e,
    })?;
    let cyclictest = o.vs_cyclictest.then(find_cyclictest);
    let model = bench_model(o.units, 1)?;
    let kernel = model.esn().step_kernel().name().to_string();
    let name = format!("bench-{}", std::process::id());
    let plan = Plan {
        model,
        source: Box::new(sine_source(1000)?),
        sinks: Vec::new(),
        timing: Timing {
            snapshot_every: 1,
            stats_every: 1000,
            ..timing
        },
        sched,
        shm: Some(ShmPlan {
            name: name.clone(),
            ring_capacity: 1024,
            reclaim_stale: true,
            ring_sink: true,
        }),
    };
    // The optional reader: another thread mapping the region and copying snapshots.
    let reading = Arc::new(AtomicBool::new(true));
    let reader = (o.reader_hz > 0).then(|| {
        let (name, reading, hz) = (name.clone(), reading.clone(), o.reader_hz);
        std::thread::spawn(move || {
            let mut n = 0u64;
            let gap = std::time::Duration::from_secs_f64(1.0 / f64::from(hz));
            let mut attached = None;
            while reading.load(Ordering::Relaxed) {
                if attached.is_none() {
                    attached = crate::shm::Attached::open(&name).ok();
                }
                if let Some(a) = &attached {
                    if a.snapshot().is_ok() {
                        n += 1;
                    }
                }
                std::thread::sleep(gap);
            }
            n
        })
    });
    let report = run(plan, stop);
    reading.store(false, Ordering::Relaxed);
    let reader_snapshots = reader.and_then(|h| h.join().ok()).unwrap_or(0);
    let report = report?;
    let s = report.summary();
    let mut out = BenchReport {
        period_us: o.period_us,
        periods: s.periods,
        units: o.units,
        kernel,
        policy: report.applied.policy.clone(),
        cpu: report.applied.cpu,
        memory_locked: report.applied.memory_locked,
        reader_hz: o.reader_hz,
        reader_snapshots,
        wakeup_p50_ns: s.wakeup.p50_ns,
        wakeup_p99_ns: s.wakeup.p99_ns,
        wakeup_p999_ns: s.wakeup.p999_ns,
        wakeup_max_ns: s.wakeup.max_ns,
        step_p50_ns: s.step.p50_ns,
        step_p99_ns: s.step.p99_ns,
        step_max_ns: s.step.max_ns,
        deadline_misses: s.deadline_misses,
        overruns: s.overruns,
        degraded: report.applied.degraded.clone(),
        hardware_counters: Some(report.hardware_counters.clone()),
        ..BenchReport::default()
    };
    match cyclictest {
        None => {}
        Some(None) => {
            out.cyclictest_note = Some(
                "cyclictest is not installed (Debian: apt-get install rt-tests); its figures are skipped"
                    .into(),
            )
        }
        Some(Some(exe)) => {
            match run_cyclictest(&exe, o.period_us, o.periods, o.priority, o.cpu) {
                Ok(c) => {
                    out.cyclictest_p50_ns = Some(c.p50_ns);
                    out.cyclictest_p99_ns = Some(c.p99_ns);
                    out.cyclictest_max_ns = Some(c.max_ns);
                }
                Err(e) => out.cyclictest_note = Some(e),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclictest_json_percentiles() {
        let text = r#"{"thread": {"0": {"histogram": {"13": 60, "20": 30, "30": 9, "62": 1},
                       "cycles": 101, "min": 13, "max": 5000, "avg": 20.0}}}"#;
        // 101 cycles, 100 in the histogram, 1 overflow (at the 5 ms max).
        let c = parse_cyclictest_json(text).unwrap();
        assert_eq!(c.p50_ns, 13_000);
        assert_eq!(c.p99_ns, 62_000);
        assert_eq!(c.max_ns, 5_000_000);
        assert!(parse_cyclictest_json("{}").is_err());
        assert!(parse_cyclictest_json("not json").is_err());
    }

    #[test]
    fn the_bench_model_runs_on_the_fast_kernel() {
        let m = bench_model(50, 3).unwrap();
        assert_ne!(m.esn().step_kernel().name(), "exact");
        assert_eq!((m.inputs(), m.outputs(), m.esn().units()), (1, 1, 50));
    }
}

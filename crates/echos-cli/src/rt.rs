//! `echos rt`: the hosted runtime — run a configured pipeline or the built-in demo
//! periodically, read a running loop's shared region, benchmark the loop beside cyclictest.
//! The runtime itself is `echos_rt`; this only parses, wires signals and prints.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use echos_rt::bench::{bench, BenchOptions};
use echos_rt::config;
use echos_rt::shm::Attached;
use echos_rt::stats::ns;
use echos_rt::{Applied, SchedPlan};

use crate::output;

#[derive(Subcommand)]
pub enum RtCommand {
    /// Run a pipeline periodically in real time: `echos rt run CONFIG.toml` (keys: docs/rt.md)
    /// or `echos rt run --demo`. SIGINT/SIGTERM stop it with its final statistics.
    Run(RunArgs),
    /// Read a running loop's shared region (/dev/shm/echos.NAME): state, timing, ring.
    Status(StatusArgs),
    /// Benchmark the loop stepping an N-unit reservoir on the fast kernel.
    Bench(BenchArgs),
    /// Serve a running loop's state as JSON (HTTP on 127.0.0.1 and/or a Unix socket) from its
    /// shared region, until SIGINT/SIGTERM: /debug_info, /timing, /state, /header.
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// The region's name.
    pub name: String,
    /// HTTP port on 127.0.0.1 (0: any free port, printed).
    #[arg(long)]
    pub port: Option<u16>,
    /// A Unix socket path to serve the same requests on (must not exist).
    #[arg(long)]
    pub unix: Option<PathBuf>,
}

#[derive(Args)]
pub struct RunArgs {
    /// The TOML configuration (every key: docs/rt.md).
    #[arg(required_unless_present = "demo", conflicts_with = "demo")]
    pub config: Option<PathBuf>,
    /// The embedded default: train a 100-unit ESN on a built-in series, then run it at 1 kHz
    /// with its state in the shared region `demo`.
    #[arg(long)]
    pub demo: bool,
    /// How long the demo runs.
    #[arg(long, default_value_t = 3.0, requires = "demo")]
    pub seconds: f64,
    /// The demo's shared region name (/dev/shm/echos.NAME).
    #[arg(long, default_value = echos_rt::demo::REGION, requires = "demo")]
    pub region: String,
    /// Print the final report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    /// The region's name (the `[shm] name` of the run; `demo` for the demo).
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 1000)]
    pub period_us: u64,
    #[arg(long, default_value_t = 10_000)]
    pub periods: u64,
    #[arg(long, default_value_t = 1000)]
    pub units: usize,
    /// SCHED_FIFO priority (also cyclictest's).
    #[arg(long, default_value_t = 80)]
    pub priority: u8,
    /// Pin the loop (and cyclictest) to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Also run cyclictest (Debian's rt-tests) with the same period, priority and CPU.
    #[arg(long)]
    pub vs_cyclictest: bool,
    /// A second thread reads the shared state at this rate during the run (0: none).
    #[arg(long, default_value_t = 0)]
    pub reader_hz: u32,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: RtCommand) -> anyhow::Result<()> {
    match cmd {
        RtCommand::Run(a) => run_pipeline(a),
        RtCommand::Status(a) => status(a),
        RtCommand::Bench(a) => run_bench(a),
        RtCommand::Serve(a) => serve(a),
    }
}

/// A stop flag set by SIGINT or SIGTERM; a second one of either exits at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing the signal handlers")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handlers")?;
    }
    Ok(stop)
}

fn warn_degraded(applied: &Applied) {
    for d in &applied.degraded {
        output::warn(format_args!("degraded: {d}"));
    }
}

fn run_pipeline(a: RunArgs) -> anyhow::Result<()> {
    let plan = match &a.config {
        Some(path) => {
            let checked = config::read(path)?.check()?;
            echos_rt::configure(&checked)?
        }
        None => {
            if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds <= 86_400.0) {
                bail!(
                    "--seconds must be above 0 and at most 86400, got {}",
                    a.seconds
                );
            }
            let periods = (a.seconds * 1000.0).ceil() as u64;
            echos_rt::demo::demo_plan(1000, periods, SchedPlan::default(), &a.region)?
        }
    };
    let stop = stop_on_signals()?;
    let report = echos_rt::run_with(plan, stop, warn_degraded)?;
    if a.json {
        output::println(serde_json::to_string(&report.to_json())?)?;
    } else {
        output::println(&report)?;
    }
    if !report.errors.is_empty() {
        bail!("{}", report.errors.join("; "));
    }
    if let echos_rt::End::Model(e) = report.end {
        bail!("the model stopped the run: {e}");
    }
    Ok(())
}

fn status(a: StatusArgs) -> anyhow::Result<()> {
    let r = Attached::open(&a.name)?;
    let h = *r.header();
    let snap = r.snapshot()?;
    let (wakeup, step) = r.stats()?;
    let running = r.owner_running();
    if a.json {
        let v = serde_json::json!({
            "region": r.path().display().to_string(),
            "header": h,
            "owner_running": running,
            "snapshot": snap,
            "wakeup": wakeup.percentiles(),
            "step": step.percentiles(),
            "ring": {"len": r.ring_len(), "pushed": r.ring_pushed(), "drops": r.ring_drops()},
        });
        return Ok(output::println(serde_json::to_string(&v)?)?);
    }
    let s = &snap.head;
    let (w, st) = (wakeup.percentiles(), step.percentiles());
    let shown: Vec<String> = snap
        .state
        .iter()
        .take(8)
        .map(|v| format!("{v:.4}"))
        .collect();
    let text = format!(
        "region {}  (layout v{}, generation {})\n\
         owner pid {} {}\n\
         reservoir {} units, {} inputs, {} outputs; spectral radius {}, leak rate {}\n\
         step {}  periods {}  deadline misses {}  overruns {}  skipped {}  source idle {}\n\
         wake-up  last {}  p50 {}  p99 {}  p99.9 {}  max {}\n\
         step     last {}  p50 {}  p99 {}  max {}\n\
         ring     {} waiting of {}, {} pushed, {} dropped\n\
         state[0..{}] {}\n\
         output {:?}",
        r.path().display(),
        h.layout_version,
        h.generation,
        h.owner_pid,
        if running {
            "(running)"
        } else {
            "(not running: a stale or stopped region)"
        },
        h.units,
        h.inputs,
        h.outputs,
        s.spectral_radius,
        s.leak_rate,
        s.step,
        s.periods,
        s.deadline_misses,
        s.overruns,
        s.skipped_jobs,
        s.source_idle,
        ns(Some(s.wakeup_last_ns)),
        ns(w.p50_ns),
        ns(w.p99_ns),
        ns(w.p999_ns),
        ns(w.max_ns),
        ns(Some(s.step_last_ns)),
        ns(st.p50_ns),
        ns(st.p99_ns),
        ns(st.max_ns),
        r.ring_len(),
        h.ring_capacity,
        r.ring_pushed(),
        r.ring_drops(),
        shown.len(),
        shown.join(" "),
        snap.output,
    );
    Ok(output::println(text)?)
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let stop = stop_on_signals()?;
    let server = echos_rt::introspect::Server::bind(&a.name, a.port, a.unix.as_deref())?;
    let mut at = Vec::new();
    if let Some(addr) = server.http_addr() {
        at.push(format!("http://{addr}/debug_info"));
    }
    if let Some(p) = &a.unix {
        at.push(format!("unix:{}", p.display()));
    }
    output::println(format_args!(
        "serving region {} at {}",
        a.name,
        at.join(" and ")
    ))?;
    let served = server.serve(&stop);
    output::println(format_args!("served {served} requests"))?;
    Ok(())
}

fn run_bench(a: BenchArgs) -> anyhow::Result<()> {
    let o = BenchOptions {
        period_us: a.period_us,
        periods: a.periods,
        units: a.units,
        priority: a.priority,
        cpu: a.cpu,
        vs_cyclictest: a.vs_cyclictest,
        reader_hz: a.reader_hz,
    };
    let r = bench(&o, stop_on_signals()?)?;
    for d in &r.degraded {
        output::warn(format_args!("degraded: {d}"));
    }
    if let Some(note) = &r.cyclictest_note {
        output::warn(note);
    }
    if a.json {
        return Ok(output::println(serde_json::to_string(&r)?)?);
    }
    let mut text = format!(
        "{} periods of {} µs, {} units on the {} kernel, {}, CPU {}\n\
         wake-up  p50 {}  p99 {}  p99.9 {}  max {}\n\
         step     p50 {}  p99 {}  max {}\n\
         deadline misses {}  overruns {}",
        r.periods,
        r.period_us,
        r.units,
        r.kernel,
        r.policy,
        r.cpu.map_or("any".into(), |c| c.to_string()),
        ns(r.wakeup_p50_ns),
        ns(r.wakeup_p99_ns),
        ns(r.wakeup_p999_ns),
        ns(r.wakeup_max_ns),
        ns(r.step_p50_ns),
        ns(r.step_p99_ns),
        ns(r.step_max_ns),
        r.deadline_misses,
        r.overruns,
    );
    if let Some(p50) = r.cyclictest_p50_ns {
        text.push_str(&format!(
            "\ncyclictest p50 {}  p99 {}  max {}",
            ns(Some(p50)),
            ns(r.cyclictest_p99_ns),
            ns(r.cyclictest_max_ns)
        ));
    }
    if r.reader_hz > 0 {
        text.push_str(&format!(
            "\nreader at {} Hz took {} snapshots",
            r.reader_hz, r.reader_snapshots
        ));
    }
    if let Some(hw) = &r.hardware_counters {
        text.push_str(&format!("\nhardware counters: {hw}"));
    }
    Ok(output::println(text)?)
}

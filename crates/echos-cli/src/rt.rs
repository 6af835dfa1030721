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
    #[command(flatten)]
    pub dash: DashArgs,
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
    #[command(flatten)]
    pub dash: DashArgs,
}

/// The live dashboard (docs/dashboard.md).
#[derive(Args)]
pub struct DashArgs {
    /// Serve the live dashboard (page, /api/introspect, /api/stream) at this address, e.g.
    /// 127.0.0.1:8080 (port 0: any free port, printed). Loopback only, unless
    /// --dashboard-public.
    #[arg(long, value_name = "ADDR")]
    pub dashboard: Option<std::net::SocketAddr>,
    /// Allow a non-loopback --dashboard address (the dashboard has no authentication).
    #[arg(long, requires = "dashboard")]
    pub dashboard_public: bool,
    /// Most simultaneous dashboard streams; more are refused (503) and counted.
    #[arg(long, default_value_t = echos_dash::DEFAULT_MAX_CLIENTS, requires = "dashboard")]
    pub dashboard_max_clients: u64,
}

impl DashArgs {
    /// Binds the dashboard for region `name` (before the loop starts) and prints its URL.
    fn start(&self, name: &str) -> anyhow::Result<Option<echos_dash::Dashboard>> {
        let Some(addr) = self.dashboard else {
            return Ok(None);
        };
        let opts = echos_dash::Options {
            public: self.dashboard_public,
            max_clients: self.dashboard_max_clients,
            ..Default::default()
        };
        let d = echos_dash::Dashboard::start(name, addr, opts)?;
        if !d.local_addr().ip().is_loopback() {
            output::warn(format_args!(
                "the dashboard listens on {}, reachable from other machines, with no authentication",
                d.local_addr()
            ));
        }
        output::note(format_args!("dashboard: {}", d.url()))?;
        Ok(Some(d))
    }
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
    /// Serve the dashboard of the bench's region at this address during the run.
    #[arg(long, value_name = "ADDR")]
    pub dashboard: Option<std::net::SocketAddr>,
    /// Event-stream clients (threads of this process) connected to --dashboard during the run;
    /// their frames per second and the server's CPU time join the report.
    #[arg(long, default_value_t = 0, requires = "dashboard")]
    pub dashboard_clients: u32,
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
    let no_shm = || {
        anyhow::anyhow!(
            "--dashboard reads the loop's shared region: the configuration needs a [shm] section"
        )
    };
    // The dashboard binds before the model is loaded or trained, so a port in use is refused
    // before anything runs.
    let (plan, dash) = match &a.config {
        Some(path) => {
            let checked = config::read(path)?.check()?;
            let dash = match (&checked.shm, a.dash.dashboard) {
                (Some(shm), _) => a.dash.start(&shm.name)?,
                (None, Some(_)) => return Err(no_shm()),
                (None, None) => None,
            };
            (echos_rt::configure(&checked)?, dash)
        }
        None => {
            if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds <= 86_400.0) {
                bail!(
                    "--seconds must be above 0 and at most 86400, got {}",
                    a.seconds
                );
            }
            let name = a.region.as_str();
            echos_rt::shm::region_path(name)?;
            let dash = a.dash.start(name)?;
            let periods = (a.seconds * 1000.0).ceil() as u64;
            (
                echos_rt::demo::demo_plan(1000, periods, SchedPlan::default(), name)?,
                dash,
            )
        }
    };
    let stop = stop_on_signals()?;
    let report = echos_rt::run_with(plan, stop, warn_degraded);
    if let Some(d) = dash {
        let c = d.stop();
        output::note(format_args!("dashboard: {c}"))?;
    }
    let report = report?;
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
    let dash = a.dash.start(&a.name)?;
    if a.port.is_none() && a.unix.is_none() {
        let Some(d) = dash else {
            bail!("give --port, --unix or --dashboard");
        };
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let c = d.stop();
        return Ok(output::note(format_args!("dashboard: {c}"))?);
    }
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
    if let Some(d) = dash {
        output::note(format_args!("dashboard: {}", d.stop()))?;
    }
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
    let dash = match a.dashboard {
        Some(addr) => {
            let name = format!("bench-{}", std::process::id());
            let d = echos_dash::Dashboard::start(&name, addr, echos_dash::Options::default())?;
            output::note(format_args!("dashboard: {}", d.url()))?;
            Some(d)
        }
        None => None,
    };
    let client_stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = match &dash {
        Some(d) => (0..a.dashboard_clients)
            .map(|_| {
                let (addr, stop) = (d.local_addr(), client_stop.clone());
                std::thread::spawn(move || echos_dash::stream_client(addr, &stop))
            })
            .collect(),
        None => Vec::new(),
    };
    let t0 = std::time::Instant::now();
    let r = bench(&o, stop_on_signals()?);
    let secs = t0.elapsed().as_secs_f64();
    client_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let frames: Vec<u64> = clients
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("a dashboard client panicked"))?
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    let dash = dash.map(|d| d.stop());
    let r = r?;
    if let Some(c) = dash {
        // The dashboard's own figures: on stderr, so --json stays the bench's object.
        let cpu_s = c["server_cpu_ns"].as_u64().unwrap_or(0) as f64 / 1e9;
        let rates: Vec<String> = frames
            .iter()
            .map(|f| format!("{:.1}", *f as f64 / secs))
            .collect();
        output::note(format_args!(
            "dashboard: {} clients received [{}] frames/s over {secs:.1} s; server CPU {cpu_s:.3} s ({:.2} % of one CPU); counters {c}",
            frames.len(),
            rates.join(", "),
            100.0 * cpu_s / secs,
        ))?;
    }
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

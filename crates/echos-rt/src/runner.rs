//! Configure phase and run phase put together: [`configure`] turns a checked config into a
//! [`Plan`] (model loaded and checked against the source, sinks opened); [`run`] creates the
//! shared region, starts the loop thread — placement, the model's buffers allocated there,
//! mlockall, pre-faulted stack, real-time policy, then the loop — and returns its [`Report`].
//! Every error of the configure phase, and the region's, comes before the loop starts.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use echos_core::model::Trained;

use crate::config::{Checked, ConfigError, ShmPlan, SourceSection, Timing};
use crate::event_source::EventSource;
use crate::hwcounters::{HwCounters, HwReport};
use crate::pipeline::{End, Pipeline};
use crate::realtime::{self, Applied, SchedPlan};
use crate::shm::{Region, Shape};
use crate::sink::{FileSink, Sink};
use crate::source::{SeriesSource, Source, StdinSource};
use crate::stats::{RunStats, Summary};
use crate::RtError;

/// Everything a run needs, sized and checked.
pub struct Plan {
    pub model: Trained<f64>,
    pub source: Box<dyn Source>,
    pub sinks: Vec<Box<dyn Sink>>,
    pub timing: Timing,
    pub sched: SchedPlan,
    pub shm: Option<ShmPlan>,
}

/// Loads what a checked config names: the model (CRC-checked), the source (its columns
/// checked against the model's inputs) and the output file.
pub fn configure(c: &Checked) -> Result<Plan, RtError> {
    let model = echos_host::model_file::load(&c.model).map_err(|source| RtError::ModelFile {
        path: c.model.clone(),
        source,
    })?;
    let model = model.driver().clone();
    let inputs = model.inputs();
    let source: Box<dyn Source> = match &c.source {
        SourceSection::Series { path, repeat } => {
            let s = SeriesSource::open(path, *repeat).map_err(|e| ConfigError::Invalid {
                key: "source.path",
                reason: e.to_string(),
            })?;
            s.expect_inputs(inputs).map_err(|e| ConfigError::Invalid {
                key: "source.path",
                reason: format!("{e} (model {})", c.model.display()),
            })?;
            Box::new(s)
        }
        SourceSection::Stdin => Box::new(StdinSource::stdin(inputs)?),
        SourceSection::Events { .. } => {
            let spec = c.events.as_ref().ok_or_else(|| ConfigError::Invalid {
                key: "source.kind",
                reason: "the events source was not checked".into(),
            })?;
            let s = EventSource::open(spec, c.timing.period_ns, inputs).map_err(|e| {
                ConfigError::Invalid {
                    key: "source.path",
                    reason: format!("{e} (model {})", c.model.display()),
                }
            })?;
            Box::new(s)
        }
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(f) = &c.sink_file {
        sinks.push(Box::new(FileSink::create(f, model.outputs()).map_err(
            |e| ConfigError::Invalid {
                key: "sink.file",
                reason: e.to_string(),
            },
        )?));
    }
    Ok(Plan {
        model,
        source,
        sinks,
        timing: c.timing,
        sched: c.sched,
        shm: c.shm.clone(),
    })
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub applied: Applied,
    pub stats: RunStats,
    pub end: End,
    pub region: Option<PathBuf>,
    pub source: String,
    pub sinks: Vec<String>,
    pub timing: Timing,
    /// What the sinks report after the run (rows written, a score).
    pub notes: Vec<String>,
    /// Problems met after the loop (a sink that dropped outputs, a bad stdin line).
    pub errors: Vec<String>,
    /// The loop thread's cycles, instructions and cache references/misses per step (user
    /// space: the jobs' work), or why the machine gives none.
    pub hardware_counters: HwReport,
}

impl Report {
    pub fn summary(&self) -> Summary {
        self.stats.summary()
    }

    /// The report as JSON (what `--json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "end": self.end.to_string(),
            "period_ns": self.timing.period_ns,
            "deadline_ns": self.timing.deadline_ns,
            "budget_ns": self.timing.budget_ns,
            "source": self.source,
            "sinks": self.sinks,
            "region": self.region.as_ref().map(|p| p.display().to_string()),
            "applied": self.applied,
            "stats": self.summary(),
            "notes": self.notes,
            "errors": self.errors,
            "hardware_counters": self.hardware_counters,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.applied;
        writeln!(
            f,
            "period {} µs (deadline {} µs, budget {} µs); {}; CPU {}; NUMA node {} of {}; memory {}",
            self.timing.period_ns / 1000,
            self.timing.deadline_ns / 1000,
            self.timing.budget_ns / 1000,
            a.policy,
            a.cpu.map_or("any".into(), |c| c.to_string()),
            a.numa_node.map_or("-".into(), |n| n.to_string()),
            a.numa_nodes,
            if a.memory_locked { "locked" } else { "not locked" },
        )?;
        writeln!(f, "source: {}", self.source)?;
        if !self.sinks.is_empty() {
            writeln!(f, "sinks: {}", self.sinks.join(", "))?;
        }
        if let Some(r) = &self.region {
            writeln!(f, "shared region: {} (removed at exit)", r.display())?;
        }
        if a.degraded.is_empty() {
            writeln!(f, "degraded: none")?;
        } else {
            writeln!(f, "degraded ({}):", a.degraded.len())?;
            for d in &a.degraded {
                writeln!(f, "  - {d}")?;
            }
        }
        writeln!(f, "ended: {}", self.end)?;
        write!(f, "{}", self.summary())?;
        write!(f, "\nhardware counters: {}", self.hardware_counters)?;
        for n in &self.notes {
            write!(f, "\n{n}")?;
        }
        for e in &self.errors {
            write!(f, "\nerror: {e}")?;
        }
        Ok(())
    }
}

/// Stack of the loop thread beyond the pre-faulted part (the engine's step is shallow).
const STACK_MARGIN: usize = 2 << 20;

/// Runs a plan on a thread of its own until it ends or `stop` is set; the region (if any) is
/// created first and removed when the run ends.
pub fn run(plan: Plan, stop: Arc<AtomicBool>) -> Result<Report, RtError> {
    run_with(plan, stop, |_| {})
}

/// [`run`], calling `on_ready` on the loop thread once its real-time set-up is done (what it
/// got, what was degraded) and before the first period.
pub fn run_with(
    plan: Plan,
    stop: Arc<AtomicBool>,
    on_ready: impl FnOnce(&Applied) + Send + 'static,
) -> Result<Report, RtError> {
    let Plan {
        model,
        source,
        sinks,
        timing,
        sched,
        shm,
    } = plan;
    if source.inputs() != model.inputs() {
        return Err(RtError::Mismatch {
            what: "source".into(),
            reason: format!(
                "{} gives {} values per period; the model takes {} inputs",
                source.describe(),
                source.inputs(),
                model.inputs()
            ),
        });
    }
    let (region, ring_sink) = match &shm {
        Some(s) => {
            let shape = Shape {
                units: model.esn().units(),
                inputs: model.inputs(),
                outputs: model.outputs(),
                ring_capacity: s.ring_capacity,
                period_ns: timing.period_ns,
            };
            (
                Some(Region::create(&s.name, &shape, s.reclaim_stale)?),
                s.ring_sink,
            )
        }
        None => (None, false),
    };
    let region_path = region.as_ref().map(|r| r.path().to_path_buf());
    let source_text = source.describe();
    let mut sink_texts: Vec<String> = sinks.iter().map(|s| s.describe()).collect();
    if ring_sink {
        sink_texts.insert(0, "shared ring".into());
    }
    let thread = std::thread::Builder::new()
        .name("echos-rt-loop".into())
        .stack_size(sched.prefault_stack_bytes + STACK_MARGIN)
        .spawn(move || -> Result<Report, RtError> {
            let mut applied = Applied::default();
            realtime::apply_placement(&sched, &mut applied);
            // The driver's buffers are allocated again here, after the NUMA binding, so they
            // live on the loop CPU's node.
            let local = model.clone();
            drop(model);
            let mut pipeline = Pipeline::new(local, source, sinks, region, ring_sink, timing)
                .map_err(|e| RtError::Mismatch {
                    what: "pipeline".into(),
                    reason: e.to_string(),
                })?;
            realtime::apply_memory(&sched, &mut applied);
            realtime::apply_scheduling(&sched, &timing, &mut applied);
            on_ready(&applied);
            // Opened on the loop thread, after its setup: counts the jobs' user-space work.
            let unavailable = match HwCounters::start() {
                Ok(c) => {
                    pipeline.set_hardware_counters(c);
                    None
                }
                Err(why) => Some(why),
            };
            let outcome = pipeline.run(&stop);
            realtime::leave_realtime();
            let mut parts = pipeline.into_parts();
            let hardware_counters = match (&parts.counters, unavailable) {
                (Some(c), _) => c.report(outcome.stats.steps),
                (None, why) => HwReport::NotAvailable(why.unwrap_or_default()),
            };
            drop(parts.counters.take());
            let mut errors = Vec::new();
            if let Err(e) = parts.source.finish() {
                errors.push(e.to_string());
            }
            let mut notes: Vec<String> = parts.source.note().into_iter().collect();
            for s in &mut parts.sinks {
                if let Err(e) = s.finish() {
                    errors.push(e.to_string());
                }
                notes.extend(s.note());
            }
            drop(parts.region);
            Ok(Report {
                applied,
                stats: outcome.stats,
                end: outcome.end,
                region: region_path,
                source: source_text,
                sinks: sink_texts,
                timing,
                notes,
                errors,
                hardware_counters,
            })
        })
        .map_err(|e| RtError::Thread(format!("could not start the loop thread: {e}")))?;
    thread
        .join()
        .map_err(|_| RtError::Thread("the loop thread panicked".into()))?
}

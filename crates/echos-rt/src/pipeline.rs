//! The run phase: one periodic job per period, its stages in temporal order — source →
//! reservoir + readout (the engine's one model driver, `Trained::step`) → sinks and the shared
//! region — with wake-up, step and job times recorded and the release, deadline and budget
//! accounting of `echos_kpolicy::periodic::PeriodicTask`, the kernel's own rules.
//!
//! Everything the loop touches is sized in [`Pipeline::new`] (the configure phase); `run`
//! allocates nothing, takes no lock and blocks only in `clock_nanosleep` until the next release
//! (tested with a counting allocator in `tests/no_alloc.rs`).
//!
//! Budgets are accounted, not enforced: a job that used more CPU time than its budget is an
//! overrun, one that finished after its deadline a miss, and releases that passed while the
//! loop was late are skipped (each a miss), so a late loop catches up instead of drifting.
//! Under SCHED_DEADLINE the kernel itself throttles a job at its budget. The stages run in one
//! thread, so pipeline order holds by construction; `echos_kpolicy::pipeline` is the rule for
//! when stages become tasks of their own.

use std::sync::atomic::{AtomicBool, Ordering};

use echos_core::model::{ModelError, Trained};
use echos_kpolicy::periodic::{PeriodicError, PeriodicParams, PeriodicTask};

use crate::clock;
use crate::config::Timing;
use crate::hwcounters::HwCounters;
use crate::shm::{Region, SnapshotHead};
use crate::sink::Sink;
use crate::source::{Poll, Source, Tick};
use crate::stats::RunStats;

/// Time between starting the loop and its first release.
pub const LEAD_NS: u64 = 1_000_000;

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// `loop.periods` were run.
    Periods,
    /// The source had no more input.
    SourceEnded,
    /// The stop flag was set (SIGINT/SIGTERM).
    Stopped,
    /// The model refused a step (e.g. its output became non-finite).
    Model(ModelError),
    /// The release arithmetic overflowed (a run of centuries).
    Clock(PeriodicError),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Periods => f.write_str("the requested periods were run"),
            End::SourceEnded => f.write_str("the source ended"),
            End::Stopped => f.write_str("stopped by a signal"),
            End::Model(e) => write!(f, "the model stopped the run: {e}"),
            End::Clock(e) => write!(f, "the clock stopped the run: {e}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{what}: expected {expected}, got {got}")]
pub struct ShapeError {
    pub what: &'static str,
    pub expected: usize,
    pub got: usize,
}

/// The outcome of [`Pipeline::run`].
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stats: RunStats,
    pub end: End,
}

/// A configured pipeline: the model driver, its source and sinks, the optional shared region
/// and every buffer the loop uses.
pub struct Pipeline {
    model: Trained<f64>,
    source: Box<dyn Source>,
    sinks: Vec<Box<dyn Sink>>,
    region: Option<Region>,
    ring_sink: bool,
    timing: Timing,
    u: Vec<f64>,
    y: Vec<f64>,
    /// y(t−1) for a reservoir with output feedback (starts at the model's last output, as
    /// `Trained::run` without a teacher does).
    fb: Vec<f64>,
    feedback: bool,
    spectral_radius: f64,
    leak_rate: f64,
    /// The loop thread's counter group, read when the histograms are published.
    counters: Option<HwCounters>,
    /// Cycles per step and cache hit rate as last read (0, 0: none).
    hw: (f64, f64),
}

/// The parts of a pipeline, back after a run.
pub struct Parts {
    pub model: Trained<f64>,
    pub source: Box<dyn Source>,
    pub sinks: Vec<Box<dyn Sink>>,
    pub region: Option<Region>,
    pub counters: Option<HwCounters>,
}

impl Pipeline {
    /// Checks that source, model and region fit together and sizes every buffer.
    /// `ring_sink`: outputs also go into the region's ring.
    pub fn new(
        model: Trained<f64>,
        source: Box<dyn Source>,
        sinks: Vec<Box<dyn Sink>>,
        region: Option<Region>,
        ring_sink: bool,
        timing: Timing,
    ) -> Result<Self, ShapeError> {
        let shape = |what, expected, got| {
            if expected == got {
                Ok(())
            } else {
                Err(ShapeError {
                    what,
                    expected,
                    got,
                })
            }
        };
        shape(
            "source values per period (model inputs)",
            model.inputs(),
            source.inputs(),
        )?;
        if let Some(r) = &region {
            let l = r.layout();
            shape("region units", model.esn().units(), l.units)?;
            shape("region inputs", model.inputs(), l.inputs)?;
            shape("region outputs", model.outputs(), l.outputs)?;
        }
        let feedback = model.esn().outputs() > 0;
        let cfg = model.esn().config();
        Ok(Self {
            u: vec![0.0; model.inputs()],
            y: vec![0.0; model.outputs()],
            fb: model.last_output().to_vec(),
            feedback,
            spectral_radius: cfg.spectral_radius,
            leak_rate: cfg.leak_rate,
            counters: None,
            hw: (0.0, 0.0),
            model,
            source,
            sinks,
            ring_sink: ring_sink && region.is_some(),
            region,
            timing: Timing {
                snapshot_every: timing.snapshot_every.max(1),
                stats_every: timing.stats_every.max(1),
                ..timing
            },
        })
    }

    pub fn model(&self) -> &Trained<f64> {
        &self.model
    }

    pub fn region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    pub fn into_parts(self) -> Parts {
        Parts {
            model: self.model,
            source: self.source,
            sinks: self.sinks,
            region: self.region,
            counters: self.counters,
        }
    }

    /// Counts the loop thread's hardware events (opened on that thread) and publishes them
    /// per step with the histograms.
    pub fn set_hardware_counters(&mut self, c: HwCounters) {
        self.counters = Some(c);
    }

    fn head(&self, stats: &RunStats, now: u64) -> SnapshotHead {
        SnapshotHead {
            step: stats.steps,
            time_ns: now,
            periods: stats.periods,
            deadline_misses: stats.deadline_misses,
            overruns: stats.overruns,
            skipped_jobs: stats.skipped_jobs,
            source_idle: stats.source_idle,
            wakeup_last_ns: 0,
            wakeup_max_ns: stats.wakeup.max_ns().unwrap_or(0),
            step_last_ns: 0,
            step_max_ns: stats.step.max_ns().unwrap_or(0),
            sink_drops: stats.sink_drops,
            spectral_radius: self.spectral_radius,
            leak_rate: self.leak_rate,
            target: f64::NAN,
            running_nrmse: f64::NAN,
            hw_cycles_per_step: self.hw.0,
            hw_cache_hit_rate: self.hw.1,
            reserved: [0; 2],
        }
    }

    fn publish(
        &self,
        stats: &RunStats,
        wakeup_ns: u64,
        step_ns: u64,
        now: u64,
        snapshot: bool,
        hist: bool,
    ) {
        if let Some(region) = &self.region {
            if snapshot {
                let mut head = self.head(stats, now);
                head.wakeup_last_ns = wakeup_ns;
                head.step_last_ns = step_ns;
                if let Some(score) = self.sinks.iter().find_map(|s| s.score()) {
                    head.target = score.target;
                    head.running_nrmse = score.nrmse;
                }
                region.publish_snapshot(&head, self.model.esn().state(), &self.y);
            }
            if hist {
                region.publish_stats(&stats.wakeup, &stats.step);
            }
        }
    }

    /// Runs periods until `timing.periods`, the source's end, `stop`, or a model error.
    /// Allocation-free.
    pub fn run(&mut self, stop: &AtomicBool) -> Outcome {
        let mut stats = RunStats::default();
        let mut crc = crc32fast::Hasher::new();
        let start = clock::now_ns().saturating_add(LEAD_NS);
        let params = PeriodicParams {
            start_ns: start,
            period_ns: self.timing.period_ns,
            deadline_ns: self.timing.deadline_ns,
            budget_ns: self.timing.budget_ns,
        };
        let mut task = match PeriodicTask::new(params, 1_000) {
            Ok(t) => t,
            Err(e) => {
                return Outcome {
                    stats,
                    end: End::Clock(e),
                }
            }
        };
        let (mut wakeup_ns, mut step_ns) = (0, 0);
        let end = loop {
            if stop.load(Ordering::Relaxed) {
                break End::Stopped;
            }
            let release = match task.next_release_ns() {
                Ok(r) => r,
                Err(e) => break End::Clock(e),
            };
            if !clock::sleep_until(release) {
                continue; // a signal: look at the stop flag, then sleep on to the same release
            }
            let wake = clock::now_ns();
            if let Err(e) = task.release(wake) {
                break End::Clock(e);
            }
            wakeup_ns = wake - release;
            stats.wakeup.record(wakeup_ns);
            let tick = Tick {
                period: task.job().unwrap_or(0),
                start_ns: start,
                release_ns: release,
                now_ns: wake,
            };
            match self.source.poll(&tick, &mut self.u) {
                Poll::Ready => {
                    let t0 = clock::now_ns();
                    let fb = self.feedback.then_some(&self.fb[..]);
                    let result = self.model.step(&self.u, fb, &mut self.y);
                    let t1 = clock::now_ns();
                    if let Err(e) = result {
                        break End::Model(e);
                    }
                    step_ns = t1 - t0;
                    stats.step.record(step_ns);
                    if self.feedback {
                        self.fb.copy_from_slice(&self.y);
                    }
                    for v in &self.y {
                        crc.update(&v.to_le_bytes());
                    }
                    let step = stats.steps;
                    stats.steps += 1;
                    if self.ring_sink {
                        if let Some(r) = self.region.as_mut() {
                            if !r.push_output(step, t1, &self.y) {
                                stats.ring_drops += 1;
                            }
                        }
                    }
                    for s in &mut self.sinks {
                        if !s.write(step, t1, &self.y) {
                            stats.sink_drops += 1;
                        }
                    }
                }
                Poll::Idle => stats.source_idle += 1,
                Poll::End => break End::SourceEnded,
            }
            stats.periods += 1;
            let snap = stats.periods.is_multiple_of(self.timing.snapshot_every);
            let hist = stats.periods.is_multiple_of(self.timing.stats_every);
            if hist {
                if let Some(c) = &self.counters {
                    // One read(2) of the group; no allocation.
                    if let Some(k) = c.read_raw() {
                        let steps = stats.steps.max(1) as f64;
                        let hit = if k.cache_references > 0 {
                            1.0 - k.cache_misses.min(k.cache_references) as f64
                                / k.cache_references as f64
                        } else {
                            0.0
                        };
                        self.hw = (k.cycles as f64 / steps, hit);
                    }
                }
            }
            if snap || hist {
                self.publish(&stats, wakeup_ns, step_ns, clock::now_ns(), snap, hist);
            }
            let done = clock::now_ns();
            // Cannot fail: the job was released above and has not completed.
            let _ = task.complete(done, done - wake);
            stats.job.record(done - wake);
            stats.deadline_misses = task.deadline_misses;
            stats.overruns = task.overruns;
            stats.skipped_jobs = task.skipped_jobs;
            if self.timing.periods == Some(stats.periods) {
                break End::Periods;
            }
        };
        stats.outputs_crc32 = crc.finalize();
        self.publish(&stats, wakeup_ns, step_ns, clock::now_ns(), true, true);
        Outcome { stats, end }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;
    use crate::source::{Poll, Source, Tick};

    fn model() -> Trained<f64> {
        crate::bench::bench_model(300, 2).unwrap()
    }

    fn sine() -> Box<dyn Source> {
        Box::new(crate::bench::sine_source(100).unwrap())
    }

    #[test]
    fn overruns_and_misses_are_counted_with_the_kernels_rules() {
        // Budget 1 µs and deadline 2 µs: no wake-up plus a 300-unit step fits, so every job
        // overruns and misses, and only once each.
        let timing = Timing::from_us(200, Some(2), Some(1), Some(200)).unwrap();
        let mut p = Pipeline::new(model(), sine(), Vec::new(), None, false, timing).unwrap();
        let out = p.run(&AtomicBool::new(false));
        assert_eq!(out.end, End::Periods);
        let s = &out.stats;
        assert_eq!(s.periods, 200);
        assert_eq!(s.overruns, 200, "{s:?}");
        assert_eq!(s.deadline_misses, 200 + s.skipped_jobs, "{s:?}");
        // A generous budget and deadline: the same work is on time unless the host stole
        // whole periods, and those are exactly the skipped jobs.
        let timing = Timing::from_us(2_000, None, None, Some(100)).unwrap();
        let mut p = Pipeline::new(model(), sine(), Vec::new(), None, false, timing).unwrap();
        let s = p.run(&AtomicBool::new(false)).stats;
        assert_eq!(s.overruns, 0, "{s:?}");
        assert!(s.deadline_misses >= s.skipped_jobs);
        assert_eq!(s.wakeup.samples(), 100);
        assert_eq!(s.step.samples(), 100);
    }

    #[test]
    fn a_set_stop_flag_ends_the_run_before_any_period() {
        let timing = Timing::from_us(100, None, None, None).unwrap();
        let mut p = Pipeline::new(model(), sine(), Vec::new(), None, false, timing).unwrap();
        let out = p.run(&AtomicBool::new(true));
        assert_eq!((out.end, out.stats.periods), (End::Stopped, 0));
    }

    struct Gappy(u64);
    impl Source for Gappy {
        fn inputs(&self) -> usize {
            1
        }
        fn poll(&mut self, _tick: &Tick, u: &mut [f64]) -> Poll {
            self.0 += 1;
            u[0] = 0.1;
            match self.0 {
                11.. => Poll::End,
                k if k % 2 == 0 => Poll::Ready,
                _ => Poll::Idle,
            }
        }
        fn describe(&self) -> String {
            "gappy".into()
        }
    }

    #[test]
    fn idle_periods_do_not_step_and_the_end_stops_the_run() {
        let timing = Timing::from_us(500, None, None, None).unwrap();
        let sink = Box::new(MemorySink::new(1, 100));
        let mut p =
            Pipeline::new(model(), Box::new(Gappy(0)), vec![sink], None, false, timing).unwrap();
        let out = p.run(&AtomicBool::new(false));
        assert_eq!(out.end, End::SourceEnded);
        assert_eq!(out.stats.periods, 10);
        assert_eq!((out.stats.steps, out.stats.source_idle), (5, 5));
        let mut parts = p.into_parts();
        let mem: Box<dyn std::any::Any> = parts.sinks.pop().unwrap();
        assert_eq!(mem.downcast::<MemorySink>().unwrap().values().len(), 5);
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let timing = Timing::from_us(500, None, None, None).unwrap();
        let two = Box::new(
            crate::source::SeriesSource::new(
                echos_host::Array2::new(2, 2, vec![0.0; 4]).unwrap(),
                false,
                "two",
            )
            .unwrap(),
        );
        let e = Pipeline::new(model(), two, Vec::new(), None, false, timing)
            .err()
            .unwrap();
        assert_eq!((e.expected, e.got), (1, 2));
    }
}

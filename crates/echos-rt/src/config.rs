//! The runtime's configuration file (`echos rt run CONFIG.toml`): parsed with unknown keys
//! refused, then checked as a whole — periods, budgets, priorities, CPUs, files, the model
//! against its source — so every mistake is a typed error naming the key before anything
//! starts. Every key is documented in docs/rt.md.

use std::path::{Path, PathBuf};

use echos_kpolicy::periodic::{PeriodicError, PeriodicParams, PeriodicTask};
use serde::Deserialize;

use echos_host::events::bins::Representation;

use crate::event_source::{EventSourceSpec, Overflow, MAX_QUEUE_EVENTS};
use crate::realtime::{online_cpus, Policy, SchedPlan};
use crate::shm::{self, MAX_RING_CAPACITY};

/// Shortest period the loop accepts: below it a stock kernel's wake-up latency alone exceeds
/// the period.
pub const MIN_PERIOD_US: u64 = 10;
/// Longest period (10 s): a stop request is seen within one period.
pub const MAX_PERIOD_US: u64 = 10_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// toml's message names the key and shows the line (unknown key, wrong type, bad syntax).
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// The file as written (all keys; see docs/rt.md).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub model: ModelSection,
    #[serde(rename = "loop")]
    pub timing: LoopSection,
    #[serde(default)]
    pub sched: SchedSection,
    pub source: SourceSection,
    #[serde(default)]
    pub sink: SinkSection,
    pub shm: Option<ShmSection>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A model file written by `echos esn train` (.safetensors).
    pub path: PathBuf,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoopSection {
    pub period_us: u64,
    /// Relative deadline; defaults to the period.
    pub deadline_us: Option<u64>,
    /// CPU time a period's job may use; defaults to the deadline.
    pub budget_us: Option<u64>,
    /// Periods to run; absent: until the source ends or SIGINT/SIGTERM.
    pub periods: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchedSection {
    #[serde(default = "default_policy")]
    pub policy: Policy,
    /// SCHED_FIFO priority 1..=99.
    #[serde(default = "default_priority")]
    pub priority: u8,
    pub cpu: Option<usize>,
    #[serde(default = "yes")]
    pub lock_memory: bool,
    #[serde(default = "default_prefault")]
    pub prefault_stack_kib: usize,
    /// Bind the loop's memory to the NUMA node of its CPU.
    #[serde(default = "yes")]
    pub numa: bool,
}

fn default_policy() -> Policy {
    Policy::Fifo
}
fn default_priority() -> u8 {
    80
}
fn yes() -> bool {
    true
}
fn default_prefault() -> usize {
    256
}

impl Default for SchedSection {
    fn default() -> Self {
        Self {
            policy: default_policy(),
            priority: default_priority(),
            cpu: None,
            lock_memory: true,
            prefault_stack_kib: default_prefault(),
            numa: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSection {
    /// A `.npy`/`.csv` series, one row per period.
    Series {
        path: PathBuf,
        #[serde(default)]
        repeat: bool,
    },
    /// Rows of numbers on standard input (comma or white-space separated), one per period.
    Stdin,
    /// An event recording replayed at its own timestamps through the event queue into an
    /// encoder, one frame per period (`event_source`).
    Events {
        path: PathBuf,
        /// Recording µs per wall-clock µs (1: real time).
        #[serde(default = "default_speed")]
        speed: f64,
        /// "counts" | "timesurface" | "voxel".
        #[serde(default = "default_encoder")]
        encoder: String,
        /// Pooled grid `[gx, gy]`; default: the sensor size.
        grid: Option<[u16; 2]>,
        #[serde(default)]
        merge_polarity: bool,
        /// Time-surface decay (µs).
        tau_us: Option<f32>,
        /// Voxel-grid time bins.
        voxel_bins: Option<usize>,
        /// Sensor size when the header does not give it.
        width: Option<u16>,
        height: Option<u16>,
        #[serde(default = "default_queue_events")]
        queue_events: usize,
        /// "drop" (count and drop when the queue is full) | "wait" (the reader waits).
        #[serde(default = "default_overflow")]
        overflow: String,
    },
}

fn default_speed() -> f64 {
    1.0
}
fn default_encoder() -> String {
    "counts".into()
}
fn default_queue_events() -> usize {
    65536
}
fn default_overflow() -> String {
    "drop".into()
}

/// The checked event-source keys (`[source] kind = "events"`).
fn check_events(src: &SourceSection) -> Result<Option<EventSourceSpec>, ConfigError> {
    let SourceSection::Events {
        path,
        speed,
        encoder,
        grid,
        merge_polarity,
        tau_us,
        voxel_bins,
        width,
        height,
        queue_events,
        overflow,
    } = src
    else {
        return Ok(None);
    };
    if !(speed.is_finite() && *speed > 0.0 && *speed <= 1e6) {
        return Err(invalid(
            "source.speed",
            format!("{speed} must be a number above 0 and at most 1e6 (recording µs per µs)"),
        ));
    }
    let representation = match encoder.as_str() {
        "counts" => Representation::Counts,
        "timesurface" => {
            let tau = tau_us.unwrap_or(50_000.0);
            if !(tau.is_finite() && tau > 0.0) {
                return Err(invalid(
                    "source.tau_us",
                    format!("{tau} must be a positive number"),
                ));
            }
            Representation::TimeSurface { tau_us: tau }
        }
        "voxel" => {
            let bins = voxel_bins.unwrap_or(5);
            if !(1..=1024).contains(&bins) {
                return Err(invalid(
                    "source.voxel_bins",
                    format!("{bins} must be from 1 to 1024"),
                ));
            }
            Representation::Voxel { bins }
        }
        other => {
            return Err(invalid(
                "source.encoder",
                format!("{other:?}: expected \"counts\", \"timesurface\" or \"voxel\""),
            ))
        }
    };
    if tau_us.is_some() && encoder != "timesurface" {
        return Err(invalid(
            "source.tau_us",
            "only with encoder = \"timesurface\"",
        ));
    }
    if voxel_bins.is_some() && encoder != "voxel" {
        return Err(invalid(
            "source.voxel_bins",
            "only with encoder = \"voxel\"",
        ));
    }
    if let Some([gx, gy]) = grid {
        if *gx == 0 || *gy == 0 {
            return Err(invalid("source.grid", "both sizes must be at least 1"));
        }
    }
    for (key, v) in [("source.width", width), ("source.height", height)] {
        if *v == Some(0) {
            return Err(invalid(key, "must be at least 1"));
        }
    }
    if *queue_events == 0 || *queue_events > MAX_QUEUE_EVENTS {
        return Err(invalid(
            "source.queue_events",
            format!("{queue_events} must be from 1 to {MAX_QUEUE_EVENTS}"),
        ));
    }
    let overflow = match overflow.as_str() {
        "drop" => Overflow::Drop,
        "wait" => Overflow::Wait,
        other => {
            return Err(invalid(
                "source.overflow",
                format!("{other:?}: expected \"drop\" or \"wait\""),
            ))
        }
    };
    Ok(Some(EventSourceSpec {
        path: path.clone(),
        speed: *speed,
        representation,
        grid: grid.map(|[x, y]| (x, y)),
        merge_polarity: *merge_polarity,
        width: *width,
        height: *height,
        queue_events: *queue_events,
        overflow,
    }))
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    /// Outputs to a `.npy`/`.csv` file (written off the loop thread, atomically at the end).
    pub file: Option<PathBuf>,
    /// Outputs into the shared region's ring (needs `[shm]`).
    #[serde(default)]
    pub ring: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShmSection {
    /// The region is /dev/shm/echos.NAME.
    pub name: String,
    #[serde(default = "default_ring")]
    pub ring_capacity: u64,
    #[serde(default = "one")]
    pub snapshot_every: u64,
    #[serde(default = "default_stats_every")]
    pub stats_every: u64,
    #[serde(default = "yes")]
    pub reclaim_stale: bool,
}

fn default_ring() -> u64 {
    1024
}
fn one() -> u64 {
    1
}
fn default_stats_every() -> u64 {
    100
}

/// Periods, deadline and budget in ns, checked by the kernel's own periodic-task rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub period_ns: u64,
    pub deadline_ns: u64,
    pub budget_ns: u64,
    pub periods: Option<u64>,
    /// Publish the state snapshot every this many periods (≥ 1).
    pub snapshot_every: u64,
    /// Publish the histograms every this many periods (≥ 1).
    pub stats_every: u64,
}

impl Timing {
    /// Checks a period, deadline and budget (µs) with `echos_kpolicy::periodic`'s rules
    /// (0 < budget ≤ deadline ≤ period), naming the offending key.
    pub fn from_us(
        period_us: u64,
        deadline_us: Option<u64>,
        budget_us: Option<u64>,
        periods: Option<u64>,
    ) -> Result<Self, ConfigError> {
        if !(MIN_PERIOD_US..=MAX_PERIOD_US).contains(&period_us) {
            return Err(invalid(
                "loop.period_us",
                format!("{period_us} µs is outside {MIN_PERIOD_US}..={MAX_PERIOD_US} µs"),
            ));
        }
        let deadline_us = deadline_us.unwrap_or(period_us);
        let budget_us = budget_us.unwrap_or(deadline_us);
        let params = PeriodicParams {
            start_ns: 0,
            period_ns: period_us * 1000,
            deadline_ns: deadline_us.saturating_mul(1000),
            budget_ns: budget_us.saturating_mul(1000),
        };
        let (key, reason) = match PeriodicTask::new(params, 1) {
            Ok(_) => ("", String::new()),
            Err(PeriodicError::DeadlineOutOfRange { .. }) => (
                "loop.deadline_us",
                format!(
                    "{deadline_us} µs must be above 0 and at most loop.period_us ({period_us} µs)"
                ),
            ),
            Err(PeriodicError::BudgetOutOfRange { .. }) => (
                "loop.budget_us",
                format!(
                    "{budget_us} µs must be above 0 and at most the deadline ({deadline_us} µs)"
                ),
            ),
            Err(e) => ("loop.period_us", e.to_string()),
        };
        if !key.is_empty() {
            return Err(invalid(key, reason));
        }
        if periods == Some(0) {
            return Err(invalid(
                "loop.periods",
                "must be at least 1 (omit it to run until stopped)",
            ));
        }
        Ok(Self {
            period_ns: params.period_ns,
            deadline_ns: params.deadline_ns,
            budget_ns: params.budget_ns,
            periods,
            snapshot_every: 1,
            stats_every: 100,
        })
    }
}

/// The region a run publishes into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmPlan {
    pub name: String,
    pub ring_capacity: u64,
    pub reclaim_stale: bool,
    /// Outputs also go into the ring.
    pub ring_sink: bool,
}

/// A checked configuration: everything but loading the model and the source's data.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub model: PathBuf,
    pub timing: Timing,
    pub sched: SchedPlan,
    pub source: SourceSection,
    /// The event source's checked keys (`kind = "events"`).
    pub events: Option<EventSourceSpec>,
    pub sink_file: Option<PathBuf>,
    pub shm: Option<ShmPlan>,
}

fn has_data_extension(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("npy" | "csv")
    )
}

/// Parses TOML text (`path` only names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// Reads and parses a config file (bounded: a config is small).
pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
    const MAX_BYTES: u64 = 1 << 20;
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_BYTES {
        return Err(ConfigError::Parse {
            path: path.to_path_buf(),
            message: format!("{len} bytes is more than a config file may be ({MAX_BYTES})"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let mut file = parse(&text, path)?;
    if let Some(dir) = path.parent() {
        file.resolve_relative_to(dir);
    }
    Ok(file)
}

/// Checks a scheduling section (shared by the config file and `rt bench`).
pub fn check_sched(s: &SchedSection, timing: &Timing) -> Result<SchedPlan, ConfigError> {
    if s.policy == Policy::Fifo && !(1..=99).contains(&s.priority) {
        return Err(invalid(
            "sched.priority",
            format!("{} is outside SCHED_FIFO's 1..=99", s.priority),
        ));
    }
    if let Some(cpu) = s.cpu {
        let online = online_cpus();
        if !online.contains(&cpu) {
            return Err(invalid(
                "sched.cpu",
                format!(
                    "CPU {cpu} does not exist or is offline (online: {})",
                    crate::realtime::cpu_list(&online)
                ),
            ));
        }
        let allowed = crate::realtime::allowed_cpus();
        if !allowed.is_empty() && !allowed.contains(&cpu) {
            return Err(invalid(
                "sched.cpu",
                format!(
                    "CPU {cpu} is outside this process's affinity mask ({})",
                    crate::realtime::cpu_list(&allowed)
                ),
            ));
        }
        if s.policy == Policy::Deadline {
            return Err(invalid(
                "sched.cpu",
                "cannot be combined with policy = \"deadline\": Linux refuses SCHED_DEADLINE for a thread pinned to a subset of its CPUs",
            ));
        }
    }
    if s.policy == Policy::Deadline && timing.budget_ns < 1_000 {
        return Err(invalid(
            "loop.budget_us",
            "SCHED_DEADLINE needs a runtime of at least 1 µs",
        ));
    }
    const MAX_PREFAULT_KIB: usize = 64 * 1024;
    if s.prefault_stack_kib > MAX_PREFAULT_KIB {
        return Err(invalid(
            "sched.prefault_stack_kib",
            format!(
                "{} KiB is more than {MAX_PREFAULT_KIB} KiB",
                s.prefault_stack_kib
            ),
        ));
    }
    Ok(SchedPlan {
        policy: s.policy,
        priority: s.priority,
        cpu: s.cpu,
        lock_memory: s.lock_memory,
        prefault_stack_bytes: s.prefault_stack_kib * 1024,
        numa: s.numa,
    })
}

impl ConfigFile {
    /// Makes relative file paths (model, series, output file) relative to `dir`, the config
    /// file's directory, so a config means the same files from any working directory.
    pub fn resolve_relative_to(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        fix(&mut self.model.path);
        if let SourceSection::Series { path, .. } | SourceSection::Events { path, .. } =
            &mut self.source
        {
            fix(path);
        }
        if let Some(f) = &mut self.sink.file {
            fix(f);
        }
    }

    /// Every check that needs no file contents.
    pub fn check(&self) -> Result<Checked, ConfigError> {
        let l = &self.timing;
        let mut timing = Timing::from_us(l.period_us, l.deadline_us, l.budget_us, l.periods)?;
        let sched = check_sched(&self.sched, &timing)?;
        if !self
            .model
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
        {
            return Err(invalid(
                "model.path",
                format!(
                    "{}: a model file's name ends in .safetensors",
                    self.model.path.display()
                ),
            ));
        }
        if let SourceSection::Series { path, .. } = &self.source {
            if !has_data_extension(path) {
                return Err(invalid(
                    "source.path",
                    format!("{}: a series is a .npy or .csv file", path.display()),
                ));
            }
        }
        let events = check_events(&self.source)?;
        if let Some(f) = &self.sink.file {
            if !has_data_extension(f) {
                return Err(invalid(
                    "sink.file",
                    format!("{}: outputs are written as .npy or .csv", f.display()),
                ));
            }
        }
        let shm = match &self.shm {
            None if self.sink.ring => {
                return Err(invalid(
                    "sink.ring",
                    "needs a [shm] section naming the region",
                ))
            }
            None => None,
            Some(s) => {
                shm::region_path(&s.name).map_err(|e| invalid("shm.name", e.to_string()))?;
                if !s.ring_capacity.is_power_of_two() || s.ring_capacity > MAX_RING_CAPACITY {
                    return Err(invalid(
                        "shm.ring_capacity",
                        format!(
                            "{} must be a power of two from 1 to {MAX_RING_CAPACITY}",
                            s.ring_capacity
                        ),
                    ));
                }
                for (key, v) in [
                    ("shm.snapshot_every", s.snapshot_every),
                    ("shm.stats_every", s.stats_every),
                ] {
                    if v == 0 {
                        return Err(invalid(key, "must be at least 1 (periods)"));
                    }
                }
                timing.snapshot_every = s.snapshot_every;
                timing.stats_every = s.stats_every;
                Some(ShmPlan {
                    name: s.name.clone(),
                    ring_capacity: s.ring_capacity,
                    reclaim_stale: s.reclaim_stale,
                    ring_sink: self.sink.ring,
                })
            }
        };
        Ok(Checked {
            model: self.model.path.clone(),
            timing,
            sched,
            source: self.source.clone(),
            events,
            sink_file: self.sink.file.clone(),
            shm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[model]
path = "m.safetensors"

[loop]
period_us = 1000
budget_us = 500

[sched]
policy = "fifo"
priority = 80
cpu = 0

[source]
kind = "series"
path = "x.npy"

[sink]
file = "y.csv"
ring = true

[shm]
name = "demo"
"#;

    fn check(text: &str) -> Result<Checked, ConfigError> {
        parse(text, Path::new("c.toml"))?.check()
    }

    fn key_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { key, .. } => key.to_string(),
            ConfigError::Parse { message, .. } => message,
            e => e.to_string(),
        }
    }

    #[test]
    fn a_good_file_and_its_defaults() {
        let c = check(GOOD).unwrap();
        assert_eq!(c.timing.period_ns, 1_000_000);
        assert_eq!(c.timing.deadline_ns, 1_000_000);
        assert_eq!(c.timing.budget_ns, 500_000);
        assert_eq!(c.sched.cpu, Some(0));
        assert!(c.sched.lock_memory);
        let shm = c.shm.unwrap();
        assert_eq!((shm.ring_capacity, shm.ring_sink), (1024, true));
        let stdin = GOOD.replace("kind = \"series\"\npath = \"x.npy\"", "kind = \"stdin\"");
        assert_eq!(check(&stdin).unwrap().source, SourceSection::Stdin);
    }

    #[test]
    fn unknown_keys_are_named_in_every_section() {
        for (from, to, key) in [
            ("period_us = 1000", "period_us = 1000\nperod = 3", "perod"),
            ("priority = 80", "priority = 80\nprio = 1", "prio"),
            ("path = \"x.npy\"", "path = \"x.npy\"\nloop = true", "loop"),
            ("name = \"demo\"", "name = \"demo\"\nsize = 3", "size"),
            ("[sink]", "[sinks]", "sinks"),
        ] {
            let msg = key_of(check(&GOOD.replace(from, to)).unwrap_err());
            assert!(msg.contains("unknown") && msg.contains(key), "{key}: {msg}");
        }
    }

    #[test]
    fn wrong_types_are_named() {
        let msg =
            key_of(check(&GOOD.replace("period_us = 1000", "period_us = \"1ms\"")).unwrap_err());
        assert!(msg.contains("period_us") || msg.contains("line 6"), "{msg}");
        assert!(
            msg.contains("integer") || msg.contains("invalid type"),
            "{msg}"
        );
        let msg = key_of(check(&GOOD.replace("policy = \"fifo\"", "policy = \"rr\"")).unwrap_err());
        assert!(msg.contains("rr") && msg.contains("fifo"), "{msg}");
        let msg =
            key_of(check(&GOOD.replace("kind = \"series\"", "kind = \"camera\"")).unwrap_err());
        assert!(msg.contains("camera"), "{msg}");
    }

    #[test]
    fn impossible_timing_names_the_key() {
        for (from, to, key) in [
            ("period_us = 1000", "period_us = 0", "loop.period_us"),
            ("period_us = 1000", "period_us = 20000000", "loop.period_us"),
            ("budget_us = 500", "budget_us = 0", "loop.budget_us"),
            ("budget_us = 500", "budget_us = 1500", "loop.budget_us"),
            ("budget_us = 500", "deadline_us = 2000", "loop.deadline_us"),
            (
                "budget_us = 500",
                "budget_us = 500\nperiods = 0",
                "loop.periods",
            ),
            ("priority = 80", "priority = 0", "sched.priority"),
            ("priority = 80", "priority = 100", "sched.priority"),
            ("cpu = 0", "cpu = 4096", "sched.cpu"),
            ("policy = \"fifo\"", "policy = \"deadline\"", "sched.cpu"),
            ("name = \"demo\"", "name = \"a/b\"", "shm.name"),
            (
                "name = \"demo\"",
                "name = \"demo\"\nring_capacity = 1000",
                "shm.ring_capacity",
            ),
            (
                "name = \"demo\"",
                "name = \"demo\"\nstats_every = 0",
                "shm.stats_every",
            ),
            ("path = \"m.safetensors\"", "path = \"m.npy\"", "model.path"),
            ("path = \"x.npy\"", "path = \"x.txt\"", "source.path"),
            ("file = \"y.csv\"", "file = \"y\"", "sink.file"),
        ] {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD, "{from}");
            assert_eq!(key_of(check(&text).unwrap_err()), key, "{to}");
        }
        let no_shm = GOOD.split("[shm]").next().unwrap().to_string();
        assert_eq!(key_of(check(&no_shm).unwrap_err()), "sink.ring");
    }

    #[test]
    fn relative_paths_are_the_config_files_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            GOOD.replace("file = \"y.csv\"", "file = \"/abs/y.csv\""),
        )
        .unwrap();
        let c = read(&cfg).unwrap();
        assert_eq!(c.model.path, dir.path().join("m.safetensors"));
        assert_eq!(
            c.source,
            SourceSection::Series {
                path: dir.path().join("x.npy"),
                repeat: false
            }
        );
        assert_eq!(c.sink.file, Some(PathBuf::from("/abs/y.csv")));
    }

    #[test]
    fn a_cpu_that_does_not_exist_says_which_exist() {
        let e = check(&GOOD.replace("cpu = 0", "cpu = 4096")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("sched.cpu: CPU 4096 does not exist"),
            "{msg}"
        );
        assert!(msg.contains("online: 0"), "{msg}");
    }
}

//! Putting the loop thread in real-time shape: CPU affinity, NUMA memory binding, mlockall,
//! a pre-faulted stack and the scheduling policy. Each step that the machine or the process's
//! privileges refuse is recorded as [`Degraded`] — which privilege, what the kernel said, what
//! the loop does instead — and the run goes on; nothing is skipped silently.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// SCHED_FIFO at `priority`.
    Fifo,
    /// SCHED_DEADLINE with runtime = budget, deadline, period (kernel-enforced budget).
    Deadline,
    /// SCHED_OTHER: no real-time policy (for machines or users without the privilege).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedPlan {
    pub policy: Policy,
    pub priority: u8,
    pub cpu: Option<usize>,
    pub lock_memory: bool,
    pub prefault_stack_bytes: usize,
    pub numa: bool,
}

impl Default for SchedPlan {
    fn default() -> Self {
        Self {
            policy: Policy::Fifo,
            priority: 80,
            cpu: None,
            lock_memory: true,
            prefault_stack_bytes: 256 * 1024,
            numa: true,
        }
    }
}

/// One thing the run asked for and did not get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Degraded {
    /// What was asked, e.g. "SCHED_FIFO priority 80".
    pub wanted: String,
    /// The kernel's answer and the privilege it implies.
    pub reason: String,
    /// What the loop does instead.
    pub instead: String,
}

impl fmt::Display for Degraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.wanted, self.reason, self.instead)
    }
}

/// What the loop thread got.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// "SCHED_FIFO 80", "SCHED_DEADLINE", "SCHED_OTHER".
    pub policy: String,
    pub cpu: Option<usize>,
    pub numa_node: Option<usize>,
    pub numa_nodes: usize,
    pub memory_locked: bool,
    pub stack_prefaulted_bytes: usize,
    pub degraded: Vec<Degraded>,
}

fn errno_text(e: &std::io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::ENOSYS) => "ENOSYS",
        _ => "",
    };
    if name.is_empty() {
        e.to_string()
    } else {
        format!("{name} ({e})")
    }
}

/// Parses a kernel CPU list such as "0-3,6,8-9".
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            // A list from sysfs is small; refuse absurd ranges rather than allocate them.
            if a <= b && b - a < 65_536 {
                out.extend(a..=b);
            }
        }
    }
    out
}

/// "0-3,6" for a sorted CPU set.
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// CPUs the kernel reports online.
pub fn online_cpus() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|t| parse_cpu_list(&t))
        .unwrap_or_else(|_| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        })
}

/// CPUs this process may run on (its affinity mask); empty if it cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// NUMA nodes online (one on a machine without NUMA).
pub fn numa_nodes() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/node/online")
        .map(|t| parse_cpu_list(&t))
        .unwrap_or_else(|_| vec![0])
}

/// The NUMA node holding `cpu` (`/sys/devices/system/cpu/cpuN/nodeM`).
pub fn node_of_cpu(cpu: usize) -> Option<usize> {
    let dir = std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{cpu}")).ok()?;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
        .next()
}

/// Affinity and NUMA binding: first, so the loop's buffers are then allocated on its node.
pub fn apply_placement(plan: &SchedPlan, applied: &mut Applied) {
    if let Some(cpu) = plan.cpu {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        match rustix::thread::sched_setaffinity(None, &set) {
            Ok(()) => applied.cpu = Some(cpu),
            Err(e) => applied.degraded.push(Degraded {
                wanted: format!("CPU affinity to CPU {cpu}"),
                reason: errno_text(&e.into()),
                instead: "the loop may migrate between CPUs".into(),
            }),
        }
    }
    let nodes = numa_nodes();
    applied.numa_nodes = nodes.len();
    if plan.numa {
        let cpu = applied.cpu.unwrap_or_else(rustix::thread::sched_getcpu);
        match node_of_cpu(cpu) {
            Some(node) => {
                match sys::bind_memory_to_node(node).and_then(|()| sys::memory_policy()) {
                    // Read back: the policy is in force only if the kernel reports it.
                    Ok((_, mask)) if mask == 1 << node => applied.numa_node = Some(node),
                    Ok((mode, mask)) => applied.degraded.push(Degraded {
                        wanted: format!("memory bound to NUMA node {node} (of CPU {cpu})"),
                        reason: format!("get_mempolicy reports mode {mode}, node mask {mask:#x}"),
                        instead: "memory comes from whatever that policy gives".into(),
                    }),
                    Err(e) => applied.degraded.push(Degraded {
                        wanted: format!("memory bound to NUMA node {node} (of CPU {cpu})"),
                        reason: format!("set_mempolicy: {}", errno_text(&e)),
                        instead: "memory comes from the default policy (local node at first touch)"
                            .into(),
                    }),
                }
            }
            None => applied.degraded.push(Degraded {
                wanted: format!("memory bound to the NUMA node of CPU {cpu}"),
                reason: "sysfs names no node for this CPU".into(),
                instead: "memory comes from the default policy".into(),
            }),
        }
    }
}

/// Touches `bytes` of stack below the caller so the loop never takes a page fault on it.
#[inline(never)]
pub fn prefault_stack(bytes: usize) {
    const CHUNK: usize = 16 * 1024;
    let mut page = [0u8; CHUNK];
    // Writing every 4 KiB page of this frame's array faults it in; black_box keeps the stores.
    for i in (0..CHUNK).step_by(4096) {
        page[i] = 1;
    }
    std::hint::black_box(&mut page);
    if bytes > CHUNK {
        prefault_stack(bytes - CHUNK);
    }
}

/// mlockall and the pre-faulted stack: after the loop's memory exists.
pub fn apply_memory(plan: &SchedPlan, applied: &mut Applied) {
    if plan.lock_memory {
        use rustix::mm::MlockAllFlags;
        match rustix::mm::mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE) {
            Ok(()) => applied.memory_locked = true,
            Err(e) => {
                let limit = std::fs::read_to_string("/proc/self/limits")
                    .ok()
                    .and_then(|t| {
                        t.lines()
                            .find(|l| l.starts_with("Max locked memory"))
                            .map(|l| {
                                let f: Vec<&str> = l.split_whitespace().skip(3).take(2).collect();
                                format!(
                                    "soft {}, hard {} bytes",
                                    f.first().unwrap_or(&"?"),
                                    f.get(1).unwrap_or(&"?")
                                )
                            })
                    })
                    .unwrap_or_default();
                applied.degraded.push(Degraded {
                    wanted: "mlockall(MCL_CURRENT | MCL_FUTURE)".into(),
                    reason: format!(
                        "{} — needs CAP_IPC_LOCK or RLIMIT_MEMLOCK above the process size (limit: {limit})",
                        errno_text(&e.into())
                    ),
                    instead: "pages may be swapped out and fault on the loop path".into(),
                });
            }
        }
    }
    if plan.prefault_stack_bytes > 0 {
        prefault_stack(plan.prefault_stack_bytes);
        applied.stack_prefaulted_bytes = plan.prefault_stack_bytes;
    }
}

/// The scheduling policy: last, so the set-up work above does not run at real-time priority.
pub fn apply_scheduling(plan: &SchedPlan, timing: &crate::config::Timing, applied: &mut Applied) {
    let fifo = |applied: &mut Applied| match sys::set_fifo(plan.priority) {
        Ok(()) => {
            applied.policy = format!("SCHED_FIFO {}", plan.priority);
            true
        }
        Err(e) => {
            applied.degraded.push(Degraded {
                wanted: format!("SCHED_FIFO priority {}", plan.priority),
                reason: format!(
                    "{} — needs CAP_SYS_NICE or RLIMIT_RTPRIO ≥ {}",
                    errno_text(&e),
                    plan.priority
                ),
                instead: "running under SCHED_OTHER: other processes can delay every wake-up"
                    .into(),
            });
            false
        }
    };
    match plan.policy {
        Policy::Other => {
            let _ = sys::set_other();
            applied.policy = "SCHED_OTHER".into();
        }
        Policy::Fifo => {
            if !fifo(applied) {
                applied.policy = "SCHED_OTHER".into();
            }
        }
        Policy::Deadline => {
            match sys::set_deadline(timing.budget_ns, timing.deadline_ns, timing.period_ns) {
                Ok(()) => applied.policy = "SCHED_DEADLINE".into(),
                Err(e) => {
                    applied.degraded.push(Degraded {
                        wanted: format!(
                            "SCHED_DEADLINE runtime {} ns, deadline {} ns, period {} ns",
                            timing.budget_ns, timing.deadline_ns, timing.period_ns
                        ),
                        reason: format!(
                            "sched_setattr: {} — needs CAP_SYS_NICE, an admission-control margin and an affinity covering the root domain",
                            errno_text(&e)
                        ),
                        instead: format!("falling back to SCHED_FIFO {}", plan.priority),
                    });
                    if !fifo(applied) {
                        applied.policy = "SCHED_OTHER".into();
                    }
                }
            }
        }
    }
}

/// Back to SCHED_OTHER after the loop, so the final bookkeeping does not run at RT priority.
pub fn leave_realtime() {
    let _ = sys::set_other();
}

/// The calling thread's policy as the kernel reports it ("SCHED_FIFO 80").
pub fn current_policy() -> String {
    match sys::current_policy() {
        Ok((libc::SCHED_FIFO, p)) => format!("SCHED_FIFO {p}"),
        Ok((libc::SCHED_RR, p)) => format!("SCHED_RR {p}"),
        Ok((libc::SCHED_OTHER, _)) => "SCHED_OTHER".into(),
        Ok((6, _)) => "SCHED_DEADLINE".into(),
        Ok((p, prio)) => format!("policy {p} priority {prio}"),
        Err(e) => format!("unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_print() {
        assert_eq!(parse_cpu_list("0-3,6,8-9\n"), vec![0, 1, 2, 3, 6, 8, 9]);
        assert_eq!(cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("0-999999999"), Vec::<usize>::new());
        assert!(!online_cpus().is_empty());
    }

    #[test]
    fn topology_is_reported_and_cpu0_has_a_node() {
        assert!(!numa_nodes().is_empty());
        assert_eq!(
            node_of_cpu(0).map(|n| numa_nodes().contains(&n)),
            Some(true)
        );
    }

    #[test]
    fn placement_on_a_scratch_thread_pins_and_binds_or_says_why_not() {
        std::thread::spawn(|| {
            let plan = SchedPlan {
                cpu: Some(0),
                ..SchedPlan::default()
            };
            let mut applied = Applied::default();
            apply_placement(&plan, &mut applied);
            // Either it happened or a Degraded entry says why; never silently neither.
            assert!(applied.cpu == Some(0) || !applied.degraded.is_empty());
            assert!(applied.numa_node.is_some() || !applied.degraded.is_empty());
            if applied.cpu == Some(0) {
                assert_eq!(rustix::thread::sched_getcpu(), 0);
            }
        })
        .join()
        .unwrap();
    }
}

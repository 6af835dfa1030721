//! Introspection endpoint: JSON over HTTP on 127.0.0.1 (only) and/or a Unix socket, served by a
//! process of its own (`echos rt serve NAME`) from the shared region — so a client, however
//! slow or hostile, costs the loop nothing: every request maps the region read-only and copies
//! a seqlock snapshot.
//!
//! Endpoints (GET): `/` (the list), `/debug_info` (the vision's `reservoir_debug_info`: context,
//! current state, spectral radius, trajectory ring, step count, memory capacity, misses and
//! overruns, timing), `/timing` (percentiles and non-empty histogram buckets), `/state`,
//! `/header`. A plain std server: one connection at a time, requests bounded to 8 KiB and 2 s,
//! `Connection: close`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::hist::{bucket_upper, LogHistogram};
use crate::shm::{Attached, ShmError};

pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: io::Error },
    #[error("unix socket {}: {reason}", path.display())]
    Unix { path: PathBuf, reason: String },
    #[error("give an HTTP port, a Unix socket path, or both")]
    NothingToServe,
}

/// Bound listeners for one region.
pub struct Server {
    name: String,
    tcp: Option<TcpListener>,
    unix: Option<(UnixListener, PathBuf)>,
}

impl Server {
    /// Binds HTTP on 127.0.0.1:`port` (0: any free port) and/or a Unix socket at `unix` (which
    /// must not exist yet). Nothing is bound on any other address.
    pub fn bind(
        name: &str,
        port: Option<u16>,
        unix: Option<&Path>,
    ) -> Result<Self, IntrospectError> {
        if port.is_none() && unix.is_none() {
            return Err(IntrospectError::NothingToServe);
        }
        crate::shm::region_path(name).map_err(|e| IntrospectError::Unix {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        let tcp = match port {
            Some(port) => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                    .map_err(|source| IntrospectError::Bind { port, source })?;
                l.set_nonblocking(true)
                    .map_err(|source| IntrospectError::Bind { port, source })?;
                Some(l)
            }
            None => None,
        };
        let unix = match unix {
            Some(path) => {
                let err = |reason: String| IntrospectError::Unix {
                    path: path.to_path_buf(),
                    reason,
                };
                if path.symlink_metadata().is_ok() {
                    return Err(err(
                        "exists already (remove it if it is a stale socket)".into()
                    ));
                }
                let l = UnixListener::bind(path).map_err(|e| err(e.to_string()))?;
                l.set_nonblocking(true).map_err(|e| err(e.to_string()))?;
                Some((l, path.to_path_buf()))
            }
            None => None,
        };
        Ok(Self {
            name: name.to_string(),
            tcp,
            unix,
        })
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `stop` is set; returns the number of requests answered.
    pub fn serve(&self, stop: &AtomicBool) -> u64 {
        let mut served = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut idle = true;
            if let Some(l) = &self.tcp {
                if let Ok((s, _)) = l.accept() {
                    idle = false;
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                    served += u64::from(handle(s, &self.name).is_ok());
                }
            }
            if let Some((l, _)) = &self.unix {
                if let Ok((s, _)) = l.accept() {
                    idle = false;
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                    served += u64::from(handle(s, &self.name).is_ok());
                }
            }
            if idle {
                std::thread::sleep(POLL);
            }
        }
        served
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Reads one request head (bounded), answers it, closes.
fn handle<S: Read + Write>(mut s: S, name: &str) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let mut len = 0;
    let head_end = loop {
        if let Some(i) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(i);
        }
        if len == buf.len() {
            break None;
        }
        let n = s.read(&mut buf[len..])?;
        if n == 0 {
            break buf[..len].windows(2).position(|w| w == b"\r\n");
        }
        len += n;
    };
    let (status, body) = match head_end {
        None => (
            431,
            json!({"error": "request head too large or incomplete"}),
        ),
        Some(end) => {
            let head = String::from_utf8_lossy(&buf[..end]);
            let line = head.lines().next().unwrap_or("");
            let mut parts = line.split(' ');
            match (parts.next(), parts.next()) {
                (Some("GET"), Some(path)) => route(path, name),
                (Some(_), Some(_)) => (405, json!({"error": "only GET is served"})),
                _ => (400, json!({"error": "not an HTTP request line"})),
            }
        }
    };
    let text = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    write!(
        s,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    s.flush()
}

/// Status and JSON body for `path`.
pub fn route(path: &str, name: &str) -> (u16, Value) {
    let path = path.split('?').next().unwrap_or(path);
    const ENDPOINTS: [&str; 5] = ["/", "/debug_info", "/timing", "/state", "/header"];
    if !ENDPOINTS.contains(&path) {
        return (
            404,
            json!({"error": format!("no endpoint {path}"), "endpoints": ENDPOINTS}),
        );
    }
    if path == "/" {
        return (200, json!({"region": name, "endpoints": ENDPOINTS}));
    }
    let a = match Attached::open(name) {
        Ok(a) => a,
        Err(e) => return (503, json!({"error": e.to_string()})),
    };
    let result = match path {
        "/debug_info" => debug_info(&a),
        "/timing" => timing(&a),
        "/state" => a
            .snapshot()
            .map(|s| json!({"step": s.head.step, "state": s.state})),
        _ => Ok(json!({"header": a.header(), "owner_running": a.owner_running()})),
    };
    match result {
        Ok(v) => (200, v),
        Err(e) => (503, json!({"error": e.to_string()})),
    }
}

/// The loop's published per-step counters, or why there are none.
fn hardware(h: &crate::shm::SnapshotHead) -> Value {
    if h.hw_cycles_per_step > 0.0 {
        json!({
            "cycles_per_step": h.hw_cycles_per_step,
            "cache_hit_rate": h.hw_cache_hit_rate,
        })
    } else {
        json!("not available here: the loop publishes none (no hardware PMU or perf_event_open refused; its final report gives the errno)")
    }
}

fn buckets(h: &LogHistogram) -> Vec<[u64; 2]> {
    h.counts()
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| [bucket_upper(i), c])
        .collect()
}

/// Wake-up and step timing: percentiles and `[bucket upper edge ns, count]` pairs.
pub fn timing(a: &Attached) -> Result<Value, ShmError> {
    let (wakeup, step) = a.stats()?;
    let s = a.snapshot()?;
    Ok(json!({
        "hardware_counters": hardware(&s.head),
        "periods": s.head.periods,
        "deadline_misses": s.head.deadline_misses,
        "overruns": s.head.overruns,
        "skipped_jobs": s.head.skipped_jobs,
        "wakeup": wakeup.percentiles(),
        "wakeup_histogram_ns": buckets(&wakeup),
        "step": step.percentiles(),
        "step_histogram_ns": buckets(&step),
    }))
}

/// The vision's `reservoir_debug_info`, from the live region.
pub fn debug_info(a: &Attached) -> Result<Value, ShmError> {
    let s = a.snapshot()?;
    let h = a.header();
    let (wakeup, step) = a.stats()?;
    Ok(json!({
        "context": {
            "step": s.head.step,
            "period_ns": h.period_ns,
            "units": h.units,
            "inputs": h.inputs,
            "outputs": h.outputs,
            "spectral_radius": s.head.spectral_radius,
            "leak_rate": s.head.leak_rate,
        },
        "owner_pid": h.owner_pid,
        "owner_running": a.owner_running(),
        "state": s.state,
        "output": s.output,
        // Output 0's target and the running NRMSE, when a scoring sink runs (else null).
        "target": s.head.target,
        "running_nrmse": s.head.running_nrmse,
        "trajectory": s.trajectory,
        // Model files do not carry a measured memory capacity yet.
        "memory_capacity": null,
        "deadline_misses": s.head.deadline_misses,
        "hardware_counters": hardware(&s.head),
        "overruns": s.head.overruns,
        "timing": {
            "wakeup_last_ns": s.head.wakeup_last_ns,
            "wakeup": wakeup.percentiles(),
            "step_last_ns": s.head.step_last_ns,
            "step": step.percentiles(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::{Region, Shape, SnapshotHead};
    use std::io::BufRead;
    use std::sync::Arc;

    fn get<S: Read + Write>(mut s: S, request: &[u8]) -> (u16, Value) {
        s.write_all(request).unwrap();
        let mut r = std::io::BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        let code = status.split(' ').nth(1).unwrap().parse().unwrap();
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let mut body = String::new();
        r.read_to_string(&mut body).unwrap();
        (code, serde_json::from_str(&body).unwrap())
    }

    #[test]
    fn http_and_unix_socket_answer_from_the_live_region() {
        let name = format!("introspect-{}", std::process::id());
        let shape = Shape {
            units: 6,
            inputs: 1,
            outputs: 1,
            ring_capacity: 4,
            period_ns: 500_000,
        };
        let r = Region::create(&name, &shape, false).unwrap();
        let head = SnapshotHead {
            step: 9,
            periods: 9,
            deadline_misses: 1,
            spectral_radius: 0.95,
            ..Default::default()
        };
        r.publish_snapshot(&head, &[0.5; 6], &[0.25]);
        let mut wake = LogHistogram::new();
        wake.record(20_000);
        r.publish_stats(&wake, &LogHistogram::new());
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("rt.sock");
        let server = Arc::new(Server::bind(&name, Some(0), Some(&sock)).unwrap());
        let addr = server.http_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let stop = Arc::new(AtomicBool::new(false));
        let t = {
            let (server, stop) = (server.clone(), stop.clone());
            std::thread::spawn(move || server.serve(&stop))
        };
        let tcp = || std::net::TcpStream::connect(addr).unwrap();
        let (code, v) = get(tcp(), b"GET /debug_info HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["context"]["step"], 9);
        assert_eq!(v["context"]["spectral_radius"], 0.95);
        assert_eq!(v["state"].as_array().unwrap().len(), 6);
        assert_eq!(v["trajectory"][0]["step"], 9);
        assert_eq!(v["deadline_misses"], 1);
        assert_eq!(v["timing"]["wakeup"]["p50_ns"], 20_000);
        let (code, v) = get(tcp(), b"GET /timing HTTP/1.0\r\n\r\n");
        assert_eq!(
            (code, v["wakeup_histogram_ns"][0][1].as_u64()),
            (200, Some(1))
        );
        let (code, _) = get(tcp(), b"GET /nope HTTP/1.1\r\n\r\n");
        assert_eq!(code, 404);
        let (code, _) = get(tcp(), b"POST /state HTTP/1.1\r\n\r\n");
        assert_eq!(code, 405);
        let (code, _) = get(tcp(), &[b'x'; MAX_REQUEST_BYTES]);
        assert_eq!(code, 431);
        let unix = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let (code, v) = get(unix, b"GET /state HTTP/1.1\r\n\r\n");
        assert_eq!((code, v["step"].as_u64()), (200, Some(9)));
        // The loop gone: the endpoint says so instead of serving stale memory as live.
        drop(r);
        let (code, v) = get(tcp(), b"GET /debug_info HTTP/1.1\r\n\r\n");
        assert_eq!(code, 503, "{v}");
        stop.store(true, Ordering::Relaxed);
        assert!(t.join().unwrap() >= 7);
        drop(server);
        assert!(!sock.exists(), "socket removed");
    }

    #[test]
    fn bind_needs_something_and_refuses_an_existing_socket_path() {
        assert!(matches!(
            Server::bind("x", None, None),
            Err(IntrospectError::NothingToServe)
        ));
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(
            Server::bind("x", None, Some(f.path())),
            Err(IntrospectError::Unix { .. })
        ));
    }
}

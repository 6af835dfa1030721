//! The live dashboard (docs/dashboard.md): a web page and its JSON/SSE API, served on threads of
//! its own from a hosted loop's shared region, read through the seqlock reader
//! (`echos_rt::shm::Attached`) — so neither the server nor any client can slow the loop.
//!
//! One sampler reads the region at most [`MAX_UPDATE_HZ`] times a second and builds one JSON
//! frame with the runtime's own introspection builders (`echos_rt::introspect::debug_info` and
//! `timing`: one home for that JSON). The frame goes into a `tokio::sync::watch` channel, which
//! holds only the latest value: a client stream that is not ready for a frame skips it (counted),
//! so no queue ever grows. Streams are capped (a refusal is a 503 with a reason, counted).
//!
//! Routes (GET): `/` the page, `/app.js`, `/app.css` (embedded, no network needed),
//! `/api/introspect` the latest frame, `/api/stream` Server-Sent Events of frames,
//! `/api/counters` the server's own counters.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use echos_rt::introspect;
use echos_rt::shm::Attached;

/// The most frames a second the sampler publishes (and so any client receives).
pub const MAX_UPDATE_HZ: f64 = 30.0;
/// Default cap on simultaneous event streams.
pub const DEFAULT_MAX_CLIENTS: u64 = 32;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

#[derive(Debug, thiserror::Error)]
pub enum DashError {
    #[error(
        "dashboard address {addr} is not a loopback address: the dashboard has no \
         authentication, so it binds elsewhere only with --dashboard-public"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("binding the dashboard on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("dashboard update rate {0} /s: must be above 0 and at most {MAX_UPDATE_HZ}")]
    Rate(f64),
    #[error("dashboard max clients must be at least 1")]
    MaxClients,
    #[error("starting the dashboard's server thread: {0}")]
    Runtime(io::Error),
}

/// How the dashboard serves.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Frames a second (0 < rate ≤ [`MAX_UPDATE_HZ`]).
    pub update_hz: f64,
    /// Simultaneous `/api/stream` clients; more are refused with 503.
    pub max_clients: u64,
    /// Allow a non-loopback address (the caller warns).
    pub public: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            update_hz: MAX_UPDATE_HZ,
            max_clients: DEFAULT_MAX_CLIENTS,
            public: false,
        }
    }
}

/// The server's own counters (also in every frame under `dashboard`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames the sampler built.
    pub frames: AtomicU64,
    /// Frames the sampler could not read (region missing, writer mid-update too long).
    pub read_errors: AtomicU64,
    /// Event streams open now.
    pub clients: AtomicU64,
    /// Event streams ever accepted.
    pub accepted: AtomicU64,
    /// Event streams refused at the cap.
    pub refused: AtomicU64,
    /// Event streams that ended (the client went away, or the server stopped).
    pub disconnects: AtomicU64,
    /// Frames sent to stream clients, summed over clients.
    pub sent: AtomicU64,
    /// Frames a stream client missed because it was not ready (decimated), summed.
    pub skipped: AtomicU64,
    /// `/api/introspect` answers.
    pub introspect_requests: AtomicU64,
    /// CPU time of the server thread (sampler and every connection), ns.
    pub server_cpu_ns: AtomicU64,
}

impl Counters {
    pub fn to_json(&self, max_clients: u64, update_hz: f64) -> Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "frames": g(&self.frames),
            "read_errors": g(&self.read_errors),
            "clients": g(&self.clients),
            "max_clients": max_clients,
            "accepted": g(&self.accepted),
            "refused": g(&self.refused),
            "disconnects": g(&self.disconnects),
            "sent": g(&self.sent),
            "skipped": g(&self.skipped),
            "introspect_requests": g(&self.introspect_requests),
            "server_cpu_ns": g(&self.server_cpu_ns),
            "update_hz": update_hz,
        })
    }
}

/// One published frame: its sequence number and its JSON text.
#[derive(Clone, Debug)]
struct Frame {
    seq: u64,
    json: Arc<str>,
}

#[derive(Clone)]
struct AppState {
    frames: watch::Receiver<Frame>,
    counters: Arc<Counters>,
    opts: Options,
}

/// A running dashboard server; [`Dashboard::stop`] (or drop) ends it.
pub struct Dashboard {
    addr: SocketAddr,
    counters: Arc<Counters>,
    opts: Options,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Dashboard {
    /// Binds `addr` now (so a port in use is an error before any loop starts), then serves the
    /// region `name` on a thread of its own. The region need not exist yet: frames say so.
    pub fn start(name: &str, addr: SocketAddr, opts: Options) -> Result<Self, DashError> {
        if !addr.ip().is_loopback() && !opts.public {
            return Err(DashError::NotLoopback { addr });
        }
        if !(opts.update_hz.is_finite() && opts.update_hz > 0.0 && opts.update_hz <= MAX_UPDATE_HZ)
        {
            return Err(DashError::Rate(opts.update_hz));
        }
        if opts.max_clients == 0 {
            return Err(DashError::MaxClients);
        }
        let bind_err = |source| DashError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(DashError::Runtime)?;
        let counters = Arc::new(Counters::default());
        let (shutdown, on_shutdown) = oneshot::channel();
        let name = name.to_string();
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("echos-dash".into())
            .spawn(move || rt.block_on(serve(listener, name, opts, c, on_shutdown)))
            .map_err(DashError::Runtime)?;
        Ok(Self {
            addr: local,
            counters,
            opts,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn counters(&self) -> Value {
        self.counters
            .to_json(self.opts.max_clients, self.opts.update_hz)
    }

    /// Stops serving (open streams end) and joins the server thread.
    pub fn stop(mut self) -> Value {
        self.shut();
        self.counters()
    }

    fn shut(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.shut();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    name: String,
    opts: Options,
    counters: Arc<Counters>,
    on_shutdown: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(_) => return,
    };
    let first = Frame {
        seq: 0,
        json: frame_json(0, &name, None, &counters, &opts)
            .to_string()
            .into(),
    };
    let (tx, rx) = watch::channel(first);
    let state = AppState {
        frames: rx,
        counters: counters.clone(),
        opts,
    };
    let app = Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/introspect", get(api_introspect))
        .route("/api/counters", get(api_counters))
        .route("/api/stream", get(api_stream))
        .fallback(not_found)
        .with_state(state);
    let sampler = sample(name, opts, counters, tx);
    // Dropping the runtime's futures at shutdown ends every open stream and connection.
    tokio::select! {
        _ = axum::serve(listener, app) => {}
        _ = sampler => {}
        _ = on_shutdown => {}
    }
}

/// Reads the region every 1/update_hz s and publishes the frame.
async fn sample(name: String, opts: Options, counters: Arc<Counters>, tx: watch::Sender<Frame>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.update_hz));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut region: Option<Attached> = None;
    let mut seq = 0u64;
    loop {
        tick.tick().await;
        if region.as_ref().is_none_or(|a| !a.owner_running()) {
            // (Re)attach: the loop may not have created its region yet, or a new run replaced it.
            region = Attached::open(&name).ok();
        }
        seq += 1;
        let v = frame_json(seq, &name, region.as_ref(), &counters, &opts);
        if v.get("error").is_some() {
            counters.read_errors.fetch_add(1, Ordering::Relaxed);
        }
        counters.frames.fetch_add(1, Ordering::Relaxed);
        let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        let cpu_ns = (cpu.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(cpu.tv_nsec as u64);
        counters.server_cpu_ns.store(cpu_ns, Ordering::Relaxed);
        tx.send_replace(Frame {
            seq,
            json: v.to_string().into(),
        });
    }
}

/// The frame: the runtime's `debug_info` with its `timing` merged with the runtime's `timing`
/// (histograms), the headline numbers also at the top level, and the server's counters.
pub fn frame_json(
    seq: u64,
    name: &str,
    region: Option<&Attached>,
    counters: &Counters,
    opts: &Options,
) -> Value {
    let dash = counters.to_json(opts.max_clients, opts.update_hz);
    let built = match region {
        None => Err(format!(
            "no live region echos.{name} (is the loop running?)"
        )),
        Some(a) => introspect::debug_info(a)
            .and_then(|d| introspect::timing(a).map(|t| (d, t)))
            .map_err(|e| e.to_string()),
    };
    let (mut v, timing) = match built {
        Ok(x) => x,
        Err(e) => {
            return json!({"seq": seq, "region": name, "ok": false, "error": e, "dashboard": dash})
        }
    };
    if let (Some(dst), Value::Object(src)) =
        (v.get_mut("timing").and_then(Value::as_object_mut), timing)
    {
        for (k, val) in src {
            dst.entry(k).or_insert(val);
        }
    }
    let ctx = v["context"].clone();
    let o = v.as_object_mut().expect("debug_info is an object");
    o.insert("seq".into(), json!(seq));
    o.insert("region".into(), json!(name));
    o.insert("ok".into(), json!(true));
    o.insert("step".into(), ctx["step"].clone());
    o.insert("spectral_radius".into(), ctx["spectral_radius"].clone());
    // Hooks the page shows when a region carries them (hardware counters, an event source).
    o.entry("cache_hit_rate").or_insert(Value::Null);
    o.entry("events").or_insert(Value::Null);
    o.insert("dashboard".into(), dash);
    v
}

/// The endpoints, for a 404's answer.
pub const ENDPOINTS: [&str; 6] = [
    "/",
    "/app.js",
    "/app.css",
    "/api/introspect",
    "/api/stream",
    "/api/counters",
];

async fn not_found(uri: axum::http::Uri) -> Response {
    let body = json!({"error": format!("no endpoint {}", uri.path()), "endpoints": ENDPOINTS});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

fn json_text(status: StatusCode, body: Arc<str>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn api_introspect(State(s): State<AppState>) -> Response {
    s.counters
        .introspect_requests
        .fetch_add(1, Ordering::Relaxed);
    let json = s.frames.borrow().json.clone();
    json_text(StatusCode::OK, json)
}

async fn api_counters(State(s): State<AppState>) -> Response {
    let v = s.counters.to_json(s.opts.max_clients, s.opts.update_hz);
    json_text(StatusCode::OK, v.to_string().into())
}

/// Ends one stream's accounting when its stream is dropped (client gone, or server stopping).
struct ClientGuard(Arc<Counters>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
        self.0.disconnects.fetch_add(1, Ordering::Relaxed);
    }
}

async fn api_stream(State(s): State<AppState>) -> Response {
    let c = &s.counters;
    let admitted = c
        .clients
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < s.opts.max_clients).then_some(n + 1)
        })
        .is_ok();
    if !admitted {
        c.refused.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "error": format!(
                "too many dashboard clients: {} streams open, the limit is {}",
                s.opts.max_clients, s.opts.max_clients
            ),
            "max_clients": s.opts.max_clients,
        });
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            axum::Json(body),
        )
            .into_response();
    }
    c.accepted.fetch_add(1, Ordering::Relaxed);
    let guard = ClientGuard(c.clone());
    let mut rx = s.frames.clone();
    // The current frame first, then each newer one the client is ready for.
    rx.mark_changed();
    let stream = futures_util::stream::unfold(
        (rx, guard, None::<u64>),
        |(mut rx, guard, last)| async move {
            rx.changed().await.ok()?;
            let frame = rx.borrow_and_update().clone();
            if let Some(last) = last {
                let missed = frame.seq.saturating_sub(last).saturating_sub(1);
                guard.0.skipped.fetch_add(missed, Ordering::Relaxed);
            }
            guard.0.sent.fetch_add(1, Ordering::Relaxed);
            let ev = Event::default().data(frame.json.as_ref());
            Some((Ok::<_, Infallible>(ev), (rx, guard, Some(frame.seq))))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A minimal stream client (for `echos rt bench --dashboard-clients`): reads `/api/stream` at
/// `addr` until `stop`, returning the frames received, or the refusal's status line.
pub fn stream_client(
    addr: SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<u64, String> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /api/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(line.trim_end().to_string());
    }
    let mut frames = 0;
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => frames += u64::from(line.starts_with("data: ")),
            // A timeout: look at the stop flag again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(frames)
}

// The echo-os live dashboard's script: hand-written, dependency-free, embedded in echos-dash.
// It follows /api/stream (Server-Sent Events, at most 30 frames a second; each frame is what
// /api/introspect returns) and draws with 2-D canvases only.
"use strict";

const HISTORY = 300;            // frames kept for the line charts
const COL_PX = 2;               // heatmap pixels per frame (the heatmap scrolls left)
const MAX_CHOSEN = 6;
const COLORS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176"];

const $ = (id) => document.getElementById(id);
const history = [];             // {step, state, out, tgt}
let chosen = [0, 1, 2, 3];
let units = 0;
let frames = 0;
const arrivals = [];

function fix(x, d) { return (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toFixed(d); }
function ns(x) {
  if (x === null || x === undefined) return "–";
  if (x >= 1e6) return (x / 1e6).toFixed(2) + " ms";
  if (x >= 1e3) return (x / 1e3).toFixed(1) + " µs";
  return x + " ns";
}
function set(id, text) { const e = $(id); if (e.textContent !== text) e.textContent = text; }

// Diverging map for tanh states in [-1, 1]: blue below 0, red above, near-black at 0.
function color(v) {
  const m = Math.min(1, Math.abs(v));
  const a = Math.round(20 + 235 * Math.sqrt(m));
  return v >= 0 ? [a, Math.round(20 + 60 * m), 20] : [20, Math.round(20 + 100 * m), a];
}

function drawHeatmap(state) {
  const c = $("heatmap"), ctx = c.getContext("2d");
  const rows = Math.min(state.length, 512);
  if (c.height !== rows) { c.height = rows; }
  ctx.drawImage(c, -COL_PX, 0);
  const img = ctx.createImageData(COL_PX, rows);
  for (let r = 0; r < rows; r++) {
    const u = Math.floor(r * state.length / rows);
    const [R, G, B] = color(state[u]);
    for (let k = 0; k < COL_PX; k++) {
      const i = (r * COL_PX + k) * 4;
      img.data[i] = R; img.data[i + 1] = G; img.data[i + 2] = B; img.data[i + 3] = 255;
    }
  }
  ctx.putImageData(img, c.width - COL_PX, 0);
}

function lines(canvas, series, colors, widths) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, H);
  let lo = Infinity, hi = -Infinity;
  for (const s of series) for (const v of s) if (v !== null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!Number.isFinite(lo)) return;
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
  ctx.strokeStyle = "#333"; ctx.beginPath(); const z = H - (0 - lo) / (hi - lo) * H; ctx.moveTo(0, z); ctx.lineTo(W, z); ctx.stroke();
  ctx.fillStyle = "#8a94a0"; ctx.font = "11px sans-serif"; ctx.fillText(hi.toFixed(3), 4, 12); ctx.fillText(lo.toFixed(3), 4, H - 4);
  series.forEach((s, j) => {
    ctx.strokeStyle = colors[j % colors.length]; ctx.lineWidth = widths ? widths[j] : 1.5; ctx.beginPath();
    let pen = false;
    s.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) { pen = false; return; }
      const x = i / (HISTORY - 1) * W, y = H - (v - lo) / (hi - lo) * H;
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
  });
}

function drawChosen() {
  const el = $("chosen"); el.innerHTML = "";
  chosen.forEach((u, j) => {
    const s = document.createElement("span");
    s.className = "chip"; s.style.background = COLORS[j % COLORS.length];
    s.textContent = "unit " + u + " ×"; s.title = "stop following unit " + u;
    s.onclick = () => { chosen = chosen.filter((x) => x !== u); redrawLines(); drawChosen(); };
    el.appendChild(s);
  });
}

function redrawLines() {
  lines($("traj"), chosen.map((u) => history.map((h) => h.state[u] ?? null)), COLORS);
  // The target under (wider), the prediction over it: where they agree the orange shows at the edges.
  lines($("outplot"), [history.map((h) => h.tgt), history.map((h) => h.out)], ["#ffb74d", "#4fc3f7"], [3, 1.2]);
}

function drawHist(buckets, p99) {
  const c = $("wakehist"), ctx = c.getContext("2d"), W = c.width, H = c.height;
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, H);
  if (!buckets || buckets.length === 0) return;
  const lo = Math.log10(Math.max(1, buckets[0][0] / 1.1)), hi = Math.log10(buckets[buckets.length - 1][0] * 1.1);
  const span = Math.max(1e-9, hi - lo);
  const top = Math.max(...buckets.map((b) => b[1]));
  const x = (v) => 30 + (Math.log10(v) - lo) / span * (W - 40);
  ctx.fillStyle = "#4fc3f7";
  for (const [edge, n] of buckets) {
    const h = Math.log10(1 + n) / Math.log10(1 + top) * (H - 24);
    ctx.fillRect(x(edge) - 2, H - 14 - h, 4, h);
  }
  ctx.fillStyle = "#8a94a0"; ctx.font = "11px sans-serif";
  ctx.fillText("wake-up latency (log)  " + ns(buckets[0][0]) + " … " + ns(buckets[buckets.length - 1][0]), 30, H - 2);
  if (p99) { ctx.strokeStyle = "#e57373"; ctx.beginPath(); ctx.moveTo(x(p99), 0); ctx.lineTo(x(p99), H - 14); ctx.stroke(); ctx.fillText("p99", x(p99) + 3, 12); }
}

function drawEvents(ev) {
  if (!ev) { $("events-none").hidden = false; $("events-live").hidden = true; return; }
  $("events-none").hidden = true; $("events-live").hidden = false;
  set("ev-on", fix(ev.rate_on, 0)); set("ev-off", fix(ev.rate_off, 0));
  if (ev.image && ev.width && ev.height) {
    const c = $("evimage"), ctx = c.getContext("2d");
    c.width = ev.width; c.height = ev.height;
    const img = ctx.createImageData(ev.width, ev.height);
    ev.image.forEach((v, i) => { const [R, G, B] = color(v); img.data.set([R, G, B, 255], i * 4); });
    ctx.putImageData(img, 0, 0);
  }
}

function render(f) {
  frames++;
  document.body.dataset.frames = String(frames);
  const now = performance.now(); arrivals.push(now);
  while (arrivals.length && arrivals[0] < now - 1000) arrivals.shift();
  set("rate", String(arrivals.length));
  set("region", f.region || "");
  const d = f.dashboard || {};
  set("clients", (d.clients ?? "–") + " / " + (d.max_clients ?? "–"));
  set("refused", String(d.refused ?? "–"));
  set("dskipped", String(d.skipped ?? "–"));
  set("cpu", d.server_cpu_ns !== undefined ? (d.server_cpu_ns / 1e9).toFixed(2) + " s" : "–");
  const st = $("status");
  if (!f.ok) { st.textContent = f.error || "no data"; st.className = "status down"; return; }
  st.textContent = f.owner_running ? "live" : "loop stopped"; st.className = "status " + (f.owner_running ? "live" : "down");
  const c = f.context;
  units = c.units;
  const out = f.output.length ? f.output[0] : null;
  history.push({ step: f.step, state: f.state, out, tgt: f.target });
  while (history.length > HISTORY) history.shift();
  set("step", String(f.step));
  document.body.dataset.step = String(f.step);
  set("traj-unit", String(chosen.length ? chosen[0] : "–"));
  set("state0", fix(chosen.length ? f.state[chosen[0]] : null, 6));
  set("output0", fix(out, 6));
  set("target0", fix(f.target, 6));
  set("nrmse", fix(f.running_nrmse, 6));
  set("spectral-radius", fix(f.spectral_radius, 6));
  set("memory-capacity", f.memory_capacity === null ? "not measured" : fix(f.memory_capacity, 3));
  set("leak-rate", fix(c.leak_rate, 4));
  set("dims", c.units + " / " + c.inputs + " / " + c.outputs);
  set("period", ns(c.period_ns));
  const t = f.timing;
  set("wakeup", [ns(t.wakeup_last_ns), ns(t.wakeup.p50_ns), ns(t.wakeup.p99_ns), ns(t.wakeup.max_ns)].join(" / "));
  set("steptime", [ns(t.step_last_ns), ns(t.step.p50_ns), ns(t.step.p99_ns), ns(t.step.max_ns)].join(" / "));
  set("periods", String(t.periods ?? "–"));
  set("misses", String(f.deadline_misses));
  set("overruns", String(f.overruns));
  set("skipped", String(t.skipped_jobs ?? "–"));
  set("cache", f.cache_hit_rate === null || f.cache_hit_rate === undefined ? "not available" : (100 * f.cache_hit_rate).toFixed(1) + " %");
  drawHeatmap(f.state);
  redrawLines();
  drawHist(t.wakeup_histogram_ns, t.wakeup.p99_ns);
  drawEvents(f.events);
}

$("heatmap").addEventListener("click", (e) => {
  if (!units) return;
  const r = e.target.getBoundingClientRect();
  const u = Math.min(units - 1, Math.floor((e.clientY - r.top) / r.height * units));
  if (chosen.includes(u)) chosen = chosen.filter((x) => x !== u);
  else { chosen.push(u); if (chosen.length > MAX_CHOSEN) chosen.shift(); }
  drawChosen(); redrawLines();
});

drawChosen();
const source = new EventSource("/api/stream");
source.onmessage = (m) => { try { render(JSON.parse(m.data)); } catch (err) { console.error(err); } };
source.onerror = () => { const st = $("status"); st.textContent = "disconnected (retrying)"; st.className = "status down"; };

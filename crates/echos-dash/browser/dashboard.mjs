// The dashboard's real-browser test (`cargo xtask test dashboard`): starts
// `echos rt run --demo --dashboard 127.0.0.1:0`, loads the page in Debian's headless chromium
// through playwright-core, and checks that the page updates, that its numbers equal
// /api/introspect's for the same step, that a click chooses a unit to follow, and that a
// screenshot of the heatmap is mostly painted (the PNG decoded and its pixels counted).
// Usage: node dashboard.mjs PATH/TO/echos [OUT_DIR]. Prints "N passed, M failed".
// No chromium: prints SKIPPED loudly and exits 0, unless CI is set (then it fails).

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";

const CHROMIUM = process.env.ECHOS_CHROMIUM || "/usr/bin/chromium";
const echos = process.argv[2];
const outDir = process.argv[3] || null;
let passed = 0, failed = 0;

function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}${detail ? "  (" + detail + ")" : ""}`); }
  else { failed++; console.log(`FAIL ${name}${detail ? "  (" + detail + ")" : ""}`); }
}

function skip(why) {
  if (process.env.CI) {
    console.log(`FAIL dashboard browser test cannot run under CI: ${why}`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
  console.error(`SKIPPED: dashboard browser test: ${why}`);
  console.log("0 passed, 0 failed, 1 skipped");
  process.exit(0);
}

if (!echos || !existsSync(echos)) { console.log(`usage: node dashboard.mjs PATH/TO/echos (got ${echos})`); process.exit(2); }
if (!existsSync(CHROMIUM)) skip(`no ${CHROMIUM} (apt-get install chromium; scripts/install-deps.sh does)`);
let chromium;
try { ({ chromium } = await import("playwright-core")); }
catch (e) { skip(`playwright-core is not installed (npm ci --prefix crates/echos-dash/browser): ${e.message}`); }

// A minimal PNG decoder (8-bit RGB/RGBA, not interlaced: what chromium's screenshots are).
function decodePng(buf) {
  let off = 8, w = 0, h = 0, ctype = 0, depth = 0;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off), type = buf.toString("ascii", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") { w = data.readUInt32BE(0); h = data.readUInt32BE(4); depth = data[8]; ctype = data[9]; if (data[12] !== 0) throw new Error("interlaced PNG"); }
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  if (depth !== 8 || (ctype !== 2 && ctype !== 6)) throw new Error(`PNG depth ${depth} colour type ${ctype} not handled`);
  const bpp = ctype === 6 ? 4 : 3, stride = w * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  const px = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0, b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (f === 1) v += a; else if (f === 2) v += b; else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      px[y * stride + x] = v & 255;
    }
  }
  return { w, h, bpp, px };
}

const region = `dash-browser-${process.pid}`;
const run = spawn(echos, ["rt", "run", "--demo", "--seconds", "60", "--region", region, "--dashboard", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
let stderr = "";
const url = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`no dashboard URL in 60 s; stderr: ${stderr}`)), 60000);
  run.stderr.on("data", (d) => { stderr += d; const m = /dashboard: (http:\/\/\S+)/.exec(stderr); if (m) { clearTimeout(t); resolve(m[1]); } });
  run.on("exit", (code) => reject(new Error(`echos exited (${code}) before serving; stderr: ${stderr}`)));
});
console.log(`dashboard at ${url} (region ${region})`);
let exited = null;
run.on("exit", (code, signal) => { exited = { code, signal }; });

const profile = mkdtempSync(join(tmpdir(), "echos-dash-chromium-"));
let context;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 1400 },
  });
  const page = context.pages()[0] || await context.newPage();
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(url)) external.push(r.url()); });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  await page.goto(url);
  // The URL is printed before the demo trains; frames say "no live region" until its loop runs.
  await page.waitForFunction(() => Number(document.body.dataset.frames || 0) >= 5 && Number(document.body.dataset.step || 0) > 0, null, { timeout: 60000 });
  check("page loads and receives live frames", true);

  // Values update over time, at a decimated rate.
  const a = await page.evaluate(() => ({ f: Number(document.body.dataset.frames), step: Number(document.getElementById("step").textContent), t: performance.now() }));
  await sleep(3000);
  const b = await page.evaluate(() => ({ f: Number(document.body.dataset.frames), step: Number(document.getElementById("step").textContent), t: performance.now() }));
  const rate = (b.f - a.f) / ((b.t - a.t) / 1000);
  check("the step shown advances", b.step > a.step, `${a.step} -> ${b.step}`);
  check("the page updates 10..31 times a second", rate >= 10 && rate <= 31, `${rate.toFixed(1)} frames/s`);

  // Numbers on the page equal /api/introspect's for the same step.
  const api = new Map();
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const v = await (await fetch(url + "api/introspect")).json();
      if (v.ok) api.set(v.step, v);
      await sleep(8);
    }
  })();
  const shown = [];
  for (let i = 0; i < 12; i++) {
    shown.push(await page.evaluate(() => {
      const t = (id) => document.getElementById(id).textContent;
      return { step: Number(t("step")), sr: t("spectral-radius"), misses: t("misses"), overruns: t("overruns"), out: t("output0"), tgt: t("target0"), nrmse: t("nrmse"), unit: Number(t("traj-unit")), state: t("state0"), mc: t("memory-capacity") };
    }));
    await sleep(170);
  }
  polling = false; await poller;
  const fx = (x) => (x === null || x === undefined) ? "–" : Number(x).toFixed(6);
  let matched = 0, mismatches = [];
  for (const s of shown) {
    const v = api.get(s.step);
    if (!v) continue;
    matched++;
    const want = { sr: fx(v.spectral_radius), misses: String(v.deadline_misses), overruns: String(v.overruns), out: fx(v.output[0]), tgt: fx(v.target), nrmse: fx(v.running_nrmse), state: fx(v.state[s.unit]), mc: v.memory_capacity === null ? "not measured" : Number(v.memory_capacity).toFixed(3) };
    for (const k of Object.keys(want)) if (want[k] !== s[k]) mismatches.push(`step ${s.step} ${k}: page ${s[k]} api ${want[k]}`);
  }
  check("page samples matched to an /api/introspect frame of the same step", matched >= 4, `${matched} of ${shown.length}`);
  check("the page's numbers equal /api/introspect's", matched >= 4 && mismatches.length === 0, mismatches.slice(0, 3).join("; "));
  check("the running error is a number", shown.every((s) => Number.isFinite(Number(s.nrmse))), shown[0].nrmse);

  // Clicking a heatmap row follows that unit.
  const box = await page.locator("#heatmap").boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height * 0.9);
  const chips = await page.locator("#chosen .chip").allTextContents();
  check("a click on the heatmap chooses a unit to follow", chips.length === 5 && chips.some((c) => /unit (8\d|9\d)/.test(c)), chips.join(", "));

  // The heatmap is painted: count coloured pixels in its screenshot.
  const png = await page.locator("#heatmap").screenshot();
  const img = decodePng(png);
  let coloured = 0;
  for (let i = 0; i < img.w * img.h; i++) {
    const r = img.px[i * img.bpp], g = img.px[i * img.bpp + 1], bl = img.px[i * img.bpp + 2];
    if (Math.abs(r - bl) > 40 || g > 60) coloured++;
  }
  const frac = coloured / (img.w * img.h);
  const framesNow = await page.evaluate(() => Number(document.body.dataset.frames));
  // 2 px per frame on a 400 px canvas: after F frames min(1, 2F/400) of it is drawn; most
  // drawn pixels are coloured (a state of 0 would be near-black).
  const drawn = Math.min(1, 2 * framesNow / 400);
  check("the heatmap screenshot is mostly coloured where drawn", frac >= 0.5 * drawn && frac > 0.2, `${(100 * frac).toFixed(1)} % of ${img.w}x${img.h} px coloured, ${(100 * drawn).toFixed(0)} % drawn`);
  check("the page asks nothing from other hosts", external.length === 0, external.slice(0, 3).join(", "));
  check("the page logs no errors", consoleErrors.length === 0, consoleErrors.slice(0, 3).join("; "));
  if (outDir) {
    writeFileSync(join(outDir, "dashboard.png"), await page.screenshot({ fullPage: true }));
    writeFileSync(join(outDir, "heatmap.png"), png);
  }
  const counters = await (await fetch(url + "api/counters")).json();
  check("the server counts this page's stream", counters.accepted >= 1 && counters.sent > 0, JSON.stringify(counters));
} catch (e) {
  const early = exited ? `; echos exited early (${JSON.stringify(exited)}), stderr: ${stderr}` : "";
  check("browser session", false, (e.stack || String(e)) + early);
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
  if (exited === null) {
    const gone = new Promise((r) => run.on("exit", r));
    run.kill("SIGINT");
    await gone;
  }
}
check("echos ran until the test stopped it", exited !== null && exited.signal === null && exited.code === 0, `${JSON.stringify(exited)}; stderr tail: ${stderr.slice(-400)}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

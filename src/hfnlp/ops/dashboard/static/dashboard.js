"use strict";
// hfnlp live dashboard: polls /api/status, draws the curves on canvases, sends control requests.
// No external resources: everything here runs offline.

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const POLL_MS = 1000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
const NOT_METRICS = new Set(["eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch", "step"]);
const $ = (id) => document.getElementById(id);
let alive = false;

function api(path, options = {}) {
  const headers = Object.assign({ "X-Hfnlp-Token": TOKEN }, options.headers || {});
  return fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) return value.toExponential(2);
  return String(Number(value.toPrecision(digits)));
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${r}s` : `${r}s`;
}

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
  return ticks;
}

// series: [{label, points: [[x, y], ...], markers}]
function drawChart(canvas, series, xLabel) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  const shown = series.filter((s) => s.points.length);
  const total = shown.reduce((n, s) => n + s.points.length, 0);
  canvas.dataset.points = String(total);
  if (!total) {
    ctx.fillStyle = "#6b7280";
    ctx.fillText("waiting for data…", width / 2 - 45, height / 2);
    return;
  }
  const xs = shown.flatMap((s) => s.points.map((p) => p[0]));
  const ys = shown.flatMap((s) => s.points.map((p) => p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
  const pad = { left: 58, right: 12, top: 22, bottom: 30 };
  const px = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const py = (y) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  ctx.strokeStyle = "#e5e7eb"; ctx.fillStyle = "#6b7280"; ctx.lineWidth = 1;
  for (const t of niceTicks(y0, y1, 5)) {
    ctx.beginPath(); ctx.moveTo(pad.left, py(t)); ctx.lineTo(width - pad.right, py(t)); ctx.stroke();
    ctx.fillText(fmt(t, 3), 4, py(t) + 4);
  }
  for (const t of niceTicks(x0, x1, 6)) ctx.fillText(fmt(t, 4), px(t) - 8, height - pad.bottom + 14);
  ctx.fillText(xLabel, width - pad.right - 30, height - 4);
  let legendX = pad.left;
  shown.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.points.forEach(([x, y], j) => (j ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
    if (s.markers || s.points.length === 1) {
      for (const [x, y] of s.points) { ctx.beginPath(); ctx.arc(px(x), py(y), 3, 0, 2 * Math.PI); ctx.fill(); }
    }
    ctx.fillRect(legendX, 8, 10, 3);
    ctx.fillText(s.label, legendX + 14, 13);
    legendX += ctx.measureText(s.label).width + 34;
  });
}

function renderCharts(status) {
  const history = status.log_history || [];
  const train = history.filter((e) => "loss" in e);
  const evals = history.filter((e) => "eval_loss" in e);
  drawChart($("chart-loss"), [
    { label: "train loss", points: train.map((e) => [e.step, e.loss]) },
    { label: "validation loss", points: evals.map((e) => [e.step, e.eval_loss]), markers: true },
  ], "step");
  const names = [...new Set(evals.flatMap((e) => Object.keys(e)))].filter((k) => k.startsWith("eval_") && !NOT_METRICS.has(k));
  drawChart($("chart-metrics"), names.map((name) => ({
    label: name.slice(5), points: evals.filter((e) => typeof e[name] === "number").map((e) => [e.epoch, e[name]]), markers: true,
  })), "epoch");
  drawChart($("chart-lr"), [
    { label: "learning rate", points: history.filter((e) => "learning_rate" in e).map((e) => [e.step, e.learning_rate]) },
  ], "step");
  drawChart($("chart-throughput"), [{ label: "samples/s", points: status.throughput || [] }], "step");
}

function renderConfusion(confusion) {
  if (!confusion) return;
  $("confusion-when").textContent = `(step ${confusion.step}, epoch ${fmt(confusion.epoch, 3)})`;
  const table = document.createElement("table");
  const head = table.insertRow();
  head.appendChild(document.createElement("th")).textContent = "true \\ predicted";
  for (const label of confusion.labels) head.appendChild(document.createElement("th")).textContent = label;
  confusion.matrix.forEach((row, i) => {
    const tr = table.insertRow();
    tr.appendChild(document.createElement("th")).textContent = confusion.labels[i];
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const cell = tr.insertCell();
      cell.textContent = count;
      const share = count / total;
      cell.style.backgroundColor = i === j ? `rgba(37, 99, 235, ${share})` : `rgba(220, 38, 38, ${share})`;
      if (share > 0.6) cell.style.color = "#fff";
    });
  });
  $("confusion").replaceChildren(table);
}

function renderLog(entries, error) {
  const body = $("control-log").tBodies[0];
  body.replaceChildren();
  if (error) {  // a damaged control log: say so instead of showing an empty one
    const row = body.insertRow();
    row.className = "rejected";
    const cell = row.insertCell();
    cell.colSpan = 6;
    cell.textContent = error;
  }
  for (const entry of entries.slice().reverse().slice(0, 30)) {
    const tr = body.insertRow();
    const result = entry.applied ? "applied" : `rejected: ${entry.reason || ""}`;
    const change = entry.old === undefined || entry.old === null ? fmt(entry.new) : `${fmt(entry.old)} → ${fmt(entry.new)}`;
    for (const text of [entry.time, entry.step, entry.action, change, entry.source, result]) {
      tr.insertCell().textContent = text === undefined ? "" : String(text);
    }
    if (!entry.applied) tr.className = "rejected";
  }
}

function render(status) {
  alive = Boolean(status.alive);
  $("run-name").textContent = status.run || "hfnlp run";
  const badge = $("run-state");
  const state = alive ? "running" : status.state === "finished" ? "finished" : status.state ? "not running" : "waiting";
  badge.textContent = state;
  badge.className = `badge ${alive ? "running" : status.state === "finished" ? "finished" : "gone"}`;
  const step = status.global_step || 0, max = status.max_steps || 0;
  $("progress-bar").style.width = `${max ? Math.min(100, (100 * step) / max) : 0}%`;
  $("step").textContent = max ? `${step} / ${max}` : "–";
  $("epoch").textContent = status.num_train_epochs ? `${fmt(status.epoch || 0, 3)} / ${fmt(status.num_train_epochs)}` : "–";
  $("eta").textContent = alive ? duration(status.eta_seconds) : "–";
  $("throughput").textContent = fmt(status.samples_per_second);
  $("learning-rate").textContent = fmt(status.learning_rate);
  $("best").textContent = status.best_metric === null || status.best_metric === undefined
    ? "–" : `${status.metric_for_best_model} ${fmt(status.best_metric)} @ step ${status.best_global_step}`;
  for (const el of document.querySelectorAll("#controls button, #controls input")) el.disabled = !alive;
  renderCharts(status);
  renderConfusion(status.confusion_matrix);
  renderLog(status.control_log || [], status.control_log_error);
}

async function refresh() {
  try {
    const response = await api("/api/status");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (error) {
    alive = false;
    const badge = $("run-state");
    badge.textContent = "dashboard unreachable";
    badge.className = "badge gone";
    for (const el of document.querySelectorAll("#controls button, #controls input")) el.disabled = true;
  } finally {
    setTimeout(refresh, POLL_MS);
  }
}

async function sendControl(request) {
  const result = $("control-result");
  result.textContent = "sending…";
  try {
    const response = await api("/api/control", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
    });
    const body = await response.json();
    result.textContent = response.ok ? `queued (request ${body.request}); applied at the next step` : `refused: ${body.error}`;
  } catch (error) {
    result.textContent = `failed: ${error}`;
  }
}

$("lr-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendControl({ learning_rate: Number($("lr-input").value) });
});
$("epochs-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendControl({ num_train_epochs: Number($("epochs-input").value) });
});
$("stop-after-epoch").addEventListener("click", () => sendControl({ stop_after_epoch: true }));
$("checkpoint-now").addEventListener("click", () => sendControl({ checkpoint_now: true }));
refresh();

// The monitoring dashboard: dashboard documents pushed over /ws/v3/monitoring/ every few
// seconds (or polled from the API while the socket is down), charted as they arrive.

import { api, readJson } from "./api.js";
import { drawLine, formatNumber } from "./charts.js";
import { LiveSocket } from "./live.js";

const config = readJson("dashboard-config-data");
const POLL_MS = 5000;
const WINDOW_MS = 10 * 60 * 1000;
const MAX_POINTS = 600;
const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting… (polling meanwhile)",
  refused: "Not live: polling every 5 s",
};
const CHARTS = [
  { id: "chart-rate", key: "requests_per_second", unit: "req/s", label: "Requests per second" },
  { id: "chart-latency", key: "avg_response_time_ms", unit: "ms", label: "Average response time" },
  { id: "chart-p95", key: "p95_response_time_ms", unit: "ms", label: "95th percentile response time" },
];
const series = new Map(CHARTS.map((chart) => [chart.key, []]));
const $ = (id) => document.getElementById(id);
let pollTimer = null;
let lastGenerated = null;

// A key's unit goes with its value, not its label: "p95_response_time_ms" reads
// "P95 response time" and "193.2 ms".
const UNITS = [["_percentage", " %"], ["_percent", " %"], ["_rate", " %", "keep"], ["_ms", " ms"], ["_seconds", " s"], ["_mb", " MB"]];
const WORDS = { cpu: "CPU", p50: "p50", p95: "p95", p99: "p99", avg: "Average", redis: "Redis" };

function unitOf(key) {
  const found = UNITS.find(([suffix]) => key.endsWith(suffix));
  return found || ["", "", ""];
}

function label(key) {
  const [suffix, , keep] = unitOf(key);
  const words = (keep ? key : key.slice(0, key.length - suffix.length)).split("_").map((word) => WORDS[word] || word);
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function show(value, key) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "number") return String(value);
  return `${formatNumber(value)}${unitOf(key)[1]}`;
}

function fillList(id, values) {
  const list = $(id);
  const items = [];
  for (const [key, value] of Object.entries(values || {})) {
    if (value !== null && typeof value === "object") continue;
    const holder = document.createElement("div");
    const term = document.createElement("dt");
    term.textContent = label(key);
    const detail = document.createElement("dd");
    detail.textContent = show(value, key);
    holder.append(term, detail);
    items.push(holder);
  }
  list.replaceChildren(...items);
}

function renderAlerts(alerts) {
  const rows = (alerts || []).map((alert) => {
    const tr = document.createElement("tr");
    const cells = [alert.severity, alert.rule, alert.message, show(alert.last_value ?? alert.value, ""),
      show(alert.threshold, ""), new Date(alert.opened_at).toLocaleString()];
    cells.forEach((text, at) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (at === 0) td.className = `severity severity-${alert.severity}`;
      if (at === 3 || at === 4) td.className = "num";
      tr.appendChild(td);
    });
    return tr;
  });
  $("alerts-body").replaceChildren(...rows);
  $("alerts-table").hidden = rows.length === 0;
  $("alerts-empty").hidden = rows.length !== 0;
}

function render(document_, at) {
  if (!document_ || document_.generated_at === lastGenerated) return;
  lastGenerated = document_.generated_at;
  $("generated-at").textContent = new Date(document_.generated_at || at).toLocaleTimeString();
  $("generated-at").setAttribute("datetime", document_.generated_at || "");
  fillList("system", document_.system_health);
  fillList("batches", document_.batch_health);
  const healthy = document_.batch_health && document_.batch_health.healthy;
  $("batches-healthy").textContent = healthy ? "healthy" : "attention";
  $("batches-healthy").className = `status ${healthy ? "status-completed" : "status-failed"}`;
  fillList("cache", document_.cache_stats);
  fillList("executor", document_.executor);
  fillList("requests", document_.performance);
  renderAlerts(document_.alerts);
  chart(document_.performance || {}, Date.parse(document_.generated_at || at) || Date.now());
}

function chart(performance, t) {
  for (const spec of CHARTS) {
    const points = series.get(spec.key);
    const value = performance[spec.key];
    points.push({ t, v: typeof value === "number" ? value : null });
    if (points.length > MAX_POINTS) points.shift();
    // The window grows with the points seen, from a minute to ten.
    const span = points[points.length - 1].t - points[0].t;
    drawLine($(spec.id), points, { unit: spec.unit, windowMs: Math.min(WINDOW_MS, Math.max(60000, span)) });
    const latest = typeof value === "number" ? `${formatNumber(value)} ${spec.unit}` : "not measured";
    $(`${spec.id}-caption`).textContent = `${spec.label}: now ${latest} (${points.length} points).`;
  }
}

async function poll() {
  try {
    const { data } = await api(config.dashboard_url);
    render(data, new Date().toISOString());
  } catch (error) {
    // the next tick tries again
  }
}

function showConnection(name) {
  const holder = $("live-state");
  holder.dataset.state = name;
  holder.textContent = STATE_TEXT[name] || name;
  if (name === "live") {
    clearInterval(pollTimer);
    pollTimer = null;
  } else if ((name === "reconnecting" || name === "refused") && !pollTimer) {
    pollTimer = setInterval(poll, POLL_MS);
    poll();
  }
}

const socket = new LiveSocket(config.socket, {
  onMessage: (message) => {
    if (message.type === "dashboard") render(message.dashboard, message.at);
  },
  onState: showConnection,
});

window.omtxPageLoadedAt = window.omtxPageLoadedAt || Date.now();
render(readJson("dashboard-data"), new Date().toISOString());
socket.start();

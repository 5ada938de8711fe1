// The batch page: live over /ws/v3/batches/<id>/ (docs/live-status.md), REST for the rows a
// snapshot or a truncated delta does not carry, and REST polling only while the socket is down.

import { api, readJson } from "./api.js";
import { drawHistogram, formatNumber } from "./charts.js";
import { LiveSocket } from "./live.js";

const ROWS_FETCHED = 1000; // the API's largest page
const ROWS_SHOWN = 500;
const POLL_MS = 5000;
const FAILURES_FETCHED = 200;
const FETCH_GAP_MS = 1000;
const FETCH_GAP_LARGE_MS = 5000;
const RENDER_GAP_MS = 100;
const INTAKE_POLL_MS = 2000;
const TERMINAL = new Set(["completed", "completed_with_failures", "failed", "cancelled", "rejected"]);
const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  refused: "Not live: the server refused the connection",
  gone: "This batch was deleted",
};

const config = readJson("batch-config-data");
const metrics = readJson("batch-metrics-data").filter((metric) => metric.kind !== "str");
const byName = new Map(metrics.map((metric) => [metric.name, metric]));

const state = {
  version: -1, // the protocol's: the last snapshot or delta applied
  shownVersion: -1, // the newest status rendered, from the socket or REST
  status: readJson("batch-status-data"),
  rows: new Map(),
  sort: config.default_rank || (metrics[0] && metrics[0].name),
  descending: null,
  connection: "connecting",
  fetching: null,
  fetchAgain: false,
  lastFetch: 0,
  renderTimer: null,
  intakeTimer: null,
  pollTimer: null,
  lastDecile: null,
};

const $ = (id) => document.getElementById(id);

// ---- status ---------------------------------------------------------------------------

function renderStatus(status) {
  if (!status || (typeof status.version === "number" && status.version < state.shownVersion)) return;
  state.shownVersion = status.version;
  state.status = status;
  const progress = status.progress || {};
  const percent = Number(progress.progress_percent || 0);
  $("progress-bar").value = percent;
  $("progress-bar").setAttribute("aria-valuetext", `${percent} %`);
  const finished = (progress.succeeded || 0) + (progress.failed || 0) + (progress.cancelled || 0);
  $("progress-text").textContent = status.intake
    ? `validating the ligands: ${status.intake.validated} of ${status.intake.submitted}`
    : `${percent} % (${finished} of ${progress.total || 0} jobs finished)`;
  const badge = $("batch-status");
  badge.textContent = status.status;
  badge.className = `status status-${status.status}`;
  for (const cell of document.querySelectorAll("[data-count]")) {
    const value = progress[cell.dataset.count];
    cell.textContent = value === undefined || value === null ? "—" : String(value);
  }
  $("throughput").textContent = progress.jobs_per_second ? `${formatNumber(progress.jobs_per_second)} jobs/s` : "—";
  $("eta").textContent = etaText(status);
  announce(status, percent);
  renderButtons(status);
  watchIntake(status);
}

// Intake progress does not move the batch's version, so no delta carries it
// (docs/live-status.md): while the batch validates, the page polls its status.
function watchIntake(status) {
  if (status.status !== "validating" || state.intakeTimer) return;
  state.intakeTimer = setTimeout(async () => {
    state.intakeTimer = null;
    try {
      const { data } = await api(config.status_url);
      renderStatus(data);
    } catch (error) {
      watchIntake(state.status); // try again
    }
  }, INTAKE_POLL_MS);
}

function etaText(status) {
  if (status.is_terminal) return status.finished_at ? "finished" : "—";
  const range = (status.outlook && status.outlook.eta_seconds_range) || (status.progress && status.progress.eta_seconds_range);
  if (!range) return status.status === "validating" ? "validating the ligands…" : "not known yet";
  const basis = status.outlook && status.outlook.eta_basis === "hub" ? " (from the hub's current throughput)" : "";
  return `${duration(range[0])} to ${duration(range[1])}${basis}`;
}

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// Screen readers hear every tenth of the way and the end, not every job.
function announce(status, percent) {
  const decile = status.is_terminal ? `end:${status.status}` : String(Math.floor(percent / 10));
  if (decile === state.lastDecile) return;
  const first = state.lastDecile === null;
  state.lastDecile = decile;
  if (first) return;
  $("progress-announce").textContent = status.is_terminal
    ? `Batch ${status.status.replace(/_/g, " ")}: ${percent} %.`
    : `${Math.floor(percent / 10) * 10} % done.`;
}

function renderButtons(status) {
  const progress = status.progress || {};
  $("cancel-button").disabled = Boolean(status.is_terminal);
  $("retry-button").disabled = !(progress.failed > 0);
}

// ---- rows -----------------------------------------------------------------------------

// A delta's job and a results row name their fields slightly differently; one shape here.
function normalize(item) {
  const id = item.job_id || item.id;
  let values = item.metrics;
  if (!values) {
    values = {};
    for (const metric of metrics) if (metric.name in item) values[metric.name] = item[metric.name];
  }
  const known = state.rows.get(id) || {};
  return {
    ...known,
    id,
    index: item.index ?? known.index,
    name: item.name ?? known.name,
    smiles: item.canonical_smiles || item.smiles || known.smiles || "",
    status: item.status ?? known.status,
    metrics: { ...(known.metrics || {}), ...values },
    failure_reason: item.failure_reason ?? known.failure_reason ?? null,
    failure_message: item.failure_message ?? known.failure_message ?? null,
  };
}

function upsert(items) {
  for (const item of items || []) {
    const row = normalize(item);
    if (row.id) state.rows.set(row.id, row);
  }
}

function metricValue(row, name) {
  const value = row.metrics ? row.metrics[name] : undefined;
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function descending() {
  if (state.descending !== null) return state.descending;
  const metric = byName.get(state.sort);
  return Boolean(metric && metric.better === "higher");
}

// As the API ranks: succeeded rows with the metric best first (ties by input order),
// then every other row in input order.
function ranked() {
  const down = descending();
  const scored = [];
  const rest = [];
  for (const row of state.rows.values()) {
    const value = row.status === "succeeded" ? metricValue(row, state.sort) : null;
    (value === null ? rest : scored).push({ row, value });
  }
  scored.sort((a, b) => (down ? b.value - a.value : a.value - b.value) || a.row.index - b.row.index);
  rest.sort((a, b) => a.row.index - b.row.index);
  return { scored, rest };
}

function renderHead() {
  const head = $("results-head");
  head.replaceChildren();
  const fixed = [["#", "Rank"], ["name", "Name"], ["smiles", "SMILES"], ["status", "Status"]];
  for (const [, label] of fixed) head.appendChild(th(label));
  for (const metric of metrics) {
    const cell = th("");
    cell.classList.add("num");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.dataset.metric = metric.name;
    const arrow = metric.better === "higher" ? "↑" : metric.better === "lower" ? "↓" : "";
    button.textContent = `${metric.label}${metric.unit ? ` (${metric.unit})` : ""} ${arrow}`.trim();
    button.title = `${metric.description || metric.label}${metric.better !== "none" ? ` — ${metric.better} is better` : " — no better direction"}`;
    if (metric.name === state.sort) cell.setAttribute("aria-sort", descending() ? "descending" : "ascending");
    button.addEventListener("click", () => sortBy(metric.name, true));
    cell.appendChild(button);
    head.appendChild(cell);
  }
}

function th(text) {
  const cell = document.createElement("th");
  cell.scope = "col";
  cell.textContent = text;
  return cell;
}

function td(text, className) {
  const cell = document.createElement("td");
  cell.textContent = text;
  if (className) cell.className = className;
  return cell;
}

function renderRows() {
  const { scored, rest } = ranked();
  const body = $("results-body");
  const fragment = document.createDocumentFragment();
  const shown = [...scored, ...rest].slice(0, ROWS_SHOWN);
  shown.forEach(({ row }, at) => {
    const tr = document.createElement("tr");
    tr.dataset.status = row.status;
    tr.appendChild(td(at < scored.length ? String(at + 1) : "", "num"));
    tr.appendChild(td(row.name || "", ""));
    tr.appendChild(td(row.smiles, "smiles"));
    tr.appendChild(td(row.status || "", `status-cell status-${row.status}`));
    for (const metric of metrics) tr.appendChild(td(formatNumber(metricValue(row, metric.name)), "num"));
    fragment.appendChild(tr);
  });
  body.replaceChildren(fragment);
  const progress = state.status.progress || {};
  const total = progress.total || state.rows.size;
  const partial = total > shown.length ? `; the first ${shown.length} rows shown (exports hold every row)` : "";
  $("results-summary").textContent = `${progress.succeeded ?? scored.length} of ${total} jobs have results${partial}`;
  renderFailures();
  renderHistogram(scored.map(({ value }) => value));
}

function renderFailures() {
  const failed = [...state.rows.values()].filter((row) => row.status === "failed").sort((a, b) => a.index - b.index);
  const body = $("failures-body");
  const fragment = document.createDocumentFragment();
  for (const row of failed) {
    const tr = document.createElement("tr");
    tr.appendChild(td(String(row.index + 1), "num"));
    tr.appendChild(td(row.name || ""));
    tr.appendChild(td(row.smiles, "smiles"));
    tr.appendChild(td(row.failure_reason || "unknown"));
    tr.appendChild(td(row.failure_message || ""));
    fragment.appendChild(tr);
  }
  body.replaceChildren(fragment);
  $("failures-table").hidden = failed.length === 0;
  $("failures-empty").hidden = failed.length !== 0;
}

function renderHistogram(values) {
  const metric = byName.get(state.sort) || { label: state.sort, unit: "" };
  drawHistogram($("histogram"), values, { label: metric.label, unit: metric.unit });
  const caption = $("plot-caption");
  if (!values.length) {
    caption.textContent = `No ${metric.label} values yet.`;
    return;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const unit = metric.unit ? ` ${metric.unit}` : "";
  caption.textContent =
    `${metric.label} of ${values.length} ligands: from ${formatNumber(sorted[0])} to ` +
    `${formatNumber(sorted[sorted.length - 1])}${unit}, median ${formatNumber(median)}${unit}.`;
}

function sortBy(name, fromHeader) {
  if (fromHeader && name === state.sort) state.descending = !descending();
  else state.descending = null;
  state.sort = name;
  $("sort-metric").value = name;
  renderHead();
  renderRows();
  // Past the rows this page holds, the best ones for another metric are on the server.
  const total = (state.status.progress && state.status.progress.total) || 0;
  if (total > state.rows.size) fetchRows();
}

// One fetch at a time, at most one every FETCH_GAP_MS (a big batch's deltas must not turn
// into a REST query each); a request while one runs fetches once more after it. A batch of
// up to ROWS_FETCHED jobs comes whole (every status); a bigger one as its best ranked rows
// and its first failures (its counts say how many are pending).
async function fetchRows() {
  if (state.fetching) {
    state.fetchAgain = true;
    return;
  }
  const total = (state.status.progress && state.status.progress.total) || 0;
  const wait = state.lastFetch + (total > ROWS_FETCHED ? FETCH_GAP_LARGE_MS : FETCH_GAP_MS) - Date.now();
  state.fetching = (wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve())
    .then(() => Promise.all(rowQueries(total).map((url) => api(url))))
    .then((pages) => {
      for (const { data } of pages) {
        upsert(data.results);
        if (data.batch) renderStatus(data.batch);
      }
      scheduleRender();
    })
    .catch(() => {})
    .finally(() => {
      state.lastFetch = Date.now();
      state.fetching = null;
      if (state.fetchAgain) {
        state.fetchAgain = false;
        fetchRows();
      }
    });
}

function rowQueries(total) {
  const order = descending() ? "desc" : "asc";
  const sort = `sort=${encodeURIComponent(state.sort)}&order=${order}`;
  if (total <= ROWS_FETCHED) return [`${config.results_url}?status=all&limit=${ROWS_FETCHED}&${sort}`];
  return [
    `${config.results_url}?status=succeeded&limit=${ROWS_SHOWN}&${sort}`,
    `${config.results_url}?status=failed&limit=${FAILURES_FETCHED}`,
  ];
}

// Deltas can come four times a second: the table is redrawn once per burst.
function scheduleRender() {
  if (state.renderTimer) return;
  state.renderTimer = setTimeout(() => {
    state.renderTimer = null;
    renderRows();
  }, RENDER_GAP_MS);
}

// ---- live -----------------------------------------------------------------------------

function onMessage(message) {
  if (message.type === "snapshot") applySnapshot(message);
  else if (message.type === "delta") applyDelta(message);
  else if (message.type === "gone") {
    showConnection("gone");
    socket.stop();
  }
}

function applySnapshot(message) {
  state.version = message.version;
  renderStatus(message.status);
  upsert(message.results);
  upsert(message.failures);
  scheduleRender();
  const total = (message.status.progress && message.status.progress.total) || 0;
  if (state.rows.size < Math.min(total, ROWS_FETCHED)) fetchRows();
}

function applyDelta(message) {
  if (message.version <= state.version) return;
  if (message.since > state.version) {
    socket.send({ type: "snapshot" }); // a delta was missed
    return;
  }
  state.version = message.version;
  renderStatus(message.status);
  upsert(message.jobs);
  scheduleRender();
  if (message.jobs_truncated) fetchRows();
}

function showConnection(name) {
  state.connection = name;
  const holder = $("live-state");
  holder.dataset.state = name;
  holder.textContent = STATE_TEXT[name] || name;
  if (name === "live") stopPolling();
  else if (name === "reconnecting" || name === "refused") startPolling();
}

// While the socket is down the page polls the REST status (and rows), so it never
// shows a stale picture for long; polling stops as soon as the socket is back.
function startPolling() {
  if (state.pollTimer) return;
  state.pollTimer = setInterval(async () => {
    if (state.status.is_terminal && state.rows.size >= (state.status.progress.total || 0)) return;
    try {
      const { data } = await api(config.status_url);
      renderStatus(data);
      fetchRows();
    } catch (error) {
      // the next tick tries again
    }
  }, POLL_MS);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

// ---- actions --------------------------------------------------------------------------

// A large export is built as a file first: 202 with its progress URL, polled until ready,
// then downloaded. A small one is the link's own download.
async function exportAsFile(event) {
  const link = event.currentTarget;
  const progress = state.status.progress || {};
  if ((progress.total || 0) + (progress.rejected || 0) <= config.export_inline_rows) return;
  event.preventDefault();
  const message = $("action-message");
  try {
    // Not followed: once the file is ready the export answers 303 to the download itself.
    const first = await fetch(link.href, { credentials: "same-origin", redirect: "manual", headers: { Accept: "application/json" } });
    if (first.type === "opaqueredirect") {
      window.location.assign(link.href);
      return;
    }
    let data = await first.json();
    if (!first.ok) throw new Error((data.error && data.error.message) || `HTTP ${first.status}`);
    while (data.status !== "ready") {
      if (data.status === "failed") throw new Error(data.error || "the export failed");
      message.textContent = `Building the ${data.format} export: ${formatNumber(data.progress_percent)} %…`;
      await new Promise((resolve) => setTimeout(resolve, 2000));
      ({ data } = await api(data.url));
    }
    message.textContent = "Export ready; downloading.";
    window.location.assign(data.download);
  } catch (error) {
    message.textContent = `Export refused: ${error.message}`;
  }
}

async function act(url, question, done) {
  if (question && !window.confirm(question)) return;
  const message = $("action-message");
  try {
    const { data } = await api(url, { method: "POST" });
    renderStatus(data);
    message.textContent = done(data);
  } catch (error) {
    message.textContent = `Refused: ${error.message}`;
  }
}

const socket = new LiveSocket(config.socket, {
  onMessage,
  onState: showConnection,
  // After a reconnect the server sends a snapshot on its own; asking again is harmless.
  onOpen: () => {},
});

function start() {
  window.omtxPageLoadedAt = window.omtxPageLoadedAt || Date.now();
  renderStatus(state.status);
  renderHead();
  renderRows();
  $("sort-metric").addEventListener("change", (event) => sortBy(event.target.value, false));
  $("cancel-button").addEventListener("click", () =>
    act(config.cancel_url, "Cancel this batch? Jobs not yet finished will not run.", () => "Batch cancelled."));
  for (const link of document.querySelectorAll("a[data-export]")) link.addEventListener("click", exportAsFile);
  $("retry-button").addEventListener("click", () =>
    act(config.retry_url, null, (data) => `${data.requeued} failed job(s) queued again.`));
  socket.start();
}

start();

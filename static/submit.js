// The submission page: check the ligands with a dry run (POST /api/v3/batches/validate; a
// large one answers 202 and is polled), show the report, then submit the same input.

import { api, readJson } from "./api.js";
import { formatNumber } from "./charts.js";

const config = readJson("submit-config-data");
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
let checkedKey = null; // Idempotency-Key of the input that was checked; null once it changes

function randomKey() {
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// One ligand a line: the SMILES, then optionally whitespace and a name (SMILES hold no spaces).
export function parseLigands(text) {
  const ligands = [];
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith("#")) continue;
    const match = trimmed.match(/^(\S+)(?:\s+(.+))?$/);
    ligands.push(match[2] ? { smiles: match[1], name: match[2].trim() } : match[1]);
  }
  return ligands;
}

function fields() {
  return {
    name: $("name").value.trim(),
    model: $("model").value,
    protein_name: $("protein-name").value.trim(),
    protein_sequence: $("protein-sequence").value,
    priority: Number.parseInt($("priority").value || "0", 10),
    on_invalid: $("on-invalid").value,
  };
}

// A file goes as multipart, each field in its JSON spelling as text; pasted text as JSON.
function body() {
  const file = $("ligands-file").files[0];
  const values = fields();
  if (!file) return { ...values, ligands: parseLigands($("smiles").value) };
  const form = new FormData();
  for (const [key, value] of Object.entries(values)) form.append(key, String(value));
  form.append("ligands_file", file, file.name);
  return form;
}

function say(text) {
  $("submit-message").textContent = text;
}

function explain(error) {
  const details = error.details;
  if (details && typeof details === "object" && !Array.isArray(details)) {
    const lines = Object.entries(details)
      .filter(([, value]) => Array.isArray(value))
      .map(([field, value]) => `${field}: ${value.join(" ")}`);
    if (lines.length) return `${error.message} ${lines.join("; ")}`;
  }
  return error.message;
}

async function check(event) {
  event.preventDefault();
  $("confirm-button").disabled = true;
  checkedKey = null;
  if (!$("ligands-file").files[0] && !parseLigands($("smiles").value).length) {
    say("Paste at least one SMILES or choose a file.");
    $("smiles").focus();
    return;
  }
  say("Checking the ligands…");
  try {
    const answer = await api(config.validate_url, { method: "POST", body: body() });
    const report = answer.status === 202 ? await pollDryRun(answer.data) : answer.data;
    showReport(report);
    if (report.would_run) {
      checkedKey = randomKey();
      $("confirm-button").disabled = false;
      say(`Checked: ${report.accepted} of ${report.submitted} ligands would run. Submit to start.`);
    } else {
      say("Nothing would run: see the rejected ligands below.");
    }
  } catch (error) {
    say(`Not accepted: ${explain(error)}`);
  }
}

async function pollDryRun(run) {
  let current = run;
  while (current.status !== "done") {
    const intake = current.intake;
    say(intake ? `Validating in the background: ${intake.validated} of ${intake.submitted} ligands…` : "Validating…");
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    current = (await api(current.url)).data;
  }
  return current.report;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function showReport(report) {
  $("report").hidden = false;
  $("report-submitted").textContent = report.submitted;
  $("report-accepted").textContent = report.accepted;
  $("report-rejected").textContent = report.rejected;
  const estimate = report.estimate || {};
  $("report-estimate").textContent = estimate.worker_seconds !== undefined
    ? `${formatNumber(estimate.worker_seconds)} s${estimate.gpu ? ` on ${estimate.gpu}, about $${formatNumber(estimate.cost_usd)}` : ""}`
    : "—";
  const queue = report.queue;
  $("report-queue").textContent = queue ? `${queue.jobs_ahead} jobs ahead in ${queue.batches_ahead} batches` : "—";
  $("report-verdict").textContent = report.would_run
    ? "This batch can run."
    : "This batch would not run: no valid ligand, or invalid ones with “reject the whole batch”.";
  const warnings = $("report-warnings");
  warnings.replaceChildren(...(report.warnings || []).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  const rows = (report.rejected_ligands || []).map((item) => {
    const tr = document.createElement("tr");
    tr.append(cell(String(item.index + 1), "num"), cell(item.name || ""), cell(item.smiles || "", "smiles"),
      cell(item.code), cell(item.message));
    return tr;
  });
  $("report-rejected-body").replaceChildren(...rows);
  $("report-rejected-table").hidden = rows.length === 0;
  $("report-no-rejections").hidden = rows.length !== 0;
  $("report-heading").focus();
}

async function confirmSubmission() {
  if (!checkedKey) return;
  $("confirm-button").disabled = true;
  say("Submitting…");
  try {
    const { data } = await api(config.create_url, {
      method: "POST",
      body: body(),
      headers: { "Idempotency-Key": checkedKey },
    });
    say("Submitted. Opening the batch…");
    window.location.assign(`${config.page_url}${data.id}/`);
  } catch (error) {
    say(`Not submitted: ${explain(error)}`);
    $("confirm-button").disabled = false;
  }
}

function inputChanged() {
  if (checkedKey === null) return;
  checkedKey = null;
  $("confirm-button").disabled = true;
  say("The input changed: check the ligands again before submitting.");
}

function useDemoTarget(event) {
  $("protein-sequence").value = event.currentTarget.dataset.fasta;
  $("protein-name").value = event.currentTarget.dataset.name;
  inputChanged();
}

function describeModel() {
  const option = $("model").selectedOptions[0];
  $("model-help").textContent = option ? option.dataset.description : "";
}

$("submit-form").addEventListener("submit", check);
$("submit-form").addEventListener("input", inputChanged);
$("submit-form").addEventListener("change", inputChanged);
$("confirm-button").addEventListener("click", confirmSubmission);
$("demo-target").addEventListener("click", useDemoTarget);
$("model").addEventListener("change", describeModel);
describeModel();

"""Boltz-2 outputs: one JobOutcome per ligand, from the files and the log of a run.

Layout (Boltz 2.2.1, docs/prediction.md): `<out_dir>/boltz_results_<input dir>/predictions/
<name>/` holds `<name>_model_0.cif` (the top-ranked model), `confidence_<name>_model_0.json`
and `affinity_<name>.json`. A ligand whose files are missing is classified from the log:
Boltz skips a ligand it cannot process or that runs out of GPU memory, prints a line and goes
on (boltz/main.py process_input, boltz/data/module/inferencev2.py, Boltz2.predict_step).

Plain Python: the Modal container imports this module without Django.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batches.engine.types import JobOutcome

# (minimum, maximum) of each value we accept. affinity_pred_value is log10(IC50 / µM):
# −6 is 1 pM and +6 is 1 M, so anything outside is not a prediction but a broken number.
AFFINITY_FIELDS: dict[str, tuple[float, float]] = {
    "affinity_pred_value": (-6.0, 6.0),
    "affinity_probability_binary": (0.0, 1.0),
    # The affinity head is an ensemble of two models; the top-level values combine them.
    "affinity_pred_value1": (-6.0, 6.0),
    "affinity_probability_binary1": (0.0, 1.0),
    "affinity_pred_value2": (-6.0, 6.0),
    "affinity_probability_binary2": (0.0, 1.0),
}
CONFIDENCE_FIELDS: dict[str, tuple[float, float]] = {
    "confidence_score": (0.0, 1.0),
    "ptm": (0.0, 1.0),
    "iptm": (0.0, 1.0),
    "ligand_iptm": (0.0, 1.0),
    "protein_iptm": (0.0, 1.0),
    "complex_plddt": (0.0, 1.0),
    "complex_iplddt": (0.0, 1.0),
    # Predicted distance errors in Å; Boltz's distogram tops out well below 100 Å.
    "complex_pde": (0.0, 100.0),
    "complex_ipde": (0.0, 100.0),
}
# Without these a result cannot be ranked: their absence fails the job instead of
# succeeding with holes. Other fields are dropped, with a note, when unusable.
REQUIRED = ("affinity_pred_value", "affinity_probability_binary", "confidence_score")
# ΔG = −RT·ln(10)·pIC50 at 298 K, in kcal/mol; the sign is kept (docs/architecture.md).
KCAL_PER_PIC50 = 1.364

# Lines Boltz prints when it skips an input it cannot use; each names the record.
INVALID_MARKERS = (
    "Failed to process",  # parsing the YAML / SMILES (boltz/main.py process_input)
    "Tokenizer failed on",
    "Cropper failed on",
    "Molecule loading failed for",
    "Featurizer failed on",
)
# Boltz2.predict_step catches CUDA OOM, prints this (without the record) and skips the batch.
OOM_SKIP_MARKER = "ran out of memory, skipping batch"
OOM_CRASH_MARKERS = ("CUDA out of memory", "OutOfMemoryError")


@dataclass(frozen=True)
class RunLog:
    """What one or more `boltz predict` runs printed, and how the last one ended.
    `exit_code` is None when the run was killed at the deadline."""

    text: str
    exit_code: int | None
    timed_out: bool

    def tail(self, lines: int = 5) -> str:
        return " | ".join(line.strip() for line in self.text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class PredictionFiles:
    cif: Path
    confidence: Path
    affinity: Path

    def missing(self) -> list[str]:
        return [path.name for path in (self.cif, self.confidence, self.affinity) if not path.is_file()]


def results_dir(out_dir: Path, input_dir: Path) -> Path:
    # boltz/main.py predict: out_dir / f"boltz_results_{data.stem}"
    return out_dir / f"boltz_results_{input_dir.name}"


def prediction_files(results: Path, name: str) -> PredictionFiles:
    folder = results / "predictions" / name
    return PredictionFiles(
        cif=folder / f"{name}_model_0.cif",
        confidence=folder / f"confidence_{name}_model_0.json",
        affinity=folder / f"affinity_{name}.json",
    )


def job_outcome(job_id: str, name: str, results: Path, log: RunLog) -> JobOutcome:
    files = prediction_files(results, name)
    missing = files.missing()
    if missing:
        reason, message = classify_missing(name, missing, log)
        return JobOutcome(job_id, ok=False, failure_reason=reason, message=message)
    try:
        metrics, notes = read_metrics(files)
    except ValueError as exc:
        return JobOutcome(job_id, ok=False, failure_reason="output_missing", message=str(exc))
    return JobOutcome(
        job_id,
        ok=True,
        metrics=metrics,
        artifact_name=f"{job_id}.cif",
        artifact_content=files.cif.read_bytes(),
        message="; ".join(notes),
    )


def read_metrics(files: PredictionFiles) -> tuple[dict[str, Any], list[str]]:
    """Typed metrics from the two JSON files, plus notes on values that were dropped.
    Raises ValueError when a file is unreadable or a REQUIRED value is unusable."""
    notes: list[str] = []
    metrics = _checked(_load(files.affinity), AFFINITY_FIELDS, files.affinity.name, notes)
    metrics |= _checked(_load(files.confidence), CONFIDENCE_FIELDS, files.confidence.name, notes)
    for key in REQUIRED:
        if key not in metrics:
            raise ValueError(f"Boltz gave no usable {key}: {'; '.join(notes) or 'the field is missing'}")
    pic50 = 6.0 - metrics["affinity_pred_value"]
    metrics["pic50"] = round(pic50, 6)
    metrics["delta_g"] = round(-KCAL_PER_PIC50 * pic50, 6)
    return metrics, notes


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def _checked(
    data: dict[str, Any], fields: dict[str, tuple[float, float]], source: str, notes: list[str]
) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, (low, high) in fields.items():
        if key not in data:
            continue
        value = data[key]
        # bool is an int subclass; a true/false here is not a measurement.
        if isinstance(value, bool) or not isinstance(value, int | float):
            notes.append(f"{source}: {key}={value!r} is not a number")
        elif not math.isfinite(value):
            notes.append(f"{source}: {key} is {value}")
        elif not low <= value <= high:
            notes.append(f"{source}: {key}={value} is outside [{low:g}, {high:g}]")
        else:
            values[key] = float(value)
    return values


def classify_missing(name: str, missing: list[str], log: RunLog) -> tuple[str, str]:
    """(failure_reason, message) for a ligand whose files are not all there."""
    what = ", ".join(missing)
    line = _line_naming(log.text, name, INVALID_MARKERS)
    if line:
        return "invalid_input", f"Boltz could not process this ligand: {_short(line)}"
    line = _line_naming(log.text, name, ("out of memory",))
    if line:
        return "out_of_memory", f"Boltz ran out of GPU memory on this ligand: {_short(line)}"
    if log.timed_out:
        return "timeout", f"boltz predict was stopped at the chunk's deadline before writing {what}"
    if OOM_SKIP_MARKER in log.text:
        # The skip line does not name the record: a ligand with missing outputs in a run
        # that skipped a batch for lack of memory, and with no other explanation, is that batch.
        return "out_of_memory", f"Boltz ran out of GPU memory and skipped this ligand (no {what})"
    if log.exit_code not in (0, None) and any(marker in log.text for marker in OOM_CRASH_MARKERS):
        return "out_of_memory", f"boltz predict died of CUDA out of memory before writing {what}"
    ended = "finished" if log.exit_code == 0 else f"exited with code {log.exit_code}"
    return "output_missing", f"boltz predict {ended} without writing {what}; log ends: {_short(log.tail())}"


def _line_naming(text: str, name: str, markers: tuple[str, ...]) -> str:
    # The name must stand alone (not as part of a longer stem): Boltz prints it as a bare id
    # or inside a path such as .../<name>.yaml.
    pattern = re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(name)}(?![A-Za-z0-9_-])")
    for line in text.splitlines():
        if any(marker in line for marker in markers) and pattern.search(line):
            return line.strip()
    return ""


def _short(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Boltz outputs → JobOutcome: every metric, every unusable value, every failure layout."""

import json
from pathlib import Path
from typing import Any

import pytest

from batches.catalog import BOLTZ2
from batches.engine.boltz_outputs import (
    AFFINITY_FIELDS,
    CONFIDENCE_FIELDS,
    RunLog,
    classify_missing,
    job_outcome,
    prediction_files,
    results_dir,
)
from batches.tests.fake_boltz import AFFINITY, CONFIDENCE  # what the fake `boltz` writes, too

NAME = "job_abc_0123456789"
CLEAN = RunLog("Running structure prediction for 1 input.\n", exit_code=0, timed_out=False)


def layout(root: Path, *, affinity: Any = AFFINITY, confidence: Any = CONFIDENCE, cif: bool = True) -> Path:
    results = results_dir(root / "out", root / "in_main")
    files = prediction_files(results, NAME)
    files.cif.parent.mkdir(parents=True)
    if cif:
        files.cif.write_text(f"data_{NAME}\n")
    for path, content in ((files.affinity, affinity), (files.confidence, confidence)):
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
    return results


def test_the_documented_layout(tmp_path: Path) -> None:
    results = results_dir(tmp_path / "out", tmp_path / "in_main")
    assert results == tmp_path / "out" / "boltz_results_in_main"
    files = prediction_files(results, NAME)
    folder = results / "predictions" / NAME
    assert files.cif == folder / f"{NAME}_model_0.cif"
    assert files.confidence == folder / f"confidence_{NAME}_model_0.json"
    assert files.affinity == folder / f"affinity_{NAME}.json"


def test_every_metric_is_read_typed_with_derived_values(tmp_path: Path) -> None:
    outcome = job_outcome("job-1", NAME, layout(tmp_path), CLEAN)
    assert outcome.ok and outcome.failure_reason == "" and outcome.message == ""
    for key in (*AFFINITY, *(k for k in CONFIDENCE if k in CONFIDENCE_FIELDS)):
        expected = AFFINITY.get(key, CONFIDENCE.get(key))
        assert outcome.metrics[key] == expected and isinstance(outcome.metrics[key], float), key
    # log10(IC50/µM) = −1.25 → IC50 = 56 nM → pIC50 7.25; ΔG keeps its physical sign.
    assert outcome.metrics["pic50"] == 7.25
    assert outcome.metrics["delta_g"] == pytest.approx(-1.364 * 7.25)
    assert outcome.metrics["delta_g"] < 0
    assert "chains_ptm" not in outcome.metrics
    assert outcome.artifact_name == "job-1.cif"
    assert outcome.artifact_content == f"data_{NAME}\n".encode()


def test_every_metric_is_declared_in_the_catalog() -> None:
    declared = {out.name for out in BOLTZ2.outputs}
    assert {*AFFINITY_FIELDS, *CONFIDENCE_FIELDS, "pic50", "delta_g"} <= declared


def test_a_weaker_binder_has_a_higher_delta_g(tmp_path: Path) -> None:
    strong = job_outcome("a", NAME, layout(tmp_path / "a"), CLEAN).metrics
    weak_values = {**AFFINITY, "affinity_pred_value": 2.0}
    weak = job_outcome("b", NAME, layout(tmp_path / "b", affinity=weak_values), CLEAN).metrics
    assert weak["pic50"] == 4.0 and weak["pic50"] < strong["pic50"]
    assert weak["delta_g"] > strong["delta_g"]


@pytest.mark.parametrize(
    "key,value,why",
    [
        ("affinity_pred_value", float("nan"), "is nan"),
        ("affinity_pred_value", 9.5, "outside [-6, 6]"),
        ("affinity_pred_value", "strong", "is not a number"),
        ("affinity_probability_binary", 1.7, "outside [0, 1]"),
        ("affinity_probability_binary", -0.1, "outside [0, 1]"),
        ("affinity_probability_binary", True, "is not a number"),
        ("affinity_probability_binary", None, "is not a number"),
    ],
)
def test_an_unusable_required_affinity_fails_the_job(tmp_path: Path, key: str, value: Any, why: str) -> None:
    results = layout(tmp_path, affinity={**AFFINITY, key: value})
    outcome = job_outcome("job-1", NAME, results, CLEAN)
    assert not outcome.ok
    assert outcome.failure_reason == "output_missing"
    assert key in outcome.message and why in outcome.message
    assert outcome.metrics == {} and outcome.artifact_content == b""


def test_a_missing_required_field_fails_the_job(tmp_path: Path) -> None:
    confidence = {k: v for k, v in CONFIDENCE.items() if k != "confidence_score"}
    outcome = job_outcome("job-1", NAME, layout(tmp_path, confidence=confidence), CLEAN)
    assert outcome.failure_reason == "output_missing"
    assert "confidence_score" in outcome.message


@pytest.mark.parametrize(
    "key,value", [("ptm", 1.3), ("iptm", float("inf")), ("complex_pde", -1.0), ("ligand_iptm", "0.8")]
)
def test_an_unusable_optional_value_is_dropped_with_a_note(tmp_path: Path, key: str, value: Any) -> None:
    outcome = job_outcome("job-1", NAME, layout(tmp_path, confidence={**CONFIDENCE, key: value}), CLEAN)
    assert outcome.ok
    assert key not in outcome.metrics
    assert key in outcome.message and f"confidence_{NAME}_model_0.json" in outcome.message
    assert outcome.metrics["confidence_score"] == 0.87


def test_ensemble_members_are_optional(tmp_path: Path) -> None:
    affinity = {k: AFFINITY[k] for k in ("affinity_pred_value", "affinity_probability_binary")}
    outcome = job_outcome("job-1", NAME, layout(tmp_path, affinity=affinity), CLEAN)
    assert outcome.ok and outcome.message == ""
    assert "affinity_pred_value1" not in outcome.metrics


@pytest.mark.parametrize("content", ['{"affinity_pred_value": -1.2, ', "[1, 2]", "", "\x00\xff"])
def test_malformed_json_fails_the_job_with_the_file_named(tmp_path: Path, content: str) -> None:
    outcome = job_outcome("job-1", NAME, layout(tmp_path, affinity=content), CLEAN)
    assert outcome.failure_reason == "output_missing"
    assert f"affinity_{NAME}.json" in outcome.message


@pytest.mark.parametrize(
    "missing", [{"cif": False}, {"affinity": None}, {"confidence": None}, {"cif": False, "affinity": None}]
)
def test_missing_files_are_named(tmp_path: Path, missing: dict[str, Any]) -> None:
    outcome = job_outcome("job-1", NAME, layout(tmp_path, **missing), CLEAN)
    assert outcome.failure_reason == "output_missing"
    assert "finished without writing" in outcome.message
    if "cif" in missing:
        assert f"{NAME}_model_0.cif" in outcome.message
    if "affinity" in missing:
        assert f"affinity_{NAME}.json" in outcome.message


def test_no_prediction_directory_at_all(tmp_path: Path) -> None:
    log = RunLog("boom\nTraceback ...\nRuntimeError: died\n", exit_code=1, timed_out=False)
    outcome = job_outcome("job-1", NAME, tmp_path / "nothing", log)
    assert outcome.failure_reason == "output_missing"
    assert "exited with code 1" in outcome.message and "RuntimeError: died" in outcome.message


MISSING = [f"{NAME}_model_0.cif"]


@pytest.mark.parametrize(
    "line",
    [
        f"Failed to process /w/in_main/{NAME}.yaml. Skipping. Error: Failed to parse SMILES.",
        f"Tokenizer failed on {NAME} with error boom. Skipping.",
        f"Cropper failed on {NAME} with error too many atoms. Skipping.",
        f"Molecule loading failed for {NAME} with error missing CCD. Skipping.",
        f"Featurizer failed on {NAME} with error bad conformer. Skipping.",
    ],
)
def test_a_refused_input_is_invalid_input(line: str) -> None:
    log = RunLog(f"Checking input data.\n{line}\nRunning structure prediction\n", exit_code=0, timed_out=False)
    reason, message = classify_missing(NAME, MISSING, log)
    assert reason == "invalid_input"
    assert line.split(" ")[0] in message


def test_a_line_about_another_ligand_does_not_count() -> None:
    others = [f"{NAME}9", f"x{NAME}", f"{NAME}-2"]
    text = "\n".join(f"Failed to process /w/in/{other}.yaml. Skipping. Error: bad." for other in others)
    reason, _ = classify_missing(NAME, MISSING, RunLog(text, exit_code=0, timed_out=False))
    assert reason == "output_missing"


def test_out_of_memory_skip_is_out_of_memory() -> None:
    log = RunLog(
        "Predicting DataLoader 0\n| WARNING: ran out of memory, skipping batch\n", exit_code=0, timed_out=False
    )
    reason, message = classify_missing(NAME, MISSING, log)
    assert reason == "out_of_memory" and "GPU memory" in message


def test_an_out_of_memory_line_naming_the_ligand_wins_over_the_deadline() -> None:
    log = RunLog(f"CUDA out of memory while featurizing {NAME}\n", exit_code=None, timed_out=True)
    assert classify_missing(NAME, MISSING, log)[0] == "out_of_memory"


def test_a_run_that_died_of_oom_is_out_of_memory() -> None:
    text = "Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB\n"
    assert classify_missing(NAME, MISSING, RunLog(text, exit_code=1, timed_out=False))[0] == "out_of_memory"


def test_oom_words_in_a_clean_run_are_not_a_crash() -> None:
    # The crash rule needs a failed exit: a clean run that merely mentions CUDA OOM in a warning is not one.
    text = "note: CUDA out of memory errors are retried by the allocator\n"
    assert classify_missing(NAME, MISSING, RunLog(text, exit_code=0, timed_out=False))[0] == "output_missing"


def test_a_killed_run_is_timeout() -> None:
    reason, message = classify_missing(NAME, MISSING, RunLog("Predicting ...", exit_code=None, timed_out=True))
    assert reason == "timeout" and "deadline" in message


def test_refusal_beats_timeout_and_oom() -> None:
    text = f"Failed to process /w/{NAME}.yaml. Skipping. Error: x.\n| WARNING: ran out of memory, skipping batch\n"
    assert classify_missing(NAME, MISSING, RunLog(text, exit_code=None, timed_out=True))[0] == "invalid_input"

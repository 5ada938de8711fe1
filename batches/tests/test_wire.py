"""The JSON form of chunks and outcomes shared by the hub and the Modal container."""

import json
from typing import Any

import pytest

from batches.engine import wire
from batches.engine.types import ChunkRequest, JobInput, JobOutcome
from batches.tests.boltz_helpers import TARGET, chunk


def test_a_chunk_survives_json() -> None:
    request = chunk("CCO", "c1ccccc1O", msa=f">q\n{TARGET}\n", seed=11)
    payload = json.loads(json.dumps(wire.request_to_payload(request, timeout_seconds=1800)))
    assert wire.request_from_payload(payload) == (request, 1800)


def test_outcomes_survive_json_with_binary_artifacts() -> None:
    outcomes = (
        JobOutcome(
            "a", ok=True, metrics={"pic50": 7.25, "n": 3}, artifact_name="a.cif", artifact_content=b"\x00\xffcif"
        ),
        JobOutcome("b", ok=False, failure_reason="out_of_memory", message="skipped"),
    )
    data = json.loads(json.dumps([wire.outcome_to_payload(o) for o in outcomes]))
    assert wire.outcomes_from_payload(data) == outcomes


def test_nan_never_crosses() -> None:
    with pytest.raises(ValueError, match="not JSON-safe"):
        wire.outcome_to_payload(JobOutcome("a", ok=True, metrics={"x": float("nan")}))
    with pytest.raises(ValueError, match="not JSON-safe"):
        request = ChunkRequest("boltz2", TARGET, {"when": object()}, (JobInput("a", "a", "C"),))
        wire.request_to_payload(request, timeout_seconds=1)


def good_outcome() -> dict[str, Any]:
    return wire.outcome_to_payload(JobOutcome("a", ok=True, metrics={"x": 1.0}))


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"version": None},
        {"ok": "yes"},
        {"metrics": [1, 2]},
        {"artifact_b64": "not base64!"},
        {"job_id": None, "metrics": None},
    ],
)
def test_a_malformed_outcome_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        wire.outcomes_from_payload([{**good_outcome(), **change}])


def test_a_missing_field_is_refused() -> None:
    item = good_outcome()
    del item["failure_reason"]
    with pytest.raises(ValueError, match="malformed outcome"):
        wire.outcomes_from_payload([item])


@pytest.mark.parametrize("payload", [{}, {"version": 1}, {"version": 1, "jobs": "CCO"}])
def test_a_malformed_chunk_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        wire.request_from_payload(payload)

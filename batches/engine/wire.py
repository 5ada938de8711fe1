"""The JSON-safe form of a chunk and of its outcomes, as they cross to Modal and back.

Plain dicts rather than pickled dataclasses: the container and the hub may run different
versions of this code, and a dict with a version number fails loudly where a pickle of a
changed class would fail strangely. Plain Python: the Modal container imports it.
"""

import base64
import json
from collections.abc import Mapping
from typing import Any

from batches.engine.types import ChunkRequest, JobInput, JobOutcome

WIRE_VERSION = 1


def request_to_payload(request: ChunkRequest, *, timeout_seconds: int) -> dict[str, Any]:
    payload = {
        "version": WIRE_VERSION,
        "model": request.model,
        "target_sequence": request.target_sequence,
        "params": dict(request.params),
        "jobs": [{"job_id": j.job_id, "name": j.name, "smiles": j.smiles} for j in request.jobs],
        "timeout_seconds": int(timeout_seconds),
    }
    _assert_json(payload)
    return payload


def request_from_payload(payload: Mapping[str, Any]) -> tuple[ChunkRequest, int]:
    """The chunk and its time budget in seconds. Raises ValueError on anything unexpected."""
    _check_version(payload)
    try:
        jobs = tuple(JobInput(str(j["job_id"]), str(j["name"]), str(j["smiles"])) for j in payload["jobs"])
        request = ChunkRequest(
            model=str(payload["model"]),
            target_sequence=str(payload["target_sequence"]),
            params=dict(payload["params"]),
            jobs=jobs,
        )
        return request, int(payload["timeout_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed chunk payload: {exc!r}") from exc


def outcome_to_payload(outcome: JobOutcome) -> dict[str, Any]:
    payload = {
        "version": WIRE_VERSION,
        "job_id": outcome.job_id,
        "ok": outcome.ok,
        "metrics": dict(outcome.metrics),
        "artifact_name": outcome.artifact_name,
        "artifact_b64": base64.b64encode(outcome.artifact_content).decode("ascii"),
        "failure_reason": outcome.failure_reason,
        "message": outcome.message,
    }
    _assert_json(payload)
    return payload


def outcomes_from_payload(data: Any) -> tuple[JobOutcome, ...]:
    """Outcomes returned by the Modal function. Raises ValueError on anything unexpected,
    so a half-understood result never reaches the database."""
    if not isinstance(data, list):
        raise ValueError(f"expected a list of outcomes, got {type(data).__name__}")
    return tuple(_outcome(item) for item in data)


def _outcome(item: Any) -> JobOutcome:
    if not isinstance(item, Mapping):
        raise ValueError(f"expected an outcome object, got {type(item).__name__}")
    _check_version(item)
    try:
        metrics = item["metrics"]
        if not isinstance(metrics, dict) or not isinstance(item["ok"], bool):
            raise TypeError("metrics must be an object and ok a boolean")
        return JobOutcome(
            job_id=str(item["job_id"]),
            ok=item["ok"],
            metrics=metrics,
            artifact_name=str(item["artifact_name"]),
            artifact_content=base64.b64decode(item["artifact_b64"], validate=True),
            failure_reason=str(item["failure_reason"]),
            message=str(item["message"]),
        )
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise ValueError(f"malformed outcome: {exc!r}") from exc


def _check_version(data: Mapping[str, Any]) -> None:
    if data.get("version") != WIRE_VERSION:
        raise ValueError(f"wire version {data.get('version')!r}, this side speaks {WIRE_VERSION}")


def _assert_json(payload: dict[str, Any]) -> None:
    # allow_nan=False: NaN is not JSON, and a NaN metric must have been caught before here.
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON-safe: {exc}") from exc

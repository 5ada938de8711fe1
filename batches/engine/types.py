"""Plain data and the executor interface crossing the executor boundary.

No Django imports here: worker processes and the Modal function import this
module without settings.
"""

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class JobInput:
    job_id: str
    name: str
    smiles: str


@dataclass(frozen=True)
class ChunkRequest:
    model: str
    target_sequence: str
    params: dict[str, Any]
    jobs: tuple[JobInput, ...]


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    ok: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    artifact_name: str = ""
    artifact_content: bytes = b""
    failure_reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class PollResult:
    """What one poll of a call says. `pending`/`running`: ask again later.
    `done`: per-job outcomes (a job missing from them failed with
    output_missing). `error`: the whole call failed with `failure_reason`."""

    state: Literal["pending", "running", "done", "error"]
    outcomes: tuple[JobOutcome, ...] = ()
    failure_reason: str = ""
    message: str = ""


class ExecutorUnavailable(Exception):
    """The executor cannot take work now (not configured, unreachable)."""


class Executor(Protocol):
    """Submit a chunk → call id; poll a call id; cancel a call id.

    `durable` executors keep a call alive when the dispatcher that made it
    dies (Modal): a reaped job with a call id is adopted and polled by its
    call id, never spawned again. Non-durable calls (the local pool) die with
    their dispatcher, so their jobs go back to the queue."""

    name: str
    durable: bool

    def submit(self, request: ChunkRequest, *, timeout_seconds: int) -> str: ...

    def poll(self, call_id: str) -> PollResult: ...

    def cancel(self, call_id: str) -> None: ...

    def shutdown(self) -> None: ...

"""Plain data crossing the executor boundary (pickled to worker processes).

No Django imports here: worker processes import this module without settings.
"""

from dataclasses import dataclass, field
from typing import Any, Literal


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
    state: Literal["pending", "running", "done", "error"]
    outcomes: tuple[JobOutcome, ...] = ()
    failure_reason: str = ""
    message: str = ""

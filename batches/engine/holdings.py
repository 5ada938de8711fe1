"""What one dispatcher holds, shared with its lease heartbeat thread.

The dispatcher's loop adds and drops calls, claims under way and outcomes not
yet stored; the heartbeat (`loop.Heartbeat`, its own thread) reads them all to
renew their leases, and the reaper reads their tokens so it never takes a live
job. One lock guards every read and write that may race the other thread.
"""

import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from batches.engine.types import Executor
from batches.models import Job
from batches.services.claims import Hold
from batches.services.ingest import Delivery


@dataclass
class Call:
    call_id: str
    executor: Executor
    hold: Hold
    seen_running: bool = False
    # For omtx_gpu_seconds_total: a GPU model's call, and when this dispatcher sent (or adopted) it.
    gpu: bool = False
    since: float = field(default_factory=time.monotonic)


@dataclass
class Holdings:
    calls: dict[str, Call] = field(default_factory=dict)
    # Outcomes polled but not yet stored (the database failed): kept for the next pass.
    backlog: list[Delivery] = field(default_factory=list)
    # Claims (and reaps) under way, by token, with the jobs claimed but not
    # yet in a call: the heartbeat renews those jobs too.
    _pending: dict[str, list[Hold]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def in_flight(self) -> int:
        return sum(len(call.hold.job_ids) for call in self.calls.values())

    def held(self) -> list[Hold]:
        """The jobs held: in calls, claimed and not yet submitted, or finished
        with outcomes not yet stored (kept leased, so a database outage
        shorter than the retries loses nothing)."""
        with self._lock:
            holds = [call.hold for call in self.calls.values()]
            holds += [hold for pending in self._pending.values() for hold in pending]
            holds += [Hold(d.batch_id, d.token, (d.outcome.job_id,)) for d in list(self.backlog)]
        return holds

    def held_tokens(self) -> set[str]:
        """Tokens of held jobs and of claims under way: never the reaper's prey."""
        with self._lock:
            pending = set(self._pending)
        return {hold.token for hold in self.held()} | pending

    def add_call(self, call: Call) -> None:
        with self._lock:
            self.calls[call.call_id] = call

    def drop_call(self, call_id: str) -> None:
        with self._lock:
            self.calls.pop(call_id, None)

    def drop_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def new_token(self) -> str:
        token = uuid.uuid4().hex
        with self._lock:
            self._pending[token] = []
        return token

    def claimed(self, token: str, jobs: list[Job]) -> None:
        """Jobs claimed under `token`, renewed until they are in calls."""
        by_batch: dict[UUID, list[str]] = defaultdict(list)
        for job in jobs:
            by_batch[job.batch_id].append(str(job.pk))
        with self._lock:
            self._pending[token] = [Hold(batch_id, token, tuple(ids)) for batch_id, ids in by_batch.items()]

    def drop_token(self, token: str) -> None:
        with self._lock:
            self._pending.pop(token, None)

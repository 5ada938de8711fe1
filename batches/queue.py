"""Reads about the work queue: what the dispatcher claims from, where a batch
stands in it, how fast the hub goes, what work will cost. Each is
O(active batches) or O(in-flight jobs), never O(all jobs)."""

import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.utils import timezone

from batches.catalog import get_model
from batches.models import Batch, Job
from batches.states import BATCH_ACTIVE, JobStatus


@dataclass(frozen=True)
class QueuedBatch:
    id: UUID
    owner_id: int
    priority: int
    created_at: datetime
    queued: int
    # The batch's jobs in flight now, and its own cap on them (None: no cap).
    held: int = 0
    max_in_flight: int | None = None

    @property
    def claimable(self) -> int:
        """Queued jobs the batch may have claimed now, within its own cap."""
        if self.max_in_flight is None:
            return self.queued
        return max(0, min(self.queued, self.max_in_flight - self.held))


def dispatch_queue() -> tuple[list[QueuedBatch], dict[int, int]]:
    """Active batches with their queued counts, and jobs in flight per user:
    what the fair-share claim plans from. O(active batches), not O(jobs)."""
    rows = Batch.objects.filter(status__in=BATCH_ACTIVE).values_list(
        "pk", "owner_id", "priority", "created_at", "n_queued", "n_dispatched", "n_running", "max_in_flight"
    )
    batches: list[QueuedBatch] = []
    held: dict[int, int] = {}
    for pk, owner_id, priority, created_at, queued, dispatched, running, cap in rows:
        batches.append(QueuedBatch(pk, owner_id, priority, created_at, queued, dispatched + running, cap))
        held[owner_id] = held.get(owner_id, 0) + dispatched + running
    return batches, held


def queue_position(batch: Batch) -> dict[str, Any] | None:
    """Where a batch with queued jobs stands. Within its owner, batches go by
    priority then age, so `jobs_ahead` is exact for the owner; across users
    the claim shares free slots fairly, so every other user with queued work
    (`users_sharing` − 1) takes a turn between each of this user's jobs."""
    if batch.status not in BATCH_ACTIVE or not batch.n_queued:
        return None
    return _position(batch.owner_id, _place(batch))


def submission_position(*, owner_id: int, priority: int) -> dict[str, Any]:
    """Where a batch submitted now would stand (the dry run's answer)."""
    return _position(owner_id, (-priority, timezone.now(), "~"))


def _place(batch: Batch) -> tuple[int, datetime, str]:
    return (-batch.priority, batch.created_at, str(batch.pk))


def _position(owner_id: int, mine: tuple[int, datetime, str]) -> dict[str, Any]:
    return _as_position(_queue_row(owner_id, mine))


def _as_position(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "batches_ahead": row["batches_ahead"],
        "jobs_ahead": row["jobs_ahead"] or 0,
        "users_sharing": row["others_sharing"] + 1,
    }


# The outlook in one row: the owner's batches ahead of a place in the claim's order
# (priority, then age, then id), the users with queued work, and the sum of a model's
# running batches' observed rates (executed jobs only). Written as SQL because every status
# poll pays for it: the ORM spent 1.7 ms of Python compiling this aggregate, more than the
# two reads of every active batch it replaces (docs/performance.md).
_AHEAD = (
    "owner_id = %s AND n_queued > 0 AND (priority > %s OR priority = %s"
    " AND (created_at < %s OR created_at = %s AND id < %s))"
)
# Bandit B608 (SQL built from a string) does not apply: the f-string holds this module's
# constants and the model's table; every value is a parameter.
_OUTLOOK = f"""
    SELECT COUNT(*) FILTER (WHERE {_AHEAD}), SUM(n_queued) FILTER (WHERE {_AHEAD}),
           COUNT(DISTINCT owner_id) FILTER (WHERE n_queued > 0 AND owner_id <> %s),
           SUM((n_succeeded - n_reused + n_failed) / {{seconds}}) FILTER (WHERE model = %s AND started_at IS NOT NULL)
    FROM {Batch._meta.db_table} WHERE status IN (%s, %s)
"""  # nosec B608
# Seconds since a batch started, at least a millisecond; `now` is this process's clock.
_SECONDS_SINCE = {
    "postgresql": "GREATEST(EXTRACT(EPOCH FROM (%s - started_at))::float8, 1e-3)",
    "sqlite": "MAX((julianday(%s) - julianday(started_at)) * 86400.0, 1e-3)",
}
# Sorts after every id: a batch submitted now goes after every batch of its instant.
_LAST_ID = UUID(int=2**128 - 1)


def _queue_row(
    owner_id: int | None, mine: tuple[int, datetime, str] | None, *, rate_of: str | None = None
) -> dict[str, Any]:
    """The owner's queue ahead of `mine` and the hub's rate for `rate_of`, in one query
    over the active batches. An id that is no UUID sorts last (submission_position's "~")."""
    negated_priority, created_at, pk = mine or (0, timezone.now(), "")
    try:
        mine_id = UUID(pk)
    except ValueError:
        mine_id = _LAST_ID
    created = connection.ops.adapt_datetimefield_value(created_at)
    ahead = [owner_id, -negated_priority, -negated_priority, created, created]
    ahead.append(Batch._meta.pk.get_db_prep_value(mine_id, connection))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            _OUTLOOK.format(seconds=_SECONDS_SINCE[connection.vendor]),
            [*ahead, *ahead, owner_id, now, rate_of, *BATCH_ACTIVE],
        )
        batches_ahead, jobs_ahead, others_sharing, rate = cursor.fetchone()
    return {"batches_ahead": batches_ahead, "jobs_ahead": jobs_ahead, "others_sharing": others_sharing, "rate": rate}


def hub_throughput(model: str) -> float | None:
    """Jobs per second the hub executes for `model` right now: the sum of the
    running batches' observed rates (executed jobs only)."""
    rate: float | None = _queue_row(None, None, rate_of=model)["rate"]
    return rate or None


def work_estimate(spec_name: str, jobs: int) -> dict[str, Any]:
    """Worker (GPU) seconds and cost of `jobs` predictions, from the model's
    per-ligand estimate and OMTX_GPU_PRICE_PER_SECOND: an estimate, not a bill."""
    spec = get_model(spec_name)
    seconds = jobs * spec.seconds_per_ligand
    gpu_seconds = seconds if spec.gpu else 0.0
    return {
        "jobs": jobs,
        "worker_seconds": round(seconds, 1),
        "gpu": spec.gpu,
        "gpu_seconds": round(gpu_seconds, 1),
        "cost_usd": round(gpu_seconds * settings.OMTX_GPU_PRICE_PER_SECOND, 2),
    }


@dataclass(frozen=True)
class Reusable:
    job_id: UUID
    result: dict[str, Any]
    artifact: str


def reusable_results(keys: Iterable[str]) -> dict[str, Reusable]:
    """An earlier success per reuse key (DESIGN §5: identical work is not paid for twice)."""
    rows = (
        Job.objects.filter(reuse_key__in=[k for k in keys if k], status=JobStatus.SUCCEEDED)
        .order_by("reuse_key", "finished_at")
        .values_list("reuse_key", "pk", "reused_from", "result", "artifact")
    )
    found: dict[str, Reusable] = {}
    for key, pk, reused_from, result, artifact in rows:
        if key not in found and result is not None:
            found[key] = Reusable(reused_from or pk, result, artifact)
    return found


def call_in_flight(call_id: str) -> bool:
    """Whether any job still waits on this executor call (whoever holds it)."""
    return Job.objects.filter(call_id=call_id, status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]).exists()


# How long a process reuses its read of the active batches for the outlook (ActiveQueue).
OUTLOOK_SNAPSHOT_SECONDS = 1.0


@dataclass(frozen=True)
class ActiveQueue:
    """The active batches as the outlook reads them, indexed so that a poll places its batch
    with a bisection instead of an aggregate: _queue_row's answer, from one read of the
    active batches that each process reuses for OUTLOOK_SNAPSHOT_SECONDS. The outlook is an
    estimate, and the active batches move slowly next to the polls that ask for it."""

    # Per owner, the claim's order (priority, age, id) of their batches with queued jobs,
    # and the running sum of those jobs: places[o][i] has queued_before[o][i] jobs before it.
    places: dict[int, list[tuple[int, datetime, UUID]]]
    queued_before: dict[int, list[int]]
    rates: dict[str, float]
    read_at: float

    @classmethod
    def read(cls) -> "ActiveQueue":
        rows = Batch.objects.filter(status__in=BATCH_ACTIVE).values_list(
            "pk",
            "owner_id",
            "priority",
            "created_at",
            "n_queued",
            "model",
            "started_at",
            "n_succeeded",
            "n_reused",
            "n_failed",
        )
        now = timezone.now()
        queued: list[tuple[tuple[int, datetime, UUID], int, int]] = []
        rates: dict[str, float] = {}
        for pk, owner_id, priority, created_at, n_queued, model, started_at, succeeded, reused, failed in rows:
            if n_queued > 0:
                queued.append(((-priority, created_at, pk), owner_id, n_queued))
            if started_at is not None:
                rate = (succeeded - reused + failed) / max((now - started_at).total_seconds(), 1e-3)
                rates[model] = rates.get(model, 0.0) + rate
        places: dict[int, list[tuple[int, datetime, UUID]]] = {}
        before: dict[int, list[int]] = {}
        for place, owner_id, n_queued in sorted(queued):
            places.setdefault(owner_id, []).append(place)
            sums = before.setdefault(owner_id, [0])
            sums.append(sums[-1] + n_queued)
        return cls(places, before, rates, time.monotonic())

    def row(self, owner_id: int, mine: tuple[int, datetime, str], *, rate_of: str | None) -> dict[str, Any]:
        place = (mine[0], mine[1], UUID(mine[2]))
        ahead = bisect_left(self.places.get(owner_id, []), place)
        others = len(self.places) - (owner_id in self.places)
        jobs = self.queued_before[owner_id][ahead] if ahead else None
        rate = self.rates.get(rate_of) if rate_of else None
        return {"batches_ahead": ahead, "jobs_ahead": jobs, "others_sharing": others, "rate": rate}


_active_queue: ActiveQueue | None = None


def active_queue() -> ActiveQueue | None:
    """This process's recent read of the active batches; None inside a transaction, whose
    own writes a read shared with other requests would not show (it reads fresh instead)."""
    global _active_queue
    if connection.in_atomic_block:
        return None
    latest = _active_queue
    if latest is None or time.monotonic() - latest.read_at > OUTLOOK_SNAPSHOT_SECONDS:
        latest = _active_queue = ActiveQueue.read()
    return latest


def batch_outlook(batch: Batch, progress: dict[str, Any]) -> dict[str, Any]:
    """What is left, where the batch waits, and when it may finish: from this
    batch's own throughput once it has executed jobs, else from the hub's
    current throughput for its model and the jobs ahead of it. One query at
    most, none while this process's ActiveQueue is recent; none for a batch with
    nothing queued and its own ETA (or none left)."""
    own_eta = progress["eta_seconds_range"]
    needs_rate = not own_eta and bool(batch.n_active)
    position = rate = None
    if batch.status in BATCH_ACTIVE and batch.n_queued:
        rate_of = batch.model if needs_rate else None
        queue = active_queue()
        row = queue.row(batch.owner_id, _place(batch), rate_of=rate_of) if queue else None
        row = row or _queue_row(batch.owner_id, _place(batch), rate_of=rate_of)
        position = _as_position(row)
        rate = row.get("rate")
    elif needs_rate:
        queue = active_queue()
        rate = queue.rates.get(batch.model) if queue else hub_throughput(batch.model)
    outlook: dict[str, Any] = {
        "remaining": work_estimate(batch.model, batch.n_active),
        "queue": position,
        "eta_seconds_range": own_eta,
        "eta_basis": "batch" if own_eta else None,
    }
    if needs_rate and rate:
        ahead = position["jobs_ahead"] * position["users_sharing"] if position else 0
        eta = (ahead + batch.n_active) / rate
        outlook |= {"eta_seconds_range": [round(eta * 0.75, 1), round(eta * 1.5, 1)], "eta_basis": "hub"}
    return outlook

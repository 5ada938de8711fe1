"""Reads about the work queue: what the dispatcher claims from, where a batch
stands in it, how fast the hub goes, what work will cost. Each is
O(active batches) or O(in-flight jobs), never O(all jobs)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
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
    return _position(batch.owner_id, (-batch.priority, batch.created_at, str(batch.pk)))


def submission_position(*, owner_id: int, priority: int) -> dict[str, Any]:
    """Where a batch submitted now would stand (the dry run's answer)."""
    return _position(owner_id, (-priority, timezone.now(), "~"))


def _position(owner_id: int, mine: tuple[int, datetime, str]) -> dict[str, Any]:
    queued, _ = dispatch_queue()
    ahead = [q for q in queued if q.owner_id == owner_id and q.queued and (-q.priority, q.created_at, str(q.id)) < mine]
    return {
        "batches_ahead": len(ahead),
        "jobs_ahead": sum(q.queued for q in ahead),
        "users_sharing": len({q.owner_id for q in queued if q.queued} | {owner_id}),
    }


def hub_throughput(model: str) -> float | None:
    """Jobs per second the hub executes for `model` right now: the sum of the
    running batches' observed rates (executed jobs only)."""
    rows = Batch.objects.filter(status__in=BATCH_ACTIVE, model=model, started_at__isnull=False).values_list(
        "started_at", "n_succeeded", "n_reused", "n_failed"
    )
    now = timezone.now()
    rates = [
        (succeeded - reused + failed) / max((now - started).total_seconds(), 1e-3)
        for started, succeeded, reused, failed in rows
        if started is not None and succeeded - reused + failed
    ]
    return sum(rates) if rates else None


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


def batch_outlook(batch: Batch, progress: dict[str, Any]) -> dict[str, Any]:
    """What is left, where the batch waits, and when it may finish: from this
    batch's own throughput once it has executed jobs, else from the hub's
    current throughput for its model and the jobs ahead of it."""
    position = queue_position(batch)
    outlook: dict[str, Any] = {
        "remaining": work_estimate(batch.model, batch.n_active),
        "queue": position,
        "eta_seconds_range": progress["eta_seconds_range"],
        "eta_basis": "batch" if progress["eta_seconds_range"] else None,
    }
    if outlook["eta_basis"] or not batch.n_active:
        return outlook
    rate = hub_throughput(batch.model)
    if rate:
        ahead = position["jobs_ahead"] * position["users_sharing"] if position else 0
        eta = (ahead + batch.n_active) / rate
        outlook |= {"eta_seconds_range": [round(eta * 0.75, 1), round(eta * 1.5, 1)], "eta_basis": "hub"}
    return outlook

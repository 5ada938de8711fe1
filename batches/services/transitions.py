"""Job transitions and the batch counters they move, in one transaction.

Every transition is a conditional UPDATE … WHERE status = <expected>; only the
rows it changed move the counters, so a crash, a retry or two dispatchers can
never double-count. The batch's status is derived from its counters inside the
same transaction, so a batch can never be left "stuck" at 99 %.
"""

from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from batches.models import Batch, Job
from batches.states import BATCH_TERMINAL, COUNTER_FIELD, BatchStatus, JobStatus

# Rows per UPDATE … WHERE id IN (…): below SQLite's bound-parameter limit.
CHUNK = 1000


def derive_status(batch: Batch) -> str:
    if batch.status == BatchStatus.CANCELLED:
        return BatchStatus.CANCELLED
    if batch.n_active:
        started = batch.started_at is not None or batch.n_queued < batch.n_total
        return BatchStatus.RUNNING if started else BatchStatus.QUEUED
    if batch.n_failed and not batch.n_succeeded:
        return BatchStatus.FAILED
    if batch.n_failed:
        return BatchStatus.COMPLETED_WITH_FAILURES
    if batch.n_cancelled and not batch.n_succeeded:
        return BatchStatus.CANCELLED
    return BatchStatus.COMPLETED


def apply_counts(batch_id: UUID, deltas: dict[str, int], *, now: datetime | None = None) -> None:
    """Move the batch counters by `deltas` (job status → change) and re-derive
    the batch status. Call inside the transaction that moved the jobs."""
    now = now or timezone.now()
    updates: dict[str, Any] = {COUNTER_FIELD[s]: F(COUNTER_FIELD[s]) + d for s, d in deltas.items() if d}
    # The UPDATE takes the row lock that serialises concurrent transitions of
    # one batch, so the read below sees every committed counter change.
    Batch.objects.filter(pk=batch_id).update(version=F("version") + 1, **updates)
    batch = Batch.objects.get(pk=batch_id)
    status = derive_status(batch)
    fields: dict[str, Any] = {}
    if status != batch.status:
        fields["status"] = status
    if batch.started_at is None and status != BatchStatus.QUEUED:
        fields["started_at"] = now
    if status in BATCH_TERMINAL and batch.finished_at is None:
        fields["finished_at"] = now
    if status not in BATCH_TERMINAL and batch.finished_at is not None:
        fields["finished_at"] = None
    if fields:
        Batch.objects.filter(pk=batch_id).update(**fields)


def job_transition(*, job: Job, source: str, target: str, **fields: Any) -> bool:
    """Move one job from `source` to `target`; False if it was not in `source`."""
    Job.check_transition(source, target)
    with transaction.atomic():
        changed = Job.objects.filter(pk=job.pk, status=source).update(status=target, **fields)
        if changed != 1:
            return False
        apply_counts(job.batch_id, {source: -1, target: +1})
    job.status = target
    return True


def job_finish(*, job: Job, target: str, **fields: Any) -> bool:
    """Move a job that is dispatched or running to `target`, whichever it is in."""
    for source in (JobStatus.RUNNING, JobStatus.DISPATCHED):
        if job_transition(job=job, source=source, target=target, **fields):
            return True
    return False


def jobs_transition(*, jobs: QuerySet[Job], sources: tuple[str, ...], target: str, **fields: Any) -> int:
    """Move every job of `jobs` that is in one of `sources` to `target`, with
    the counters of every batch touched. Returns how many moved."""
    for source in sources:
        Job.check_transition(source, target)
    moved = 0
    with transaction.atomic():
        for source in sources:
            # Row locks (PostgreSQL; SQLite holds the database lock for the
            # whole IMMEDIATE transaction) keep the rows in `source` until the
            # UPDATE, so the per-batch counts below are exact.
            rows = list(jobs.filter(status=source).select_for_update().values_list("pk", "batch_id"))
            for start in range(0, len(rows), CHUNK):
                ids = [pk for pk, _ in rows[start : start + CHUNK]]
                moved += Job.objects.filter(pk__in=ids, status=source).update(status=target, **fields)
            for batch_id, count in Counter(batch_id for _, batch_id in rows).items():
                apply_counts(batch_id, {source: -count, target: +count})
    return moved

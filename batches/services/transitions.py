"""Job transitions and the batch counters they move, in one transaction.

Rules every writer of job rows follows (DESIGN §3):
- Lock order: the batch rows first, in primary-key order (`lock_batches`), then
  the job rows. Cancel, retry, delete, claim, ingest and reap all take the
  batch lock before touching jobs, so two of them can never wait on each other
  in a cycle. The one exception, the lease heartbeat, only ever uses SKIP
  LOCKED on job rows and never waits, so it cannot close a cycle either.
- Every transition is a conditional UPDATE … WHERE status = <expected> (and,
  for a job a dispatcher holds, AND claim_token = <its token>); only the rows
  it changed move the counters, so a crash, a retry or two dispatchers can
  never double-count.
- The batch's counters, version and derived status change in one UPDATE per
  batch per transaction, so a status read is one row and a batch can never be
  left "stuck" at 99 %. That UPDATE also schedules the "batch changed" hook
  for the commit (batches/changes.py), so no cached read outlives it, and
  writes the batch's webhook event, if any, in the same transaction (an outbox:
  batches/webhooks/outbox.py).
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Field, QuerySet
from django.utils import timezone

from batches.changes import batches_changed_on_commit
from batches.models import Batch, Job
from batches.states import BATCH_TERMINAL, COUNTER_FIELD, BatchStatus, JobStatus
from batches.webhooks.outbox import batch_event_enqueue

# Rows per UPDATE … WHERE id IN (…): below SQLite's bound-parameter limit.
CHUNK = 1000
# Parameters per statement where the backend states no limit (PostgreSQL's is 65,535).
MAX_PARAMS = 30_000


def derive_status(batch: Batch) -> str:
    # Cancelled stays cancelled; a batch still validating or rejected by validation has no
    # jobs for counters to speak of (batches/services/intake.py sets those statuses).
    if batch.status in (BatchStatus.CANCELLED, BatchStatus.VALIDATING, BatchStatus.REJECTED):
        return batch.status
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


def lock_batches(batch_ids: Iterable[UUID | str], *, skip_locked: bool = False) -> dict[UUID, Batch]:
    """Lock the batch rows, in primary-key order: the first lock of every
    transaction that writes jobs. Deleted batches (and, with `skip_locked`,
    batches another transaction holds) are absent from the result.

    SQLite ignores FOR UPDATE, but its IMMEDIATE transactions hold the whole
    database for writing, which serialises writers just as strictly."""
    ids = sorted({str(pk) for pk in batch_ids})
    if not ids:
        return {}
    locked = Batch.objects.select_for_update(skip_locked=skip_locked).filter(pk__in=ids).order_by("pk")
    return {batch.pk: batch for batch in locked}


def apply_counts(
    batch: Batch,
    deltas: dict[str, int],
    *,
    now: datetime | None = None,
    reused: int = 0,
    job_ids: Iterable[UUID | str] | None = None,
) -> None:
    """Move `batch`'s counters by `deltas` (job status → change), bump its
    version and re-derive its status, in one UPDATE. `batch` must have been
    read by `lock_batches` in the current transaction. `job_ids`, the jobs
    that moved when the caller knows them, ride along to the live deltas."""
    now = now or timezone.now()
    fields: dict[str, Any] = {"version": batch.version + 1}
    for status, delta in deltas.items():
        if delta:
            fields[COUNTER_FIELD[status]] = getattr(batch, COUNTER_FIELD[status]) + delta
    if reused:
        fields["n_reused"] = batch.n_reused + reused
    for name, value in fields.items():
        setattr(batch, name, value)
    status = derive_status(batch)
    if status != batch.status:
        fields["status"] = batch.status = status
    if batch.started_at is None and status != BatchStatus.QUEUED:
        fields["started_at"] = batch.started_at = now
    if status in BATCH_TERMINAL and batch.finished_at is None:
        fields["finished_at"] = batch.finished_at = now
    if status not in BATCH_TERMINAL and batch.finished_at is not None:
        fields["finished_at"] = batch.finished_at = None
    Batch.objects.filter(pk=batch.pk).update(**fields)
    batches_changed_on_commit(batch_ids=[batch.pk], owner_ids=[batch.owner_id], job_ids=job_ids)
    batch_event_enqueue(batch=batch, changed=fields)


def job_transition(*, job: Job, source: str, target: str, **fields: Any) -> bool:
    """Move one job from `source` to `target`; False if it was not in `source`."""
    moved = jobs_transition(jobs=Job.objects.filter(pk=job.pk), sources=(source,), target=target, **fields)
    if moved:
        job.status = target
    return moved == 1


def jobs_transition(
    *,
    jobs: QuerySet[Job],
    sources: tuple[str, ...],
    target: str,
    now: datetime | None = None,
    **fields: Any,
) -> int:
    """Move every job of `jobs` that is in one of `sources` to `target`, with
    the counters of every batch touched. Returns how many moved. Opens its own
    transaction, or joins the caller's (which must not hold job-row locks of
    another batch, or the lock order breaks)."""
    for source in sources:
        Job.check_transition(source, target)
    moved = 0
    with transaction.atomic():
        # An unlocked read finds the batches to lock; under their locks, each
        # conditional UPDATE's row count is exact and moves the counters.
        batch_ids = set(jobs.filter(status__in=sources).values_list("batch_id", flat=True).distinct())
        for batch in lock_batches(batch_ids).values():
            deltas: Counter[str] = Counter()
            for source in sources:
                count = jobs.filter(batch_id=batch.pk, status=source).update(status=target, **fields)
                deltas[source] -= count
                deltas[target] += count
                moved += count
            if any(deltas.values()):
                apply_counts(batch, dict(deltas), now=now)
    return moved


def held_jobs(job_ids: Iterable[str], token: str) -> QuerySet[Job]:
    """The jobs of `job_ids` that a dispatcher still holds under `token`."""
    return Job.objects.filter(
        pk__in=list(job_ids), claim_token=token, status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]
    )


def update_held_rows(*, token: str, fields: tuple[str, ...], rows: list[tuple[Any, ...]]) -> int:
    """Write per-job values to jobs held under `token`, set-based: one
    UPDATE … FROM (VALUES (id, v1, v2, …), …) WHERE id = v.id AND claim_token
    = %s AND status IN (dispatched, running) for up to the backend's parameter
    limit of rows. Each row is (job id, *values in `fields` order). (Django's
    bulk_update builds a CASE per field over every row, quadratic in the rows;
    one UPDATE per row costs the server a statement per job.)"""
    if not rows:
        return 0
    prepared = [_concrete("id"), *(_concrete(name) for name in fields)]
    limit = connection.features.max_query_params or MAX_PARAMS
    size = max(1, (limit - 3) // len(prepared))
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            params = [
                field.get_db_prep_save(value, connection)
                for row in chunk
                for field, value in zip(prepared, row, strict=True)
            ]
            cursor.execute(
                _update_from_values_sql(prepared, len(chunk)),
                [*params, token, JobStatus.DISPATCHED.value, JobStatus.RUNNING.value],
            )
            updated += max(int(cursor.rowcount), 0)
    return updated


def _update_from_values_sql(prepared: list[Field[Any, Any]], count: int) -> str:
    """The statement of `update_held_rows`. VALUES names its columns column1,
    column2, … on both PostgreSQL and SQLite (≥ 3.33 for UPDATE … FROM). On
    PostgreSQL every cell is cast to its column's type: a NULL or a quoted
    literal has none of its own."""
    qn = connection.ops.quote_name
    table = qn(Job._meta.db_table)
    if connection.vendor == "postgresql":
        cells = ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in prepared)
    else:
        cells = ", ".join("%s" for _ in prepared)
    values = ", ".join([f"({cells})"] * count)
    sets = ", ".join(f"{qn(field.column)} = v.column{i}" for i, field in enumerate(prepared[1:], start=2))
    # Bandit B608 (SQL built from a string) does not apply: the f-string holds quoted names
    # and types from the model and %s placeholders.
    return (
        f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v "  # nosec B608
        f"WHERE {table}.{qn(prepared[0].column)} = v.column1 "
        f"AND {table}.claim_token = %s AND {table}.status IN (%s, %s)"
    )


def _concrete(name: str) -> Field[Any, Any]:
    field = Job._meta.get_field(name)
    assert isinstance(field, Field) and field.column
    return field

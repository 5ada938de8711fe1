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
  left "stuck" at 99 %.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Field, QuerySet
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


def apply_counts(batch: Batch, deltas: dict[str, int], *, now: datetime | None = None, reused: int = 0) -> None:
    """Move `batch`'s counters by `deltas` (job status → change), bump its
    version and re-derive its status, in one UPDATE. `batch` must have been
    read by `lock_batches` in the current transaction."""
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
    """Write per-job values to jobs held under `token`: one parameterised
    UPDATE … WHERE id = %s AND claim_token = %s AND status IN (dispatched,
    running), sent for all rows at once (executemany: one pipelined round trip
    on psycopg 3). Each row is (job id, *values in `fields` order). Django's
    bulk_update builds a CASE per field over every row, quadratic in the rows
    and ~20× slower at a thousand jobs a pass."""
    if not rows:
        return 0
    meta = Job._meta
    prepared = [_concrete(name) for name in fields]
    columns = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in prepared)
    sql = (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {columns} "
        f"WHERE {connection.ops.quote_name(meta.pk.column)} = %s AND claim_token = %s AND status IN (%s, %s)"
    )
    params = [
        [field.get_db_prep_save(value, connection) for field, value in zip(prepared, values, strict=True)]
        + [meta.pk.get_db_prep_save(pk, connection), token, JobStatus.DISPATCHED.value, JobStatus.RUNNING.value]
        for pk, *values in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return max(int(cursor.rowcount), 0)


def _concrete(name: str) -> Field[Any, Any]:
    field = Job._meta.get_field(name)
    assert isinstance(field, Field) and field.column
    return field

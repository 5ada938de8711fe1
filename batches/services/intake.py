"""Background validation of a large submission: the worker's side of a 202.

The request answered the whole-batch checks, stored the batch as `validating` and its raw
ligands in IntakeChunk rows (submission.py). A background worker claims pending chunks
under a lease, validates each (batches/background/intake.py, in a process pool), and stores
the checked ligands on the chunk. When a batch has no pending chunk left, finalize reads the
chunks in order, rejects duplicates across the whole batch, creates the jobs and moves the
batch to `queued`, or to `rejected` with the full report.

Why it survives a crash: a chunk's results are written by one conditional UPDATE on its
claim token, so a worker whose lease ran out (and whose chunk another worker took) writes
nothing; a killed worker's chunk stays pending and is claimed again when its lease expires.
Finalize runs under the batch's row lock and only from `validating`, so two workers that
finish a batch's last chunks at once create its jobs once; a cancel or delete that took the
lock first leaves finalize nothing to do.

A large dry run's chunks take the same path: claimed, validated and stored alike; only the
end differs (batches/services/dry_runs.py writes a report instead of jobs).
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from batches.catalog import get_model
from batches.changes import batches_changed_on_commit
from batches.models import Batch, DryRun, IntakeChunk
from batches.registry import Limits
from batches.services.job_rows import create_jobs
from batches.services.submission import reject_if_needed
from batches.states import BatchStatus
from batches.validation.chunks import decode_checked
from batches.validation.ligands import LigandReport, dedupe
from omtx_hub.errors import InvalidInput

# A chunk validates in about a second; a worker holding one this long has died.
LEASE_SECONDS = 120
PENDING = IntakeChunk.Status.PENDING


@dataclass(frozen=True)
class ClaimedChunk:
    pk: int
    # The chunk's parent: a batch, or a dry run (exactly one is set).
    batch_id: UUID | None
    dry_run_id: UUID | None
    token: str
    first_index: int
    items: list[list[Any]]
    attempts: int
    limits: Limits
    standardize: bool


def intake_claim(*, limit: int, lease_seconds: int = LEASE_SECONDS) -> list[ClaimedChunk]:
    """Up to `limit` pending chunks nobody holds, leased to the caller: each waiting batch's
    (or dry run's) next chunk in turn, oldest first, so one large submission does not hold
    back everyone else's."""
    now = timezone.now()
    token = uuid.uuid4().hex
    free = Q(status=PENDING) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
    with transaction.atomic():
        # SKIP LOCKED (PostgreSQL): concurrent claimers take different chunks instead of
        # queueing on the same rows; the UPDATE re-checks `free`, so on SQLite, which
        # has no row locks, two claimers still never hold one chunk.
        ids = list(
            IntakeChunk.objects.filter(free)
            .order_by("number", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        IntakeChunk.objects.filter(free, pk__in=ids).update(
            claim_token=token, lease_expires_at=now + timedelta(seconds=lease_seconds), attempts=F("attempts") + 1
        )
    rows = IntakeChunk.objects.filter(pk__in=ids, claim_token=token).select_related("batch", "dry_run")
    return [_claimed(row, token) for row in rows.order_by("pk")]


def _claimed(row: IntakeChunk, token: str) -> ClaimedChunk:
    parent = row.batch or row.dry_run
    assert parent is not None  # intake_chunk_has_one_parent
    return ClaimedChunk(
        pk=row.pk,
        batch_id=row.batch_id,
        dry_run_id=row.dry_run_id,
        token=token,
        first_index=row.first_index,
        items=row.items,
        attempts=row.attempts,
        limits=get_model(parent.model).limits,
        standardize=parent.standardize,
    )


def intake_store(*, chunk: ClaimedChunk, results: list[list[Any]]) -> bool:
    """The chunk's checked ligands, if the caller still holds it."""
    stored = IntakeChunk.objects.filter(pk=chunk.pk, claim_token=chunk.token, status=PENDING).update(
        status=IntakeChunk.Status.DONE, results=results, lease_expires_at=None
    )
    if stored and chunk.batch_id is not None:
        # The status shows intake progress; a batch's list entry does not (no owner bump).
        # A dry run's progress is read from its chunks each time, never cached.
        batches_changed_on_commit(batch_ids=[chunk.batch_id], owner_ids=())
    return stored == 1


def intake_release(*, chunk: ClaimedChunk) -> None:
    """Hand a chunk back at once (its validation failed in the pool), for the next claim."""
    IntakeChunk.objects.filter(pk=chunk.pk, claim_token=chunk.token, status=PENDING).update(lease_expires_at=None)


def intake_finalize(*, batch_id: UUID) -> bool:
    """Jobs (or the refusal) for a batch whose chunks are all validated; whether this call
    finalized it."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(pk=batch_id, status=BatchStatus.VALIDATING).first()
        if batch is None or batch.intake_chunks.filter(status=PENDING).exists():
            return False
        pending = batch.validation_report
        report = dedupe(
            checked_ligands(batch.intake_chunks.all()),
            standardize=batch.standardize,
            allow_duplicates=pending.get("allow_duplicates", False),
        )
        summary = {**report.summary(), "warnings": pending.get("warnings", [])}
        refusal = _refusal(report, pending.get("on_invalid", "skip"))
        if refusal is None:
            create_jobs(batch, report)
            status = BatchStatus.QUEUED
        else:
            summary["error"] = refusal
            Batch.objects.filter(pk=batch.pk).update(ligands_rejected=len(report.rejected))
            status = BatchStatus.REJECTED
        Batch.objects.filter(pk=batch.pk).update(
            status=status,
            validation_report=summary,
            version=F("version") + 1,
            finished_at=timezone.now() if status == BatchStatus.REJECTED else None,
        )
        batch.intake_chunks.all().delete()
        batches_changed_on_commit(batch_ids=[batch.pk], owner_ids=[batch.owner_id])
    return True


def intake_unfinalized() -> list[UUID]:
    """Batches still validating with no chunk pending: all validated, finalize still owed."""
    return list(unfinalized_query())


def unfinalized_query() -> QuerySet[Batch, UUID]:
    pending = IntakeChunk.objects.filter(batch=OuterRef("pk"), status=PENDING)
    return Batch.objects.filter(status=BatchStatus.VALIDATING).filter(~Exists(pending)).values_list("pk", flat=True)


def intake_progress(parent: Batch | DryRun) -> dict[str, int]:
    """How far a validating batch or dry run has come, in ligands (one query on the chunk index)."""
    done = parent.intake_chunks.filter(status=IntakeChunk.Status.DONE).aggregate(validated=Sum("size"))
    return {"submitted": parent.ligands_submitted, "validated": done["validated"] or 0}


def checked_ligands(chunks: QuerySet[IntakeChunk]) -> Iterator[Any]:
    """The validated ligands of one parent's chunks, in submission order."""
    for results in chunks.order_by("number").values_list("results", flat=True).iterator(chunk_size=10):
        yield from (decode_checked(item) for item in results or [])


def _refusal(report: LigandReport, on_invalid: str) -> dict[str, Any] | None:
    try:
        reject_if_needed(report, on_invalid)
    except InvalidInput as refused:
        return {"code": refused.code, "message": refused.message}
    return None

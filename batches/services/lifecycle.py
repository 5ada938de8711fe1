"""Cancel, retry and delete: the operator's and the scientist's controls.

Each one locks the batch row first and decides on the state it reads under
that lock, so a stale copy (a retry racing a cancel, two deletes, a cancel
racing a delete) can neither act on a batch that changed nor crash: the loser
gets 409, or 404 when the batch is gone.
"""

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from batches.changes import batches_changed_on_commit
from batches.models import Batch, Job
from batches.services.transitions import apply_counts, jobs_transition, lock_batches
from batches.states import BATCH_ACTIVE, BATCH_TERMINAL, JOB_ACTIVE, BatchStatus, FailureReason, JobStatus
from batches.webhooks.outbox import batch_event_enqueue
from omtx_hub.errors import Conflict, NotFound


def _lock(batch: Batch) -> Batch:
    """Lock `batch`'s row (the first lock of the transaction) and return it fresh."""
    locked = lock_batches([batch.pk]).get(batch.pk)
    if locked is None:
        raise NotFound("No such batch.")
    return locked


def batch_cancel(*, batch: Batch) -> Batch:
    """Cancel the batch and its unfinished jobs. The state changes first; the
    dispatcher then cancels executor calls whose jobs are no longer active,
    and a late result for a cancelled job is refused by its conditional update."""
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(batch)
        if locked.status == BatchStatus.VALIDATING:
            # No jobs yet: its chunks go, and a finalize waiting on the lock finds no
            # `validating` batch (batches/services/intake.py).
            locked.intake_chunks.all().delete()
            Batch.objects.filter(pk=locked.pk).update(
                status=BatchStatus.CANCELLED, finished_at=now, version=F("version") + 1
            )
            batches_changed_on_commit(batch_ids=[locked.pk], owner_ids=[locked.owner_id])
            batch.refresh_from_db()
            # No apply_counts here, so no batch.cancelled unless announced by hand.
            batch_event_enqueue(batch=batch, changed={"finished_at": now})
            return batch
        if locked.status not in BATCH_ACTIVE:
            raise Conflict(f"The batch is already {locked.status}.", code="batch_finished")
        Batch.objects.filter(pk=locked.pk).update(status=BatchStatus.CANCELLED)
        moved = jobs_transition(
            jobs=Job.objects.filter(batch_id=locked.pk),
            sources=JOB_ACTIVE,
            target=JobStatus.CANCELLED,
            now=now,
            failure_reason=FailureReason.CANCELLED,
            failure_message="cancelled by request",
            finished_at=now,
            lease_expires_at=None,
        )
        if not moved:
            # No job moved, so no counter update re-derived the status fields.
            apply_counts(_lock(locked), {}, now=now)
        # Inside the transaction: after it, a delete waiting on the lock may
        # already have removed the row.
        batch.refresh_from_db()
    return batch


def batch_retry_failed(*, batch: Batch) -> int:
    """Queue the failed jobs again (and only those). Returns how many."""
    with transaction.atomic():
        locked = _lock(batch)
        if locked.status == BatchStatus.CANCELLED:
            raise Conflict("A cancelled batch cannot be retried.", code="batch_cancelled")
        moved = jobs_transition(
            jobs=Job.objects.filter(batch_id=locked.pk),
            sources=(JobStatus.FAILED,),
            target=JobStatus.QUEUED,
            attempts=0,
            not_before=None,
            failure_reason="",
            failure_message="",
            finished_at=None,
            call_id="",
        )
        if not moved:
            raise Conflict("The batch has no failed jobs to retry.", code="nothing_to_retry")
        batch.refresh_from_db()
    return moved


def batch_delete(*, batch: Batch) -> None:
    """Delete a finished batch, its jobs and their artifacts."""
    with transaction.atomic():
        locked = _lock(batch)
        if locked.status not in BATCH_TERMINAL:
            raise Conflict("The batch is still running; cancel it first.", code="batch_active")
        # Every job owns its file (a reused prediction gets its own copy).
        artifacts = list(Job.objects.filter(batch_id=locked.pk).exclude(artifact="").values_list("artifact", flat=True))
        batches_changed_on_commit(batch_ids=[locked.pk], owner_ids=[locked.owner_id])
        locked.delete()
    # Files after the rows commit: a crash in between leaves orphan files,
    # never a row pointing at a missing file.
    for name in artifacts:
        default_storage.delete(name)


def batch_set_priority(*, batch: Batch, priority: int) -> None:
    """Re-prioritise a batch; the claim orders a user's batches by it."""
    with transaction.atomic():
        locked = _lock(batch)
        apply_counts(locked, {})
        Batch.objects.filter(pk=locked.pk).update(priority=priority)
        Job.objects.filter(batch_id=locked.pk, status=JobStatus.QUEUED).update(priority=priority)
    batch.priority = priority

"""Cancel, retry and delete: the operator's and the scientist's controls."""

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from batches.models import Batch, Job
from batches.services.transitions import apply_counts, jobs_transition
from batches.states import BATCH_TERMINAL, JOB_ACTIVE, BatchStatus, FailureReason, JobStatus
from omtx_hub.errors import Conflict


def batch_cancel(*, batch: Batch) -> Batch:
    """Cancel the batch and its unfinished jobs. The state changes first; the
    dispatcher then cancels executor calls whose jobs are no longer active,
    and a late result for a cancelled job is refused by its conditional update."""
    now = timezone.now()
    with transaction.atomic():
        changed = Batch.objects.filter(pk=batch.pk, status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING]).update(
            status=BatchStatus.CANCELLED
        )
        if not changed:
            batch.refresh_from_db()
            raise Conflict(f"The batch is already {batch.status}.", code="batch_finished")
        jobs_transition(
            jobs=Job.objects.filter(batch=batch),
            sources=JOB_ACTIVE,
            target=JobStatus.CANCELLED,
            failure_reason=FailureReason.CANCELLED,
            failure_message="cancelled by request",
            finished_at=now,
            lease_expires_at=None,
        )
        apply_counts(batch.pk, {}, now=now)
    batch.refresh_from_db()
    return batch


def batch_retry_failed(*, batch: Batch) -> int:
    """Queue the failed jobs again (and only those). Returns how many."""
    if batch.status == BatchStatus.CANCELLED:
        raise Conflict("A cancelled batch cannot be retried.", code="batch_cancelled")
    with transaction.atomic():
        moved = jobs_transition(
            jobs=Job.objects.filter(batch=batch),
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
    batch.refresh_from_db()
    if batch.status not in BATCH_TERMINAL:
        raise Conflict("The batch is still running; cancel it first.", code="batch_active")
    artifacts = list(Job.objects.filter(batch=batch).exclude(artifact="").values_list("artifact", flat=True))
    batch.delete()
    # Files after the rows: a crash in between leaves orphan files, never a row
    # pointing at a missing file.
    for name in artifacts:
        default_storage.delete(name)


def batch_set_priority(*, batch: Batch, priority: int) -> None:
    """Re-prioritise a batch; its queued jobs carry the priority the claim query sorts on."""
    with transaction.atomic():
        Batch.objects.filter(pk=batch.pk).update(priority=priority, version=F("version") + 1)
        Job.objects.filter(batch=batch, status=JobStatus.QUEUED).update(priority=priority)
    batch.priority = priority

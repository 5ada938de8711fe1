"""Storing what an executor returned: results, artifacts, failures, retries."""

from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from batches.catalog import get_model
from batches.engine.types import JobOutcome
from batches.models import Job
from batches.services.transitions import job_finish
from batches.states import RETRYABLE_FAILURES, FailureReason, JobStatus

TYPED_COLUMNS = ("qed", "mol_weight", "clogp", "affinity_pred_value", "affinity_probability_binary", "confidence_score")
BACKOFF_BASE_SECONDS = 10
BACKOFF_MAX_SECONDS = 600


def job_record_success(*, job: Job, outcome: JobOutcome) -> bool:
    now = timezone.now()
    artifact = ""
    if outcome.artifact_content:
        path = f"artifacts/{job.batch_id}/{outcome.artifact_name or job.pk}"
        artifact = default_storage.save(path, ContentFile(outcome.artifact_content))
    columns = {name: _as_float(outcome.metrics.get(name)) for name in TYPED_COLUMNS}
    done = job_finish(
        job=job,
        target=JobStatus.SUCCEEDED,
        result=outcome.metrics,
        artifact=artifact,
        finished_at=now,
        lease_expires_at=None,
        failure_reason="",
        failure_message="",
        **columns,
    )
    if not done and artifact:
        # The job was cancelled (or finished by another dispatcher) meanwhile.
        default_storage.delete(artifact)
    return done


def job_record_failure(*, job: Job, reason: str, message: str) -> bool:
    """Fail the job, or queue it again with backoff when the failure is
    transient and attempts remain (running → queued, never via failed, so the
    batch cannot flicker into a terminal state)."""
    if reason not in FailureReason.values:
        reason = FailureReason.UNKNOWN
    spec = get_model(job.batch.model)
    now = timezone.now()
    if reason in RETRYABLE_FAILURES and job.attempts < spec.max_attempts:
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, job.attempts - 1))
        return job_finish(
            job=job,
            target=JobStatus.QUEUED,
            not_before=now + timedelta(seconds=delay),
            failure_reason=reason,
            failure_message=message[:2000],
            call_id="",
            lease_expires_at=None,
        )
    return job_finish(
        job=job,
        target=JobStatus.FAILED,
        failure_reason=reason,
        failure_message=message[:2000],
        finished_at=now,
        lease_expires_at=None,
    )


def job_record_outcome(*, job: Job, outcome: JobOutcome) -> bool:
    if outcome.ok:
        return job_record_success(job=job, outcome=outcome)
    return job_record_failure(job=job, reason=outcome.failure_reason, message=outcome.message)


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)

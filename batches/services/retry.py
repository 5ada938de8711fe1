"""What a failed attempt leads to: another attempt after a backoff, or the end."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from batches.catalog import get_model
from batches.models import Batch
from batches.states import RETRYABLE_FAILURES, JobStatus

BACKOFF_MAX_SECONDS = 600


@dataclass(frozen=True)
class Decision:
    status: str
    not_before: datetime | None
    finished_at: datetime | None


def retry_decision(*, reason: str, attempts: int, max_attempts: int, now: datetime) -> Decision:
    """Queue again with exponential backoff while the failure is transient and
    attempts remain (running → queued, never via failed, so the batch cannot
    flicker into a terminal state); otherwise the failure is final."""
    if reason in RETRYABLE_FAILURES and attempts < max_attempts:
        delay = min(BACKOFF_MAX_SECONDS, settings.OMTX_RETRY_BACKOFF_SECONDS * 2 ** max(0, attempts - 1))
        return Decision(JobStatus.QUEUED, now + timedelta(seconds=delay), None)
    return Decision(JobStatus.FAILED, None, now)


def attempts_allowed(batch: Batch) -> int:
    """Attempts per job: the batch's own `max_attempts` when it set one
    (at most the hub's bound, checked at submission), else the model's."""
    return batch.max_attempts or get_model(batch.model).max_attempts

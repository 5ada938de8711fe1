"""What a failed attempt leads to: another attempt after a backoff, or the end."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

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

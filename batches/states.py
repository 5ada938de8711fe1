"""Job and batch states with their named groups (DESIGN §3)."""

from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


JOB_ACTIVE = (JobStatus.QUEUED, JobStatus.DISPATCHED, JobStatus.RUNNING)
JOB_TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

# Legal job transitions. A result may arrive before the dispatcher saw the job
# running, so dispatched → succeeded/failed is legal; failed → queued is the
# retry edge; dispatched → queued is a lease recovered before any executor call.
JOB_TRANSITIONS: dict[str, set[str]] = {
    JobStatus.QUEUED: {JobStatus.DISPATCHED, JobStatus.CANCELLED},
    JobStatus.DISPATCHED: {
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.QUEUED,
    },
    JobStatus.RUNNING: {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED},
    JobStatus.FAILED: {JobStatus.QUEUED},
    JobStatus.SUCCEEDED: set(),
    JobStatus.CANCELLED: set(),
}


class BatchStatus(models.TextChoices):
    # Accepted (202) and being validated in the background; no jobs yet.
    VALIDATING = "validating"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Validated in the background and refused as a whole (no valid ligand, or
    # on_invalid=reject with some invalid): the report says why; nothing ran.
    REJECTED = "rejected"


BATCH_ACTIVE = (BatchStatus.QUEUED, BatchStatus.RUNNING)
BATCH_TERMINAL = (
    BatchStatus.COMPLETED,
    BatchStatus.COMPLETED_WITH_FAILURES,
    BatchStatus.FAILED,
    BatchStatus.CANCELLED,
    BatchStatus.REJECTED,
)


class FailureReason(models.TextChoices):
    INVALID_INPUT = "invalid_input"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    OUTPUT_MISSING = "output_missing"
    EXECUTOR_ERROR = "executor_error"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


# Failures worth another attempt: the same input may succeed on another worker.
RETRYABLE_FAILURES = {FailureReason.TIMEOUT, FailureReason.EXECUTOR_ERROR, FailureReason.UNKNOWN}

# Batch counter column for each job status.
COUNTER_FIELD = {status.value: f"n_{status.value}" for status in JobStatus}

"""Turning what executors and earlier predictions return into deliveries the
ingest stores, and recovering the database connection after an error."""

from django.core.files.storage import default_storage
from django.db import connection

from batches.engine.types import JobOutcome, PollResult
from batches.models import Job
from batches.queue import Reusable
from batches.services.claims import Hold
from batches.services.ingest import Delivery, failure_outcomes
from batches.states import FailureReason


def reuse_delivery(job: Job, found: Reusable) -> Delivery | None:
    """An earlier prediction's result for `job`, with its own copy of the
    structure file (so deleting either batch never breaks the other); None
    when that file is gone meanwhile, and the job then runs."""
    content = b""
    if found.artifact:
        try:
            with default_storage.open(found.artifact, "rb") as source:
                content = source.read()
        except OSError:
            return None
    name = found.artifact.rsplit("/", 1)[-1]
    outcome = JobOutcome(str(job.pk), ok=True, metrics=found.result, artifact_name=name, artifact_content=content)
    return Delivery(job.batch_id, job.claim_token, outcome, reused_from=found.job_id)


def drop_broken_connection() -> None:
    """After a database error: a lost connection is closed so the next query
    reconnects. (Not close_old_connections: with CONN_MAX_AGE = 0 it closes
    every connection, even one inside the caller's transaction.)"""
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()


def call_outcomes(hold: Hold, result: PollResult) -> list[JobOutcome]:
    """Per-job outcomes of a finished call; a job it said nothing about failed
    with output_missing, and outcomes for jobs not in the call are ignored."""
    if result.state == "error":
        return failure_outcomes(list(hold.job_ids), reason=result.failure_reason, message=result.message)
    given = {outcome.job_id: outcome for outcome in result.outcomes}
    missing = [job_id for job_id in hold.job_ids if job_id not in given]
    return [given[job_id] for job_id in hold.job_ids if job_id in given] + failure_outcomes(
        missing, reason=FailureReason.OUTPUT_MISSING, message="the executor returned no result for this job"
    )

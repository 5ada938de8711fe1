"""The messages of the batch socket (docs/live-status.md), built from the same selectors and
representations as the REST API, so a page shows the same numbers whichever it read.

Synchronous ORM code: consumers call it through `database_sync_to_async`, the broadcaster
from its own thread.
"""

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse

from batches.api.representations import batch_status, job_row_linked
from batches.models import Batch, Job
from batches.selectors import STATUS_FIELDS, results_ranking
from batches.states import JobStatus

# Rows the snapshot carries: the first results page (the REST default limit) and the first
# failed jobs; the page fetches further pages over REST.
SNAPSHOT_RESULTS = 50
SNAPSHOT_FAILURES = 50
# Jobs one delta carries at most; beyond, `jobs_truncated` tells the client to refetch.
DELTA_JOBS = 200
# What a job item reads: its row, not its batch's.
JOB_FIELDS = (
    *("id", "batch_id", "index", "name", "input_smiles", "canonical_smiles", "standardization", "status"),
    *("result", "artifact", "failure_reason", "failure_message"),
)


def group_name(batch_id: UUID | str) -> str:
    """The channel-layer group of one batch's sockets."""
    return f"batch.{batch_id}"


def encode(message: dict[str, Any]) -> str:
    """JSON text, dates as ISO 8601 (the REST API's rendering)."""
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"))


def job_item(job: Job, *, rank: int | None = None) -> dict[str, Any]:
    """A results row (batches.api.representations.job_row) with `id` beside `job_id`, the
    key clients upsert by. The structure link is relative: a socket has no request to build
    an absolute one from."""
    return {"id": str(job.pk), **job_row_linked(job, _structure_url(job), rank=rank)}


def _structure_url(job: Job) -> str | None:
    if not job.artifact:
        return None
    return reverse("v3:job-structure", kwargs={"batch_id": job.batch_id, "job_id": job.pk})


def snapshot(batch: Batch) -> dict[str, Any]:
    """Everything a page shows at `batch.version`: the status document, the first results
    page in the model's default ranking, the first failed jobs."""
    ranking = results_ranking(batch=batch)
    results = [job_item(job, rank=rank) for rank, job in enumerate(ranking.at(0, SNAPSHOT_RESULTS), start=1)]
    failed = Job.objects.filter(batch=batch, status=JobStatus.FAILED).only(*JOB_FIELDS).order_by("index")
    return {
        "type": "snapshot",
        "batch": str(batch.pk),
        "version": batch.version,
        "status": batch_status(batch),
        "results": results,
        "failures": [job_item(job) for job in failed[:SNAPSHOT_FAILURES]],
    }


def status_row(batch_id: UUID | str) -> Batch | None:
    """The batch's status columns (the status poll's narrow read), None once it is deleted."""
    return Batch.objects.filter(pk=batch_id).only(*STATUS_FIELDS).first()


def delta(batch: Batch, *, since: int, job_ids: Iterable[str] | None) -> dict[str, Any]:
    """The change from `since` to `batch.version`: the status document and the jobs named
    (at most DELTA_JOBS; None names more than were kept, which truncates)."""
    ids = sorted(job_ids) if job_ids is not None else None
    truncated = ids is None or len(ids) > DELTA_JOBS
    jobs: list[Job] = []
    if ids:
        chosen = ids[:DELTA_JOBS]
        jobs = list(Job.objects.filter(batch_id=batch.pk, pk__in=chosen).only(*JOB_FIELDS).order_by("index"))
    return {
        "type": "delta",
        "batch": str(batch.pk),
        "since": since,
        "version": batch.version,
        "status": batch_status(batch),
        "jobs": [job_item(job) for job in jobs],
        "jobs_truncated": truncated,
    }


def gone(batch_id: UUID | str) -> dict[str, Any]:
    return {"type": "gone", "batch": str(batch_id)}

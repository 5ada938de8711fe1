"""Webhook events, written as an outbox: each delivery row is inserted by the
transaction that makes the change it reports, so it commits (or rolls back) with that
change and a crash between the two cannot happen. Nothing here sends anything: the
background worker does (batches/webhooks/sender.py), never the dispatcher.

Only batches with a webhook_url get rows; for the others each hook returns before any
query. Bursts are inserted set-based: one read and one bulk INSERT per call.
"""

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from batches.models import Batch, Job
from batches.states import BatchStatus, JobStatus
from batches.webhooks.models import WebhookDelivery, WebhookEvent

# The batch event each terminal status announces (a `rejected` batch never ran: no event).
BATCH_EVENTS = {
    BatchStatus.COMPLETED: WebhookEvent.BATCH_COMPLETED,
    BatchStatus.COMPLETED_WITH_FAILURES: WebhookEvent.BATCH_COMPLETED_WITH_FAILURES,
    BatchStatus.FAILED: WebhookEvent.BATCH_FAILED,
    BatchStatus.CANCELLED: WebhookEvent.BATCH_CANCELLED,
}
JOB_FIELDS = (
    "id",
    "index",
    "name",
    "input_smiles",
    "canonical_smiles",
    "attempts",
    "failure_reason",
    "failure_message",
    "finished_at",
)
INSERT_BATCH = 500


def batch_event_enqueue(*, batch: Batch, changed: dict[str, Any]) -> None:
    """Called by transitions.apply_counts with the fields its UPDATE wrote: a
    `finished_at` written now means the batch has just reached a terminal status (a
    retried batch that finishes again announces it again)."""
    if not batch.webhook_url or changed.get("finished_at") is None:
        return
    event = BATCH_EVENTS.get(BatchStatus(batch.status))
    if event is not None:
        WebhookDelivery.objects.bulk_create([_delivery(batch, event, {"batch": batch_data(batch)})])


def job_failed_enqueue(*, batch: Batch, jobs: QuerySet[Job]) -> int:
    """One job.failed per job of `jobs` (of `batch`) that failed for good; how many."""
    if not batch.webhook_url:
        return 0
    brief = {"id": str(batch.pk), "name": batch.name}
    rows = [
        _delivery(batch, WebhookEvent.JOB_FAILED, {"batch": brief, "job": _job_data(job)}, job_id=job["id"])
        for job in jobs.filter(batch_id=batch.pk, status=JobStatus.FAILED).order_by("index").values(*JOB_FIELDS)
    ]
    WebhookDelivery.objects.bulk_create(rows, batch_size=INSERT_BATCH)
    return len(rows)


def batch_data(batch: Batch) -> dict[str, Any]:
    return {
        "id": str(batch.pk),
        "name": batch.name,
        "model": batch.model,
        "status": batch.status,
        "version": batch.version,
        "total": batch.n_total,
        "succeeded": batch.n_succeeded,
        "failed": batch.n_failed,
        "cancelled": batch.n_cancelled,
        "created_at": _instant(batch.created_at),
        "started_at": _instant(batch.started_at),
        "finished_at": _instant(batch.finished_at),
    }


def _job_data(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "id": str(job["id"]), "status": JobStatus.FAILED.value, "finished_at": _instant(job["finished_at"])}


def _delivery(batch: Batch, event: str, data: dict[str, Any], *, job_id: Any = None) -> WebhookDelivery:
    now = timezone.now()
    delivery_id = uuid.uuid4()
    return WebhookDelivery(
        id=delivery_id,
        owner_id=batch.owner_id,
        batch_id=batch.pk,
        job_id=job_id,
        event=event,
        url=batch.webhook_url,
        payload={"id": str(delivery_id), "type": event, "created_at": _instant(now), "data": data},
        attempt_limit=settings.OMTX_WEBHOOK_MAX_ATTEMPTS,
        next_attempt_at=now,
        created_at=now,
    )


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value else None

"""Storing what executors returned: results, artifacts, failures, retries.

One pass's outcomes are applied per batch in one transaction: the batch row
is locked and updated once, the jobs still held under their claim token are
locked and written with one bulk UPDATE. An outcome for a job that is no
longer held (cancelled, reaped and re-run elsewhere, already finished) is
refused and counted; its artifact is removed.
"""

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from batches.catalog import get_model
from batches.engine.types import JobOutcome
from batches.models import Job
from batches.registry import ModelSpec
from batches.result_store import hooks as result_store_hooks
from batches.services.retry import retry_decision
from batches.services.transitions import apply_counts, held_jobs, lock_batches, update_held_rows
from batches.states import FailureReason, JobStatus
from batches.webhooks.outbox import job_failed_enqueue

# Written on every ingested job, whatever its outcome; plus the model's
# typed metric columns.
FIELDS = (
    "status",
    "result",
    "artifact",
    "finished_at",
    "not_before",
    "lease_expires_at",
    "failure_reason",
    "failure_message",
    "reused_from",
)
MESSAGE_LIMIT = 2000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One job's outcome, from the call that ran it under `token`. A reused
    prediction names the job it came from. `artifact` is the storage name of
    the outcome's file once `save_artifacts` has stored it."""

    batch_id: UUID
    token: str
    outcome: JobOutcome
    reused_from: UUID | None = None
    artifact: str = ""


@dataclass
class IngestReport:
    applied: int = 0
    refused: int = 0
    # Applied outcomes by the job's new status (succeeded, failed, queued for a retry), and
    # failed ones by reason: what the dispatcher counts into Prometheus.
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


def deliveries_apply(*, deliveries: list[Delivery]) -> IngestReport:
    report = IngestReport()
    deliveries = save_artifacts(deliveries)
    by_batch: dict[UUID, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        by_batch[delivery.batch_id].append(delivery)
    refused: list[Delivery] = []
    for batch_id in sorted(by_batch, key=str):
        with transaction.atomic():
            refused += _apply_batch(batch_id, by_batch[batch_id], report)
            # After the commit, a copy for the result store (when on); its failure fails nothing.
            result_store_hooks.after_ingest(batch_id=batch_id, job_ids=[d.outcome.job_id for d in by_batch[batch_id]])
    report.refused = len(refused)
    report.applied = len(deliveries) - report.refused
    for delivery in refused:
        if delivery.artifact:
            _delete_quietly(delivery.artifact)
    return report


def _delete_quietly(name: str) -> None:
    """The outcomes are stored by now: a file that cannot be removed is an
    orphan to log, never a reason to treat the stored outcomes as lost."""
    try:
        default_storage.delete(name)
    except OSError as exc:
        log.warning("could not delete the refused outcome's file %s: %r", name, exc)


def save_artifacts(deliveries: list[Delivery]) -> list[Delivery]:
    """Store outcome files, once: files first, outside any transaction, so a
    refused outcome's file is deleted afterwards and a crash in between leaves
    an orphan file, never a row pointing at a missing file. Deliveries already
    saved (a retried flush) are returned as they are."""
    stored = []
    for delivery in deliveries:
        outcome = delivery.outcome
        if outcome.ok and outcome.artifact_content and not delivery.artifact:
            path = f"artifacts/{delivery.batch_id}/{outcome.artifact_name or outcome.job_id}"
            name = default_storage.save(path, ContentFile(outcome.artifact_content))
            delivery = replace(delivery, outcome=replace(outcome, artifact_content=b""), artifact=name)
        stored.append(delivery)
    return stored


def _apply_batch(batch_id: UUID, deliveries: list[Delivery], report: IngestReport) -> list[Delivery]:
    """Apply one batch's deliveries; returns those refused."""
    batch = lock_batches([batch_id]).get(batch_id)
    if batch is None:
        return deliveries
    tokens: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        tokens[delivery.token].append(delivery)
    spec = get_model(batch.model)
    max_attempts = batch.attempts_allowed
    now = timezone.now()
    deltas: Counter[str] = Counter()
    refused: list[Delivery] = []
    failed: list[str] = []
    reused = 0
    changed: list[str] = []
    fields = (*FIELDS, *spec.columns)
    for token, mine in tokens.items():
        ids = [delivery.outcome.job_id for delivery in mine]
        held = {
            str(pk): (status, attempts)
            for pk, status, attempts in held_jobs(ids, token).values_list("pk", "status", "attempts")
        }
        rows = []
        for delivery in mine:
            state = held.pop(delivery.outcome.job_id, None)
            if state is None:
                refused.append(delivery)
                continue
            values = _finished_values(delivery, spec, now, attempts=state[1], max_attempts=max_attempts)
            deltas[state[0]] -= 1
            deltas[values["status"]] += 1
            report.statuses[values["status"]] += 1
            if not delivery.outcome.ok:
                report.failures[values["failure_reason"]] += 1
            if values["status"] == JobStatus.FAILED:
                failed.append(delivery.outcome.job_id)
            reused += delivery.reused_from is not None
            rows.append((delivery.outcome.job_id, *(values[name] for name in fields)))
            changed.append(delivery.outcome.job_id)
        update_held_rows(token=token, fields=fields, rows=rows)
    if failed:
        job_failed_enqueue(batch=batch, jobs=Job.objects.filter(pk__in=failed))
    if any(deltas.values()):
        apply_counts(batch, dict(deltas), now=now, reused=reused, job_ids=changed)
    return refused


def _finished_values(
    delivery: Delivery, spec: ModelSpec, now: datetime, *, attempts: int, max_attempts: int
) -> dict[str, Any]:
    """The job's new field values for this outcome: success, another attempt (of
    the batch's `max_attempts`), or failure."""
    outcome = delivery.outcome
    values: dict[str, Any] = {
        "result": outcome.metrics or None,
        "reused_from": delivery.reused_from,
        "lease_expires_at": None,
        **{name: _as_float(outcome.metrics.get(name)) if outcome.ok else None for name in spec.columns},
    }
    if outcome.ok:
        return values | {
            "status": JobStatus.SUCCEEDED,
            "finished_at": now,
            "not_before": None,
            "artifact": delivery.artifact,
            "failure_reason": "",
            "failure_message": "",
        }
    reason = outcome.failure_reason if outcome.failure_reason in FailureReason.values else FailureReason.UNKNOWN
    decision = retry_decision(reason=reason, attempts=attempts, max_attempts=max_attempts, now=now)
    return values | {
        "status": decision.status,
        "finished_at": decision.finished_at,
        "not_before": decision.not_before,
        "artifact": "",
        "failure_reason": reason,
        "failure_message": outcome.message[:MESSAGE_LIMIT],
    }


def failure_outcomes(job_ids: list[str], *, reason: str, message: str) -> list[JobOutcome]:
    return [JobOutcome(job_id, ok=False, failure_reason=reason, message=message) for job_id in job_ids]


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)

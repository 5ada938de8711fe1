"""What the API returns. URLs are absolute, built with reverse(…, request=…)."""

from typing import Any

from rest_framework.request import Request
from rest_framework.reverse import reverse

from batches.catalog import get_model
from batches.models import Batch, DryRun, Job
from batches.queue import batch_outlook, work_estimate
from batches.selectors import batch_progress
from batches.services.dry_runs import dry_run_expires_at
from batches.services.intake import intake_progress
from batches.states import BATCH_TERMINAL, BatchStatus


def _url(name: str, request: Request, **kwargs: Any) -> str:
    return reverse(f"v3:{name}", kwargs=kwargs, request=request)


def batch_links(batch: Batch, request: Request) -> dict[str, str]:
    names = (
        "batch-detail",
        "batch-status",
        "batch-results",
        "batch-export",
        "batch-jobs",
        "batch-cancel",
        "batch-retry",
    )
    return {name.removeprefix("batch-"): _url(name, request, batch_id=batch.pk) for name in names}


def batch_brief(batch: Batch, request: Request) -> dict[str, Any]:
    return {
        "id": str(batch.pk),
        "url": _url("batch-detail", request, batch_id=batch.pk),
        "name": batch.name,
        "model": batch.model,
        "status": batch.status,
        "total": batch.n_total,
        "succeeded": batch.n_succeeded,
        "failed": batch.n_failed,
        "progress_percent": batch_progress(batch)["progress_percent"],
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
    }


def batch_status(batch: Batch) -> dict[str, Any]:
    return {
        "id": str(batch.pk),
        "batch_id": str(batch.pk),
        "status": batch.status,
        "is_terminal": batch.status in BATCH_TERMINAL,
        "version": batch.version,
        "intake": intake_progress(batch) if batch.status == BatchStatus.VALIDATING else None,
        "progress": (progress := batch_progress(batch)),
        "outlook": batch_outlook(batch, progress),
        "created_at": batch.created_at,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
    }


def batch_detail(batch: Batch, request: Request) -> dict[str, Any]:
    report = batch.validation_report or {}
    return {
        **batch_brief(batch, request),
        **batch_status(batch),
        "owner": batch.owner.get_username(),
        "model_version": batch.model_version,
        "priority": batch.priority,
        "options": batch.options,
        "policy": {
            "standardize": batch.standardize,
            "max_in_flight": batch.max_in_flight,
            "max_attempts": batch.attempts_allowed,
            "timeout_seconds": batch.attempt_timeout,
        },
        "target": {
            "name": batch.target_name,
            "length": batch.target.length,
            "sequence_sha256": batch.target.sequence_sha256,
        },
        "validation": {
            "submitted": report.get("submitted", batch.ligands_submitted),
            "accepted": report.get("accepted", batch.n_total),
            "rejected": report.get("rejected", batch.ligands_rejected),
            "standardization": report.get("standardization"),
            "warnings": report.get("warnings", []),
            "rejected_ligands": report.get("rejected_ligands", []),
            "error": report.get("error"),
        },
        "manifest": batch.manifest,
        "webhook_url": batch.webhook_url or None,
        "links": batch_links(batch, request),
    }


def legacy_submitted(batch: Batch, request: Request, *, created: bool) -> dict[str, Any]:
    """The predecessor's answer to POST /batches/submit, the canonical detail
    beside it. The duration is the worker time of every job (an upper bound:
    duplicates and earlier predictions are reused, and workers run in parallel)."""
    warnings = list((batch.validation_report or {}).get("warnings", []))
    said = "submitted" if created else "already submitted with this Idempotency-Key"
    rejected = f", {batch.ligands_rejected} ligands rejected" if batch.ligands_rejected else ""
    return {
        **batch_detail(batch, request),
        "success": True,
        "batch_id": str(batch.pk),
        "message": " ".join([f"Batch {said}: {batch.n_total} jobs{rejected}.", *warnings]),
        "warnings": warnings,
        "total_jobs": batch.n_total,
        "estimated_duration_seconds": work_estimate(batch.model, batch.n_total)["worker_seconds"],
        "status_url": _url("batch-status", request, batch_id=batch.pk),
        "results_url": _url("batch-results", request, batch_id=batch.pk),
    }


def structure_url(job: Job, request: Request) -> str | None:
    if not job.artifact:
        return None
    return _url("job-structure", request, batch_id=job.batch_id, job_id=job.pk)


def job_row(job: Job, request: Request, *, rank: int | None = None) -> dict[str, Any]:
    return job_row_linked(job, structure_url(job, request), rank=rank)


def job_row_linked(job: Job, structure: str | None, *, rank: int | None = None) -> dict[str, Any]:
    """A results row whose structure link the caller built (the websocket has no request)."""
    row: dict[str, Any] = {} if rank is None else {"rank": rank}
    row.update(
        {
            "job_id": str(job.pk),
            "index": job.index,
            "name": job.name,
            "smiles": job.input_smiles,
            "canonical_smiles": job.canonical_smiles,
            "standardization": job.standardization,
            "status": job.status,
            "metrics": job.result or {},
            "failure_reason": job.failure_reason or None,
            "failure_message": job.failure_message or None,
            "structure_url": structure,
        }
    )
    return row


def job_detail(job: Job, request: Request) -> dict[str, Any]:
    return {
        **job_row(job, request),
        "url": _url("job-detail", request, batch_id=job.batch_id, job_id=job.pk),
        "inchikey": job.inchikey,
        "attempts": job.attempts,
        "call_id": job.call_id or None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def metric_fields(model: str) -> list[dict[str, Any]]:
    return [
        {
            "name": f.name,
            "label": f.label,
            "unit": f.unit,
            "better": f.direction,
            "kind": f.kind,
            "description": f.description,
        }
        for f in get_model(model).outputs
    ]


def dry_run(run: DryRun, request: Request) -> dict[str, Any]:
    validating = run.status == DryRun.Status.VALIDATING
    return {
        "id": str(run.pk),
        "url": _url("dry-run-detail", request, dry_run_id=run.pk),
        "status": run.status,
        "intake": intake_progress(run) if validating else None,
        "report": run.report,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "expires_at": dry_run_expires_at(run),
    }

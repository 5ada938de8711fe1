"""Selectors for the hub's health: the machine, the batches, the executor.

Every figure is measured when asked; nothing is cached here. Batch and job
reads use the counters and partial indexes the engine keeps (O(active
batches) or O(in-flight jobs)); `batches` is imported inside each function,
as monitoring never imports batch models when it is loaded (DESIGN §2).
"""

import os
import time
from datetime import datetime, timedelta
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs pinned in requirements
from django.conf import settings
from django.db.models import Count, Min, OuterRef, Q, Subquery, Sum

# psutil measures CPU use between two calls in one process. The first call
# has nothing to compare with, so it samples for this long instead.
CPU_FIRST_SAMPLE_SECONDS = 0.2
_cpu_primed = False


def system_health() -> dict[str, Any]:
    """This host as the process sees it; disk is the data directory's (SQLite, media)."""
    process = psutil.Process()
    load_1, load_5, load_15 = os.getloadavg()
    return {
        "cpu_percent": _cpu_percent(),
        "cpu_count": psutil.cpu_count(),
        "memory_percent": psutil.virtual_memory().percent,
        "disk_percent": psutil.disk_usage(str(settings.VAR_DIR)).percent,
        "load_average": {"1m": load_1, "5m": load_5, "15m": load_15},
        "uptime_seconds": round(time.time() - process.create_time(), 1),
        "host_uptime_seconds": round(time.time() - psutil.boot_time(), 1),
        "process_memory_mb": round(process.memory_info().rss / 2**20, 1),
    }


def _cpu_percent() -> float:
    global _cpu_primed
    if not _cpu_primed:
        _cpu_primed = True
        return float(psutil.cpu_percent(interval=CPU_FIRST_SAMPLE_SECONDS))
    return float(psutil.cpu_percent(interval=None))


def batch_health(*, now: datetime) -> dict[str, Any]:
    """Batch totals by state (all time), and failure rates over the batches
    active now or finished within OMTX_BATCH_HEALTH_WINDOW_SECONDS.

    `average_error_rate`: failed jobs over finished-and-not-cancelled jobs, %.
    `batch_failure_rate`: batches that ended `failed` over those that ran to
    an end (completed, completed with failures, failed), %. Both None when
    nothing counts yet. `healthy` is added by the dashboard from the rules."""
    from batches.models import Batch
    from batches.states import BATCH_ACTIVE, BatchStatus

    counts = {status: 0 for status in BatchStatus.values}
    for status, n in Batch.objects.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n"):
        counts[status] = n
    since = now - timedelta(seconds=settings.OMTX_BATCH_HEALTH_WINDOW_SECONDS)
    ran_to_end = [BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_FAILURES, BatchStatus.FAILED]
    recent = Batch.objects.filter(Q(status__in=BATCH_ACTIVE) | Q(finished_at__gte=since)).aggregate(
        failed_jobs=Sum("n_failed"),
        succeeded_jobs=Sum("n_succeeded"),
        ended=Count("pk", filter=Q(status__in=ran_to_end)),
        failed_batches=Count("pk", filter=Q(status=BatchStatus.FAILED)),
    )
    finished_jobs = (recent["failed_jobs"] or 0) + (recent["succeeded_jobs"] or 0)
    return {
        "total_batches": sum(counts.values()),
        "active_batches": counts[BatchStatus.QUEUED] + counts[BatchStatus.RUNNING] + counts[BatchStatus.VALIDATING],
        "completed_batches": counts[BatchStatus.COMPLETED] + counts[BatchStatus.COMPLETED_WITH_FAILURES],
        "failed_batches": counts[BatchStatus.FAILED],
        "by_status": counts,
        "window_seconds": settings.OMTX_BATCH_HEALTH_WINDOW_SECONDS,
        "average_error_rate": _percent(recent["failed_jobs"] or 0, finished_jobs),
        "batch_failure_rate": _percent(recent["failed_batches"] or 0, recent["ended"] or 0),
    }


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def executor_health(*, now: datetime) -> dict[str, Any]:
    """Jobs in flight under a live lease, leases that ran out (a dispatcher
    died and none has reaped its jobs yet), the queue and its oldest job, and
    whether each model's executor can run here."""
    from batches.models import Job
    from batches.states import JobStatus

    # job_active_lease (partial on dispatched/running) serves all three aggregates.
    held = Job.objects.filter(status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]).aggregate(
        live=Count("pk", filter=Q(lease_expires_at__gte=now)),
        expired=Count("pk", filter=Q(lease_expires_at__lt=now)),
        oldest_expiry=Min("lease_expires_at", filter=Q(lease_expires_at__lt=now)),
    )
    queue = _queue(now=now)
    return {
        "in_flight": held["live"] or 0,
        "expired_leases": held["expired"] or 0,
        "oldest_expired_lease_seconds": _age(now, held["oldest_expiry"]),
        "queue_depth": queue["depth"],
        "oldest_queued_job_seconds": _age(now, queue["oldest"]),
        "max_in_flight": settings.OMTX_MAX_IN_FLIGHT,
        "lease_seconds": settings.OMTX_LEASE_SECONDS,
        "executors": executor_configuration(),
    }


def _queue(*, now: datetime) -> dict[str, Any]:
    """Queued jobs from the active batches' counters, and the oldest one: per
    batch with queued work, its first queued job in input order (one probe of
    job_batch_queue each), so O(active batches), never O(queued jobs). Jobs of
    a batch are created together, so its first queued job is its oldest; a
    retried job counts from its creation, as it has waited since then."""
    from batches.models import Batch, Job
    from batches.states import BATCH_ACTIVE, JobStatus

    first_queued = Job.objects.filter(batch=OuterRef("pk"), status=JobStatus.QUEUED).order_by("index")
    rows = (
        Batch.objects.filter(status__in=BATCH_ACTIVE, n_queued__gt=0)
        .annotate(first_queued_at=Subquery(first_queued.values("created_at")[:1]))
        .values_list("n_queued", "first_queued_at")
    )
    depth, oldest = 0, None
    for n_queued, first_queued_at in rows:
        depth += n_queued
        if first_queued_at is not None and (oldest is None or first_queued_at < oldest):
            oldest = first_queued_at
    return {"depth": depth, "oldest": oldest}


def _age(now: datetime, then: datetime | None) -> float | None:
    return round((now - then).total_seconds(), 1) if then is not None else None


def executor_configuration() -> list[dict[str, Any]]:
    """Per model: its executor and why it cannot run here ("" when it can),
    as the submission API would refuse it (batches.engine.availability)."""
    from batches.catalog import MODELS
    from batches.engine.availability import check_executor
    from omtx_hub.errors import DomainError

    rows = []
    for spec in MODELS.values():
        try:
            check_executor(spec)
            problem = ""
        except DomainError as exc:
            problem = exc.details["reason"] if isinstance(exc.details, dict) else exc.message
        rows.append({"model": spec.name, "executor": spec.executor, "ready": not problem, "problem": problem})
    return rows

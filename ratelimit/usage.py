"""What a user is using now, for quotas. `batches` is imported inside the functions: the
batches app imports ratelimit, never the other way round at import time (DESIGN §2)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone


@dataclass(frozen=True)
class Usage:
    active_batches: int
    queued_jobs: int
    gpu_seconds_month: int


def usage_of(*, user_id: int | None = None) -> Usage:
    """One user's usage; every user's together when user_id is None (staff metrics)."""
    from batches.models import Batch
    from batches.states import BATCH_ACTIVE, BatchStatus

    batches = Batch.objects.filter(status__in=[*BATCH_ACTIVE, BatchStatus.VALIDATING])
    if user_id is not None:
        batches = batches.filter(owner_id=user_id)
    # Counters on the batch rows (batch_owner_status index), not a scan of jobs. A batch
    # still validating has no jobs yet: its submitted ligands are what it will queue.
    totals = batches.aggregate(
        active=Count("id"),
        queued=Coalesce(Sum("n_queued"), 0),
        pending=Coalesce(Sum("ligands_submitted", filter=Q(status=BatchStatus.VALIDATING)), 0),
    )
    return Usage(
        active_batches=totals["active"],
        queued_jobs=totals["queued"] + totals["pending"],
        gpu_seconds_month=gpu_seconds_since(month_start(), user_id=user_id),
    )


def gpu_seconds_since(since: datetime, *, user_id: int | None) -> int:
    """Executed (not reused) jobs of GPU models finished since `since`: their run time,
    started_at to finished_at, is the GPU time paid for."""
    from batches.catalog import MODELS
    from batches.models import Job

    gpu_models = [name for name, spec in MODELS.items() if spec.gpu]
    jobs = Job.objects.filter(
        batch__model__in=gpu_models, finished_at__gte=since, started_at__isnull=False, reused_from__isnull=True
    )
    if user_id is not None:
        jobs = jobs.filter(batch__owner_id=user_id)
    run_time = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    total = jobs.aggregate(total=Sum(run_time))["total"] or timedelta()
    return int(total.total_seconds())


def month_start() -> datetime:
    return timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)

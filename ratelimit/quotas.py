"""Quotas per tier, checked when a batch is submitted (batches.services.submission calls
`quota_check_submission`). Over a quota that waiting frees (active batches, queued jobs):
429. Over one that waiting does not (ligands in one batch, this month's GPU time): 403.
Either way the error names the quota, its limit and the current usage."""

from typing import Any

from django.conf import settings

from omtx_hub.errors import DomainError
from ratelimit.metrics import REJECTIONS
from ratelimit.tiers import TierLimits, tier_for_user
from ratelimit.usage import Usage, usage_of


class QuotaExceeded(DomainError):
    status_code = 403
    code = "quota_exceeded"


class QuotaBusy(QuotaExceeded):
    status_code = 429


def quota_check_submission(*, owner_id: int, ligands: int) -> None:
    """Raise QuotaExceeded (or QuotaBusy) if a batch of `ligands` would pass a quota."""
    if not settings.RATE_LIMIT_QUOTAS_ENABLED:
        return
    tier = tier_for_user(owner_id)
    _refuse_if(ligands > tier.max_ligands_per_batch, QuotaExceeded, "max_ligands_per_batch", tier, ligands, 0)
    usage = usage_of(user_id=owner_id)
    over_gpu = usage.gpu_seconds_month >= tier.gpu_seconds_per_month
    _refuse_if(over_gpu, QuotaExceeded, "gpu_seconds_per_month", tier, 0, usage.gpu_seconds_month)
    over_active = usage.active_batches + 1 > tier.max_active_batches
    _refuse_if(over_active, QuotaBusy, "max_active_batches", tier, 1, usage.active_batches)
    over_queued = usage.queued_jobs + ligands > tier.max_queued_jobs
    _refuse_if(over_queued, QuotaBusy, "max_queued_jobs", tier, ligands, usage.queued_jobs)


def quota_report(*, user_id: int) -> dict[str, Any]:
    """The caller's tier, each quota's limit and what is used of it."""
    tier = tier_for_user(user_id)
    usage = usage_of(user_id=user_id)
    return {"tier": tier.name, "quotas": _quotas(tier, usage)}


def _quotas(tier: TierLimits, usage: Usage) -> dict[str, dict[str, int]]:
    return {
        "max_ligands_per_batch": {"limit": tier.max_ligands_per_batch, "used": 0},
        "max_active_batches": {"limit": tier.max_active_batches, "used": usage.active_batches},
        "max_queued_jobs": {"limit": tier.max_queued_jobs, "used": usage.queued_jobs},
        "gpu_seconds_per_month": {"limit": tier.gpu_seconds_per_month, "used": usage.gpu_seconds_month},
    }


def _refuse_if(over: bool, error: type[QuotaExceeded], quota: str, tier: TierLimits, requested: int, used: int) -> None:
    if not over:
        return
    limit = getattr(tier, quota)
    REJECTIONS.labels(scope="quota").inc()
    raise error(
        f"Over the {tier.name} tier's {quota} quota: {used} used, {requested} requested, limit {limit}.",
        details={"quota": quota, "tier": tier.name, "limit": limit, "used": used, "requested": requested},
    )

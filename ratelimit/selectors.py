"""Reads for the rate-limit API and admin, and the allow-list's two writes."""

import ipaddress
from typing import Any

from django.db.models import Count, QuerySet

from omtx_hub.errors import Conflict, InvalidInput
from ratelimit.allowlist import forget_allowed_networks
from ratelimit.backend import get_backend
from ratelimit.blocks import blocks_active
from ratelimit.limiter import recent_rejections, user_buckets
from ratelimit.models import AllowedNetwork, BlockedIP, Tier, TierAssignment
from ratelimit.status import limiter_status
from ratelimit.tiers import tier_for_user
from ratelimit.usage import usage_of


def user_limits(*, user_id: int) -> dict[str, Any]:
    """The user's tier and what is left in each of their buckets, looked at, not taken."""
    tier = tier_for_user(user_id)
    subject = f"u:{user_id}"
    buckets = user_buckets(tier, subject=subject, endpoint=None)
    for endpoint in sorted(tier.endpoint_limits):
        buckets += user_buckets(tier, subject=subject, endpoint=endpoint)[1:]
    decision = get_backend().take(buckets, cost=0)
    return {
        "user_id": user_id,
        "tier": tier.as_dict(),
        "buckets": [
            {
                "name": state.bucket.name,
                "limit_per_minute": round(state.bucket.per_minute),
                "capacity": state.bucket.capacity,
                "remaining": max(0, state.remaining),
                "reset_seconds": round(state.reset, 3),
            }
            for state in decision.states
        ],
        "recent_rejections": recent_rejections(),
        "limiter": limiter_status(),
    }


def blocks_listed() -> QuerySet[BlockedIP]:
    return blocks_active().order_by("-created_at")


def block_row(row: BlockedIP) -> dict[str, Any]:
    return {
        "id": row.pk,
        "ip": row.ip,
        "reason": row.reason,
        "counts": row.counts,
        "offence": row.offence,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "note": row.note,
    }


def active_blocks_by_reason() -> dict[str, int]:
    rows = blocks_active().values("reason").annotate(n=Count("id"))
    return {row["reason"]: row["n"] for row in rows}


def users_by_tier() -> dict[str, int]:
    """Assigned users per tier (users without an assignment are on the default tier)."""
    counts = dict(TierAssignment.objects.values_list("tier__name").annotate(n=Count("id")))
    return {name: counts.get(name, 0) for name in Tier.objects.values_list("name", flat=True)}


def resource_metrics() -> dict[str, Any]:
    usage = usage_of(user_id=None)
    return {
        "active_batches": usage.active_batches,
        "queued_jobs": usage.queued_jobs,
        "gpu_seconds_month": usage.gpu_seconds_month,
        "users_by_tier": users_by_tier(),
    }


def allow_network(*, network: str, note: str = "") -> AllowedNetwork:
    try:
        cidr = str(ipaddress.ip_network(network, strict=False))
    except ValueError as error:
        raise InvalidInput(f"{network!r} is not a network (CIDR).", code="invalid_network") from error
    row, created = AllowedNetwork.objects.get_or_create(network=cidr, defaults={"note": note})
    if not created:
        raise Conflict(f"{cidr} is already allowed.", code="already_allowed")
    forget_allowed_networks()
    return row


def disallow_network(*, row: AllowedNetwork) -> None:
    row.delete()
    forget_allowed_networks()

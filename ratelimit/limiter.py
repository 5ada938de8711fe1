"""One limiter call per request: the caller's tier bucket (per user, or per address when
anonymous) and, on a limited endpoint, its endpoint bucket, taken together in one backend
call. The decision rides on the request for the middleware to turn into headers."""

import math
import time

from django.conf import settings
from django.http import HttpRequest

from omtx_hub.errors import DomainError
from ratelimit.backend import get_backend
from ratelimit.buckets import Bucket, Decision
from ratelimit.endpoints import endpoint_name
from ratelimit.metrics import REJECTIONS
from ratelimit.tiers import TierLimits, default_tier, tier_for_user

DECISION_ATTR = "omtx_rate_limit"
# Recent rejections are counted per minute; `recent_rejections` sums this many minutes.
REJECTION_MINUTES = 5


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"


def limit_user(request: HttpRequest, *, user_id: int) -> Decision:
    return _limit(request, tier=tier_for_user(user_id), subject=f"u:{user_id}")


def limit_address(request: HttpRequest, *, ip: str) -> Decision:
    return _limit(request, tier=default_tier(), subject=f"ip:{ip}")


def user_buckets(tier: TierLimits, *, subject: str, endpoint: str | None) -> list[Bucket]:
    """The tier bucket, then the endpoint's when the tier limits it."""
    scale = settings.RATE_LIMIT_SCALE
    prefix = f"{settings.RATE_LIMIT_KEY_PREFIX}:{subject}"
    buckets = [Bucket(prefix, tier.name, tier.requests_per_minute * scale, _capacity(tier.burst, scale))]
    limit = tier.endpoint_limits.get(endpoint) if endpoint else None
    if endpoint and limit:
        # An endpoint's whole minute may come at once; its rate paces the rest.
        buckets.append(Bucket(f"{prefix}:{endpoint}", endpoint, limit * scale, _capacity(limit, scale)))
    return buckets


def rejected(decision: Decision, *, anonymous: bool = False) -> RateLimited:
    """The 429 for a refused decision, naming the policies that ran out."""
    empty = [state.bucket.name for state in decision.states if state.wait > 0]
    endpoint_empty = len(decision.states) > 1 and decision.states[-1].wait > 0
    record_rejection(scope="anonymous" if anonymous else "endpoint" if endpoint_empty else "tier")
    return RateLimited(
        f"Rate limit exceeded; retry in {decision.retry_after} s.",
        details={"policies": empty, "retry_after": decision.retry_after},
    )


def headers(decision: Decision) -> dict[str, str]:
    """The IETF fields (draft-ietf-httpapi-ratelimit-headers): each policy's quota per
    60-second window, and what is left of it with the seconds until it refills (until the
    next token when none is left; until full otherwise)."""
    policy = ", ".join(f'"{s.bucket.name}";q={round(s.bucket.per_minute)};w=60' for s in decision.states)
    state = ", ".join(
        f'"{s.bucket.name}";r={max(0, s.remaining)};t={math.ceil(s.wait if s.remaining < 1 else s.reset)}'
        for s in decision.states
    )
    fields = {"RateLimit-Policy": policy, "RateLimit": state}
    if not decision.allowed:
        fields["Retry-After"] = str(decision.retry_after)
    return fields


def record_rejection(*, scope: str) -> None:
    REJECTIONS.labels(scope=scope).inc()
    minute = int(time.time() // 60)
    get_backend().count(f"{settings.RATE_LIMIT_KEY_PREFIX}:rejections:{minute}", window=REJECTION_MINUTES * 60 + 60)


def recent_rejections() -> int:
    """Requests refused (any scope) in the last REJECTION_MINUTES whole minutes and this one."""
    minute = int(time.time() // 60)
    keys = [f"{settings.RATE_LIMIT_KEY_PREFIX}:rejections:{minute - n}" for n in range(REJECTION_MINUTES + 1)]
    return get_backend().read_counts(keys)


def _limit(request: HttpRequest, *, tier: TierLimits, subject: str) -> Decision:
    decision = get_backend().take(user_buckets(tier, subject=subject, endpoint=endpoint_name(request)))
    setattr(request, DECISION_ATTR, decision)
    return decision


def _capacity(value: int, scale: float) -> int:
    return max(1, math.ceil(value * scale))

"""Which tier a user is on, read from the database and held in this process for
RATE_LIMIT_TIER_CACHE_SECONDS. The memo is per process, not the Django cache, so a limited
request costs no cache round trip besides the limiter's one script call; a tier changed in
the admin reaches other processes within that many seconds (docs/rate-limiting.md)."""

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ratelimit.endpoints import ENDPOINTS
from ratelimit.models import Tier, TierAssignment, valid_limit
from ratelimit.seed import DEFAULT

log = logging.getLogger(__name__)

DEFAULT_KEY = 0  # the memo's key for "no assignment": user ids start at 1


@dataclass(frozen=True)
class TierLimits:
    name: str
    requests_per_minute: int
    burst: int
    endpoint_limits: dict[str, int]
    max_ligands_per_batch: int
    max_active_batches: int
    max_queued_jobs: int
    gpu_seconds_per_month: int
    fair_share_weight: float

    @classmethod
    def of(cls, tier: Tier) -> "TierLimits":
        return cls(
            name=tier.name,
            requests_per_minute=tier.requests_per_minute,
            burst=tier.burst,
            endpoint_limits=_endpoint_limits(tier),
            max_ligands_per_batch=tier.max_ligands_per_batch,
            max_active_batches=tier.max_active_batches,
            max_queued_jobs=tier.max_queued_jobs,
            gpu_seconds_per_month=tier.gpu_seconds_per_month,
            fair_share_weight=tier.fair_share_weight,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests_per_minute": self.requests_per_minute,
            "burst": self.burst,
            "endpoint_limits": self.endpoint_limits,
            "fair_share_weight": self.fair_share_weight,
        }


def _endpoint_limits(tier: Tier) -> dict[str, int]:
    """The tier's valid endpoint limits. A bad one stored despite Tier.clean (a shell, a row
    older than the check) is logged and left out: that endpoint then has the tier limit
    only, rather than every request on the tier failing."""
    stored = tier.endpoint_limits if isinstance(tier.endpoint_limits, dict) else {}
    known = set(ENDPOINTS.values())
    limits = {name: limit for name, limit in stored.items() if name in known and valid_limit(limit)}
    if limits != (tier.endpoint_limits or {}):
        log.error("tier %s: ignoring bad endpoint limits in %r", tier.name, tier.endpoint_limits)
    return limits


class _Memo:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, TierLimits]] = {}

    def get(self, key: int) -> TierLimits | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: int, limits: TierLimits) -> TierLimits:
        with self._lock:
            self._entries[key] = (time.monotonic() + settings.RATE_LIMIT_TIER_CACHE_SECONDS, limits)
        return limits

    def hold(self, key: int, limits: TierLimits) -> None:
        with self._lock:
            self._entries[key] = (float("inf"), limits)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_memo = _Memo()


def tier_for_user(user_id: int | None) -> TierLimits:
    """The user's tier; the default tier for None (anonymous) or a user without one."""
    key = user_id or DEFAULT_KEY
    if (limits := _memo.get(key)) is not None:
        return limits
    assignment = TierAssignment.objects.select_related("tier").filter(user_id=key).first() if user_id else None
    return _memo.put(key, TierLimits.of(assignment.tier) if assignment else default_tier())


def default_tier() -> TierLimits:
    if (limits := _memo.get(DEFAULT_KEY)) is not None:
        return limits
    # The default tier if one is marked, else the most restrictive: never unlimited by accident.
    # An empty table (every tier deleted, a test that truncates) means the seed's default.
    tier = Tier.objects.order_by("-is_default", "requests_per_minute").first() or Tier(**DEFAULT)
    return _memo.put(DEFAULT_KEY, TierLimits.of(tier))


def tier_weights(owner_ids: Iterable[int]) -> dict[int, float]:
    """The dispatcher's fair-share weights (batches/engine/fairness.py): one query for the
    users not in the memo."""
    ids = set(owner_ids)
    missing = {uid for uid in ids if _memo.get(uid) is None}
    if missing:
        assigned = TierAssignment.objects.select_related("tier").filter(user_id__in=missing)
        for assignment in assigned:
            _memo.put(assignment.user_id, TierLimits.of(assignment.tier))
        for uid in missing - {a.user_id for a in assigned}:
            _memo.put(uid, default_tier())
    return {uid: tier_for_user(uid).fair_share_weight for uid in ids}


def tier_assign(*, user_id: int, tier: Tier) -> TierAssignment:
    assignment, _ = TierAssignment.objects.update_or_create(user_id=user_id, defaults={"tier": tier})
    forget_cached_tiers()
    return assignment


def hold_default_tier(limits: TierLimits) -> None:
    """The default tier until forgotten, without reading the table (the test suite)."""
    _memo.hold(DEFAULT_KEY, limits)


def forget_cached_tiers() -> None:
    """This process forgets every tier at once (an edit in the admin, a test)."""
    _memo.clear()

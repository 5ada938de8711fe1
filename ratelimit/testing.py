"""The limiter's test isolation, shared by the root conftest and ratelimit/tests."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ratelimit.allowlist import forget_allowed_networks, hold_allowed_networks
from ratelimit.backend import reset_backend
from ratelimit.blocks import forget_held_blocks, hold_no_blocks
from ratelimit.models import Tier
from ratelimit.seed import DEFAULT
from ratelimit.tiers import TierLimits, forget_cached_tiers, hold_default_tier


def forget_process_state() -> None:
    reset_backend()
    forget_cached_tiers()
    forget_allowed_networks()
    forget_held_blocks()


@contextmanager
def isolated_limiter(settings: Any, *, scale: float, quotas: bool, from_seed: bool = False) -> Iterator[str]:
    """Limits scaled by `scale`, quotas on or off, keys under a prefix of this test's own
    (Redis keys expire by themselves), nothing remembered by the process before or after.
    `from_seed`: the default tier is the seed's and the allow-list empty, read from no table,
    so a test without database access may still send an anonymous request."""
    prefix = f"omtx:rl:test:{uuid.uuid4().hex[:12]}"
    settings.RATE_LIMIT_SCALE = scale
    settings.RATE_LIMIT_QUOTAS_ENABLED = quotas
    settings.RATE_LIMIT_KEY_PREFIX = prefix
    # django-ratelimit's counts live in the Django cache, Redis in CI: this test's own too.
    settings.RATELIMIT_CACHE_PREFIX = f"{prefix}:django-ratelimit:"
    forget_process_state()
    if from_seed:
        hold_default_tier(TierLimits.of(Tier(**DEFAULT)))
        hold_allowed_networks()
        # Each test's key prefix starts without a blocked set: nothing to copy back.
        hold_no_blocks()
    try:
        yield prefix
    finally:
        forget_process_state()

"""The limiter's test isolation, shared by the root conftest and ratelimit/tests."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ratelimit.allowlist import forget_allowed_networks
from ratelimit.backend import reset_backend
from ratelimit.tiers import forget_cached_tiers


def forget_process_state() -> None:
    reset_backend()
    forget_cached_tiers()
    forget_allowed_networks()


@contextmanager
def isolated_limiter(settings: Any, *, scale: float, quotas: bool) -> Iterator[str]:
    """Limits scaled by `scale`, quotas on or off, keys under a prefix of this test's own
    (Redis keys expire by themselves), nothing remembered by the process before or after."""
    prefix = f"omtx:rl:test:{uuid.uuid4().hex[:12]}"
    settings.RATE_LIMIT_SCALE = scale
    settings.RATE_LIMIT_QUOTAS_ENABLED = quotas
    settings.RATE_LIMIT_KEY_PREFIX = prefix
    forget_process_state()
    try:
        yield prefix
    finally:
        forget_process_state()

"""The figures other layers measure, read in one place.

Request timing (monitoring.apm), the cache's counters (omtx_hub.cache) and the rate
limiter's state (ratelimit.status) belong to their own modules; health, alerts and the
dashboard read them only through these functions, so a test swaps one function for a fake
and every consumer sees it."""

from typing import Any

from monitoring import apm
from omtx_hub import cache
from ratelimit import status


def performance(*, window_seconds: int) -> dict[str, Any]:
    """Request statistics over the last `window_seconds`, across every process:
    requests, requests_per_second, error_rate (a fraction), avg/p50/p95/p99 ms
    (None when the window is empty) and the same per route."""
    return apm.performance(window_seconds=window_seconds)


def cache_stats() -> dict[str, Any]:
    """hit_rate_percentage, hits, misses, cache_errors, connected_to_redis, backend."""
    return cache.cache_stats()


def cache_ready() -> tuple[bool, str]:
    """Whether the cache answers now, and what was seen."""
    return cache.cache_ready()


def limiter_status() -> dict[str, Any]:
    """enabled, backend, breaker_state, breaker_failures, rejections, blocked_ips."""
    return status.limiter_status()

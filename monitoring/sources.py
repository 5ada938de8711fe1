"""The figures other layers measure, read in one place.

Request timing (monitoring.apm), the cache's counters (omtx_hub.cache) and the
rate limiter's state (ratelimit.status) belong to their own modules; health,
alerts and the dashboard read them only through these functions, so a test
swaps one function for a fake and every consumer sees it.

Each module is imported when first called, not when this one is: those layers
were built beside this app, and importing it must not depend on them (nor
type-checking: `import_module` keeps mypy from needing their stubs)."""

from importlib import import_module
from typing import Any, cast


def performance(*, window_seconds: int) -> dict[str, Any]:
    """Request statistics over the last `window_seconds`, across every process:
    requests, requests_per_second, error_rate (a fraction), avg/p50/p95/p99 ms
    (None when the window is empty) and the same per route."""
    apm = import_module("monitoring.apm")
    return cast(dict[str, Any], apm.performance(window_seconds=window_seconds))


def cache_stats() -> dict[str, Any]:
    """hit_rate_percentage, hits, misses, cache_errors, connected_to_redis, backend."""
    return cast(dict[str, Any], import_module("omtx_hub.cache").cache_stats())


def cache_ready() -> tuple[bool, str]:
    """Whether the cache answers now, and what was seen."""
    return cast(tuple[bool, str], import_module("omtx_hub.cache").cache_ready())


def limiter_status() -> dict[str, Any]:
    """enabled, backend, breaker_state, breaker_failures, rejections, blocked_ips."""
    return cast(dict[str, Any], import_module("ratelimit.status").limiter_status())

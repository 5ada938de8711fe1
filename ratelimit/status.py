"""The limiter's state for the monitoring dashboard and the rate-limit endpoints."""

from typing import Any

from django.conf import settings

from ratelimit.backend import get_backend
from ratelimit.limiter import REJECTION_MINUTES, recent_rejections


def limiter_status() -> dict[str, Any]:
    """`rejections`: requests refused (rate limits, blocks, login limits) in this minute and
    the REJECTION_MINUTES before it, across every process sharing the Redis (this process
    alone without Redis or while the breaker is open)."""
    backend = get_backend()
    counts = backend.breaker.counts
    return {
        "enabled": settings.RATE_LIMIT_ENABLED,
        "backend": backend.name,
        "breaker_state": backend.breaker.state,
        "breaker_failures": counts.consecutive_failures,
        "breaker_failures_total": counts.total_failures,
        "breaker_opened": counts.times_opened,
        "breaker_last_error": counts.last_error,
        "rejections": recent_rejections(),
        "rejections_window_seconds": (REJECTION_MINUTES + 1) * 60,
        "blocked_ips": len(backend.blocked()),
    }

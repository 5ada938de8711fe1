"""One measurement of everything the alert rules and the dashboard read.

`take_snapshot` measures each area once; `reading` picks a rule's metric out
of it. The monitor evaluates every rule against one snapshot, and the
dashboard shows the same snapshot, so both always agree.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from monitoring import health, sources
from monitoring.models import Metric


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    system: dict[str, Any]
    batches: dict[str, Any]
    executor: dict[str, Any]
    performance: dict[str, Any]


def take_snapshot(*, now: datetime) -> Snapshot:
    return Snapshot(
        taken_at=now,
        system=health.system_health(),
        batches=health.batch_health(now=now),
        executor=health.executor_health(now=now),
        performance=sources.performance(window_seconds=settings.OMTX_MONITORING_WINDOW_SECONDS),
    )


def _error_rate_percent(snapshot: Snapshot) -> float | None:
    # APM gives a fraction; rules and the dashboard speak percent.
    if not snapshot.performance.get("requests"):
        return None
    return round(100.0 * float(snapshot.performance["error_rate"]), 2)


READERS: dict[str, Callable[[Snapshot], float | None]] = {
    Metric.CPU_PERCENT: lambda s: s.system["cpu_percent"],
    Metric.MEMORY_PERCENT: lambda s: s.system["memory_percent"],
    Metric.DISK_PERCENT: lambda s: s.system["disk_percent"],
    Metric.ERROR_RATE_PERCENT: _error_rate_percent,
    Metric.P95_MS: lambda s: s.performance.get("p95_response_time_ms"),
    Metric.BATCH_FAILURE_PERCENT: lambda s: s.batches["batch_failure_rate"],
    Metric.JOB_ERROR_PERCENT: lambda s: s.batches["average_error_rate"],
    Metric.EXPIRED_LEASE_SECONDS: lambda s: s.executor["oldest_expired_lease_seconds"],
    Metric.QUEUED_JOB_SECONDS: lambda s: s.executor["oldest_queued_job_seconds"],
}


def reading(snapshot: Snapshot, metric: str) -> float | None:
    """The metric's value in this snapshot; None when it has none (an empty
    APM window, no finished batch, nothing queued)."""
    value = READERS[metric](snapshot)
    return None if value is None else float(value)

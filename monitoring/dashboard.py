"""The dashboard JSON and its aliases, built from one snapshot (selectors).

The seed's shape (DESIGN §7) is kept field for field; every number comes from
a measurement in monitoring.readings or monitoring.sources.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring import sources
from monitoring.alerts import open_alert_list
from monitoring.models import Alert, AlertRule, Metric, Severity
from monitoring.readiness import readiness
from monitoring.readings import Snapshot, reading, take_snapshot

# The rules that speak for the batches: while one holds, batch_health.healthy is false.
BATCH_METRICS = (
    Metric.BATCH_FAILURE_PERCENT,
    Metric.JOB_ERROR_PERCENT,
    Metric.EXPIRED_LEASE_SECONDS,
    Metric.QUEUED_JOB_SECONDS,
)


@dataclass(frozen=True)
class Objective:
    """A latency objective from the seed: p95 of these routes under `p95_ms`."""

    name: str
    routes: tuple[tuple[str, str], ...]  # (URL name, method)
    p95_ms: float


# The seed's service level objectives.
OBJECTIVES = (
    Objective("submit", (("v3:batch-list", "POST"), ("v3:batch-submit", "POST")), 2000.0),
    Objective("status", (("v3:batch-status", "GET"),), 500.0),
    Objective("list", (("v3:batch-list", "GET"),), 1000.0),
    Objective("results", (("v3:batch-results", "GET"),), 3000.0),
)
ERROR_RATE_OBJECTIVE_PERCENT = 1.0


def dashboard(*, now: datetime) -> dict[str, Any]:
    snapshot = take_snapshot(now=now)
    return {
        "generated_at": now.isoformat(),
        "system_health": snapshot.system,
        "batch_health": {**snapshot.batches, "healthy": batches_healthy(snapshot)},
        "executor": snapshot.executor,
        "cache_stats": sources.cache_stats(),
        "performance": _performance(snapshot),
        "rate_limiting": sources.limiter_status(),
        "alerts": [alert_brief(alert) for alert in open_alert_list()],
    }


def batches_healthy(snapshot: Snapshot) -> bool:
    """No enabled batch or executor rule holds on this snapshot."""
    rules = AlertRule.objects.filter(enabled=True, metric__in=BATCH_METRICS)
    return not any(rule.holds(reading(snapshot, rule.metric)) for rule in rules)


def _performance(snapshot: Snapshot) -> dict[str, Any]:
    perf = snapshot.performance
    keys = ("window_seconds", "requests", "requests_per_second", "avg_response_time_ms")
    return {
        **{key: perf.get(key) for key in keys},
        "store_available": perf.get("store_available", True),
        "error_rate_percent": reading(snapshot, Metric.ERROR_RATE_PERCENT),
        **{f"p{q}_response_time_ms": perf.get(f"p{q}_response_time_ms") for q in (50, 95, 99)},
    }


def alert_brief(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "rule": alert.rule.name,
        "metric": alert.rule.metric,
        "severity": alert.severity,
        "message": alert.message,
        "threshold": alert.threshold,
        "value": alert.value,
        "last_value": alert.last_value,
        "opened_at": alert.opened_at.isoformat(),
        "acknowledged": alert.acknowledged_at is not None,
    }


def overall_status(*, ready: bool, alerts: list[Alert]) -> str:
    """unhealthy: not ready or a critical alert open; degraded: another alert open."""
    if not ready or any(alert.severity == Severity.CRITICAL for alert in alerts):
        return "unhealthy"
    return "degraded" if alerts else "healthy"


def status_summary() -> dict[str, Any]:
    ready, checks = readiness()
    alerts = open_alert_list()
    return {
        "status": overall_status(ready=ready, alerts=alerts),
        "ready": ready,
        "checks": {name: check.staff() for name, check in checks.items()},
        "open_alerts": len(alerts),
        "critical_alerts": sum(alert.severity == Severity.CRITICAL for alert in alerts),
    }


def slo_report(*, performance: dict[str, Any]) -> dict[str, Any]:
    """Each objective against the APM window. Percentiles of two routes do not
    add up, so an objective over two routes reports the worse p95 of them.
    `met` is None for a route nobody called in the window: nothing was measured."""
    routes = {(row["route"], row["method"]): row for row in performance.get("routes", [])}
    objectives = [_objective(objective, routes) for objective in OBJECTIVES]
    requests = performance.get("requests") or 0
    error_rate = 100.0 * float(performance.get("error_rate") or 0.0) if requests else None
    return {
        "window_seconds": performance.get("window_seconds"),
        "objectives": objectives,
        "error_rate": {
            "objective_percent": ERROR_RATE_OBJECTIVE_PERCENT,
            "measured_percent": None if error_rate is None else round(error_rate, 3),
            "requests": requests,
            "met": None if error_rate is None else error_rate < ERROR_RATE_OBJECTIVE_PERCENT,
        },
    }


def _objective(objective: Objective, routes: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    rows = [routes[key] for key in objective.routes if key in routes and routes[key].get("requests")]
    p95s = [row["p95_ms"] for row in rows if row.get("p95_ms") is not None]
    p95 = max(p95s) if p95s else None
    return {
        "name": objective.name,
        "routes": [f"{method} {name}" for name, method in objective.routes],
        "objective_p95_ms": objective.p95_ms,
        "p95_ms": p95,
        "requests": sum(row["requests"] for row in rows),
        "met": None if p95 is None else p95 < objective.p95_ms,
    }

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import token_create
from batches.models import Batch
from monitoring import alerts
from monitoring.tests.fakes import FakeSources, clean_migrations_cache, fake_sources_fixture  # noqa: F401

pytestmark = pytest.mark.usefixtures("fake_sources", "clean_migrations_cache")

ENDPOINTS = [
    "/api/v3/monitoring/dashboard",
    "/api/v3/cache/stats",
    "/api/v3/monitoring/health",
    "/api/v3/health/status",
    "/api/v3/health/services",
    "/api/v3/health/metrics",
    "/api/v3/health/slo",
]


def client_for(user: User) -> APIClient:
    client = APIClient()
    _, raw = token_create(user=user, name="test")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def bare_staff(db: None) -> User:
    """Staff flag, no model permission: not enough."""
    return User.objects.create_user("bare-staff", password="pw-bare-123", is_staff=True)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_staff_only(
    url: str, staff_client: APIClient, outsider_client: APIClient, anon_client: APIClient, bare_staff: User
) -> None:
    assert staff_client.get(url).status_code == 200
    assert staff_client.get(url + "/").status_code == 200
    assert outsider_client.get(url).status_code == 403
    assert client_for(bare_staff).get(url).status_code == 403
    response = anon_client.get(url)
    assert response.status_code == 401 and response.json()["error"]["code"]


def test_staff_with_the_view_permission_may_read(bare_staff: User) -> None:
    bare_staff.user_permissions.add(Permission.objects.get(codename="view_alertrule"))
    assert client_for(bare_staff).get("/api/v3/monitoring/dashboard").status_code == 200


def test_dashboard_has_the_seeds_shape(staff_client: APIClient) -> None:
    body = staff_client.get("/api/v3/monitoring/dashboard").json()
    assert {"cpu_percent", "memory_percent", "disk_percent", "uptime_seconds"} <= set(body["system_health"])
    assert {
        "total_batches",
        "active_batches",
        "completed_batches",
        "failed_batches",
        "average_error_rate",
        "healthy",
    } <= set(body["batch_health"])
    assert {"hit_rate_percentage", "cache_errors", "connected_to_redis"} <= set(body["cache_stats"])
    assert {"avg_response_time_ms", "p95_response_time_ms", "requests_per_second"} <= set(body["performance"])
    assert {"in_flight", "queue_depth", "oldest_queued_job_seconds", "expired_leases"} <= set(body["executor"])
    assert body["rate_limiting"]["breaker_state"] == "closed"
    assert isinstance(body["alerts"], list)


def test_dashboard_numbers_move_with_what_happens(
    staff_client: APIClient,
    owner_client: APIClient,
    fake_sources: FakeSources,
    run_all: Callable[[], None],
    settings: Any,
) -> None:
    def dashboard() -> dict[str, Any]:
        return dict(staff_client.get("/api/v3/monitoring/dashboard").json())

    before = dashboard()
    assert before["batch_health"]["total_batches"] == 0 and before["executor"]["queue_depth"] == 0
    # A scientist submits through the API: the batch and its queue show at once.
    ligands = [{"name": "ethanol", "smiles": "CCO"}, {"name": "phenol", "smiles": "c1ccccc1O"}]
    submitted = owner_client.post(
        "/api/v3/batches", {"name": "b", "protein_sequence": "MENFQKVEKIGEGTYGVVYK", "ligands": ligands}, format="json"
    )
    assert submitted.status_code == 201, submitted.content
    queued = dashboard()
    assert queued["batch_health"]["total_batches"] == 1 and queued["batch_health"]["active_batches"] == 1
    assert queued["executor"]["queue_depth"] == 2 and queued["executor"]["oldest_queued_job_seconds"] >= 0
    run_all()
    done = dashboard()
    assert done["batch_health"]["completed_batches"] == 1 and done["executor"]["queue_depth"] == 0
    assert done["batch_health"]["healthy"] is True
    # Request figures and cache counters come from their layers, as measured there.
    fake_sources.perf.update(requests=500, requests_per_second=1.7, p95_response_time_ms=250.0, error_rate=0.004)
    fake_sources.cache.update(hit_rate_percentage=42.0, cache_errors=7)
    later = dashboard()
    assert later["performance"]["requests_per_second"] == 1.7
    assert later["performance"]["p95_response_time_ms"] == 250.0
    assert later["performance"]["error_rate_percent"] == 0.4
    assert later["performance"]["window_seconds"] == settings.OMTX_MONITORING_WINDOW_SECONDS
    assert later["cache_stats"]["hit_rate_percentage"] == 42.0 and later["cache_stats"]["cache_errors"] == 7


def test_dashboard_lists_open_alerts_and_unhealthy_batches(
    staff_client: APIClient, make_batch: Callable[..., Batch], fake_sources: FakeSources
) -> None:
    failed = make_batch()
    Batch.objects.filter(pk=failed.pk).update(status="failed", n_queued=0, n_failed=4, finished_at=timezone.now())
    body = staff_client.get("/api/v3/monitoring/dashboard").json()
    assert body["batch_health"]["healthy"] is False  # 100 % of ended batches failed
    fake_sources.set_p95(9000.0)
    alerts.evaluate(now=timezone.now())
    body = staff_client.get("/api/v3/monitoring/dashboard").json()
    rules = {alert["rule"] for alert in body["alerts"]}
    assert {"slow-responses", "batch-failures"} <= rules


def test_status_alias_reports_open_alerts(staff_client: APIClient, fake_sources: FakeSources) -> None:
    assert staff_client.get("/api/v3/health/status").json()["critical_alerts"] == 0
    fake_sources.perf["error_rate"] = 0.5
    alerts.evaluate(now=timezone.now())
    body = staff_client.get("/api/v3/health/status").json()
    assert body["status"] == "unhealthy" and body["critical_alerts"] >= 1 and body["ready"] is True


def test_services_alias(staff_client: APIClient, fake_sources: FakeSources) -> None:
    fake_sources.cache_ok = (False, "connection refused")
    body = staff_client.get("/api/v3/health/services").json()
    assert body["ready"] is False
    assert body["services"]["cache"] == {"ok": False, "state": "unreachable", "detail": "connection refused"}
    assert body["services"]["rate_limiter"]["backend"] == "redis"


def test_cache_stats(staff_client: APIClient, fake_sources: FakeSources) -> None:
    fake_sources.cache["hits"] = 1234
    assert staff_client.get("/api/v3/cache/stats").json()["hits"] == 1234


def test_slo_against_the_window(staff_client: APIClient, fake_sources: FakeSources) -> None:
    fake_sources.perf["routes"] = [
        {"route": "v3:batch-status", "method": "GET", "requests": 90, "errors": 0, "p95_ms": 120.0},
        {"route": "v3:batch-list", "method": "POST", "requests": 5, "errors": 0, "p95_ms": 900.0},
        {"route": "v3:batch-submit", "method": "POST", "requests": 3, "errors": 0, "p95_ms": 2600.0},
        {"route": "v3:batch-results", "method": "GET", "requests": 10, "errors": 1, "p95_ms": 3100.0},
    ]
    body = staff_client.get("/api/v3/health/slo").json()
    objectives = {row["name"]: row for row in body["objectives"]}
    assert objectives["status"]["met"] is True and objectives["status"]["p95_ms"] == 120.0
    # Two routes: the worse p95 decides.
    assert objectives["submit"]["p95_ms"] == 2600.0 and objectives["submit"]["requests"] == 8
    assert objectives["submit"]["met"] is False
    assert objectives["results"]["met"] is False
    assert objectives["list"] == {**objectives["list"], "met": None, "p95_ms": None, "requests": 0}
    assert body["error_rate"]["measured_percent"] == 2.5 and body["error_rate"]["met"] is False


def test_monitoring_health_alias(staff_client: APIClient, make_batch: Callable[..., Batch]) -> None:
    make_batch()
    body = staff_client.get("/api/v3/monitoring/health").json()
    assert body["status"] in {"healthy", "degraded", "unhealthy"}
    assert body["batch_health"]["total_batches"] == 1 and body["executor"]["queue_depth"] == 4


def test_metrics_alias_is_the_dashboard_without_alerts(staff_client: APIClient) -> None:
    body = staff_client.get("/api/v3/health/metrics").json()
    assert "alerts" not in body and "system_health" in body and "executor" in body

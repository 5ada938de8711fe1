"""The APM through real requests: numbers move with traffic, routes by URL name, errors are
5xx answers, an empty window reports nothing, old buckets leave the window."""

import time
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from batches.models import Batch
from monitoring import apm
from monitoring.apm_store import BUCKET_SECONDS, FileStore

pytestmark = pytest.mark.django_db


def route(report: dict[str, Any], name: str, method: str = "GET") -> dict[str, Any]:
    found = [r for r in report["routes"] if r["route"] == name and r["method"] == method]
    assert len(found) == 1, report["routes"]
    return found[0]


def test_numbers_move_with_requests(file_store: FileStore, owner_client: APIClient, make_batch: Any) -> None:
    batch: Batch = make_batch()
    url = reverse("v3:batch-status", kwargs={"batch_id": batch.pk})
    before = apm.performance(window_seconds=60)
    for _ in range(7):
        assert owner_client.get(url).status_code == 200
    after = apm.performance(window_seconds=60)
    assert after["requests"] - before["requests"] == 7
    status = route(after, "v3:batch-status")
    assert status["requests"] == 7
    assert status["errors"] == 0
    assert after["requests_per_second"] > before["requests_per_second"]
    for key in ("avg_response_time_ms", "p50_response_time_ms", "p95_response_time_ms", "p99_response_time_ms"):
        assert after[key] is not None and after[key] > 0
    assert status["p50_ms"] <= status["p95_ms"] <= status["p99_ms"]


def test_routes_are_url_names_not_paths(file_store: FileStore, owner_client: APIClient, make_batch: Any) -> None:
    for batch in (make_batch(), make_batch()):
        owner_client.get(reverse("v3:batch-status", kwargs={"batch_id": batch.pk}))
    owner_client.get(f"/api/v3/no-such-thing/{Batch.objects.first().pk}")  # type: ignore[union-attr]
    report = apm.performance(window_seconds=60)
    assert route(report, "v3:batch-status")["requests"] == 2
    assert route(report, "<unmatched>")["requests"] == 1
    assert not any(str(batch.pk) in r["route"] for batch in Batch.objects.all() for r in report["routes"])


def test_error_rate_counts_server_errors_only(
    file_store: FileStore, owner_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner_client.get("/api/v3/batches/00000000-0000-0000-0000-000000000000/status")  # 404: the client's
    assert apm.performance(window_seconds=60)["error_rate"] == 0.0

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("batches.api.cached_reads.batch_list", broken)
    owner_client.raise_request_exception = False
    assert owner_client.get(reverse("v3:batch-list")).status_code == 500
    report = apm.performance(window_seconds=60)
    assert report["error_rate"] == 0.5
    assert route(report, "v3:batch-list")["errors"] == 1


def test_empty_window_reports_zeros_and_none(file_store: FileStore) -> None:
    assert apm.performance(window_seconds=30) == {
        "window_seconds": 30,
        "store_available": True,
        "requests": 0,
        "requests_per_second": 0.0,
        "error_rate": None,
        "avg_response_time_ms": None,
        "p50_response_time_ms": None,
        "p95_response_time_ms": None,
        "p99_response_time_ms": None,
        "routes": [],
    }


def test_requests_leave_the_window(file_store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [time.time() - 60 - BUCKET_SECONDS]
    monkeypatch.setattr("monitoring.apm.now", lambda: clock[0])
    apm.record_request(route="old", method="GET", duration_ms=5, status=200)
    clock[0] += 60 + BUCKET_SECONDS
    apm.record_request(route="new", method="GET", duration_ms=5, status=200)
    report = apm.performance(window_seconds=60)
    assert [r["route"] for r in report["routes"]] == ["new"]
    # The window's buckets span 60 s rounded out to the bucket it starts in: 60 to 70 s.
    assert 1 / 70 - 0.0005 <= report["requests_per_second"] <= 1 / 60 + 0.0005  # rounded to 3 places
    assert {r["route"] for r in apm.performance(window_seconds=600)["routes"]} == {"old", "new"}


def test_window_is_bounded(file_store: FileStore) -> None:
    with pytest.raises(ValueError):
        apm.performance(window_seconds=0)
    with pytest.raises(ValueError):
        apm.performance(window_seconds=7200)


def test_disabled_apm_records_nothing(file_store: FileStore) -> None:
    with override_settings(APM_ENABLED=False):
        Client().get("/health")
    assert apm.performance(window_seconds=60)["requests"] == 0
    Client().get("/health")
    assert route(apm.performance(window_seconds=60), "health")["requests"] == 1


def test_a_failed_flush_keeps_its_observations(file_store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = apm.recorder()

    def refuse(deltas: Any) -> None:
        raise OSError("disk full")

    apm.record_request(route="kept", method="GET", duration_ms=3, status=200)
    monkeypatch.setattr(file_store, "add", refuse)
    recorder.flush()
    monkeypatch.undo()
    assert route(apm.performance(window_seconds=60), "kept")["requests"] == 1

"""Requests and queries over their thresholds are logged with their durations; others not."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_slow_requests_are_logged(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.APM_SLOW_REQUEST_MS = 0
    with caplog.at_level("WARNING", logger="omtx.apm"):
        Client().get("/health")
    [record] = [r for r in caplog.records if r.name == "omtx.apm"]
    assert record.getMessage().startswith("slow request: GET /health (health) answered 200 in ")
    assert record.duration_ms > 0  # type: ignore[attr-defined]


def test_fast_requests_are_not(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="omtx.apm"):
        Client().get("/health")
    assert not [r for r in caplog.records if r.name == "omtx.apm"]


def test_slow_queries_are_logged(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.APM_SLOW_QUERY_MS = 0
    with caplog.at_level("WARNING", logger="omtx.apm.queries"):
        User.objects.filter(username="nobody").exists()
    [record] = [r for r in caplog.records if r.name == "omtx.apm.queries"]
    assert "auth_user" in record.getMessage()
    assert record.duration_ms >= 0  # type: ignore[attr-defined]


def test_fast_queries_are_not(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.APM_SLOW_QUERY_MS = 60_000
    with caplog.at_level("WARNING", logger="omtx.apm.queries"):
        User.objects.filter(username="nobody").exists()
    assert not [r for r in caplog.records if r.name == "omtx.apm.queries"]


def test_the_query_check_is_added_once_per_connection() -> None:
    from django.db import connection
    from django.db.backends.signals import connection_created

    from monitoring.queries import log_slow_query

    User.objects.exists()
    # What each reconnection of the same wrapper object sends (a closed connection reopened).
    for _ in range(2):
        connection_created.send(sender=type(connection), connection=connection)
    assert connection.execute_wrappers.count(log_slow_query) == 1

"""The monitoring endpoints' real answers against their OpenAPI schema."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone

from accounts.services import token_create
from batches.models import Batch
from monitoring import alerts
from monitoring.tests.fakes import FakeSources, clean_migrations_cache, fake_sources_fixture  # noqa: F401

pytestmark = pytest.mark.usefixtures("fake_sources", "clean_migrations_cache")
OPERATIONS = [
    "monitoring_dashboard",
    "cache_stats",
    "monitoring_health",
    "health_status",
    "health_services",
    "health_metrics",
    "health_slo",
]


@pytest.fixture
def api(db: None) -> Iterator[Any]:
    # As batches/tests/test_schema.py: calls through WSGI inside this test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v3/schema/", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(api: Any, operation_id: str, user: User | None, expected: int) -> None:
    headers = {}
    if user is not None:
        _, token = token_create(user=user, name="contract")
        headers["Authorization"] = f"Bearer {token}"
    case = api.find_operation_by_id(operation_id).Case()
    response = case.call(headers=headers)
    assert response.status_code == expected, (operation_id, response.status_code, response.get_data()[:300])
    case.validate_response(response, headers=headers)


def test_answers_match_the_schema(
    api: Any, staff: User, fake_sources: FakeSources, make_batch: Callable[..., Batch]
) -> None:
    make_batch()
    fake_sources.perf["routes"] = [
        {"route": "v3:batch-status", "method": "GET", "requests": 9, "errors": 0, "p95_ms": 12.0},
    ]
    fake_sources.set_p95(9000.0)
    alerts.evaluate(now=timezone.now())  # an open alert in the lists
    for operation_id in OPERATIONS:
        call(api, operation_id, staff, 200)


def test_empty_measurements_match_the_schema(api: Any, staff: User, fake_sources: FakeSources) -> None:
    # No request in the window, no batch: the nulls the schema allows.
    fake_sources.perf.update(
        requests=0,
        requests_per_second=0.0,
        error_rate=0.0,
        avg_response_time_ms=None,
        p50_response_time_ms=None,
        p95_response_time_ms=None,
        p99_response_time_ms=None,
    )
    for operation_id in OPERATIONS:
        call(api, operation_id, staff, 200)


def test_refusals_match_the_schema(api: Any, outsider: User) -> None:
    for operation_id in OPERATIONS:
        call(api, operation_id, outsider, 403)
        call(api, operation_id, None, 401)

"""GET /api/v3/rate-limit/status and /metrics by persona; limiter_status for the dashboard."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from ratelimit.blocks import block_ip
from ratelimit.models import BlockedIP, Tier
from ratelimit.status import limiter_status

STATUS = "/api/v3/rate-limit/status"
pytestmark = pytest.mark.django_db


def test_a_user_reads_their_own_limits_and_what_is_left(backend_url: str, owner: User, owner_client: APIClient) -> None:
    owner_client.get("/api/v3/models")
    body = owner_client.get(STATUS).json()
    assert body["user_id"] == owner.pk
    assert body["tier"]["name"] == "default" and body["tier"]["requests_per_minute"] == 60
    buckets = {b["name"]: b for b in body["buckets"]}
    assert set(buckets) == {"default", "results", "status", "submit"}
    assert buckets["default"]["capacity"] == 20
    assert buckets["default"]["remaining"] == 18  # two requests so far, this one included
    assert buckets["submit"] == {
        "name": "submit",
        "limit_per_minute": 10,
        "capacity": 10,
        "remaining": 10,
        "reset_seconds": 0.0,
    }
    assert body["limiter"]["backend"] == ("redis" if backend_url else "memory")


def test_looking_takes_no_token(owner_client: APIClient) -> None:
    first = {b["name"]: b["remaining"] for b in owner_client.get(STATUS).json()["buckets"]}
    second = {b["name"]: b["remaining"] for b in owner_client.get(STATUS).json()["buckets"]}
    assert first["submit"] == second["submit"] == 10
    assert first["default"] - second["default"] == 1  # the status request itself


def test_staff_read_any_users_limits_and_others_may_not(
    owner: User,
    staff_client: APIClient,
    outsider_client: APIClient,
    anon_client: APIClient,
    make_tier: Callable[..., Tier],
    on_tier: Callable[..., None],
) -> None:
    on_tier(owner, make_tier())
    assert staff_client.get(STATUS, {"user_id": owner.pk}).json()["tier"]["name"] == "tiny"
    assert staff_client.get(STATUS, {"user_id": 999_999}).status_code == 404
    for bad in ("x", "-1", "0", str(2**40), "١"):  # the last: an Arabic-Indic digit one
        assert staff_client.get(STATUS, {"user_id": bad}).status_code == 400, bad
    assert outsider_client.get(STATUS, {"user_id": owner.pk}).status_code == 403
    assert anon_client.get(STATUS).status_code == 401


def test_rate_limit_metrics_for_staff(staff_client: APIClient, owner_client: APIClient) -> None:
    block_ip(ip="203.0.113.9", reason=BlockedIP.Reason.MANUAL)
    body = staff_client.get("/api/v3/rate-limit/metrics").json()
    assert body["active_blocks_by_reason"] == {"manual": 1}
    assert body["limiter"]["blocked_ips"] == 1
    assert owner_client.get("/api/v3/rate-limit/metrics").status_code == 403


def test_limiter_status_counts_recent_rejections(backend_url: str, owner_client: APIClient) -> None:
    assert [owner_client.get("/api/v3/models").status_code for _ in range(23)].count(429) == 3
    status = limiter_status()
    assert set(status) >= {"enabled", "backend", "breaker_state", "breaker_failures", "rejections", "blocked_ips"}
    assert (status["enabled"], status["breaker_state"], status["rejections"]) == (True, "closed", 3)
    assert status["rejections_window_seconds"] == 360

"""Redis failing: limiting goes on in process, the breaker opens, probes, closes by itself."""

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from ratelimit.breaker import CircuitBreaker
from ratelimit.models import Tier
from ratelimit.status import limiter_status
from ratelimit.tests.conftest import PrivateRedis

URL = "/api/v3/models"


def test_the_breaker_opens_after_failures_in_a_row_probes_once_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, reset_seconds=5, clock=lambda: now[0])
    breaker.failure(OSError("down"))
    breaker.success()  # a success in between: the count starts again
    for _ in range(2):
        breaker.failure(OSError("down"))
    assert (breaker.state, breaker.allow()) == ("closed", True)
    breaker.failure(OSError("down"))
    assert (breaker.state, breaker.allow(), breaker.counts.times_opened) == ("open", False, 1)
    now[0] = 5.0
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.failure(OSError("still down"))
    assert (breaker.state, breaker.counts.times_opened) == ("open", 1)  # the wait starts again
    now[0] = 10.0
    assert breaker.allow()
    breaker.success()
    assert (breaker.state, breaker.counts.consecutive_failures, breaker.counts.total_failures) == ("closed", 0, 5)


@pytest.mark.django_db
def test_redis_stopped_mid_test_limits_in_process_and_the_breaker_closes_when_it_returns(
    private_redis: PrivateRedis,
    settings: Any,
    owner: User,
    owner_client: APIClient,
    make_tier: Callable[..., Tier],
    on_tier: Callable[..., None],
) -> None:
    settings.RATE_LIMIT_BREAKER_FAILURES = 2
    settings.RATE_LIMIT_BREAKER_RESET_SECONDS = 0.3
    settings.RATE_LIMIT_REDIS_URL = private_redis.url
    on_tier(owner, make_tier(burst=4))
    assert [owner_client.get(URL).status_code for _ in range(5)] == [200] * 4 + [429]
    assert limiter_status()["backend"] == "redis"

    private_redis.stop()
    # A fresh bucket in this process (the documented approximation), limited all the same.
    codes = [owner_client.get(URL).status_code for _ in range(6)]
    assert codes == [200] * 4 + [429] * 2
    status = limiter_status()
    assert (status["backend"], status["breaker_state"], status["breaker_opened"]) == ("memory", "open", 1)
    assert status["breaker_failures"] >= 2 and "Connection" in status["breaker_last_error"]

    private_redis.start()
    time.sleep(0.35)
    assert owner_client.get(URL).status_code == 200  # the probe: Redis's bucket is new and full
    status = limiter_status()
    assert (status["backend"], status["breaker_state"], status["breaker_failures"]) == ("redis", "closed", 0)
    assert [owner_client.get(URL).status_code for _ in range(4)] == [200] * 3 + [429]

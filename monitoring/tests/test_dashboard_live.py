"""The dashboard on the real layers (no fake sources): its request and cache figures move
with the requests the test sends, as the APM and the cache measured them."""

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from monitoring.apm_store import FileStore


# Outside a test transaction: reads inside one neither use nor fill the cache.
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_reports_the_traffic_it_sees(
    file_store: FileStore, staff_client: APIClient, owner_client: APIClient, make_batch: Any, settings: Any
) -> None:
    settings.OMTX_CACHE_READS = True
    url = reverse("v3:batch-status", kwargs={"batch_id": make_batch().pk})

    def dashboard() -> dict[str, Any]:
        response = staff_client.get("/api/v3/monitoring/dashboard")
        assert response.status_code == 200
        return dict(response.json())

    before = dashboard()
    for _ in range(9):
        assert owner_client.get(url).status_code == 200
    after = dashboard()
    # The nine polls and the first dashboard request itself (recorded once it was answered).
    assert after["performance"]["requests"] - before["performance"]["requests"] == 10
    assert after["performance"]["p95_response_time_ms"] > 0
    assert after["performance"]["requests_per_second"] > before["performance"]["requests_per_second"]
    # The first poll fills the status entry, the other eight are hits.
    assert after["cache_stats"]["hits"] - before["cache_stats"]["hits"] >= 8
    assert after["cache_stats"]["hit_rate_percentage"] > before["cache_stats"]["hit_rate_percentage"]
    assert after["rate_limiting"]["enabled"] is True and after["rate_limiting"]["breaker_state"] == "closed"


def test_with_the_apm_store_away_the_dashboard_answers_and_says_so(
    file_store: FileStore, staff_client: APIClient
) -> None:
    """Redis down (here: a port nothing listens on) costs the request figures, not the
    dashboard: it answers 200 at once, with `store_available` false."""
    import time

    from monitoring import apm
    from monitoring.apm_store import RedisStore

    apm.use_store(RedisStore("redis://127.0.0.1:1/0"))  # the file_store fixture puts a store back
    started = time.monotonic()
    response = staff_client.get("/api/v3/monitoring/dashboard")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert body["performance"]["store_available"] is False and body["performance"]["requests"] == 0
    assert elapsed < 3

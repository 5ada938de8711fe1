"""Query counts of the read endpoints a client polls (issue 7): constant in the number of
jobs and of batches. Each test measures one endpoint at two sizes: equal counts catch a query
per row (N+1), the bound catches a query added per request. In production every request
also runs one `SELECT 1`, the connection's health check (DB_CONN_MAX_AGE with health checks);
the test client skips it (docs/performance.md, "Status poll and serving layout"). The token
and its user are read once per TOKEN_CACHE_SECONDS (accounts/services.py), then cached: the
counts below are of a client polling with a cached token, plus one where it is not."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from batches.models import Batch
from batches.states import BatchStatus

BATCHES = "/api/v3/batches/"
ALCOHOLS = [f"C{'C' * i}O" for i in range(40)]
WRITES = ("INSERT", "UPDATE", "DELETE")

# The batch (only its status columns); the queue outlook.
STATUS_QUERIES = 2
# The batch (+ its target); the outlook; the validation report, which the batch read defers.
DETAIL_QUERIES = 3
# The count; the page.
LIST_QUERIES = 2
# The batch; the count; the page.
JOBS_QUERIES = 3


def queries(client: APIClient, path: str) -> list[str]:
    """The SQL one GET runs, after a first GET has paid the token's last-use write (and
    cached the token's row)."""
    assert client.get(path).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return [query["sql"] for query in captured.captured_queries]


@pytest.fixture
def grow(make_batch: Callable[..., Batch], owner: User, outsider: User) -> Callable[[], Batch]:
    """More of everything: a 40-job batch, more of the owner's batches, another user's
    queued and running batches (the outlook reads the active ones)."""

    def more() -> Batch:
        for i in range(5):
            make_batch(ALCOHOLS[: i + 2], name=f"mine {i}")
            theirs = make_batch(ALCOHOLS[: i + 3], user=outsider, name=f"theirs {i}")
            if i % 2:
                started = timezone.now() - timedelta(minutes=3)
                Batch.objects.filter(pk=theirs.pk).update(status=BatchStatus.RUNNING, started_at=started, n_succeeded=1)
        return make_batch(ALCOHOLS, name="large")

    return more


def test_status_poll_reads_two_rows_and_writes_nothing(
    owner_client: APIClient, make_batch: Callable[..., Batch], grow: Callable[[], Batch]
) -> None:
    few = queries(owner_client, f"{BATCHES}{make_batch(ALCOHOLS[:1]).pk}/status")
    many = queries(owner_client, f"{BATCHES}{grow().pk}/status")
    assert len(many) == len(few) == STATUS_QUERIES, many
    assert not [sql for sql in many if sql.lstrip().upper().startswith(WRITES)]


def test_status_poll_with_an_uncached_token_reads_it_in_one_query(
    owner_client: APIClient, make_batch: Callable[..., Batch]
) -> None:
    path = f"{BATCHES}{make_batch(ALCOHOLS[:1]).pk}/status"
    queries(owner_client, path)
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        assert owner_client.get(path).status_code == 200
    assert len(captured.captured_queries) == STATUS_QUERIES + 1


def test_status_of_a_finished_batch_skips_the_queue(
    owner_client: APIClient, make_batch: Callable[..., Batch], grow: Callable[[], Batch]
) -> None:
    grow()
    done = make_batch(ALCOHOLS[:3])
    Batch.objects.filter(pk=done.pk).update(status=BatchStatus.COMPLETED, n_queued=0, n_succeeded=3)
    assert len(queries(owner_client, f"{BATCHES}{done.pk}/status")) == STATUS_QUERIES - 1


def test_detail_queries_are_constant(
    owner_client: APIClient, make_batch: Callable[..., Batch], grow: Callable[[], Batch]
) -> None:
    few = queries(owner_client, f"{BATCHES}{make_batch(ALCOHOLS[:1]).pk}/")
    many = queries(owner_client, f"{BATCHES}{grow().pk}/")
    assert len(many) == len(few) == DETAIL_QUERIES, many


def test_staff_detail_of_another_users_batch_joins_its_owner(
    staff_client: APIClient, make_batch: Callable[..., Batch], grow: Callable[[], Batch]
) -> None:
    few = queries(staff_client, f"{BATCHES}{make_batch(ALCOHOLS[:1]).pk}/")
    many = queries(staff_client, f"{BATCHES}{grow().pk}/")
    assert len(many) == len(few) == DETAIL_QUERIES, many


def test_batch_list_queries_are_constant(
    owner_client: APIClient, make_batch: Callable[..., Batch], grow: Callable[[], Batch]
) -> None:
    make_batch(ALCOHOLS[:1])
    few = queries(owner_client, BATCHES)
    grow()
    many = queries(owner_client, BATCHES)
    assert len(owner_client.get(BATCHES).json()["results"]) == 7
    assert len(many) == len(few) == LIST_QUERIES, many


def test_jobs_list_queries_are_constant(
    owner_client: APIClient, make_batch: Callable[..., Batch], grow: Callable[[], Batch]
) -> None:
    few = queries(owner_client, f"{BATCHES}{make_batch(ALCOHOLS[:1]).pk}/jobs/")
    large = grow()
    many = queries(owner_client, f"{BATCHES}{large.pk}/jobs/")
    assert len(owner_client.get(f"{BATCHES}{large.pk}/jobs/").json()["results"]) == len(ALCOHOLS)
    assert len(many) == len(few) == JOBS_QUERIES, many

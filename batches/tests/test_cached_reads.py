"""Status, results and lists through the cache (issue 8), on whichever cache the run
configures (local memory; Redis in CI's second pass). These tests commit (transaction=True):
the writers' "batch changed" hook runs on commit, and reads inside a transaction bypass the
cache, as they do in every other test."""

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from batches import cache_tags, queue
from batches.api import cached_reads
from batches.models import Batch
from batches.services.lifecycle import batch_cancel
from batches.states import BatchStatus
from omtx_hub.cache import process_counts

pytestmark = pytest.mark.django_db(transaction=True)
BATCHES = "/api/v3/batches/"


@pytest.fixture(autouse=True)
def _fresh_cache(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # On by default with Redis only; the local-memory cache serves one process, as here.
    settings.OMTX_CACHE_READS = True
    # The outlook's one-second snapshot of the active batches may be an earlier test's.
    monkeypatch.setattr(queue, "_active_queue", None)
    # A new epoch: nothing an earlier test stored (for ids this database may reuse) matches.
    cache_tags.bump([])
    cache_tags.bump([cache_tags.EPOCH])


def _status(batch: Batch) -> str:
    return f"{BATCHES}{batch.pk}/status"


def _results(batch: Batch, query: str = "") -> str:
    return f"{BATCHES}{batch.pk}/results{query}"


def _lookups(read: Callable[[], Any]) -> dict[str, int]:
    before = process_counts()
    read()
    after = process_counts()
    return {result: after[result] - before[result] for result in after}


def _get(client: APIClient, path: str, **extra: Any) -> Any:
    response = client.get(path, **extra)
    assert response.status_code == 200, response.content[:300]
    return response


def test_a_status_change_is_visible_on_the_next_read(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch = make_batch()
    assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.QUEUED
    assert _lookups(lambda: _get(owner_client, _status(batch))) == {"hit": 1, "miss": 0, "error": 0}
    version = _get(owner_client, _status(batch)).json()["version"]
    assert owner_client.post(f"{BATCHES}{batch.pk}/cancel").status_code == 200
    after = _get(owner_client, _status(batch)).json()
    assert (after["status"], after["version"]) == (BatchStatus.CANCELLED, version + 1)


def test_the_dispatchers_changes_are_visible_on_the_next_read(
    make_batch: Callable[..., Batch], owner_client: APIClient, run_all: Callable[[], None]
) -> None:
    batch = make_batch()
    assert _get(owner_client, _status(batch)).json()["progress"]["succeeded"] == 0
    assert _get(owner_client, _results(batch)).json()["count"] == 0
    run_all()
    status = _get(owner_client, _status(batch)).json()
    assert (status["status"], status["progress"]["succeeded"]) == (BatchStatus.COMPLETED, 4)
    assert _get(owner_client, _results(batch)).json()["count"] == 4


def test_validation_in_the_background_and_a_delete_are_visible_on_the_next_read(
    settings: Any,
    make_batch: Callable[..., Batch],
    owner_client: APIClient,
    validate_in_background: Callable[[], int],
    run_all: Callable[[], None],
) -> None:
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 2
    batch = make_batch()
    for _ in range(2):
        assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.VALIDATING
    validate_in_background()
    assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.QUEUED
    run_all()
    assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.COMPLETED
    assert owner_client.delete(f"{BATCHES}{batch.pk}/").status_code == 204
    assert owner_client.get(_status(batch)).status_code == 404
    assert _get(owner_client, BATCHES).json()["count"] == 0


def test_a_change_committed_during_a_read_is_not_hidden_by_what_that_read_stores(
    monkeypatch: pytest.MonkeyPatch, make_batch: Callable[..., Batch], owner_client: APIClient
) -> None:
    """The read's database answer predates the change; it is stored under the tokens read
    before it, which the change's bump has already replaced."""
    batch = make_batch()
    read = cached_reads.batch_status_get

    def read_then_cancel(**kwargs: Any) -> Batch:
        before = read(**kwargs)
        batch_cancel(batch=batch)  # commits and bumps between the read and the store
        return before

    monkeypatch.setattr(cached_reads, "batch_status_get", read_then_cancel)
    assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.QUEUED
    monkeypatch.setattr(cached_reads, "batch_status_get", read)
    assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.CANCELLED


def test_a_warm_status_poll_touches_no_database(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch = make_batch()
    first = _get(owner_client, _status(batch)).content
    with CaptureQueriesContext(connection) as captured:
        warm = _get(owner_client, _status(batch)).content
    assert captured.captured_queries == []
    assert warm == first


def _uncached(settings: Any, client: APIClient, path: str) -> bytes:
    settings.OMTX_CACHE_READS = False
    try:
        content: bytes = _get(client, path).content
    finally:
        settings.OMTX_CACHE_READS = True
    return content


def test_cached_answers_are_the_uncached_bytes(
    settings: Any, make_batch: Callable[..., Batch], owner_client: APIClient, run_all: Callable[[], None]
) -> None:
    done = make_batch(name="done")
    run_all()
    waiting = make_batch(name="waiting")
    first = _get(owner_client, _results(done, "?limit=2")).json()
    paths = [
        _status(done),
        _status(waiting),
        _results(done),
        _results(done, "?limit=2"),
        _results(done, f"?limit=2&cursor={first['next_cursor']}"),
        _results(done, "?sort=mol_weight&order=asc&limit=3&offset=1"),
        _results(done, "?min_mol_weight=50&max_clogp=3&status=all"),
        _results(waiting, "?status=queued,succeeded"),
        BATCHES,
        f"{BATCHES}?limit=1&offset=1",
        f"{BATCHES}?status=completed&search=don",
    ]
    for path in paths:
        missed = _get(owner_client, path).content
        assert _lookups(lambda path=path: _get(owner_client, path)) == {"hit": 1, "miss": 0, "error": 0}, path
        assert _get(owner_client, path).content == missed == _uncached(settings, owner_client, path), path


class RolledBack(Exception):
    pass


def test_a_read_inside_a_transaction_neither_uses_nor_fills_the_cache(
    make_batch: Callable[..., Batch], owner_client: APIClient
) -> None:
    batch = make_batch()
    assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.QUEUED  # cached
    with pytest.raises(RolledBack), transaction.atomic():
        batch_cancel(batch=batch)
        # The request runs on this connection, inside the transaction: it sees its writes.
        assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.CANCELLED
        raise RolledBack
    assert _get(owner_client, _status(batch)).json()["status"] == BatchStatus.QUEUED


def test_a_page_is_cached_per_host_its_links_name(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch, _ = make_batch(), make_batch()
    for path in (_results(batch, "?limit=1&status=all"), f"{BATCHES}?limit=1"):
        assert _get(owner_client, path).json()["next"].startswith("http://testserver/")
        assert _get(owner_client, path, HTTP_HOST="localhost").json()["next"].startswith("http://localhost/")
        assert _get(owner_client, path, secure=True).json()["next"].startswith("https://testserver/")


def test_every_persona_gets_its_answer_from_a_warm_cache(
    make_batch: Callable[..., Batch],
    owner_client: APIClient,
    outsider_client: APIClient,
    staff_client: APIClient,
    anon_client: APIClient,
) -> None:
    batch = make_batch()
    for path in (_status(batch), _results(batch)):
        owners = _get(owner_client, path).content
        assert _get(owner_client, path).content == owners  # warm now
        assert outsider_client.get(path).status_code == 404
        assert anon_client.get(path).status_code == 401
        assert _get(staff_client, path).content == owners
    assert [b["id"] for b in _get(outsider_client, BATCHES).json()["results"]] == []
    assert [b["id"] for b in _get(staff_client, BATCHES).json()["results"]] == [str(batch.pk)]
    assert anon_client.get(BATCHES).status_code == 401


def test_a_users_new_batch_is_in_their_next_list(
    make_batch: Callable[..., Batch], owner_client: APIClient, staff_client: APIClient, outsider_client: APIClient
) -> None:
    make_batch(name="first")
    theirs = _get(outsider_client, BATCHES).json()
    assert _get(owner_client, BATCHES).json()["count"] == 1
    assert _get(staff_client, BATCHES).json()["count"] == 1
    assert _lookups(lambda: _get(owner_client, BATCHES)) == {"hit": 1, "miss": 0, "error": 0}
    make_batch(name="second")
    assert [b["name"] for b in _get(owner_client, BATCHES).json()["results"]] == ["second", "first"]
    assert _get(staff_client, BATCHES).json()["count"] == 2
    assert _lookups(lambda: _get(outsider_client, BATCHES)) == {"hit": 1, "miss": 0, "error": 0}
    assert _get(outsider_client, BATCHES).json() == theirs  # someone else's change kept theirs


def test_one_request_builds_a_results_page_while_the_others_wait(
    monkeypatch: pytest.MonkeyPatch, settings: Any, make_batch: Callable[..., Batch], owner_client: APIClient
) -> None:
    settings.OMTX_CACHE_LOCK_WAIT_SECONDS = 10.0
    batch = make_batch()
    _get(owner_client, _status(batch))  # the status entry: readers need no database for it
    builds: list[int] = []
    build = cached_reads._results
    ready = threading.Barrier(6)

    def slow(*args: Any) -> dict[str, Any]:
        builds.append(1)
        threading.Event().wait(0.5)
        return build(*args)

    monkeypatch.setattr(cached_reads, "_results", slow)
    answers: list[bytes] = []

    def reader() -> None:
        ready.wait()
        answers.append(owner_client.get(_results(batch)).content)
        connection.close()

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len(answers) == 6 and len(set(answers)) == 1


@pytest.fixture
def warmable(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> Iterator[list[Batch]]:
    old = make_batch(name="finished long ago")
    done = make_batch(name="finished")
    run_all()
    Batch.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=2))
    waiting = make_batch(name="queued")
    yield [done, waiting, old]


def test_warm_cache_turns_the_next_reads_into_hits(warmable: list[Batch], owner_client: APIClient) -> None:
    done, waiting, old = warmable
    out = StringIO()
    call_command("warm_cache", "--base-url", "http://testserver", stdout=out)
    assert "warmed 2 batches" in out.getvalue() and "4 entries stored, 0 already current" in out.getvalue()
    for batch in (done, waiting):
        for path in (_status(batch), _results(batch)):
            assert _lookups(lambda path=path: _get(owner_client, path)) == {"hit": 1, "miss": 0, "error": 0}
    assert _lookups(lambda: _get(owner_client, _status(old)))["miss"] == 1  # older than --hours
    again = StringIO()
    call_command("warm_cache", "--base-url", "http://testserver", stdout=again)
    assert "0 entries stored, 4 already current" in again.getvalue()


def test_warm_cache_spends_none_of_the_owners_rate_limit(
    warmable: list[Batch], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ratelimit.throttle import TierThrottle

    def spent(*args: Any) -> bool:
        raise AssertionError("warm_cache took a token from the owner's bucket")

    monkeypatch.setattr(TierThrottle, "allow_request", spent)
    out, err = StringIO(), StringIO()
    call_command("warm_cache", "--base-url", "http://testserver", stdout=out, stderr=err)
    assert "0 pages failed" in out.getvalue() and err.getvalue() == ""

"""The status poll reads the batch through its own narrow selector (batch_status_get):
the same answer as the full read, and the same visibility."""

import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from batches import queue
from batches.api import representations as rep
from batches.models import Batch
from batches.selectors import batch_get, batch_status_get
from batches.states import BatchStatus
from omtx_hub.errors import NotFound

BATCHES = "/api/v3/batches/"


@pytest.mark.parametrize(
    "status", [BatchStatus.QUEUED, BatchStatus.RUNNING, BatchStatus.VALIDATING, BatchStatus.COMPLETED]
)
def test_status_equals_the_full_reads(make_batch: Callable[..., Batch], owner: User, status: str) -> None:
    make_batch(name="ahead")
    batch = make_batch()
    Batch.objects.filter(pk=batch.pk).update(status=status, n_queued=1, n_succeeded=1, n_reused=0)
    narrow = rep.batch_status(batch_status_get(user=owner, batch_id=str(batch.pk)))
    full = rep.batch_status(batch_get(user=owner, batch_id=str(batch.pk)))
    assert narrow == full
    assert (narrow["intake"] is not None) == (status == BatchStatus.VALIDATING)


def test_status_of_another_users_missing_or_malformed_batch_is_404(
    make_batch: Callable[..., Batch], outsider: User, owner: User
) -> None:
    batch = make_batch()
    for user, batch_id in [(outsider, str(batch.pk)), (owner, "0" * 32), (owner, "not-a-uuid")]:
        with pytest.raises(NotFound):
            batch_status_get(user=user, batch_id=batch_id)


def test_staff_and_session_users_poll_the_status(
    make_batch: Callable[..., Batch], owner: User, staff_client: APIClient, outsider_client: APIClient
) -> None:
    batch = make_batch()
    path = f"{BATCHES}{batch.pk}/status"
    assert staff_client.get(path).json()["id"] == str(batch.pk)
    assert outsider_client.get(path).status_code == 404
    session = Client()
    session.force_login(owner)
    assert session.get(path).json()["status"] == BatchStatus.QUEUED


def test_active_queue_places_every_batch_as_the_aggregate_does(
    make_batch: Callable[..., Batch], owner: User, outsider: User
) -> None:
    batches = [make_batch(user=user, priority=p) for user in (owner, outsider) for p in (0, 0, 5)]
    same_instant = Batch.objects.filter(pk__in=[b.pk for b in batches[:2]])
    same_instant.update(created_at=batches[0].created_at)  # ties go by id
    started = timezone.now() - timedelta(minutes=2)
    Batch.objects.filter(pk=batches[3].pk).update(status=BatchStatus.RUNNING, started_at=started, n_succeeded=4)
    Batch.objects.filter(pk=batches[5].pk).update(n_queued=0)
    snapshot = queue.ActiveQueue.read()
    for batch in Batch.objects.all():
        for rate_of in (None, batch.model, "no-such-model"):
            sql = queue._queue_row(batch.owner_id, queue._place(batch), rate_of=rate_of)
            mine = snapshot.row(batch.owner_id, queue._place(batch), rate_of=rate_of)
            assert mine == {**sql, "rate": pytest.approx(sql["rate"], rel=1e-3) if sql["rate"] else mine["rate"]}
            assert bool(mine["rate"]) == bool(sql["rate"])


def test_active_queue_is_reread_after_its_window_and_never_inside_a_transaction(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert queue.active_queue() is None  # the test runs in a transaction
    monkeypatch.setattr(queue, "connection", SimpleNamespace(in_atomic_block=False))
    now = time.monotonic()
    monkeypatch.setattr(queue.time, "monotonic", lambda: now)
    monkeypatch.setattr(queue, "_active_queue", None)
    first = queue.active_queue()
    with CaptureQueriesContext(connection) as captured:
        assert queue.active_queue() is first
    assert not captured.captured_queries
    monkeypatch.setattr(queue.time, "monotonic", lambda: now + queue.OUTLOOK_SNAPSHOT_SECONDS + 0.1)
    assert queue.active_queue() is not first

"""The status poll reads the batch through its own narrow selector (batch_status_get):
the same answer as the full read, and the same visibility."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

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

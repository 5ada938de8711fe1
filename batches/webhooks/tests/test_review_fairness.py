"""Adversarial review (issue 10): one user's backlog of deliveries must not starve another's.

Claims take the due deliveries oldest first across every owner. A batch of N ligands that
all fail writes N `job.failed` rows at once; with a receiver that answers slowly (just under
the timeout) OMTX_WEBHOOK_CONCURRENCY threads work through them for N x timeout / threads
(100,000 x 5 s / 4: about 35 hours), and every other user's `batch.completed` waits
behind them."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from batches.webhooks.deliveries import deliveries_claim
from batches.webhooks.keys import secret_rotate
from batches.webhooks.models import WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db


def _due(owner: User, *, age_seconds: int, count: int) -> None:
    due_at = timezone.now() - timedelta(seconds=age_seconds)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            owner=owner,
            event=WebhookEvent.JOB_FAILED,
            url="http://127.0.0.1:9/hook",
            payload={"n": n},
            attempt_limit=8,
            next_attempt_at=due_at,
            created_at=due_at,
        )
        for n in range(count)
    )


def test_a_flood_of_one_user_s_deliveries_does_not_starve_another_user(owner: User, outsider: User) -> None:
    secret_rotate(user=owner)
    secret_rotate(user=outsider)
    _due(owner, age_seconds=60, count=50)  # a big failing batch's job.failed rows
    _due(outsider, age_seconds=1, count=1)  # someone else's batch.completed, due just after
    claimed = deliveries_claim(limit=4)  # one sender's free threads
    owners = {WebhookDelivery.objects.get(pk=one.id).owner_id for one in claimed}
    assert outsider.pk in owners, "the other user's delivery waits until the whole backlog is sent"

"""Two background workers on PostgreSQL, each with its own connection, never send one
delivery twice."""

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from batches.models import Batch
from batches.services.lifecycle import batch_cancel
from batches.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret
from batches.webhooks.sender import Sender
from batches.webhooks.tests.receivers import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_workers_send_each_delivery_once(
    make_batch: Callable[..., Batch], receiver: Callable[..., Receiver], owner_secret: WebhookSecret, settings: Any
) -> None:
    settings.OMTX_WEBHOOK_TIMEOUT_SECONDS = 5
    hook = receiver(200)
    for _ in range(30):
        batch_cancel(batch=make_batch(["CCO"], webhook_url=hook.url))
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        sender = Sender(workers=3)
        try:
            start.wait()
            for _ in range(30):
                sender.step()
                sender.drain()
        except BaseException as exc:
            errors.append(exc)
        finally:
            sender.shutdown()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert not WebhookDelivery.objects.exclude(last_error="").values_list("last_error", flat=True)
    sent = Counter(got.headers["X-OMTX-Delivery"] for got in hook.requests)
    assert len(sent) == 30 and set(sent.values()) == {1}
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.DELIVERED, 1)}

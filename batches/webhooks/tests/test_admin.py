"""The operator's webhook console: deliveries with their attempts, filters, redelivery."""

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client

from batches.models import Batch
from batches.services.lifecycle import batch_cancel
from batches.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret
from batches.webhooks.sender import Sender
from batches.webhooks.tests.conftest import send_all


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_deliveries_and_their_attempts_are_visible(
    hooked_batch: Callable[..., Batch], staff: User, sender: Sender, owner_secret: WebhookSecret
) -> None:
    batch_cancel(batch=hooked_batch("http://127.0.0.1:9/hook"))
    send_all(sender)
    delivery = WebhookDelivery.objects.get()
    client = admin_client(staff)
    for url in [
        "/admin/batches/webhookdelivery/",
        "/admin/batches/webhookdelivery/?status__exact=pending",
        "/admin/batches/webhookdelivery/?event__exact=batch.cancelled",
        "/admin/batches/webhooksecret/",
    ]:
        assert client.get(url).status_code == 200, url
    page = client.get(f"/admin/batches/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "Connection refused" in page or "ConnectionRefusedError" in page  # the attempt, inline
    secrets = client.get(f"/admin/batches/webhooksecret/{owner_secret.pk}/change/").content.decode()
    assert owner_secret.secret not in secrets


def test_the_redeliver_action_calls_the_service(
    hooked_batch: Callable[..., Batch], staff: User, settings: object
) -> None:
    batch_cancel(batch=hooked_batch("http://127.0.0.1:9/hook"))
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, attempts=8)
    delivery = WebhookDelivery.objects.get()
    response = admin_client(staff).post(
        "/admin/batches/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}, follow=True
    )
    assert "1 deliveries queued to be sent again." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempt_limit == 16

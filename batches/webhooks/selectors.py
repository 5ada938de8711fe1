"""Reads of a user's webhook deliveries: only their own, whoever asks (staff use the admin)."""

from uuid import UUID

from django.contrib.auth.models import User
from django.db.models import QuerySet

from batches.selectors import batch_uuid
from batches.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from omtx_hub.errors import InvalidInput, NotFound


def delivery_list(
    *, user: User, batch_id: str | None = None, status: str | None = None, event: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The user's deliveries, newest first, filtered by batch, status and event."""
    deliveries = WebhookDelivery.objects.filter(owner=user).order_by("-created_at", "pk")
    if batch_id is not None:
        deliveries = deliveries.filter(batch_id=_uuid(batch_id, "batch"))
    if status is not None:
        deliveries = deliveries.filter(status=_choice(status, "status", DeliveryStatus.values))
    if event is not None:
        deliveries = deliveries.filter(event=_choice(event, "event", WebhookEvent.values))
    return deliveries


def delivery_get(*, user: User, delivery_id: str) -> WebhookDelivery:
    """The user's delivery with its attempts; someone else's, a missing one and a malformed
    id are all 404."""
    pk = batch_uuid(delivery_id)
    delivery = WebhookDelivery.objects.filter(owner=user, pk=pk).first() if pk is not None else None
    if delivery is None:
        raise NotFound("No such webhook delivery.")
    return delivery


def _uuid(value: str, name: str) -> UUID:
    pk = batch_uuid(value)
    if pk is None:
        raise InvalidInput(f"{name} must be a UUID.", code=f"invalid_{name}", details={"parameter": name})
    return pk


def _choice(value: str, name: str, choices: list[str]) -> str:
    if value not in choices:
        details = {"parameter": name, "choices": choices}
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}.", code=f"invalid_{name}", details=details)
    return value

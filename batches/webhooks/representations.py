"""What the webhook endpoints return. URLs are absolute, built with reverse(…, request=…)."""

from datetime import datetime
from typing import Any

from rest_framework.request import Request
from rest_framework.reverse import reverse

from batches.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret


def secret_state(secret: WebhookSecret | None, *, now: datetime) -> dict[str, Any]:
    if secret is None:
        return {"exists": False, "created_at": None, "previous_valid_until": None}
    until = secret.previous_valid_until
    return {
        "exists": True,
        "created_at": secret.created_at,
        "previous_valid_until": until if secret.previous_secret and until and until > now else None,
    }


def new_secret(secret: WebhookSecret, *, now: datetime) -> dict[str, Any]:
    return {**secret_state(secret, now=now), "secret": secret.secret}


def delivery(row: WebhookDelivery, request: Request) -> dict[str, Any]:
    return {
        "id": str(row.pk),
        "url": reverse("v3:webhook-delivery", kwargs={"delivery_id": row.pk}, request=request),
        "event": row.event,
        "batch_id": str(row.batch_id) if row.batch_id else None,
        "job_id": str(row.job_id) if row.job_id else None,
        "target": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == DeliveryStatus.PENDING else None,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
    }


def delivery_detail(row: WebhookDelivery, request: Request) -> dict[str, Any]:
    attempts = row.attempt_log.order_by("number").values(
        "number", "started_at", "duration_ms", "status_code", "error", "response_excerpt", "outcome"
    )
    return {**delivery(row, request), "payload": row.payload, "attempt_log": list(attempts)}

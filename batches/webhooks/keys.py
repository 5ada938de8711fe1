"""Each user's webhook secret: created or rotated on request, shown once.

A rotation keeps the previous secret for OMTX_WEBHOOK_SECRET_GRACE_SECONDS: deliveries
sent meanwhile carry a signature with each, so receivers can switch without a gap.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from batches.webhooks.models import WebhookSecret
from batches.webhooks.signing import new_secret
from omtx_hub.errors import InvalidInput


def secret_rotate(*, user: User) -> WebhookSecret:
    """A new secret for `user` (the first one, or one replacing the current). The caller
    shows `secret` once; it is never shown again."""
    now = timezone.now()
    grace = timedelta(seconds=settings.OMTX_WEBHOOK_SECRET_GRACE_SECONDS)
    with transaction.atomic():
        current = WebhookSecret.objects.select_for_update().filter(user=user).first()
        if current is None:
            return WebhookSecret.objects.create(user=user, secret=new_secret(), created_at=now)
        current.previous_secret = current.secret if grace else ""
        current.previous_valid_until = now + grace if grace else None
        current.secret = new_secret()
        current.created_at = now
        current.save()
    return current


def secret_get(*, user: User) -> WebhookSecret | None:
    return WebhookSecret.objects.filter(user=user).first()


def require_secret(*, user: User) -> None:
    """A batch with a webhook URL needs its owner's secret to sign with: refuse it first."""
    if not WebhookSecret.objects.filter(user=user).exists():
        raise InvalidInput(
            "Create a webhook secret before giving a webhook_url: POST /api/v3/webhooks/secret/rotate.",
            code="webhook_secret_missing",
            details={"field": "webhook_url"},
        )


def signing_keys(*, user_ids: Iterable[int], now: datetime) -> dict[int, list[str]]:
    """Per user, the secrets a delivery sent `now` is signed with: the current one, then
    the previous one while its grace lasts."""
    keys: dict[int, list[str]] = {}
    for row in WebhookSecret.objects.filter(user_id__in=set(user_ids)):
        keys[row.user_id] = [row.secret]
        if row.previous_secret and row.previous_valid_until and row.previous_valid_until > now:
            keys[row.user_id].append(row.previous_secret)
    return keys


def in_grace(secret: WebhookSecret, *, now: datetime) -> bool:
    return bool(secret.previous_secret and secret.previous_valid_until and secret.previous_valid_until > now)

"""`{% load webhooks %}` (registered in settings): the account page's webhook section."""

from typing import Any

from django import template
from django.utils import timezone

from batches.webhooks.keys import in_grace, secret_get

register = template.Library()


@register.simple_tag
def webhook_secret_state(user: Any) -> dict[str, Any]:
    """Whether `user` has a secret, since when, and until when the previous one still signs."""
    secret = secret_get(user=user) if user.is_authenticated else None
    if secret is None:
        return {"exists": False}
    grace = in_grace(secret, now=timezone.now())
    return {
        "exists": True,
        "created_at": secret.created_at,
        "previous_valid_until": secret.previous_valid_until if grace else None,
    }

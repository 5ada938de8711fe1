from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from accounts.models import ApiToken, hash_token, new_raw_token


def token_create(*, user: User, name: str = "default", expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """Create a token; return it with the raw value, which is never stored."""
    raw = new_raw_token()
    expires_at = None
    if expires_in_days is not None:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[:12], key_hash=hash_token(raw), expires_at=expires_at
    )
    return token, raw


def token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_authenticate(*, raw: str) -> ApiToken | None:
    try:
        token = ApiToken.objects.select_related("user").get(key_hash=hash_token(raw))
    except ApiToken.DoesNotExist:
        return None
    if not token.is_active or not token.user.is_active:
        return None
    # Writes at most once a minute per token, so authentication stays a read.
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token

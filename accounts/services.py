from datetime import timedelta

from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from accounts.models import ApiToken, hash_token, new_raw_token
from omtx_hub import rows

# What authentication reads of the token; the whole user (request.user is a full instance).
TOKEN_FIELDS = ("id", "user_id", "expires_at", "revoked_at", "last_used_at")
USER_FIELDS = tuple(f.attname for f in User._meta.concrete_fields)


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
    """The token and its user in one query, every request, so a revoked or expired token and
    a deactivated user are refused at once. Written as SQL: through the ORM, compiling this
    join cost more than the rest of an authenticated request (docs/performance.md)."""
    token = _token_read(hash_token(raw))
    if token is None or not token.is_active or not token.user.is_active:
        return None
    # Writes at most once a minute per token, so authentication stays a read.
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _token_read(key_hash: str) -> ApiToken | None:
    sql = (
        f"SELECT {rows.columns(ApiToken, TOKEN_FIELDS, 't')}, {rows.columns(User, USER_FIELDS, 'u')}"
        f" FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id WHERE t.key_hash = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token = rows.instance(ApiToken, TOKEN_FIELDS, row[: len(TOKEN_FIELDS)])
    token.user = rows.instance(User, USER_FIELDS, row[len(TOKEN_FIELDS) :])
    return token

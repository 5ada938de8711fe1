import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from accounts.models import ApiToken, hash_token, new_raw_token
from omtx_hub import rows
from omtx_hub.errors import InvalidInput

security_log = logging.getLogger("omtx.security")

# What authentication reads of the token; the whole user (request.user is a full instance).
TOKEN_FIELDS = ("id", "user_id", "expires_at", "revoked_at", "last_used_at")
USER_FIELDS = tuple(f.attname for f in User._meta.concrete_fields)
# How long a token's row (with its user's) is served from the cache. The database stays the
# truth: token_revoke deletes the entry, so a revocation holds at once where the cache is
# shared (Redis) and in the revoking process; elsewhere, and for a user or token changed by
# other means (deactivated, staff status removed), a stale row is served at most this long.
TOKEN_CACHE_SECONDS = 10
# Ten years: a longer lifetime is "never" in all but name, and that is chosen explicitly.
MAX_TOKEN_LIFETIME_DAYS = 10 * 365


def token_create(
    *, user: User, name: str = "default", expires_in_days: int | None = None, never_expires: bool = False
) -> tuple[ApiToken, str]:
    """Create a token; return it with the raw value, which is never stored. It expires after
    `expires_in_days`, by default settings.OMTX_TOKEN_LIFETIME_DAYS; only `never_expires`
    makes one that does not."""
    if never_expires and expires_in_days is not None:
        raise InvalidInput("Choose a lifetime or never_expires, not both.")
    raw = new_raw_token()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[:12],
        key_hash=hash_token(raw),
        expires_at=None if never_expires else _expiry(expires_in_days),
    )
    security_log.info(
        "token created: user=%s token=%s prefix=%s expires_at=%s",
        user.pk,
        token.pk,
        token.prefix,
        token.expires_at.isoformat() if token.expires_at else "never",
        extra={"event": "token_created"},
    )
    return token, raw


def _expiry(expires_in_days: int | None) -> datetime:
    days = settings.OMTX_TOKEN_LIFETIME_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= MAX_TOKEN_LIFETIME_DAYS:
        raise InvalidInput(f"A token lives 1 to {MAX_TOKEN_LIFETIME_DAYS} days (or never, chosen explicitly).")
    return timezone.now() + timedelta(days=days)


def token_revoke(*, token: ApiToken, actor: User | None = None) -> None:
    """Revoke `token` (by `actor`, when someone other than its owner may do it: the admin)."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    cache.delete(_cache_key(token.key_hash))
    if revoked:
        security_log.info(
            "token revoked: user=%s token=%s prefix=%s by=%s",
            token.user_id,
            token.pk,
            token.prefix,
            actor.pk if actor is not None else "unknown",
            extra={"event": "token_revoked"},
        )


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The token and its user: one query, or none for TOKEN_CACHE_SECONDS after one. Expiry
    is checked on every request, from the row, whether read or cached."""
    key_hash = hash_token(raw)
    row = _token_read(key_hash)
    if row is None:
        return None
    token = rows.instance(ApiToken, TOKEN_FIELDS, row[: len(TOKEN_FIELDS)])
    token.user = rows.instance(User, USER_FIELDS, row[len(TOKEN_FIELDS) :])
    if not token.is_active or not token.user.is_active:
        return None
    # Writes at most once a minute per token, so authentication stays a read; the cached
    # row is given the new time, or every request would write until it expired.
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        used = TOKEN_FIELDS.index("last_used_at")
        row = (*row[:used], connection.ops.adapt_datetimefield_value(now), *row[used + 1 :])
        cache.set(_cache_key(key_hash), row, TOKEN_CACHE_SECONDS)
    return token


def _cache_key(key_hash: str) -> str:
    return f"api-token:{key_hash}"


def _token_read(key_hash: str) -> tuple[Any, ...] | None:
    """The token's row with its user's, cached. Written as SQL: through the ORM, compiling
    this join cost more Python than the rest of an authenticated request
    (docs/performance.md). An unknown hash is not cached."""
    row: tuple[Any, ...] | None = cache.get(_cache_key(key_hash))
    if row is None:
        row = _token_row(key_hash)
        if row is not None:
            cache.set(_cache_key(key_hash), row, TOKEN_CACHE_SECONDS)
    return row


def _token_row(key_hash: str) -> tuple[Any, ...] | None:
    # Bandit B608 (SQL built from a string) does not apply: the f-string holds column and
    # table names from the models; the hash is a parameter.
    sql = (
        f"SELECT {rows.columns(ApiToken, TOKEN_FIELDS, 't')}, {rows.columns(User, USER_FIELDS, 'u')}"  # nosec B608
        f" FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id WHERE t.key_hash = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row

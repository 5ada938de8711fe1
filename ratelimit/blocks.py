"""Blocking and unblocking addresses: a BlockedIP row is the record (why, what was counted,
until when); the backend's blocked set is what requests are checked against, so a blocked
request is refused without a database query."""

import ipaddress
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError
from django.db.models import QuerySet
from django.utils import timezone

from omtx_hub.errors import InvalidInput
from ratelimit.allowlist import is_allowed
from ratelimit.backend import get_backend
from ratelimit.models import BlockedIP

security = logging.getLogger("omtx.security")


def block_seconds(offence: int) -> int:
    """A first block lasts RATE_LIMIT_BLOCK_SECONDS; each repeat doubles it, up to the maximum."""
    longest = settings.RATE_LIMIT_BLOCK_MAX_SECONDS
    return int(min(settings.RATE_LIMIT_BLOCK_SECONDS * 2 ** min(offence - 1, 32), longest))


def block_ip(
    *,
    ip: str,
    reason: str,
    counts: dict[str, int] | None = None,
    seconds: int | None = None,
    by: User | None = None,
    note: str = "",
) -> BlockedIP:
    if not blockable(ip):
        # Loopback is the host itself (its health checks, a proxy not yet declared in
        # OMTX_TRUSTED_PROXIES): blocking it would block everyone behind it.
        raise InvalidInput(f"{ip} is loopback or on the allow-list; it cannot be blocked.", code="ip_not_blockable")
    offence = BlockedIP.objects.filter(ip=ip).count() + 1
    expires_at = timezone.now() + timedelta(seconds=seconds or block_seconds(offence))
    row = BlockedIP.objects.create(
        ip=ip, reason=reason, counts=counts or {}, offence=offence, expires_at=expires_at, created_by=by, note=note
    )
    get_backend().publish_block(ip, expires_at.timestamp())
    security.warning("ip blocked ip=%s reason=%s offence=%d until=%s", ip, reason, offence, expires_at.isoformat())
    return row


def blockable(ip: str) -> bool:
    return not (ipaddress.ip_address(ip).is_loopback or is_allowed(ip))


def unblock_ip(*, ip: str, by: User | None = None) -> int:
    """Lift the address's active blocks; how many there were."""
    lifted = blocks_active().filter(ip=ip).update(lifted_at=timezone.now())
    get_backend().withdraw_block(ip)
    security.warning("ip unblocked ip=%s by=%s blocks=%d", ip, getattr(by, "pk", None), lifted)
    return lifted


def blocks_active() -> QuerySet[BlockedIP]:
    return BlockedIP.objects.filter(lifted_at__isnull=True, expires_at__gt=timezone.now())


def republish_blocks() -> int:
    """Make the backend's blocked set the table's active blocks (after Redis lost its data,
    after an outage, at the monitor's start); how many. Redis's addresses are read before
    the table: one blocked after that read is left alone even if the read missed its row."""
    backend = get_backend()
    before = backend.stored_blocks()
    active = {ip: until.timestamp() for ip, until in blocks_active().values_list("ip", "expires_at")}
    backend.restore_blocks(active, stale=before - active.keys())
    return len(active)


def blocked_until(ip: str) -> float | None:
    """The address's block from the backend's set (no query), after copying the table back
    when the backend says Redis may lack blocks (one query, then not again until Redis
    fails or loses its data once more)."""
    backend = get_backend()
    until = backend.blocked_until(ip)
    if backend.take_restore_due() and not _table_held:
        try:
            republish_blocks()
        except DatabaseError:
            # The table is not there yet (a new hub before its release step) or the database
            # is down: answer from what Redis holds, so /health and /health/ready still say
            # which, and copy on a later request.
            backend.restore_later()
            return until
        until = backend.blocked_until(ip)
    return until


# True: the table is not read to restore blocks (the test suite, whose tests may have no
# database access and whose key prefixes start empty; ratelimit.testing).
_table_held = False


def hold_no_blocks() -> None:
    global _table_held
    _table_held = True


def forget_held_blocks() -> None:
    global _table_held
    _table_held = False

"""Suspicious activity: answers that an attacker collects and a client rarely does, counted
per address in a window. Reaching the threshold blocks the address (ratelimit.blocks)."""

from django.conf import settings

from ratelimit.backend import get_backend
from ratelimit.blocks import block_ip, blockable
from ratelimit.models import BlockedIP

Reason = BlockedIP.Reason
# 401, and 403 when authentication failed: credentials tried and refused; 404 under /api/
# without a signed-in user: ids or paths guessed; 429: ignoring limits.
KINDS: dict[int, BlockedIP.Reason] = {
    401: Reason.AUTH_FAILURES,
    403: Reason.AUTH_FAILURES,
    404: Reason.NOT_FOUND_PROBING,
    429: Reason.RATE_LIMITED,
}


def threshold(kind: BlockedIP.Reason) -> int:
    base = {
        Reason.AUTH_FAILURES: settings.RATE_LIMIT_MAX_AUTH_FAILURES,
        Reason.NOT_FOUND_PROBING: settings.RATE_LIMIT_MAX_NOT_FOUND,
        Reason.RATE_LIMITED: settings.RATE_LIMIT_MAX_THROTTLED,
    }[kind]
    return max(1, round(base * settings.RATE_LIMIT_SCALE))


def observe(*, ip: str, status: int, api: bool, credentials: bool, authenticated: bool) -> BlockedIP | None:
    """Count this answer against the address; the block, when this one reached a threshold.
    `credentials`: a token was presented; `authenticated`: the request ended signed in."""
    kind = KINDS.get(status)
    if kind is None or not suspicious(status, api=api, credentials=credentials, authenticated=authenticated):
        return None
    window = settings.RATE_LIMIT_SUSPICIOUS_WINDOW_SECONDS
    count = get_backend().count(f"{settings.RATE_LIMIT_KEY_PREFIX}:suspicious:{kind}:{ip}", window=window)
    # Equal, not at least: of the requests racing past the threshold only one blocks.
    if count != threshold(kind) or not blockable(ip):
        return None
    return block_ip(ip=ip, reason=kind, counts={kind: count, "window_seconds": window})


def suspicious(status: int, *, api: bool, credentials: bool, authenticated: bool) -> bool:
    """A 401 only when credentials were sent (asking without any is no guess); a 403 only
    when they were refused (a signed-in user's quota refusal or missing permission is an
    answer, not an attack); a 404 only under /api/ and not signed in (a client polling its
    deleted batch is no prober)."""
    if status == 401:
        return credentials
    if status == 403:
        return credentials and not authenticated
    if status == 404:
        return api and not authenticated
    return True

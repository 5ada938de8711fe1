"""Who is on the other end of a websocket (docs/live-status.md).

A browser brings its session cookie (channels' AuthMiddlewareStack); a script brings an API
token, as `Authorization: Bearer <token>` or, where it cannot set headers, as the offered
subprotocol `bearer.<token>`. A token is checked by the API's own function
(accounts.services.token_authenticate: unknown, expired and revoked tokens fail) and, when
presented, decides the user whatever the cookie says. A token in the query string is refused
outright: query strings land in access logs. No token, whole or in part, is ever logged.

The middleware only labels the scope: `scope["user"]`, `scope["auth_token_id"]` when a token
decided it, and `scope["auth_refusal"]` naming why presented credentials were refused; the
consumers close with 4401 on either. An open socket asks `current_user` again every
OMTX_LIVE_REAUTH_SECONDS: a revoked token, an ended session or a deactivated user closes it.
"""

import logging
from typing import Any
from urllib.parse import parse_qsl

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.base import SessionBase
from django.utils.module_loading import import_string

from accounts.models import ApiToken
from accounts.services import token_authenticate

security_log = logging.getLogger("omtx.security")
SUBPROTOCOL_PREFIX = "bearer."
# Query parameters that would carry a credential; any of them refuses the socket.
QUERY_CREDENTIALS = frozenset({"token", "access_token", "auth", "authorization", "bearer", "api_key", "key"})


def presented_token(scope: dict[str, Any]) -> str | None:
    """The token of the Authorization header, else of a `bearer.` subprotocol."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, raw = value.decode("latin-1").partition(" ")
            if scheme.lower() in ("bearer", "token"):
                return raw.strip()
    protocols: list[str] = scope.get("subprotocols", [])
    for protocol in protocols:
        if protocol.startswith(SUBPROTOCOL_PREFIX):
            return protocol.removeprefix(SUBPROTOCOL_PREFIX)
    return None


def query_has_credentials(scope: dict[str, Any]) -> bool:
    query = scope.get("query_string", b"").decode("latin-1")
    return any(name.lower() in QUERY_CREDENTIALS for name, _ in parse_qsl(query, keep_blank_values=True))


@database_sync_to_async
def _token(raw: str) -> ApiToken | None:
    return token_authenticate(raw=raw)


@database_sync_to_async
def current_user(scope: dict[str, Any]) -> User | None:
    """The socket's user as the database has it now, or None when the credentials that opened
    the socket no longer hold: its token revoked or expired, its session ended, its user
    deactivated. Read past every cache, so a permission taken away is seen too."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None
    if (token_id := scope.get("auth_token_id")) is not None:
        token = ApiToken.objects.filter(pk=token_id).first()
        if token is None or not token.is_active:
            return None
    elif not _session_holds(scope, user.pk):
        return None
    return User.objects.filter(pk=user.pk, is_active=True).first()


def _session_holds(scope: dict[str, Any], user_id: int) -> bool:
    session = scope.get("session")
    key = getattr(session, "session_key", None)
    if not key:
        return False
    store: SessionBase = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key=key)
    return bool(store.get(SESSION_KEY) == str(user_id))


class TokenAuthMiddleware(BaseMiddleware):
    """Runs inside AuthMiddlewareStack: a presented token replaces the session's user."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        if query_has_credentials(scope):
            scope["user"], scope["auth_refusal"] = AnonymousUser(), "query_string"
            _log_refusal(scope, "credentials in the query string")
        elif (raw := presented_token(scope)) is not None:
            token = await _token(raw) if raw else None
            if token is None:
                scope["user"], scope["auth_refusal"] = AnonymousUser(), "invalid_token"
                _log_refusal(scope, "invalid, expired or revoked token")
            else:
                scope["user"], scope["auth_token_id"] = token.user, token.pk
        return await super().__call__(scope, receive, send)


def _log_refusal(scope: dict[str, Any], reason: str) -> None:
    client = scope.get("client") or ("-", 0)
    # %r: the path is the client's, and must not start a forged log line.
    security_log.warning(
        "websocket authentication failed: %s; ip=%s path=%r",
        reason,
        client[0],
        scope.get("path", ""),
        extra={"event": "auth_failed"},
    )


def WebsocketAuthStack(inner: Any) -> Any:
    """Session first, then the token (which wins when presented)."""
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))


class BrowserOriginValidator(OriginValidator):
    """channels' AllowedHostsOriginValidator, except that a handshake without an Origin
    header passes: browsers always send one (so a page of another site, which would bring
    the user's cookie, is refused), and a script, which sends none, has no one's cookie but
    its own and authenticates with its token."""

    def valid_origin(self, parsed_origin: Any) -> bool:
        return parsed_origin is None or bool(super().valid_origin(parsed_origin))


def OriginCheck(inner: Any) -> Any:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(inner, hosts)

"""Who is on the other end of a websocket (docs/live-status.md).

A browser brings its session cookie (channels' AuthMiddlewareStack); a script brings an API
token, as `Authorization: Bearer <token>` or, where it cannot set headers, as the offered
subprotocol `bearer.<token>`. A token is checked by the API's own function
(accounts.services.token_authenticate: unknown, expired and revoked tokens fail) and, when
presented, decides the user whatever the cookie says. A token in the query string is refused
outright: query strings land in access logs. No token, whole or in part, is ever logged.

The middleware only labels the scope: `scope["user"]`, and `scope["auth_refusal"]` naming
why presented credentials were refused; the consumers close with 4401 on either.
"""

import logging
from typing import Any
from urllib.parse import parse_qsl

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

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
def _token_user(raw: str) -> Any:
    token = token_authenticate(raw=raw)
    return token.user if token is not None else None


class TokenAuthMiddleware(BaseMiddleware):
    """Runs inside AuthMiddlewareStack: a presented token replaces the session's user."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        if query_has_credentials(scope):
            scope["user"], scope["auth_refusal"] = AnonymousUser(), "query_string"
            _log_refusal(scope, "credentials in the query string")
        elif (raw := presented_token(scope)) is not None:
            user = await _token_user(raw) if raw else None
            if user is None:
                scope["user"], scope["auth_refusal"] = AnonymousUser(), "invalid_token"
                _log_refusal(scope, "invalid, expired or revoked token")
            else:
                scope["user"] = user
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

import logging
from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.services import token_authenticate
from ratelimit.client_ip import client_ip

security_log = logging.getLogger("omtx.security")
# As much of a presented token as the log shows: the length of the stored prefix, which
# tells tokens apart without being enough to use one.
LOGGED_TOKEN_CHARS = 12


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` (the word `Token` is accepted too)."""

    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(parts) != 2:
            _log_failure(request, "malformed Authorization header", b"")
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        token = token_authenticate(raw=parts[1].decode(errors="replace"))
        if token is None:
            _log_failure(request, "invalid, expired or revoked token", parts[1])
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _log_failure(request: Request, reason: str, presented: bytes) -> None:
    # %r: the presented bytes are the client's, and must not start a forged log line.
    security_log.warning(
        "authentication failed: %s; ip=%s path=%r token=%r",
        reason,
        client_ip(request),  # the client, not the proxy in front of the hub
        request.path,
        presented[:LOGGED_TOKEN_CHARS],
        extra={"event": "auth_failed"},
    )

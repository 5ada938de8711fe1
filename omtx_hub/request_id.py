"""One id per request: taken from a sane `X-Request-ID` header (a proxy's or a client's, so
their logs and ours share it) or generated, echoed in the `X-Request-ID` response header, held
in a context variable for the log lines (omtx_hub/logging.py) and the error envelope
(omtx_hub/api_errors.py) of that request."""

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# What proxies and tracing tools send (UUIDs, hex, base64-ish tokens). Anything else (too
# long, spaces, control characters) would let a client write arbitrary text into our logs.
SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current() -> str | None:
    """The id of the request this code runs for, None outside a request."""
    return request_id.get()


def accept_or_generate(incoming: str | None) -> str:
    if incoming is not None and SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestId:
    """Outermost middleware: everything inside, the error envelope included, sees the id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        value = accept_or_generate(request.headers.get(HEADER))
        token = request_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            # Reset: a line logged between requests, or an envelope built outside one, must
            # not carry the last request's id. (Django's own "Not Found: …" line for a 4xx is
            # written after the middleware returns, and goes without.)
            request_id.reset(token)
        response[HEADER] = value
        return response

"""Middleware for /api/ requests: every error answer in the envelope, and no request text
that cannot be stored as text (PostgreSQL refuses NUL in text columns, a 500 otherwise)."""

import re
from collections.abc import Callable
from urllib.parse import unquote_plus, unquote_to_bytes

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response

from omtx_hub.api_errors import error_body, error_response, is_api

GetResponse = Callable[[HttpRequest], HttpResponse]

# C0 controls and DEL. Tab too: no parameter (status, search, dates, metrics, limit, …)
# has a use for it, and a tab pasted into a search is a mistake, not a query.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What Django's session keys are made of (get_random_string, lowercase and digits).
SESSION_KEY = re.compile(r"[a-z0-9]{8,64}")


class ApiErrorEnvelope:
    """Outermost: an error Django answered by itself (an unknown URL, a 405 or an exception
    outside a DRF view, a technical page with DEBUG on) becomes the envelope. DRF responses
    already went through the exception handler and keep their negotiated rendering."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not is_api(request) or isinstance(response, JsonResponse | Response):
            return response
        envelope = error_response(response.status_code)
        if response.has_header("Allow"):
            envelope["Allow"] = response["Allow"]
        return envelope


class ApiInputGuard:
    """Refuses query parameters, and the Idempotency-Key header, that are not clean text:
    the request text that reaches a query or a column without passing a serializer.
    Everywhere, a forged session cookie is dropped before the session is looked up."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        _forget_forged_session(request)
        if not is_api(request):
            return self.get_response(request)
        if (name := unclean_parameter(request.META.get("QUERY_STRING", ""))) is not None:
            message = f"Query parameter {name!r} must be UTF-8 text without control characters."
            return JsonResponse(error_body("invalid_query", message, {"parameter": name}), status=400)
        if CONTROL.search(request.headers.get("Idempotency-Key", "")):
            message = "Idempotency-Key must not contain control characters."
            return JsonResponse(error_body("invalid_idempotency_key", message), status=400)
        return self.get_response(request)


def _forget_forged_session(request: HttpRequest) -> None:
    """A session cookie no session key looks like (a NUL would reach the session
    table's lookup and fail there) is no session: the request is anonymous."""
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if key is not None and not SESSION_KEY.fullmatch(key):
        del request.COOKIES[settings.SESSION_COOKIE_NAME]


def unclean_parameter(query_string: str) -> str | None:
    """The name of the first parameter whose name or value is not clean text, else None.
    Django decodes the query string leniently (invalid UTF-8 becomes U+FFFD), so the check
    reads the percent-encoded bytes itself."""
    for pair in filter(None, query_string.split("&")):
        raw_name, _, raw_value = pair.partition("=")
        if not (_is_clean(raw_name) and _is_clean(raw_value)):
            return unquote_plus(raw_name)
    return None


def _is_clean(component: str) -> bool:
    try:
        text = unquote_to_bytes(component.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return CONTROL.search(text) is None

"""One exception handler, one error envelope for the whole API:

{"error": {"code": "...", "message": "...", "details": ..., "request_id": "..."}}

`request_id` is the request's X-Request-ID (omtx_hub/request_id.py), the key to its log lines.

DRF views answer through `exception_handler`, unhandled exceptions included. What Django
answers by itself under /api/ (an unknown URL, an exception outside a view) goes through
`error_response`: from `not_found`/`server_error` (handler404/handler500) with DEBUG off, and
from omtx_hub.middleware.ApiErrorEnvelope in every mode, since with DEBUG on Django renders its
technical pages and never calls the handlers.
"""

import logging
import re
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from omtx_hub import request_id
from omtx_hub.errors import DomainError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# The answers Django produces by itself, coded as DRF codes its own.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is malformed."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("too_large", "The request body exceeds the upload limit."),
    500: ("server_error", "Internal server error."),
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error = {"code": code, "message": message, "details": details, "request_id": request_id.current()}
    return {"error": error}


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_response(status_code: int) -> JsonResponse:
    """The envelope for an answer Django produced by itself, from its status alone."""
    return JsonResponse(error_body(*_status_error(status_code)), status=status_code)


def _status_error(status_code: int) -> tuple[str, str]:
    if status_code in STATUS_ERRORS:
        return STATUS_ERRORS[status_code]
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "Error"
    return re.sub(r"\W+", "_", phrase.lower()), f"{phrase}."


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: the envelope under /api/, Django's page elsewhere (admin, account)."""
    return error_response(404) if is_api(request) else defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500; Django has already logged the traceback."""
    return error_response(500) if is_api(request) else defaults.server_error(request)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(*STATUS_ERRORS[413]), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        # A row deleted by a racing request mid-way through this one: gone, not a server error.
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return _unhandled(exc, context.get("request"))
    if not isinstance(exc, exceptions.APIException):
        return response
    response.data = _envelope(exc)
    return response


def _unhandled(exc: Exception, request: Any) -> Response:
    """A bug: the traceback goes to the log, never into the body."""
    logger.exception("Unhandled exception in %s", getattr(request, "path", "an API view"), exc_info=exc)
    # Django sends this for every exception it catches itself, and this one never reaches
    # Django: error reporters listen for it, and the test client re-raises on it.
    got_request_exception.send(sender=None, request=getattr(request, "_request", request))
    set_rollback()
    return Response(error_body(*STATUS_ERRORS[500]), status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _envelope(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return error_body("validation_error", "The request is invalid.", exc.detail)
    detail = exc.detail
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return error_body(str(code), str(detail))

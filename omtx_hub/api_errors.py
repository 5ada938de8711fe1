"""One exception handler, one error envelope for the whole API:

{"error": {"code": "...", "message": "...", "details": ...}}
"""

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from omtx_hub.errors import DomainError


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("too_large", "The request body exceeds the upload limit."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        # A row deleted by a racing request mid-way through this one: gone, not a server error.
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _envelope(exc)
    return response


def _envelope(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return error_body("validation_error", "The request is invalid.", exc.detail)
    detail = exc.detail
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return error_body(str(code), str(detail))

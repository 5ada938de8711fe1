"""Middleware for /api/ requests: every error answer in the envelope."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response

from omtx_hub.api_errors import error_response, is_api

GetResponse = Callable[[HttpRequest], HttpResponse]


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

"""The hub's routes plus two bench-only views, the floors the API is measured against:
`/bench/bare`, a Django view answering a constant JSON body through the same middleware, and
`/bench/auth`, the same body from a DRF view behind the API's authentication and permission
(the token and its user read, nothing else). The production URLconf never has them."""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omtx_hub.urls import handler404, handler500
from omtx_hub.urls import urlpatterns as hub_urlpatterns


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


class Authenticated(APIView):
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


urlpatterns = [path("bench/bare", bare), path("bench/auth", Authenticated.as_view()), *hub_urlpatterns]
__all__ = ["handler404", "handler500", "urlpatterns"]

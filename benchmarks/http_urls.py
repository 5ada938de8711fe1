"""The hub's routes plus `/bench/bare`: a Django view that answers a constant JSON body
through the same middleware, the floor the API is measured against. Bench only: the
production URLconf never has it."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from omtx_hub.urls import handler404, handler500
from omtx_hub.urls import urlpatterns as hub_urlpatterns


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/bare", bare), *hub_urlpatterns]
__all__ = ["handler404", "handler500", "urlpatterns"]

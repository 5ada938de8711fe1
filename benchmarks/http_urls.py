"""The hub's routes plus three bench-only views, the floors the API is measured against:
`/bench/bare`, a Django view answering a constant JSON body through the same middleware;
`/bench/db`, the same view after one single-row read by primary key (so also the persistent
connection's health check, a `SELECT 1`, which runs at a request's first query); and
`/bench/auth`, the same body from a DRF view behind the API's authentication and permission
(the token and its user, read or cached, nothing else). The production URLconf never has them."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omtx_hub.urls import handler404, handler500
from omtx_hub.urls import urlpatterns as hub_urlpatterns


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def one_row(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM auth_user WHERE id = %s", [1])
        cursor.fetchone()
    return JsonResponse({"status": "ok"})


class Authenticated(APIView):
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


urlpatterns = [
    path("bench/bare", bare),
    path("bench/db", one_row),
    path("bench/auth", Authenticated.as_view()),
    *hub_urlpatterns,
]
__all__ = ["handler404", "handler500", "urlpatterns"]

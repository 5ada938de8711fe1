import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from accounts.permissions import sees_monitoring
from monitoring.readiness import readiness

log = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    """Signed in, home is the user's batches; otherwise what the hub is and a way in."""
    if request.user.is_authenticated:
        return redirect("batch-page-list")
    return render(request, "home.html")


def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers and reaches its database. The error text
    goes to the log, never to the caller: the probe is anonymous, and who is
    staff cannot be asked of a database that does not answer."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        log.exception("health: database unreachable")
        return JsonResponse({"status": "unhealthy", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "healthy", "database": "ok"})


def health_ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every check passes, else 503, with each check's
    state word; the details (hosts, driver errors) only for staff who may read monitoring."""
    ready, checks = readiness()
    staff = _sees_details(request)
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {name: check.staff() if staff else check.public() for name, check in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


def _sees_details(request: HttpRequest) -> bool:
    try:
        return sees_monitoring(request.user)
    except DatabaseError:
        # The session and the permissions live in the database: when it is down, nobody is known.
        return False


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request: Request) -> Response:
    links = {
        name: reverse(f"v3:{name}", request=request) for name in ("batch-list", "model-list", "schema", "swagger-ui")
    }
    return Response({"version": "v3", "links": links})

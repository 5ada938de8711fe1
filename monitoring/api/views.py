"""Staff-only monitoring endpoints: the dashboard, cache stats, and the
predecessor's health paths, served from the same selectors (docs/monitoring.md)."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import VIEW_MONITORING, HasModelPermission
from monitoring import dashboard, sources
from monitoring.api import schemas
from monitoring.readiness import readiness
from monitoring.readings import take_snapshot

F = TypeVar("F", bound=Callable[..., Any])


def documented(operation_id: str, body: type, summary: str) -> Callable[[F], F]:
    """The schema of a staff GET: its typed body and the errors every one may answer."""
    return extend_schema(operation_id=operation_id, summary=summary, responses={200: body, **schemas.ERRORS})


class StaffView(APIView):
    """Active staff who may view alert rules (superusers hold every permission): not
    is_staff alone, the admin's model permissions say who operates what."""

    permission_classes = [HasModelPermission]
    staff_permissions = {"GET": (VIEW_MONITORING,)}


class Dashboard(StaffView):
    @documented(
        "monitoring_dashboard",
        schemas.DashboardSerializer,
        "System, batch, executor, cache and request health with open alerts",
    )
    def get(self, request: Request) -> Response:
        return Response(dashboard.dashboard(now=timezone.now()))


class CacheStats(StaffView):
    @documented("cache_stats", schemas.CacheStatsSerializer, "Cache hit rate and errors, across processes")
    def get(self, request: Request) -> Response:
        return Response(sources.cache_stats())


class MonitoringHealth(StaffView):
    """Alias (predecessor): overall status with the measured health areas."""

    @documented("monitoring_health", schemas.MonitoringHealthSerializer, "Alias: overall status and the health areas")
    def get(self, request: Request) -> Response:
        snapshot = take_snapshot(now=timezone.now())
        return Response(
            {
                **dashboard.status_summary(),
                "system_health": snapshot.system,
                "batch_health": {**snapshot.batches, "healthy": dashboard.batches_healthy(snapshot)},
                "executor": snapshot.executor,
            }
        )


class HealthStatus(StaffView):
    @documented(
        "health_status", schemas.StatusSerializer, "Alias: healthy / degraded / unhealthy, checks and open alerts"
    )
    def get(self, request: Request) -> Response:
        return Response(dashboard.status_summary())


class HealthServices(StaffView):
    @documented("health_services", schemas.ServicesSerializer, "Alias: each service the hub depends on")
    def get(self, request: Request) -> Response:
        ready, checks = readiness()
        services: dict[str, Any] = {name: check.staff() for name, check in checks.items()}
        services["rate_limiter"] = sources.limiter_status()
        return Response({"ready": ready, "services": services})


class HealthMetrics(StaffView):
    @documented("health_metrics", schemas.MetricsSerializer, "Alias: the dashboard's measurements without alerts")
    def get(self, request: Request) -> Response:
        body = dashboard.dashboard(now=timezone.now())
        body.pop("alerts")
        return Response(body)


class HealthSlo(StaffView):
    @documented(
        "health_slo", schemas.SloSerializer, "Alias: the seed's service level objectives against the APM window"
    )
    def get(self, request: Request) -> Response:
        performance = sources.performance(window_seconds=settings.OMTX_MONITORING_WINDOW_SECONDS)
        return Response(dashboard.slo_report(performance=performance))

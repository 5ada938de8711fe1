"""Staff-only monitoring endpoints: the dashboard, cache stats, and the
predecessor's health paths, served from the same selectors (docs/monitoring.md)."""

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring import dashboard, sources
from monitoring.readiness import readiness
from monitoring.readings import take_snapshot


class IsMonitoringStaff(BasePermission):
    """Active staff who may view alert rules (superusers may do everything).
    Not is_staff alone: the admin's model permissions say who operates what."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_active and user.is_staff and user.has_perm("monitoring.view_alertrule"))


FREE_FORM = OpenApiResponse(description="JSON object; fields in docs/monitoring.md")


class StaffView(APIView):
    permission_classes = [IsMonitoringStaff]


class Dashboard(StaffView):
    @extend_schema(responses=FREE_FORM, summary="System, batch, executor, cache and request health with open alerts")
    def get(self, request: Request) -> Response:
        return Response(dashboard.dashboard(now=timezone.now()))


class CacheStats(StaffView):
    @extend_schema(responses=FREE_FORM, summary="Cache hit rate and errors, across processes")
    def get(self, request: Request) -> Response:
        return Response(sources.cache_stats())


class MonitoringHealth(StaffView):
    """Alias (predecessor): overall status with the measured health areas."""

    @extend_schema(responses=FREE_FORM, summary="Alias: overall status and health areas")
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
    @extend_schema(responses=FREE_FORM, summary="Alias: healthy / degraded / unhealthy, checks and open alerts")
    def get(self, request: Request) -> Response:
        return Response(dashboard.status_summary())


class HealthServices(StaffView):
    @extend_schema(responses=FREE_FORM, summary="Alias: each service the hub depends on")
    def get(self, request: Request) -> Response:
        ready, checks = readiness()
        services: dict[str, Any] = {name: check.staff() for name, check in checks.items()}
        services["rate_limiter"] = sources.limiter_status()
        return Response({"ready": ready, "services": services})


class HealthMetrics(StaffView):
    @extend_schema(responses=FREE_FORM, summary="Alias: the dashboard's measurements without alerts")
    def get(self, request: Request) -> Response:
        body = dashboard.dashboard(now=timezone.now())
        body.pop("alerts")
        return Response(body)


class HealthSlo(StaffView):
    @extend_schema(responses=FREE_FORM, summary="Alias: the seed's service level objectives against the APM window")
    def get(self, request: Request) -> Response:
        performance = sources.performance(window_seconds=settings.OMTX_MONITORING_WINDOW_SECONDS)
        return Response(dashboard.slo_report(performance=performance))

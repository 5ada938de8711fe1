from django.urls import URLPattern, re_path
from rest_framework.views import APIView

from monitoring.api import views


def route(pattern: str, view: type[APIView], name: str) -> URLPattern:
    # Trailing slash optional, as for the batch paths: the predecessor's clients omit it.
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns = [
    route("monitoring/dashboard", views.Dashboard, "monitoring-dashboard"),
    route("cache/stats", views.CacheStats, "cache-stats"),
    # Aliases the predecessor's clients call (docs/monitoring.md).
    route("monitoring/health", views.MonitoringHealth, "monitoring-health"),
    route("health/status", views.HealthStatus, "health-status"),
    route("health/services", views.HealthServices, "health-services"),
    route("health/metrics", views.HealthMetrics, "health-metrics"),
    route("health/slo", views.HealthSlo, "health-slo"),
]

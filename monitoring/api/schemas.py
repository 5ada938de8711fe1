"""The OpenAPI contract of the monitoring endpoints (documentation only: the
views render the selectors' dicts, as the batch API does; docs/monitoring.md
says what each number measures)."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

S = serializers

# The API's one error envelope, by reference: it is the batch API's component, and
# monitoring does not import batches at load time (DESIGN §2).
ERROR = {"$ref": "#/components/schemas/Error"}
ERRORS = {
    400: OpenApiResponse(ERROR, description="A bad query string or header, or a NUL byte in the request."),
    401: OpenApiResponse(ERROR, description="No token, or an invalid, expired or revoked one."),
    403: OpenApiResponse(ERROR, description="Not active staff with the monitoring.view_alertrule permission."),
    429: OpenApiResponse(ERROR, description="Too many requests; retry after the `Retry-After` header's seconds."),
}


def nullable_float(help_text: str) -> S.FloatField:
    return S.FloatField(allow_null=True, help_text=help_text)


class SystemHealthSerializer(S.Serializer[Any]):
    cpu_percent = S.FloatField(help_text="Since the previous reading in the answering process.")
    cpu_count = S.IntegerField()
    memory_percent = S.FloatField()
    disk_percent = S.FloatField(help_text="Of the file system holding OMTX_VAR_DIR.")
    load_average = S.DictField(child=S.FloatField(), help_text="1m, 5m, 15m.")
    uptime_seconds = S.FloatField(help_text="Of the answering process.")
    host_uptime_seconds = S.FloatField()
    process_memory_mb = S.FloatField()


class BatchHealthSerializer(S.Serializer[Any]):
    total_batches = S.IntegerField()
    active_batches = S.IntegerField(help_text="Validating, queued or running.")
    completed_batches = S.IntegerField(help_text="Completed, with or without failures.")
    failed_batches = S.IntegerField()
    by_status = S.DictField(child=S.IntegerField())
    window_seconds = S.IntegerField(help_text="The failure rates count batches active or finished within this.")
    average_error_rate = nullable_float("Failed ÷ finished jobs, %.")
    batch_failure_rate = nullable_float("Batches ended failed ÷ batches that ran to an end, %.")
    healthy = S.BooleanField(help_text="No enabled batch or executor alert rule holds now.")


class ExecutorModelSerializer(S.Serializer[Any]):
    model = S.CharField()
    executor = S.CharField()
    ready = S.BooleanField()
    problem = S.CharField(help_text="Why it cannot run here; empty when it can.")


class ExecutorSerializer(S.Serializer[Any]):
    in_flight = S.IntegerField(help_text="Dispatched or running jobs under a live lease.")
    expired_leases = S.IntegerField()
    oldest_expired_lease_seconds = nullable_float("Null when no lease has expired.")
    queue_depth = S.IntegerField()
    oldest_queued_job_seconds = nullable_float("Null when nothing is queued.")
    max_in_flight = S.IntegerField()
    lease_seconds = S.IntegerField()
    executors = ExecutorModelSerializer(many=True)


class CacheStatsSerializer(S.Serializer[Any]):
    hit_rate_percentage = S.FloatField()
    hits = S.IntegerField()
    misses = S.IntegerField()
    cache_errors = S.IntegerField()
    connected_to_redis = S.BooleanField()
    backend = S.CharField()


class PerformanceSerializer(S.Serializer[Any]):
    window_seconds = S.IntegerField()
    store_available = S.BooleanField(help_text="False while the shared APM store (Redis) does not answer.")
    requests = S.IntegerField()
    requests_per_second = S.FloatField()
    error_rate_percent = nullable_float("5xx answers, %; null with no request in the window.")
    avg_response_time_ms = nullable_float("Null with no request in the window.")
    p50_response_time_ms = nullable_float("")
    p95_response_time_ms = nullable_float("")
    p99_response_time_ms = nullable_float("")


class DashboardLimiterSerializer(S.Serializer[Any]):
    enabled = S.BooleanField()
    backend = S.CharField()
    breaker_state = S.CharField()


class OpenAlertSerializer(S.Serializer[Any]):
    id = S.IntegerField()
    rule = S.CharField()
    metric = S.CharField()
    severity = S.CharField()
    message = S.CharField()
    threshold = S.FloatField()
    value = S.FloatField(help_text="When it fired.")
    last_value = nullable_float("At the latest evaluation.")
    opened_at = S.DateTimeField()
    acknowledged = S.BooleanField()


class MetricsSerializer(S.Serializer[Any]):
    generated_at = S.DateTimeField()
    system_health = SystemHealthSerializer()
    batch_health = BatchHealthSerializer()
    executor = ExecutorSerializer()
    cache_stats = CacheStatsSerializer()
    performance = PerformanceSerializer()
    rate_limiting = DashboardLimiterSerializer()


class DashboardSerializer(MetricsSerializer):
    alerts = OpenAlertSerializer(many=True, help_text="Open alerts, newest first.")


class CheckSerializer(S.Serializer[Any]):
    ok = S.BooleanField()
    state = S.CharField(help_text="ok, unreachable, pending, unknown, not_configured, misconfigured.")
    detail = S.CharField()


class StatusSerializer(S.Serializer[Any]):
    status = S.CharField(
        help_text="healthy, degraded (an alert is open) or unhealthy (not ready, or a critical alert)."
    )
    ready = S.BooleanField()
    checks = S.DictField(child=CheckSerializer())
    open_alerts = S.IntegerField()
    critical_alerts = S.IntegerField()


class MonitoringHealthSerializer(StatusSerializer):
    system_health = SystemHealthSerializer()
    batch_health = BatchHealthSerializer()
    executor = ExecutorSerializer()


class ServicesSerializer(S.Serializer[Any]):
    ready = S.BooleanField()
    services = S.DictField(child=S.JSONField(), help_text="Each readiness check, and rate_limiter.")


class ObjectiveSerializer(S.Serializer[Any]):
    name = S.CharField()
    routes = S.ListField(child=S.CharField())
    objective_p95_ms = S.FloatField()
    p95_ms = nullable_float("The worse p95 of the routes; null when none was called.")
    requests = S.IntegerField()
    met = S.BooleanField(allow_null=True, help_text="Null when nothing was measured.")


class ErrorRateObjectiveSerializer(S.Serializer[Any]):
    objective_percent = S.FloatField()
    measured_percent = nullable_float("")
    requests = S.IntegerField()
    met = S.BooleanField(allow_null=True)


class SloSerializer(S.Serializer[Any]):
    window_seconds = S.IntegerField()
    objectives = ObjectiveSerializer(many=True)
    error_rate = ErrorRateObjectiveSerializer()

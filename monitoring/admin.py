"""The operator console for alerts. Rules are edited here; alerts are opened
and resolved by the monitor only, and acknowledged through the service."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from monitoring.alerts import alert_acknowledge
from monitoring.models import Alert, AlertRule
from omtx_hub.errors import DomainError


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin[AlertRule]):
    list_display = ["name", "metric", "threshold", "severity", "enabled", "updated_at"]
    list_editable = ["threshold", "severity", "enabled"]
    list_filter = ["enabled", "severity", "metric"]
    search_fields = ["name", "description"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin[Alert]):
    list_display = [
        "rule",
        "severity",
        "status",
        "message",
        "value",
        "peak_value",
        "last_value",
        "opened_at",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
    ]
    list_filter = ["status", "severity", ("acknowledged_at", admin.EmptyFieldListFilter), "rule", "opened_at"]
    list_select_related = ["rule", "acknowledged_by"]
    list_per_page = 50
    date_hierarchy = "opened_at"
    actions = ["acknowledge"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts come from rule evaluation

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False  # history: acknowledge through the action, never edit

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("monitoring.change_alert")

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done, refused = 0, []
        for alert in queryset.select_related("rule"):
            try:
                alert_acknowledge(alert=alert, user=request.user, now=timezone.now())
                done += 1
            except DomainError as exc:
                refused.append(exc.message)
        self.message_user(request, f"{done} alert(s) acknowledged.")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)

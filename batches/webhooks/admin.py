"""The operator's view of webhooks: every delivery with its attempts, and redelivery.
Registered by the last line of batches/admin.py."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from batches.webhooks.deliveries import delivery_redeliver
from batches.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSecret
from omtx_hub.errors import DomainError


class AttemptInline(admin.TabularInline[WebhookAttempt, WebhookDelivery]):
    model = WebhookAttempt
    fields = ["number", "started_at", "duration_ms", "status_code", "outcome", "error", "response_excerpt"]
    readonly_fields = ["number", "started_at", "duration_ms", "status_code", "outcome", "error", "response_excerpt"]
    extra = 0
    can_delete = False
    ordering = ["number"]

    def has_add_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    list_display = ["id", "event", "owner", "batch", "url", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event", "created_at"]
    list_select_related = ["owner", "batch"]
    search_fields = ["id", "url", "owner__username", "batch__id", "job_id"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    date_hierarchy = "created_at"
    inlines = [AttemptInline]
    actions = ["redeliver"]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from events, in the transaction of the change

    @admin.action(description="Redeliver now (a fresh set of attempts)", permissions=["change"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        done = 0
        for delivery in queryset:
            try:
                delivery_redeliver(delivery=delivery)
                done += 1
            except DomainError as refused:
                self.message_user(request, f"{delivery.pk}: {refused.message}", messages.WARNING)
        self.message_user(request, f"{done} deliveries queued to be sent again.", messages.SUCCESS)


@admin.register(WebhookSecret)
class WebhookSecretAdmin(admin.ModelAdmin[WebhookSecret]):
    """Who has a secret and since when; the secrets themselves are never shown."""

    list_display = ["user", "created_at", "previous_valid_until"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    fields = ["user", "created_at", "previous_valid_until"]
    readonly_fields = ["user", "created_at", "previous_valid_until"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

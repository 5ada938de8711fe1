"""The operator's console for tiers, assignments, blocks and the allow-list. Blocking and
unblocking go through ratelimit.blocks, as the API's do, so the backend's blocked set
follows every change made here."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from omtx_hub.errors import DomainError
from omtx_hub.requests import request_user
from ratelimit.allowlist import forget_allowed_networks
from ratelimit.blocks import block_ip, unblock_ip
from ratelimit.models import AllowedNetwork, BlockedIP, Tier, TierAssignment
from ratelimit.selectors import allow_network
from ratelimit.tiers import forget_cached_tiers


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin[Tier]):
    list_display = [
        "name",
        "requests_per_minute",
        "burst",
        "endpoint_limits",
        "max_ligands_per_batch",
        "max_active_batches",
        "max_queued_jobs",
        "gpu_seconds_per_month",
        "fair_share_weight",
        "is_default",
    ]

    def save_model(self, request: HttpRequest, obj: Tier, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        forget_cached_tiers()


@admin.register(TierAssignment)
class TierAssignmentAdmin(admin.ModelAdmin[TierAssignment]):
    list_display = ["user", "tier", "assigned_at"]
    list_filter = ["tier"]
    list_select_related = ["user", "tier"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]

    def save_model(self, request: HttpRequest, obj: TierAssignment, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        forget_cached_tiers()


class BlockForm(forms.ModelForm[BlockedIP]):
    seconds = forms.IntegerField(min_value=1, required=False, help_text="Empty: the growing default period.")

    class Meta:
        model = BlockedIP
        fields = ["ip", "note"]


@admin.register(BlockedIP)
class BlockedIPAdmin(admin.ModelAdmin[BlockedIP]):
    list_display = ["ip", "reason", "offence", "created_at", "expires_at", "lifted_at", "created_by"]
    list_filter = ["reason", "lifted_at"]
    list_select_related = ["created_by"]
    search_fields = ["ip", "note"]
    list_per_page = 100
    actions = ["unblock"]

    def get_form(self, request: HttpRequest, obj: BlockedIP | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = BlockForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: BlockedIP | None = None) -> list[str]:
        # A block is a record: what it says is changed by lifting it, not by editing it.
        if obj is None:
            return []
        return [f.name for f in BlockedIP._meta.fields]

    def save_model(self, request: HttpRequest, obj: BlockedIP, form: Any, change: bool) -> None:
        if change:
            return
        try:
            row = block_ip(
                ip=obj.ip,
                reason=BlockedIP.Reason.MANUAL,
                seconds=form.cleaned_data.get("seconds"),
                by=request_user(request),
                note=obj.note,
            )
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        obj.pk = row.pk

    @admin.action(description="Unblock the selected addresses", permissions=["change"])
    def unblock(self, request: HttpRequest, queryset: QuerySet[BlockedIP]) -> None:
        addresses = set(queryset.values_list("ip", flat=True))
        for ip in addresses:
            unblock_ip(ip=ip, by=request_user(request))
        self.message_user(request, f"Unblocked {len(addresses)} address(es).")


@admin.register(AllowedNetwork)
class AllowedNetworkAdmin(admin.ModelAdmin[AllowedNetwork]):
    list_display = ["network", "note", "created_at"]
    search_fields = ["network", "note"]

    def save_model(self, request: HttpRequest, obj: AllowedNetwork, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            forget_allowed_networks()
            return
        try:
            obj.pk = allow_network(network=obj.network, note=obj.note).pk
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)

    def delete_model(self, request: HttpRequest, obj: AllowedNetwork) -> None:
        super().delete_model(request, obj)
        forget_allowed_networks()

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken
from accounts.services import token_revoke
from omtx_hub.requests import request_user


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = ["prefix", "name", "user", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    list_select_related = ["user"]
    search_fields = ["prefix", "name", "user__username"]
    # Owner, expiry and revocation change through the services only, which log the change and
    # drop the token's cached row; a form save would do neither (and could un-revoke a token).
    readonly_fields = ["prefix", "user", "created_at", "expires_at", "revoked_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tokens are minted by `manage.py create_token` or the account page,
        # which are the only places the raw value can be shown.
        return False

    # Without `permissions`, anyone who may view the list could run the action.
    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            token_revoke(token=token, actor=request_user(request))

"""Staff access follows the ratelimit app's model permissions, not is_staff alone."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


def may(request: Request, codename: str) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and user.is_staff and user.has_perm(f"ratelimit.{codename}"))


class ManagesBlocks(BasePermission):
    """Read: view_blockedip. Block: add_blockedip. Unblock: change_blockedip."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return may(request, "view_blockedip")
        return may(request, getattr(view, "write_permission", "add_blockedip"))


class ManagesAllowList(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        codename = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "DELETE": "delete"}.get(
            request.method or "", "add"
        )
        return may(request, f"{codename}_allowednetwork")


class SeesAllUsage(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return may(request, "view_tier")

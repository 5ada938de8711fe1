"""Who may manage blocks and the allow-list, and read others' usage: the ratelimit app's
model permissions, under the one staff rule (accounts.permissions.staff_has_perms)."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from accounts.permissions import HasModelPermission, staff_has_perms


def _ratelimit(codename: str) -> tuple[str, ...]:
    return (f"ratelimit.{codename}",)


def may(request: Request, codename: str) -> bool:
    """Whether the caller is active staff holding ratelimit's `codename` permission."""
    return staff_has_perms(request.user, _ratelimit(codename))


class ManagesBlocks(HasModelPermission):
    """Read: view_blockedip. Block: add_blockedip. Unblock (a view's `write_permission`):
    change_blockedip."""

    def required(self, request: Request, view: Any) -> tuple[str, ...]:
        if request.method in SAFE_METHODS:
            return _ratelimit("view_blockedip")
        return _ratelimit(getattr(view, "write_permission", "add_blockedip"))


class ManagesAllowList(HasModelPermission):
    """Read: view_allowednetwork. Remove: delete_allowednetwork. Add: add_allowednetwork."""

    def required(self, request: Request, view: Any) -> tuple[str, ...]:
        action = "view" if request.method in SAFE_METHODS else "delete" if request.method == "DELETE" else "add"
        return _ratelimit(f"{action}_allowednetwork")


class SeesAllUsage(HasModelPermission):
    """Every user's usage: view_tier."""

    def required(self, request: Request, view: Any) -> tuple[str, ...]:
        return _ratelimit("view_tier")

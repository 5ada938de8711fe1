"""Staff access follows Django's model permissions, not `is_staff` alone.

Being staff lets a user into the admin; what they may see or change there, and through the
API, is what their permissions (direct or through groups) say. Superusers hold every
permission. Other apps' staff endpoints use `HasModelPermission` (docs/security.md).
"""

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

AnyUser = AbstractBaseUser | AnonymousUser
VIEW_ALL_BATCHES = "batches.view_batch"
# Who reads the hub's health: the monitoring API, /metrics, the readiness details.
VIEW_MONITORING = "monitoring.view_alertrule"


def staff_has_perms(user: AnyUser, perms: tuple[str, ...]) -> bool:
    """An active staff member holding every one of `perms` ("app_label.codename").
    Decided before any query for everyone else: `has_perm` reads the permission tables
    (once per user object) only for staff who are not superusers."""
    if not (user.is_active and getattr(user, "is_staff", False)):
        return False
    return isinstance(user, PermissionsMixin) and user.has_perms(perms)


def sees_all_batches(user: AnyUser) -> bool:
    """Whether the batch selectors show `user` every owner's batches, not only their own."""
    return staff_has_perms(user, (VIEW_ALL_BATCHES,))


def sees_monitoring(user: AnyUser) -> bool:
    """Whether `user` may read the hub's health in detail (hosts, driver errors, metrics)."""
    return staff_has_perms(user, (VIEW_MONITORING,))


class HasModelPermission(BasePermission):
    """DRF permission for staff endpoints. The view names, per HTTP method, the model
    permissions a caller needs:

        permission_classes = [HasModelPermission]
        staff_permissions = {"GET": ("ratelimit.view_blockedip",),
                             "POST": ("ratelimit.change_blockedip",)}

    A method the view does not list is refused (fail closed), so adding a method to a view
    cannot open it by accident. HEAD follows GET, as Django routes it. A subclass whose
    views name their permissions another way overrides `required`."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        perms = self.required(request, view)
        return perms is not None and staff_has_perms(request.user, perms)

    def required(self, request: Request, view: APIView) -> tuple[str, ...] | None:
        """The permissions this request needs; None refuses it whoever asks."""
        named: Mapping[str, tuple[str, ...]] = getattr(view, "staff_permissions", {})
        return named.get("GET" if request.method == "HEAD" else request.method or "")

"""Staff see every batch through the API only with the model permission, not for being staff."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from accounts.permissions import HasModelPermission, sees_all_batches
from accounts.services import token_create
from batches.models import Batch
from ratelimit.api.permissions import ManagesAllowList, ManagesBlocks, SeesAllUsage


def with_perm(user: User, codename: str = "view_batch") -> User:
    user.user_permissions.add(Permission.objects.get(content_type__app_label="batches", codename=codename))
    return User.objects.get(pk=user.pk)  # a fresh object: permissions are cached per instance


@pytest.fixture
def plain_staff(db: None) -> User:
    return User.objects.create_user("desk", is_staff=True)


@pytest.fixture
def viewer(db: None) -> User:
    return with_perm(User.objects.create_user("auditor", is_staff=True))


def client_of(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user)[1]}")
    return client


def listed(client: APIClient) -> set[str]:
    return {row["id"] for row in client.get("/api/v3/batches/").json()["results"]}


@pytest.mark.parametrize(
    "persona,sees_all",
    [("owner", False), ("outsider", False), ("plain_staff", False), ("viewer", True), ("staff", True)],
)
def test_who_sees_someone_elses_batch(
    request: pytest.FixtureRequest, make_batch: Callable[..., Batch], outsider: User, persona: str, sees_all: bool
) -> None:
    theirs = make_batch(user=outsider if persona == "owner" else None)  # the owner fixture's batch
    mine = make_batch(user=request.getfixturevalue(persona)) if persona != "owner" else None
    client = client_of(request.getfixturevalue(persona))
    expected = {200} if sees_all else {404}
    for path in (f"/api/v3/batches/{theirs.pk}/", f"/api/v3/batches/{theirs.pk}/status"):
        assert client.get(path).status_code in expected, (persona, path)
    assert (str(theirs.pk) in listed(client)) is sees_all
    if mine is not None:
        assert client.get(f"/api/v3/batches/{mine.pk}/status").status_code == 200


def test_anonymous_sees_no_batch(anon_client: APIClient, make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    assert anon_client.get(f"/api/v3/batches/{batch.pk}/").status_code == 401
    assert sees_all_batches(AnonymousUser()) is False


def test_the_permission_without_staff_or_activity_is_not_enough(owner: User, viewer: User) -> None:
    assert sees_all_batches(with_perm(owner)) is False
    User.objects.filter(pk=viewer.pk).update(is_active=False)
    assert sees_all_batches(User.objects.get(pk=viewer.pk)) is False


class Blocklist(APIView):
    permission_classes = [HasModelPermission]
    staff_permissions = {"GET": ("batches.view_batch",), "POST": ("batches.change_batch",)}


def allowed(user: Any, method: str) -> bool:
    request = Request(getattr(APIRequestFactory(), method.lower())("/x"))
    request.user = user
    return HasModelPermission().has_permission(request, Blocklist())


def test_has_model_permission_per_method(owner: User, plain_staff: User, viewer: User, staff: User) -> None:
    for user in (AnonymousUser(), owner, with_perm(owner), plain_staff):
        assert not allowed(user, "GET")
    assert allowed(viewer, "GET") and allowed(viewer, "HEAD")
    assert not allowed(viewer, "POST")  # viewing is not changing
    assert allowed(with_perm(viewer, "change_batch"), "POST")
    # A method the view does not list is refused, even to a superuser.
    assert allowed(staff, "POST") and not allowed(staff, "DELETE")


def test_viewing_someone_elses_batch_is_not_changing_or_deleting_it(
    make_batch: Callable[..., Batch], owner: User, viewer: User
) -> None:
    """Staff who may only view batches get the outsider's 404 on another owner's batch for
    every write; change_batch opens cancel and retry, delete_batch the delete."""
    batch = make_batch()
    client = client_of(viewer)
    for method, path in (
        ("post", f"/api/v3/batches/{batch.pk}/cancel"),
        ("post", f"/api/v3/batches/{batch.pk}/retry"),
        ("delete", f"/api/v3/batches/{batch.pk}/"),
    ):
        assert getattr(client, method)(path).status_code == 404, path
    batch.refresh_from_db()
    assert batch.status != "cancelled"
    changer = client_of(with_perm(viewer, "change_batch"))
    assert changer.post(f"/api/v3/batches/{batch.pk}/cancel").status_code == 200
    assert changer.delete(f"/api/v3/batches/{batch.pk}/").status_code == 404  # changing is not deleting
    deleter = client_of(with_perm(viewer, "delete_batch"))
    assert deleter.delete(f"/api/v3/batches/{batch.pk}/").status_code == 204
    assert not Batch.objects.filter(pk=batch.pk).exists()


def test_an_owner_needs_no_permission_to_change_their_own_batch(make_batch: Callable[..., Batch], owner: User) -> None:
    batch = make_batch()
    client = client_of(owner)
    assert client.post(f"/api/v3/batches/{batch.pk}/cancel").status_code == 200
    assert client.post(f"/api/v3/batches/{batch.pk}/retry").status_code in (200, 409)
    assert client.delete(f"/api/v3/batches/{batch.pk}/").status_code == 204


def test_the_ratelimit_endpoints_follow_the_one_staff_rule(owner: User, plain_staff: User, staff: User) -> None:
    """ratelimit/api/permissions.py decides through staff_has_perms: active staff with the
    named permission, per method; an inactive superuser gets nothing."""
    plain_staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="ratelimit", codename="view_blockedip")
    )
    blocks_viewer = User.objects.get(pk=plain_staff.pk)
    retired = User.objects.create_user("retired", is_staff=True, is_superuser=True, is_active=False)

    def lets(user: Any, permission: Any, method: str, **view: str) -> bool:
        request = Request(getattr(APIRequestFactory(), method.lower())("/x"))
        request.user = user
        return bool(permission.has_permission(request, type("View", (APIView,), view)()))

    assert lets(blocks_viewer, ManagesBlocks(), "GET") and not lets(blocks_viewer, ManagesBlocks(), "POST")
    assert lets(staff, ManagesBlocks(), "DELETE", write_permission="change_blockedip")
    for user in (AnonymousUser(), owner, retired):
        for permission in (ManagesBlocks(), ManagesAllowList(), SeesAllUsage()):
            assert not lets(user, permission, "GET")
    assert not lets(blocks_viewer, ManagesAllowList(), "GET") and not lets(blocks_viewer, SeesAllUsage(), "GET")
    assert lets(staff, ManagesAllowList(), "DELETE") and lets(staff, SeesAllUsage(), "GET")

"""Where the app plugs into others: fair-share weights, login and token creation limits,
the admin's block actions, the tier cache."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from batches.engine.dispatcher import Dispatcher
from ratelimit.blocks import block_ip
from ratelimit.models import BlockedIP, Tier, TierAssignment
from ratelimit.tiers import tier_for_user, tier_weights

pytestmark = pytest.mark.django_db


def test_fair_share_weights_come_from_each_owners_tier(
    owner: User, outsider: User, on_tier: Callable[..., None], django_assert_num_queries: Any
) -> None:
    on_tier(outsider, Tier.objects.get(name="enterprise"))
    assert Dispatcher(executors={}).weights([owner.pk, outsider.pk]) == {owner.pk: 1.0, outsider.pk: 4.0}
    with django_assert_num_queries(0):  # held for RATE_LIMIT_TIER_CACHE_SECONDS
        assert tier_weights([owner.pk, outsider.pk]) == {owner.pk: 1.0, outsider.pk: 4.0}


def test_a_tier_change_reaches_the_limiter_through_the_cache(
    owner: User, settings: Any, on_tier: Callable[..., None]
) -> None:
    assert tier_for_user(owner.pk).name == "default"
    TierAssignment.objects.create(user=owner, tier=Tier.objects.get(name="premium"))  # behind the cache's back
    assert tier_for_user(owner.pk).name == "default"
    on_tier(owner, Tier.objects.get(name="enterprise"))  # the service forgets the cache
    assert tier_for_user(owner.pk).name == "enterprise"


def test_an_empty_tier_table_means_the_seeds_default(owner: User) -> None:
    Tier.objects.all().delete()
    assert (tier_for_user(owner.pk).name, tier_for_user(owner.pk).requests_per_minute) == ("default", 60)


def test_login_attempts_are_limited_per_address(owner: User, settings: Any) -> None:
    settings.RATE_LIMIT_LOGIN_RATE = "3/h"  # per hour: see the next test
    client = Client(REMOTE_ADDR="198.51.100.20")
    codes = [client.post("/account/login/", {"username": "owner", "password": "wrong"}).status_code for _ in range(4)]
    assert codes == [200] * 3 + [429]
    assert client.post("/account/login/", {"username": "owner", "password": "pw-owner-123"}).status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.21").get("/account/login/").status_code == 200
    other = Client(REMOTE_ADDR="198.51.100.21")
    assert other.post("/account/login/", {"username": "owner", "password": "pw-owner-123"}).status_code == 302


def test_the_browsable_api_login_shares_the_login_limit(owner: User, settings: Any) -> None:
    # Per hour: django-ratelimit's windows start at a second of its own per key, so four
    # requests under a per-minute rate straddle a window's end now and then.
    settings.RATE_LIMIT_LOGIN_RATE = "3/h"
    client = Client(REMOTE_ADDR="198.51.100.22")
    wrong = {"username": "owner", "password": "wrong"}
    assert client.post("/account/login/", wrong).status_code == 200
    codes = [client.post("/api-auth/login/", wrong).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.get("/api-auth/login/").status_code == 200  # showing the form is not an attempt


def test_token_creation_is_limited_per_address(owner: User, settings: Any) -> None:
    settings.RATE_LIMIT_TOKEN_RATE = "2/h"
    client = Client(REMOTE_ADDR="198.51.100.30")
    client.force_login(owner)
    codes = [client.post("/account/tokens/", {"name": "t"}).status_code for _ in range(3)]
    assert codes == [201, 201, 429]  # a new token is shown in the 201 that made it


def test_the_admin_blocks_and_unblocks(staff: User) -> None:
    client = Client()
    client.force_login(staff)
    added = client.post("/admin/ratelimit/blockedip/add/", {"ip": "203.0.113.40", "note": "by hand", "seconds": "60"})
    assert added.status_code == 302
    block = BlockedIP.objects.get(ip="203.0.113.40")
    assert (block.reason, block.created_by) == ("manual", staff)
    assert Client(REMOTE_ADDR="203.0.113.40").get("/api/v3/").status_code == 403
    block_ip(ip="203.0.113.41", reason=BlockedIP.Reason.AUTH_FAILURES)
    client.post(
        "/admin/ratelimit/blockedip/",
        {"action": "unblock", "_selected_action": [b.pk for b in BlockedIP.objects.all()]},
    )
    assert not BlockedIP.objects.filter(lifted_at__isnull=True).exists()
    assert Client(REMOTE_ADDR="203.0.113.40").get("/api/v3/").status_code == 200
    for page in ("tier", "tierassignment", "blockedip", "allowednetwork"):
        assert client.get(f"/admin/ratelimit/{page}/").status_code == 200


def test_staff_who_may_only_view_blocks_cannot_unblock_in_the_admin(db: None) -> None:
    from django.contrib.auth.models import Permission

    viewer = User.objects.create_user("block-viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_blockedip"))
    block_ip(ip="203.0.113.42", reason=BlockedIP.Reason.AUTH_FAILURES)
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/ratelimit/blockedip/").status_code == 200
    client.post(
        "/admin/ratelimit/blockedip/",
        {"action": "unblock", "_selected_action": [b.pk for b in BlockedIP.objects.all()]},
    )
    assert BlockedIP.objects.filter(ip="203.0.113.42", lifted_at__isnull=True).exists()

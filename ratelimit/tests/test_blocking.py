"""Suspicious activity blocks an address, for longer on each repeat; a blocked request is
refused before any database query; staff lift blocks and allow networks."""

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from accounts.services import token_create
from monitoring.management.commands.monitor import Command
from ratelimit.backend import Backend, get_backend
from ratelimit.blocks import block_ip, block_seconds, unblock_ip
from ratelimit.limiter import DECISION_ATTR
from ratelimit.models import AllowedNetwork, BlockedIP
from ratelimit.selectors import allow_network
from ratelimit.suspicious import observe
from ratelimit.tests.conftest import PrivateRedis
from ratelimit.throttle import TierThrottle

ATTACKER = "203.0.113.66"
URL = "/api/v3/models"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def low_thresholds(settings: Any) -> None:
    settings.RATE_LIMIT_MAX_AUTH_FAILURES = 5
    settings.RATE_LIMIT_MAX_NOT_FOUND = 5
    settings.RATE_LIMIT_MAX_THROTTLED = 3


def attacker(user: User | None = None) -> APIClient:
    client = APIClient(REMOTE_ADDR=ATTACKER)
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='t')[1]}")
    return client


def statuses_of(client: APIClient, url: str, n: int) -> list[int]:
    return [client.get(url).status_code for _ in range(n)]


def bad_token() -> APIClient:
    client = attacker()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    return client


def test_repeated_auth_failures_block_the_address(backend_url: str) -> None:
    client = bad_token()
    assert [client.get(URL).status_code for _ in range(6)] == [401] * 5 + [403]
    block = BlockedIP.objects.get(ip=ATTACKER)
    assert (block.reason, block.counts["auth_failures"], block.offence) == ("auth_failures", 5, 1)
    assert block.expires_at == pytest.approx(timezone.now() + timedelta(seconds=900), abs=timedelta(seconds=5))
    refused = attacker().get("/api/v3/")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "ip_blocked")


def test_asking_without_credentials_is_no_auth_failure(backend_url: str) -> None:
    client = attacker()
    assert {client.get(URL).status_code for _ in range(8)} == {401}
    assert not BlockedIP.objects.exists()


def test_probing_missing_ids_blocks_the_address(backend_url: str) -> None:
    client = attacker()  # anonymous: a signed-in user's 404s are no probing
    codes = [client.get(f"/api/v3/{uuid.uuid4()}").status_code for _ in range(6)]
    assert codes == [404] * 5 + [403]
    assert BlockedIP.objects.get(ip=ATTACKER).reason == "not_found_probing"


def test_ignoring_429s_blocks_the_address(backend_url: str) -> None:
    client = attacker()
    codes = [client.get("/api/v3/").status_code for _ in range(24)]
    assert codes == [200] * 20 + [429] * 3 + [403]
    assert BlockedIP.objects.get(ip=ATTACKER).reason == "rate_limited"


def test_a_blocked_request_costs_no_database_query(
    backend_url: str, owner: User, django_assert_num_queries: Any
) -> None:
    block_ip(ip=ATTACKER, reason=BlockedIP.Reason.MANUAL)
    client = attacker(owner)
    with django_assert_num_queries(0):
        assert client.get(URL).status_code == 403
        assert client.post("/account/login/", {"username": "owner", "password": "x"}).status_code == 403


def test_each_repeat_block_lasts_twice_as_long(settings: Any) -> None:
    settings.RATE_LIMIT_BLOCK_SECONDS = 60
    settings.RATE_LIMIT_BLOCK_MAX_SECONDS = 200
    assert [block_seconds(n) for n in (1, 2, 3, 4, 50)] == [60, 120, 200, 200, 200]
    first = block_ip(ip=ATTACKER, reason=BlockedIP.Reason.AUTH_FAILURES)
    unblock_ip(ip=ATTACKER)
    second = block_ip(ip=ATTACKER, reason=BlockedIP.Reason.AUTH_FAILURES)
    assert (first.offence, second.offence) == (1, 2)
    assert second.expires_at - second.created_at == pytest.approx(timedelta(seconds=120), abs=timedelta(seconds=1))


def test_a_block_ends_by_itself_when_it_expires(backend_url: str, owner: User) -> None:
    block_ip(ip=ATTACKER, reason=BlockedIP.Reason.MANUAL, seconds=1)
    client = attacker(owner)
    assert client.get(URL).status_code == 403
    get_backend().publish_block(ATTACKER, timezone.now().timestamp() - 1)  # as if a second had passed
    assert client.get(URL).status_code == 200


def test_unblocking_lets_the_address_in_at_once(backend_url: str, owner: User) -> None:
    block_ip(ip=ATTACKER, reason=BlockedIP.Reason.MANUAL)
    client = attacker(owner)
    assert client.get(URL).status_code == 403
    assert unblock_ip(ip=ATTACKER) == 1
    assert client.get(URL).status_code == 200
    assert BlockedIP.objects.get(ip=ATTACKER).lifted_at is not None


def test_other_processes_see_a_block_within_the_refresh_period(redis_url: str, settings: Any) -> None:
    settings.RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS = 0
    other_process = Backend(redis_url)
    assert other_process.blocked_until(ATTACKER) is None
    block_ip(ip=ATTACKER, reason=BlockedIP.Reason.MANUAL)
    assert other_process.blocked_until(ATTACKER) is not None
    unblock_ip(ip=ATTACKER)
    assert other_process.blocked_until(ATTACKER) is None


def test_allowed_networks_and_loopback_are_never_blocked(backend_url: str) -> None:
    allow_network(network="203.0.113.0/24", note="office")
    client = bad_token()
    assert {client.get(URL).status_code for _ in range(8)} == {401}
    assert not BlockedIP.objects.exists()
    with pytest.raises(Exception, match="cannot be blocked"):
        block_ip(ip="127.0.0.1", reason=BlockedIP.Reason.MANUAL)


def test_an_allowed_network_has_no_address_limit(backend_url: str) -> None:
    allow_network(network="203.0.113.66/32")
    client = attacker()
    assert {client.get("/api/v3/").status_code for _ in range(25)} == {200}


# --- the API, by persona ---------------------------------------------------------------


BLOCKS = "/api/v3/rate-limit/blocked-ips"


def test_staff_block_list_and_unblock_through_the_api(staff_client: APIClient) -> None:
    created = staff_client.post(BLOCKS, {"ip": ATTACKER, "seconds": 60, "note": "scanner"}, format="json")
    assert created.status_code == 201
    assert (created.json()["reason"], created.json()["note"]) == ("manual", "scanner")
    assert attacker().get("/api/v3/").status_code == 403
    listed = staff_client.get(BLOCKS).json()["blocked_ips"]
    assert [row["ip"] for row in listed] == [ATTACKER]
    lifted = staff_client.post(f"{BLOCKS}/{ATTACKER}/unblock")
    assert lifted.json() == {"ip": ATTACKER, "lifted": 1}
    assert staff_client.get(BLOCKS).json() == {"blocked_ips": []}
    assert attacker().get("/api/v3/").status_code == 200


def test_blocking_loopback_or_an_allowed_address_is_refused(staff_client: APIClient) -> None:
    refused = staff_client.post(BLOCKS, {"ip": "127.0.0.1"}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "ip_not_blockable")
    assert staff_client.post(BLOCKS, {"ip": ""}, format="json").status_code == 400
    assert staff_client.post(f"{BLOCKS}/%C2%84/unblock").status_code == 400
    assert staff_client.post(f"{BLOCKS}/00/unblock").status_code == 400


def test_only_staff_with_the_permission_manage_blocks(
    owner_client: APIClient, anon_client: APIClient, db: None, make_staff_client: Callable[..., APIClient]
) -> None:
    assert owner_client.get(BLOCKS).status_code == 403
    assert owner_client.post(BLOCKS, {"ip": ATTACKER}, format="json").status_code == 403
    assert owner_client.post(f"{BLOCKS}/{ATTACKER}/unblock").status_code == 403
    assert anon_client.get(BLOCKS).status_code == 401
    viewer = make_staff_client("view_blockedip")
    assert viewer.get(BLOCKS).status_code == 200
    assert viewer.post(BLOCKS, {"ip": ATTACKER}, format="json").status_code == 403
    assert make_staff_client().get(BLOCKS).status_code == 403  # is_staff alone is not enough


def test_staff_manage_the_allow_list(staff_client: APIClient, owner_client: APIClient) -> None:
    url = "/api/v3/rate-limit/allowed-networks"
    created = staff_client.post(url, {"network": "10.0.0.1/8", "note": "internal"}, format="json")
    assert created.status_code == 201 and created.json()["network"] == "10.0.0.0/8"
    assert staff_client.post(url, {"network": "10.0.0.0/8"}, format="json").status_code == 409
    assert staff_client.post(url, {"network": "ten"}, format="json").status_code == 400
    assert owner_client.get(url).status_code == 403
    assert [row["network"] for row in staff_client.get(url).json()["networks"]] == ["10.0.0.0/8"]
    assert staff_client.delete(f"{url}/{created.json()['id']}").status_code == 204
    assert not AllowedNetwork.objects.exists()


def test_a_bucket_call_brings_news_of_a_block_without_a_round_trip_of_its_own(
    redis_url: str, settings: Any, owner: User
) -> None:
    settings.RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS = 3600  # never re-read for being quiet
    here, elsewhere = get_backend(), Backend(redis_url)
    client = attacker(owner)
    assert client.get(URL).status_code == 200  # this process has read the (empty) blocked set
    elsewhere.publish_block(ATTACKER, timezone.now().timestamp() + 60)  # another process blocks
    assert here.blocked_until(ATTACKER) is None  # nothing said so yet
    assert client.get(URL).status_code == 200  # this request's bucket call brings the new version
    assert client.get(URL).status_code == 403


# --- review findings: credentials, unblocks across processes, republishing, what counts ---


def test_an_authorization_header_of_another_scheme_is_limited_by_address(backend_url: str) -> None:
    client = attacker()
    client.credentials(HTTP_AUTHORIZATION="Basic eA==")
    assert statuses_of(client, "/api/v3/", 21) == [200] * 20 + [429]


def test_the_throttle_limits_an_anonymous_request_the_middleware_did_not(backend_url: str) -> None:
    raw = APIRequestFactory().get("/api/v3/", REMOTE_ADDR=ATTACKER)
    request = Request(raw)
    assert TierThrottle().allow_request(request, view=None)
    assert getattr(raw, DECISION_ATTR).states[0].bucket.key.endswith(f"ip:{ATTACKER}")


def test_an_unblock_through_one_process_reaches_the_process_that_blocked(redis_url: str, settings: Any) -> None:
    settings.RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS = 0
    blocker, unblocker = Backend(redis_url), Backend(redis_url)
    blocker.publish_block(ATTACKER, timezone.now().timestamp() + 60)
    assert unblocker.blocked_until(ATTACKER) is not None
    unblocker.withdraw_block(ATTACKER)
    assert (unblocker.blocked_until(ATTACKER), blocker.blocked_until(ATTACKER)) == (None, None)


def test_blocks_lost_by_redis_are_put_back_from_the_table(redis_url: str, settings: Any, owner: User) -> None:
    settings.RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS = 0
    block_ip(ip=ATTACKER, reason=BlockedIP.Reason.MANUAL)
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{settings.RATE_LIMIT_KEY_PREFIX}:blocked", f"{settings.RATE_LIMIT_KEY_PREFIX}:blocked:version")
    assert attacker(owner).get(URL).status_code == 403
    assert client.hget(f"{settings.RATE_LIMIT_KEY_PREFIX}:blocked", ATTACKER) is not None


def test_a_block_made_while_redis_was_down_is_published_when_it_returns(
    private_redis: PrivateRedis, settings: Any, owner: User
) -> None:
    settings.RATE_LIMIT_BREAKER_FAILURES = 1
    settings.RATE_LIMIT_BREAKER_RESET_SECONDS = 0.2
    settings.RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS = 0
    settings.RATE_LIMIT_REDIS_URL = private_redis.url
    assert attacker(owner).get(URL).status_code == 200
    private_redis.stop()
    block_ip(ip=ATTACKER, reason=BlockedIP.Reason.MANUAL)
    assert attacker(owner).get(URL).status_code == 403  # the local copy, while Redis is away
    private_redis.start()
    time.sleep(0.25)
    assert attacker(owner).get(URL).status_code == 403  # the probe closes the breaker
    assert attacker(owner).get(URL).status_code == 403
    stored = redis.Redis.from_url(private_redis.url).hget(f"{settings.RATE_LIMIT_KEY_PREFIX}:blocked", ATTACKER)
    assert stored is not None
    assert Backend(private_redis.url).blocked_until(ATTACKER) is not None


def test_the_monitor_republishes_blocks_when_it_starts(redis_url: str, settings: Any) -> None:
    block_ip(ip=ATTACKER, reason=BlockedIP.Reason.MANUAL)
    redis.Redis.from_url(redis_url).delete(f"{settings.RATE_LIMIT_KEY_PREFIX}:blocked")
    Command().handle(once=True, interval=None)  # type: ignore[no-untyped-call]
    assert Backend(redis_url).blocked_until(ATTACKER) is not None


def test_a_signed_in_users_refusals_and_missing_ids_are_not_suspicious(backend_url: str, owner: User) -> None:
    client = attacker(owner)
    assert set(statuses_of(client, BLOCKS, 8)) == {403}  # permission denied, not a failed login
    assert set(statuses_of(client, f"/api/v3/batches/{uuid.uuid4()}", 8)) == {404}  # a deleted batch, polled
    assert not BlockedIP.objects.exists()


def test_a_failed_authentication_answered_403_counts(backend_url: str) -> None:
    for _ in range(4):
        assert observe(ip=ATTACKER, status=403, api=True, credentials=True, authenticated=False) is None
    assert observe(ip=ATTACKER, status=403, api=True, credentials=True, authenticated=False) is not None

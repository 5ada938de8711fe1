"""Limits as clients meet them: per tier and per endpoint, with the IETF fields on every
limited answer, the envelope and Retry-After on 429, on both backends."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import resolve
from rest_framework.test import APIClient

from batches.models import Batch
from ratelimit.endpoints import endpoint_name
from ratelimit.models import Tier

URL = "/api/v3/models"
ROOT = "/api/v3/"  # open to anonymous clients
pytestmark = pytest.mark.django_db


def statuses(client: APIClient, n: int, url: str = URL, **extra: Any) -> list[int]:
    return [client.get(url, **extra).status_code for _ in range(n)]


def test_the_default_tier_allows_its_burst_then_answers_429(backend_url: str, owner_client: APIClient) -> None:
    default = Tier.objects.get(is_default=True)
    assert statuses(owner_client, default.burst) == [200] * default.burst
    refused = owner_client.get(URL)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["details"]["policies"] == ["default"]
    assert int(refused["Retry-After"]) >= 1
    assert refused["RateLimit-Policy"] == '"default";q=60;w=60'
    assert refused["RateLimit"].startswith('"default";r=0;t=')


def test_every_limited_answer_carries_the_ratelimit_fields(backend_url: str, owner_client: APIClient) -> None:
    first, second = owner_client.get(URL), owner_client.get(URL)
    assert first.status_code == 200 and "Retry-After" not in first
    assert first["RateLimit-Policy"] == '"default";q=60;w=60'
    assert first["RateLimit"].startswith('"default";r=19;t=')
    assert second["RateLimit"].startswith('"default";r=18;t=')


def test_a_premium_user_has_the_premium_burst(
    backend_url: str, owner: User, owner_client: APIClient, on_tier: Callable[..., None]
) -> None:
    premium = Tier.objects.get(name="premium")
    on_tier(owner, premium)
    assert statuses(owner_client, premium.burst) == [200] * premium.burst
    assert owner_client.get(URL).status_code == 429
    assert owner_client.get(URL)["RateLimit-Policy"] == '"premium";q=120;w=60'


def test_users_have_buckets_of_their_own(backend_url: str, owner_client: APIClient, outsider_client: APIClient) -> None:
    assert statuses(owner_client, 21)[-1] == 429
    assert outsider_client.get(URL).status_code == 200


def test_an_endpoint_limit_refuses_before_the_tier_does(
    backend_url: str,
    owner: User,
    owner_client: APIClient,
    make_batch: Callable[..., Batch],
    make_tier: Callable[..., Tier],
    on_tier: Callable[..., None],
) -> None:
    on_tier(owner, make_tier(burst=50, requests_per_minute=1, endpoint_limits={"status": 3}))
    url = f"/api/v3/batches/{make_batch().pk}/status"
    assert statuses(owner_client, 3, url) == [200] * 3
    refused = owner_client.get(url)
    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["policies"] == ["status"]
    assert refused["RateLimit-Policy"] == '"tiny";q=1;w=60, "status";q=3;w=60'
    assert refused["RateLimit"].startswith('"tiny";r=47;t=')  # the refused request took nothing
    assert owner_client.get(URL).status_code == 200  # other endpoints: the tier limit only


def test_the_seed_endpoints_are_named_by_url_name_and_method(db: None) -> None:
    factory = RequestFactory()
    batch_id = "00000000-0000-0000-0000-000000000001"
    cases = {
        ("POST", "/api/v3/batches"): "submit",
        ("POST", "/api/v3/batches/submit"): "submit",
        ("GET", "/api/v3/batches"): None,
        ("GET", f"/api/v3/batches/{batch_id}/status"): "status",
        ("GET", f"/api/v3/batches/{batch_id}/results"): "results",
        ("GET", f"/api/v3/batches/{batch_id}"): None,
    }
    for (method, path), name in cases.items():
        request = factory.generic(method, path)
        request.resolver_match = resolve(path)
        assert endpoint_name(request) == name, (method, path)


def test_submissions_are_limited_to_ten_a_minute_on_the_default_tier(
    backend_url: str, owner_client: APIClient, settings: Any
) -> None:
    settings.RATE_LIMIT_QUOTAS_ENABLED = False  # eleven active batches pass the default quota
    body = {"name": "b", "model": "ligand-profile", "protein_sequence": "MKT", "ligands": [{"smiles": "CCO"}]}
    codes = [owner_client.post("/api/v3/batches", body, format="json").status_code for _ in range(11)]
    assert codes[-1] == 429 and 429 not in codes[:10]
    assert owner_client.post("/api/v3/batches/submit", {}, format="json").status_code == 429  # the same bucket


def test_a_forged_tier_header_changes_nothing(backend_url: str, owner_client: APIClient) -> None:
    forged = {"HTTP_X_TIER": "enterprise", "HTTP_X_RATELIMIT_TIER": "enterprise", "HTTP_X_USER_TIER": "enterprise"}
    codes = statuses(owner_client, 21, **forged)
    assert codes == [200] * 20 + [429]
    assert owner_client.get(URL, **forged)["RateLimit-Policy"] == '"default";q=60;w=60'


def test_anonymous_clients_are_limited_by_address(backend_url: str) -> None:
    one, other = APIClient(REMOTE_ADDR="198.51.100.7"), APIClient(REMOTE_ADDR="198.51.100.8")
    assert statuses(one, 21, ROOT) == [200] * 20 + [429]
    assert statuses(one, 1) == [429]  # every API path: the bucket is the address's
    assert statuses(other, 1, ROOT) == [200]


def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(backend_url: str) -> None:
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    codes = [client.get(ROOT, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(21)]
    assert codes == [200] * 20 + [429]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_bucket(backend_url: str, settings: Any) -> None:
    settings.OMTX_TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = APIClient(REMOTE_ADDR="10.1.2.3")
    assert statuses(proxy, 21, ROOT, HTTP_X_FORWARDED_FOR="203.0.113.9")[-1] == 429
    assert statuses(proxy, 1, ROOT, HTTP_X_FORWARDED_FOR="203.0.113.10") == [200]
    assert statuses(proxy, 1, ROOT, HTTP_X_FORWARDED_FOR="203.0.113.10, 10.9.9.9") == [200]  # a trusted hop skipped


def test_limits_are_off_when_disabled(owner_client: APIClient, settings: Any) -> None:
    settings.RATE_LIMIT_ENABLED = False
    response = owner_client.get(URL)
    assert statuses(owner_client, 30) == [200] * 30
    assert "RateLimit" not in response

"""The token read is cached for TOKEN_CACHE_SECONDS (accounts/services.py): what a cached
row may and may not keep serving."""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import TOKEN_CACHE_SECONDS, token_create, token_revoke

URL = "/api/v3/models/"


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_used_token_is_read_from_the_cache(owner: User) -> None:
    _, raw = token_create(user=owner)
    client = bearer(raw)
    assert client.get(URL).status_code == 200  # reads, caches, writes the last use
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    assert not [q for q in captured.captured_queries if "apitoken" in q["sql"].lower()]


def test_revoking_a_cached_token_refuses_it_at_once(owner: User) -> None:
    token, raw = token_create(user=owner)
    client = bearer(raw)
    for _ in range(3):
        assert client.get(URL).status_code == 200
    token_revoke(token=token)
    assert client.get(URL).status_code == 401


def test_a_cached_token_expires_on_time(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    _, raw = token_create(user=owner, expires_in_days=1)
    client = bearer(raw)
    for _ in range(3):
        assert client.get(URL).status_code == 200
    later = timezone.now() + timedelta(days=1, seconds=1)
    monkeypatch.setattr("accounts.models.timezone.now", lambda: later)
    assert client.get(URL).status_code == 401


def test_a_deactivated_user_is_refused_within_the_cache_bound(
    owner: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # The local-memory cache reads the clock this test moves; Redis (CI's second pass) keeps
    # its own, so the bound is checked on the backend whose expiry the test can reach.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "expiry"}}
    _, raw = token_create(user=owner)
    client = bearer(raw)
    for _ in range(3):
        assert client.get(URL).status_code == 200
    User.objects.filter(pk=owner.pk).update(is_active=False)
    # No hook sees this update: the cached row serves until it expires, and no longer.
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + TOKEN_CACHE_SECONDS + 1)
    assert client.get(URL).status_code == 401

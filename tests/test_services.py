"""The real services CI provides. With CI=true (or OMTX_REQUIRE_POSTGRES, CI's PostgreSQL
pass run by hand) these tests always run, and a missing service fails them; on a laptop
without the services they skip."""

import os
import uuid

import psycopg
import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

IN_CI = os.environ.get("CI") == "true" or bool(os.environ.get("OMTX_REQUIRE_POSTGRES"))
POSTGRES_URL = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


def unavailable(what: str, error: Exception) -> None:
    if IN_CI:
        pytest.fail(f"{what} must be reachable in CI: {error!r}")
    pytest.skip(f"{what} not reachable here: {error!r}")


def test_postgresql_is_reachable() -> None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)


def test_redis_is_reachable() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    key = f"omtx-test:{uuid.uuid4()}"
    client.set(key, "1", ex=30)
    assert client.get(key) == b"1"
    client.delete(key)


@pytest.mark.django_db
def test_configured_database_and_cache_work() -> None:
    """Whatever DATABASE_URL / REDIS_URL select (CI runs the suite with both)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    if settings.REDIS_URL:
        assert connection.vendor == "postgresql" or not os.environ.get("DATABASE_URL")
        key = f"test:{uuid.uuid4()}"
        cache.set(key, {"large": "x" * 10_000}, timeout=30)
        assert cache.get(key) == {"large": "x" * 10_000}
        cache.delete(key)

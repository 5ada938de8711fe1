"""The real limits (scale 1, quotas on), a real Redis (db 4 here, CI's REDIS_URL there) and
a private redis-server that a test may stop and start again."""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from accounts.services import token_create
from ratelimit.models import Tier
from ratelimit.testing import isolated_limiter
from ratelimit.tiers import tier_assign

IN_CI = os.environ.get("CI") == "true"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/4"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def unavailable(what: str) -> None:
    """In CI a missing service is a failure; on a laptop without it, a skip."""
    if IN_CI:
        pytest.fail(f"{what} must be available in CI")
    pytest.skip(f"{what} not available here")


@pytest.fixture(autouse=True)
def real_limits(settings: Any) -> Iterator[str]:
    with isolated_limiter(settings, scale=1.0, quotas=True) as prefix:
        yield prefix


@pytest.fixture
def redis_url(settings: Any) -> Iterator[str]:
    """The limiter on the shared Redis; this test's keys are under its own prefix."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        unavailable(f"Redis at {REDIS_URL}")
    settings.RATE_LIMIT_REDIS_URL = REDIS_URL
    yield REDIS_URL
    for key in client.scan_iter(f"{settings.RATE_LIMIT_KEY_PREFIX}:*"):
        client.delete(key)


@pytest.fixture(params=["memory", "redis"])
def backend_url(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each API test once per backend: in-process, and the shared Redis."""
    if request.param == "memory":
        settings.RATE_LIMIT_REDIS_URL = ""
        return ""
    url: str = request.getfixturevalue("redis_url")
    return url


@dataclass
class PrivateRedis:
    """A redis-server of this test's own, on a free port, without persistence."""

    port: int
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if not os.access(REDIS_SERVER, os.X_OK):
        unavailable(f"redis-server ({REDIS_SERVER})")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = PrivateRedis(port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_tier(db: None) -> Callable[..., Tier]:
    def make(name: str = "tiny", **fields: Any) -> Tier:
        values: dict[str, Any] = {
            "requests_per_minute": 1,
            "burst": 5,
            "endpoint_limits": {},
            "max_ligands_per_batch": 100,
            "max_active_batches": 3,
            "max_queued_jobs": 50,
            "gpu_seconds_per_month": 3600,
            "fair_share_weight": 1.0,
            **fields,
        }
        return Tier.objects.create(name=name, **values)

    return make


@pytest.fixture
def on_tier() -> Callable[[User, Tier], None]:
    def assign(user: User, tier: Tier) -> None:
        tier_assign(user_id=user.pk, tier=tier)

    return assign


@pytest.fixture
def make_staff_client(db: None) -> Callable[..., APIClient]:
    """A staff member (not superuser) holding only the named ratelimit permissions."""

    def make(*codenames: str) -> APIClient:
        user = User.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="ratelimit", codename__in=codenames)
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='t')[1]}")
        return client

    return make

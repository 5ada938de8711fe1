"""The batch socket over the Redis channel layer: broadcasts from another thread and from
another process reach it. Needs Redis: in CI (CI=true) a missing Redis fails these tests."""

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from batches.live import protocol
from batches.live.broadcaster import broadcaster
from batches.models import Batch
from batches.tests.live_helpers import batch_path, bearer, run, socket, sqlite_readers_do_not_lock, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _concurrent_sqlite_reads() -> Iterator[None]:
    with sqlite_readers_do_not_lock():
        yield


@pytest.fixture
def redis_layer(settings: Any) -> dict[str, Any]:
    """A Redis channel layer under a key prefix of this test's own."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/11"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {url} must answer in CI: {exc!r}")
        pytest.skip(f"Redis at {url} does not answer: {exc!r}")
    config = {"hosts": [{"address": url, "max_connections": 100}], "prefix": f"omtx:wstest:{secrets.token_hex(4)}:"}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    return config


def test_redis_url_selects_the_redis_layer_with_a_large_pool() -> None:
    layer = django_settings.CHANNEL_LAYERS["default"]
    if os.environ.get("REDIS_URL"):
        assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
        assert layer["CONFIG"]["hosts"][0]["max_connections"] >= 1000
    else:
        assert layer["BACKEND"] == "channels.layers.InMemoryChannelLayer"


def test_the_broadcaster_thread_reaches_the_socket_through_redis(
    redis_layer: dict[str, Any], owner: User, make_batch: Callable[..., Batch], run_all: Callable[[], None]
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        assert isinstance(get_channel_layer(), RedisChannelLayer)
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        connected, _ = await ws.connect(timeout=5)
        assert connected
        snapshot = await ws.receive_json_from(timeout=5)
        await sync_to_async(run_all)()
        version = snapshot["version"]
        while True:
            delta = await ws.receive_json_from(timeout=10)
            assert delta["since"] <= version < delta["version"]
            version = delta["version"]
            if delta["status"]["is_terminal"]:
                break
        assert delta["status"]["progress"]["succeeded"] == 4
        await ws.disconnect()

    run(scenario)
    assert broadcaster.drain()


SENDER = """
import asyncio, json, sys
from channels_redis.core import RedisChannelLayer
config, group, message = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
asyncio.run(RedisChannelLayer(**config).group_send(group, message))
"""


def test_a_broadcast_from_another_process_reaches_the_socket(
    redis_layer: dict[str, Any], owner: User, make_batch: Callable[..., Batch]
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        connected, _ = await ws.connect(timeout=5)
        assert connected
        snapshot = await ws.receive_json_from(timeout=5)
        version = snapshot["version"]
        text = json.dumps({"type": "delta", "batch": str(batch.pk), "since": version, "version": version + 1})
        message = {
            "type": "batch.delta",
            "batch": str(batch.pk),
            "since": version,
            "version": version + 1,
            "text": text,
        }
        args = [sys.executable, "-c", SENDER, json.dumps(redis_layer), f"batch.{batch.pk}", json.dumps(message)]
        await sync_to_async(subprocess.run)(args, check=True, timeout=30)
        assert await ws.receive_json_from(timeout=10) == json.loads(text)
        await ws.disconnect()

    run(scenario)


def test_a_process_joins_a_batch_s_group_once_however_many_sockets_watch(
    redis_layer: dict[str, Any], owner: User, make_batch: Callable[..., Batch]
) -> None:
    batch = make_batch()
    raw = token_for(owner)
    members = redis.Redis.from_url(redis_layer["hosts"][0]["address"])
    group_key = f"{redis_layer['prefix']}:group:batch.{batch.pk}"

    async def scenario() -> None:
        sockets = [socket(batch_path(batch.pk), headers=bearer(raw)) for _ in range(3)]
        for ws in sockets:
            connected, _ = await ws.connect(timeout=5)
            assert connected
            await ws.receive_json_from(timeout=5)
        assert members.zcard(group_key) == 1
        for ws in sockets:
            await ws.disconnect()
        assert members.zcard(group_key) == 0

    run(scenario)


GROUP_EXPIRY = 2


def test_a_socket_open_longer_than_the_group_expiry_still_gets_deltas(
    redis_layer: dict[str, Any], settings: Any, owner: User, make_batch: Callable[..., Batch]
) -> None:
    """channels-redis drops a group member group_expiry seconds after it joined; the relay
    renews its memberships, so a page left open on a long batch keeps moving."""
    config: dict[str, Any] = {**redis_layer, "group_expiry": GROUP_EXPIRY}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> dict[str, Any]:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        connected, _ = await ws.connect(timeout=5)
        assert connected
        version = (await ws.receive_json_from(timeout=5))["version"]
        await asyncio.sleep(GROUP_EXPIRY * 2)  # the page stays open, as pages do
        text = protocol.encode({"type": "delta", "batch": str(batch.pk), "since": version, "version": version + 1})
        message = {"type": "batch.delta", "batch": str(batch.pk), "since": version, "version": version + 1}
        await RedisChannelLayer(**config).group_send(protocol.group_name(batch.pk), {**message, "text": text})
        received: dict[str, Any] = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return received

    assert run(scenario)["type"] == "delta"

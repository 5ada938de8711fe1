"""Adversarial review (issues 10/11): a batch socket open longer than channels-redis's
group_expiry (a day by default; CHANNEL_LAYERS sets none) stops receiving deltas.

channels-redis drops a group member added more than group_expiry seconds ago at the next
group_send. The relay (batches/live/relay.py) adds its channel to a batch's group when a
socket joins and never renews it, so a page left open on a batch that runs longer than a
day shows "Live" and never moves again (no delta, so no gap for the client to notice),
unless another socket of that process happens to join the batch. The same holds after a
Redis restart. Here group_expiry is 2 s so the test does not wait a day."""

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from channels_redis.core import RedisChannelLayer
from django.contrib.auth.models import User

from batches.live import protocol
from batches.models import Batch
from batches.tests.live_helpers import batch_path, bearer, run, socket, sqlite_readers_do_not_lock, token_for

pytestmark = pytest.mark.django_db(transaction=True)
GROUP_EXPIRY = 2


@pytest.fixture(autouse=True)
def _concurrent_sqlite_reads() -> Iterator[None]:
    with sqlite_readers_do_not_lock():
        yield


@pytest.fixture
def short_lived_groups(settings: Any) -> dict[str, Any]:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/11"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {url} must answer in CI: {exc!r}")
        pytest.skip(f"Redis at {url} does not answer: {exc!r}")
    config = {
        "hosts": [{"address": url, "max_connections": 100}],
        "prefix": f"omtx:wsreview:{secrets.token_hex(4)}:",
        "group_expiry": GROUP_EXPIRY,
    }
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    return config


def test_a_socket_open_longer_than_the_group_expiry_still_gets_deltas(
    short_lived_groups: dict[str, Any], owner: User, make_batch: Callable[..., Batch]
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> dict[str, Any] | None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        connected, _ = await ws.connect(timeout=5)
        assert connected
        snapshot = await ws.receive_json_from(timeout=5)
        version = snapshot["version"]
        await asyncio.sleep(GROUP_EXPIRY * 2)  # the page stays open, as pages do
        text = protocol.encode({"type": "delta", "batch": str(batch.pk), "since": version, "version": version + 1})
        message = {
            "type": "batch.delta",
            "batch": str(batch.pk),
            "since": version,
            "version": version + 1,
            "text": text,
        }
        await RedisChannelLayer(**short_lived_groups).group_send(protocol.group_name(batch.pk), message)
        try:
            received: dict[str, Any] = await ws.receive_json_from(timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            return None  # nothing came; the communicator has stopped the application
        await ws.disconnect()
        return received

    received = run(scenario)
    assert received is not None and received["type"] == "delta", (
        "the relay's group membership expired: the open socket got no delta"
    )

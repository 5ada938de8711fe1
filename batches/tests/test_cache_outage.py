"""Redis going away, for real: a private redis-server this test starts, kills, pauses and
restarts. The API keeps answering, correctly and fast, from the database; the outage shows
in the stats and readiness; the cache is used again once Redis is back, and nothing cached
before the outage outlives a change made during it. In CI a missing redis-server fails."""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from batches import cache_tags
from batches.models import Batch
from batches.states import BatchStatus
from omtx_hub.cache import cache_ready, cache_stats, process_counts
from omtx_hub.cache_backend import outage

pytestmark = pytest.mark.django_db(transaction=True)
BATCHES = "/api/v3/batches/"
BACKOFF = 0.5


class RedisServer:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)


@pytest.fixture
def private_redis(settings: Any) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary)
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "omtx_hub.cache_backend.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            "KEY_PREFIX": "omtx",
            "OPTIONS": {
                "COMPRESSOR": "omtx_hub.cache_backend.LargeValueCompressor",
                "SOCKET_CONNECT_TIMEOUT": 0.2,
                "SOCKET_TIMEOUT": 0.2,
                "IGNORE_EXCEPTIONS": False,
            },
        }
    }
    settings.OMTX_CACHE_BACKOFF_SECONDS = BACKOFF
    settings.OMTX_CACHE_READS = True
    yield server
    if server.process and server.process.poll() is None:
        server.kill()
    outage.recovered()
    cache_tags._LostBump.pending = False


def _paths(batches: list[Batch]) -> list[str]:
    return [BATCHES] + [f"{BATCHES}{b.pk}/{page}" for b in batches for page in ("status", "results")]


def _answers(client: APIClient, paths: list[str]) -> list[bytes]:
    answers = []
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.content[:300])
        answers.append(response.content)
    return answers


def _hits(read: Callable[[], Any]) -> int:
    before = process_counts()["hit"]
    read()
    return process_counts()["hit"] - before


def test_with_redis_killed_the_api_answers_from_the_database_then_uses_redis_again(
    private_redis: RedisServer,
    make_batch: Callable[..., Batch],
    owner_client: APIClient,
    outsider_client: APIClient,
    run_all: Callable[[], None],
) -> None:
    done = make_batch(name="done")
    run_all()
    waiting = make_batch(name="waiting")
    paths = _paths([done, waiting])
    expected = _answers(owner_client, paths)
    assert _hits(lambda: _answers(owner_client, paths)) == len(paths)
    assert cache_stats()["connected_to_redis"] is True

    private_redis.kill()
    started = time.monotonic()
    assert _answers(owner_client, paths) == expected
    assert _answers(owner_client, paths) == expected
    assert time.monotonic() - started < 3.0  # no timeout per request: refused, then backed off
    assert outsider_client.get(paths[1]).status_code == 404
    assert owner_client.post(f"{BATCHES}{waiting.pk}/cancel").status_code == 200
    assert owner_client.get(paths[3]).json()["status"] == BatchStatus.CANCELLED
    ready, reason = cache_ready()
    stats = cache_stats()
    assert not ready and "unreachable" in reason
    assert stats["connected_to_redis"] is False and stats["cache_errors"] > 0

    private_redis.start()
    time.sleep(BACKOFF + 0.1)
    assert cache_ready() == (True, "redis answers")
    current = _answers(owner_client, paths)
    assert _hits(lambda: _answers(owner_client, paths)) == len(paths)
    assert _answers(owner_client, paths) == current
    assert cache_stats()["connected_to_redis"] is True


def test_a_change_made_while_redis_did_not_answer_is_not_hidden_by_older_entries(
    private_redis: RedisServer, make_batch: Callable[..., Batch], owner_client: APIClient
) -> None:
    """A paused Redis keeps its data: the entries cached before the pause would match again
    afterwards, unless the bump lost to the pause is made good (a new epoch)."""
    batch = make_batch()
    status = f"{BATCHES}{batch.pk}/status"
    assert owner_client.get(status).json()["status"] == BatchStatus.QUEUED
    assert _hits(lambda: owner_client.get(status)) == 1
    pause_seconds = 1.5
    private_redis.client().execute_command("CLIENT", "PAUSE", int(pause_seconds * 1000), "ALL")
    started = time.monotonic()
    assert owner_client.post(f"{BATCHES}{batch.pk}/cancel").status_code == 200
    for _ in range(5):
        assert owner_client.get(status).json()["status"] == BatchStatus.CANCELLED
    assert time.monotonic() - started < 1.5  # one socket timeout, then backed off
    time.sleep(max(0.0, pause_seconds - (time.monotonic() - started)) + BACKOFF + 0.1)
    assert owner_client.get(status).json()["status"] == BatchStatus.CANCELLED
    assert _hits(lambda: owner_client.get(status)) == 1  # cached again, the new state
    assert owner_client.get(status).json()["status"] == BatchStatus.CANCELLED

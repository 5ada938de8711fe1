"""The generic cache layer on whichever cache the run configures (local memory, or CI's
Redis): the `cached` decorator, the counters and stats, readiness, the stampede lock."""

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest
from django.core.cache import cache

from omtx_hub.cache import build_once, cache_ready, cache_stats, cached, process_counts


@pytest.fixture(autouse=True)
def _cache_reads(settings: Any) -> None:
    settings.OMTX_CACHE_READS = True  # on by default with Redis only


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_cached_runs_a_function_once_per_arguments() -> None:
    calls: list[tuple[int, str]] = []

    @cached(ttl=60, key_prefix=_prefix())
    def square(n: int, *, label: str = "") -> int | None:
        calls.append((n, label))
        return None if n < 0 else n * n

    assert [square(3), square(3), square(4), square(3, label="x"), square(-1), square(-1)] == [9, 9, 16, 9, None, None]
    # A None result is cached too; other arguments are other entries.
    assert calls == [(3, ""), (4, ""), (3, "x"), (-1, "")]


def test_cached_async_function() -> None:
    calls: list[int] = []

    @cached(ttl=60, key_prefix=_prefix())
    async def double(n: int) -> int:
        calls.append(n)
        return 2 * n

    async def run() -> list[int]:
        return [await double(5), await double(5), await double(6)]

    assert asyncio.run(run()) == [10, 10, 12]
    assert calls == [5, 6]


def test_cached_expires_after_its_ttl() -> None:
    calls: list[int] = []

    @cached(ttl=1, key_prefix=_prefix())
    def now(n: int) -> int:
        calls.append(n)
        return len(calls)

    assert now(1) == now(1) == 1
    time.sleep(1.2)
    assert now(1) == 2


def test_cached_is_bypassed_when_cache_reads_are_off(settings: Any) -> None:
    settings.OMTX_CACHE_READS = False
    calls: list[int] = []

    @cached(ttl=60, key_prefix=_prefix())
    def one(n: int) -> int:
        calls.append(n)
        return n

    before = process_counts()
    assert one(1) == one(1) == 1
    assert calls == [1, 1]
    assert process_counts() == before  # not asked, so not counted


def test_stats_count_hits_and_misses(settings: Any) -> None:
    @cached(ttl=60, key_prefix=_prefix())
    def ident(n: int) -> int:
        return n

    before, stats_before = process_counts(), cache_stats()
    for n in (1, 1, 1, 2):
        ident(n)
    after, stats = process_counts(), cache_stats()
    assert (after["hit"] - before["hit"], after["miss"] - before["miss"]) == (2, 2)
    assert (stats["hits"] - stats_before["hits"], stats["misses"] - stats_before["misses"]) == (2, 2)
    asked = stats["hits"] + stats["misses"] + stats["cache_errors"]
    assert stats["hit_rate_percentage"] == round(100.0 * stats["hits"] / asked, 2)
    assert stats["backend"] == ("redis" if settings.REDIS_URL else "LocMemCache")
    assert stats["connected_to_redis"] == bool(settings.REDIS_URL)


def test_ready_answers_for_the_configured_cache() -> None:
    ok, reason = cache_ready()
    assert ok, reason


def test_build_once_builds_one_page_while_the_others_wait(settings: Any) -> None:
    settings.OMTX_CACHE_LOCK_WAIT_SECONDS = 5.0
    key, builds, answers = f"{_prefix()}:page", [], []

    def build() -> str:
        builds.append(1)
        time.sleep(0.3)
        return "page"

    def reader() -> None:
        answers.append(build_once(key, build, timeout=60, fresh=lambda value: value == "page"))

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["page"] * 8
    assert len(builds) == 1
    assert cache.get(f"{key}:lock") is None  # released by its holder


def test_build_once_waits_a_bounded_time_for_a_stuck_builder(settings: Any) -> None:
    settings.OMTX_CACHE_LOCK_WAIT_SECONDS = 0.3
    key = f"{_prefix()}:page"
    cache.add(f"{key}:lock", "a builder that died", timeout=60)
    started = time.monotonic()
    assert build_once(key, lambda: "built here", timeout=60, fresh=lambda value: True) == "built here"
    assert 0.3 <= time.monotonic() - started < 2.0


def test_build_once_ignores_a_stale_value_while_waiting(settings: Any) -> None:
    settings.OMTX_CACHE_LOCK_WAIT_SECONDS = 0.2
    key = f"{_prefix()}:page"
    cache.set(key, "old version", 60)
    cache.add(f"{key}:lock", "someone", timeout=60)
    assert build_once(key, lambda: "new", timeout=60, fresh=lambda value: value == "new") == "new"

"""The Redis cache backend: django-redis, made to degrade instead of fail (DESIGN §7).

Every call goes to Redis with short socket timeouts (settings.CACHES). When one fails the
backend answers as an empty cache would (a miss, nothing stored) and stops dialling Redis
for `BACKOFF_SECONDS` in this process: a dead Redis then costs one timeout per process per
back-off, not one per request, and every reader falls through to the database, which is the
truth. The first call after the back-off tries again, so the cache recovers by itself.

Errors are counted here, where they happen, for omtx_hub.cache's counters.
"""

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django_redis.cache import RedisCache
from django_redis.compressors.zlib import ZlibCompressor
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

T = TypeVar("T")
# What a failed call raises: django-redis wraps the client's errors; a pipeline run on the
# raw client raises redis-py's own, or the socket's.
FAILURES = (ConnectionInterrupted, RedisError, OSError)


class LargeValueCompressor(ZlibCompressor):  # type: ignore[misc]  # django-redis ships no types
    """zlib above 1 KiB only: a results page shrinks several-fold, while a token row or a
    generation token would cost compression CPU on every poll for a few bytes saved."""

    min_length = 1024


class Outage:
    """This process's view of Redis's health: when the last call failed, and how many have."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failed_at: float | None = None
        self.errors = 0

    def backing_off(self) -> bool:
        failed_at = self.failed_at
        return failed_at is not None and time.monotonic() - failed_at < settings.OMTX_CACHE_BACKOFF_SECONDS

    def failed(self) -> None:
        with self._lock:
            self.failed_at = time.monotonic()
            self.errors += 1

    def recovered(self) -> None:
        self.failed_at = None


outage = Outage()


class ResilientRedisCache(RedisCache):  # type: ignore[misc]  # django-redis ships no types
    """RedisCache whose every operation answers like an empty cache while Redis is
    unreachable. Needs IGNORE_EXCEPTIONS off, so that failures reach `_guarded`."""

    def _guarded(self, call: Callable[[], T], fallback: T) -> T:
        if outage.backing_off():
            return fallback
        try:
            result = call()
        except FAILURES:
            outage.failed()
            return fallback
        if outage.failed_at is not None:
            outage.recovered()
        return result

    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).get(key, default, version, client), default)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).set(*args, **kwargs), False)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).add(*args, **kwargs), False)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).delete(*args, **kwargs), False)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).get_many(*args, **kwargs), {})

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        # The keys not stored; django-redis returns [] when all were.
        keys = list(args[0]) if args else list(kwargs.get("data", {}))
        return self._guarded(lambda: super(ResilientRedisCache, self).set_many(*args, **kwargs), keys)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).delete_many(*args, **kwargs), 0)

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).touch(*args, **kwargs), False)

    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return self._guarded(lambda: super(ResilientRedisCache, self).has_key(*args, **kwargs), False)

    def run(self, call: Callable[[Any], T], fallback: T) -> T:
        """`call(redis_client)` guarded like the cache operations: for what django-redis has
        no method for (a pipelined HINCRBY, a PING)."""
        return self._guarded(lambda: call(self.client.get_client(write=True)), fallback)

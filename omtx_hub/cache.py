"""The hub's cache layer on Django's default cache (Redis, or local memory when REDIS_URL is
unset): counters, health, the `cached` decorator and the stampede lock (DESIGN §7).

The database is the truth; the cache never is. Every function here answers correctly with
Redis gone: omtx_hub/cache_backend.py turns a failed call into a miss and backs off, so a
lookup becomes a database read, never an error or a multi-second wait.

Counting: a lookup is a hit, a miss, or an error (Redis failing or backed off, so the lookup
could not be asked). Each is a Prometheus counter increment and, with Redis, a per-process
tally flushed into one Redis hash every FLUSH_SECONDS with one pipelined call, so that
`cache_stats` speaks for every process without a round trip per request.
"""

import functools
import hashlib
import inspect
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.cache import cache, caches
from prometheus_client import Counter

from omtx_hub.cache_backend import FAILURES, ResilientRedisCache, outage

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

CACHE_REQUESTS = Counter("omtx_cache_requests_total", "Cache lookups by the hub, by result.", ["result"])
RESULTS = ("hit", "miss", "error")
STATS_KEY = "cache-stats"
FLUSH_SECONDS = 5.0
# A lock outlives no build: a builder that died frees the page after this.
LOCK_SECONDS = 30
LOCK_POLL_SECONDS = 0.02


class _Tallies:
    """This process's counts: all of them, and those not yet flushed to Redis."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total: Tally[str] = Tally()
        self.unflushed: Tally[str] = Tally()
        self.flushed_at = time.monotonic()

    def take_unflushed(self) -> Tally[str]:
        with self.lock:
            taken, self.unflushed = self.unflushed, Tally()
            self.flushed_at = time.monotonic()
        return taken


_tallies = _Tallies()


def _redis() -> ResilientRedisCache | None:
    # The backend itself: `cache` is a proxy, which no isinstance sees through.
    backend = caches["default"]
    return backend if isinstance(backend, ResilientRedisCache) else None


def record(result: str) -> None:
    """Count one lookup (hit, miss or error); flush this process's tally when it is due."""
    CACHE_REQUESTS.labels(result=result).inc()
    with _tallies.lock:
        _tallies.total[result] += 1
        _tallies.unflushed[result] += 1
        due = time.monotonic() - _tallies.flushed_at > FLUSH_SECONDS
    if due:
        _flush()


def record_lookup(found: bool) -> None:
    """Count a lookup by what it found; a miss while Redis fails is an error."""
    record("hit" if found else "error" if outage.backing_off() else "miss")


def _flush() -> None:
    backend = _redis()
    if backend is None or outage.backing_off():
        return
    taken = _tallies.take_unflushed()
    if not taken:
        return
    name = backend.make_key(STATS_KEY)

    def increment(client: Any) -> bool:
        pipe = client.pipeline(transaction=False)
        for result, count in taken.items():
            pipe.hincrby(name, result, count)
        pipe.execute()
        return True

    if not backend.run(increment, False):
        with _tallies.lock:  # kept for the next flush: counts are not lost to an outage
            _tallies.unflushed.update(taken)


def _shared_tallies(backend: ResilientRedisCache) -> Tally[str] | None:
    _flush()
    name = backend.make_key(STATS_KEY)
    raw = backend.run(lambda client: client.hgetall(name), None)
    if raw is None:
        return None
    shared = Tally({key.decode(): int(value) for key, value in raw.items()})
    shared.update(_tallies.unflushed)  # what this process has not flushed (the flush failed)
    return shared


def cache_stats() -> dict[str, Any]:
    """Hits, misses and errors of the hub's lookups (every process's with Redis, this one's
    with local memory), the hit rate, and whether Redis answers now."""
    backend = _redis()
    tallies = _shared_tallies(backend) if backend is not None else None
    connected = tallies is not None
    if tallies is None:
        with _tallies.lock:
            tallies = Tally(_tallies.total)
    hits, misses, errors = (tallies[result] for result in RESULTS)
    asked = hits + misses + errors
    return {
        "hit_rate_percentage": round(100.0 * hits / asked, 2) if asked else 0.0,
        "hits": hits,
        "misses": misses,
        "cache_errors": errors,
        "connected_to_redis": connected,
        "backend": "redis" if backend is not None else type(caches["default"]).__name__,
        "process_errors": outage.errors,
    }


def process_counts() -> dict[str, int]:
    """This process's lookups so far, by result."""
    with _tallies.lock:
        return {result: _tallies.total[result] for result in RESULTS}


def cache_ready() -> tuple[bool, str]:
    """For the readiness probe: a PING within the socket timeout when Redis is configured.
    A real PING even while backed off, and a success ends the back-off."""
    backend = _redis()
    if backend is None:
        return True, f"{type(caches['default']).__name__} (no REDIS_URL)"
    try:
        backend.client.get_client(write=True).ping()
    except FAILURES as exc:
        outage.failed()
        return False, f"redis unreachable: {type(exc).__name__}"
    outage.recovered()
    return True, "redis answers"


def available() -> bool:
    """Whether the hub's reads should ask the cache at all (settings.OMTX_CACHE_READS)."""
    return bool(settings.OMTX_CACHE_READS)


def build_once(key: str, build: Callable[[], T], *, timeout: float, fresh: Callable[[Any], bool]) -> T:
    """`build()`, stored under `key`, by one caller at a time across every process: the
    others wait up to OMTX_CACHE_LOCK_WAIT_SECONDS for the value (a stored value `fresh`
    accepts), then build it themselves, so a builder that died or is slow delays them a
    bounded time. With Redis failing there is no lock to take: each caller builds."""
    lock, token = f"{key}:lock", uuid.uuid4().hex
    if not outage.backing_off() and cache.add(lock, token, timeout=LOCK_SECONDS):
        try:
            value = build()
            cache.set(key, value, timeout)
        finally:
            if cache.get(lock) == token:
                cache.delete(lock)
        return value
    deadline = time.monotonic() + settings.OMTX_CACHE_LOCK_WAIT_SECONDS
    while not outage.backing_off() and time.monotonic() < deadline:
        time.sleep(LOCK_POLL_SECONDS)
        waited = cache.get(key)
        if waited is not None and fresh(waited):
            return cast(T, waited)
    return build()


def _call_key(key_prefix: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    # repr: the arguments of a cached function are plain values (ids, names, numbers).
    digest = hashlib.sha256(repr((args, sorted(kwargs.items()))).encode()).hexdigest()[:32]
    return f"fn:{key_prefix}:{digest}"


def cached(*, ttl: float, key_prefix: str) -> Callable[[F], F]:
    """Cache a function's result for `ttl` seconds under `key_prefix` and its arguments
    (which must have a stable repr), on the hub's cache with its fallback: with Redis gone
    the function runs every time. For values that may be `ttl` stale (tiers, totals), not
    for what a writer changes and a reader must see at once (batches/cached_reads.py).
    Works on sync and async functions; a None result is cached too."""

    def decorate(function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if not available():
                    return await function(*args, **kwargs)
                key = _call_key(key_prefix, args, kwargs)
                boxed = await cache.aget(key)
                record_lookup(boxed is not None)
                if boxed is not None:
                    return boxed[0]
                value = await function(*args, **kwargs)
                await cache.aset(key, (value,), ttl)
                return value

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not available():
                return function(*args, **kwargs)
            key = _call_key(key_prefix, args, kwargs)
            boxed = cache.get(key)
            record_lookup(boxed is not None)
            if boxed is not None:
                return boxed[0]
            value = function(*args, **kwargs)
            cache.set(key, (value,), ttl)
            return value

        return cast(F, wrapper)

    return decorate

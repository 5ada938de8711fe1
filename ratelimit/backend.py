"""Where the limiter keeps its state: Redis (RATE_LIMIT_REDIS_URL) behind a circuit
breaker, or this process's memory. Every Redis call goes through `_call`: an error counts
against the breaker and the same operation runs in memory instead, so a Redis outage
degrades limiting to per-process (docs/rate-limiting.md) and never answers 5xx.

The blocked set: with Redis working, Redis's hash is the only truth, so an unblock made
through any process reaches all of them. The process's own copy (counters.blocked) holds the
blocks published while Redis failed, and is read only then. When Redis answers again after
failing, or is found to have lost the set, `restore_due` says so, and ratelimit.blocks copies
the table's active blocks back (the table, not this copy, so every process's outage blocks
and unblocks arrive)."""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import redis
from django.conf import settings

from ratelimit.breaker import CircuitBreaker
from ratelimit.buckets import Bucket, Decision, MemoryBuckets, redis_take, register_take
from ratelimit.memory import MemoryCounters

log = logging.getLogger(__name__)
T = TypeVar("T")


class Backend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.breaker = CircuitBreaker(
            failures=settings.RATE_LIMIT_BREAKER_FAILURES, reset_seconds=settings.RATE_LIMIT_BREAKER_RESET_SECONDS
        )
        self.buckets = MemoryBuckets()
        self.counters = MemoryCounters()
        self.client: redis.Redis | None = None
        if url:
            timeout = settings.RATE_LIMIT_REDIS_TIMEOUT
            self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            self._take = register_take(self.client)
        self._remote_blocked: dict[str, float] = {}
        self._blocked_read_at = float("-inf")
        # The blocked set's version when this process last read it, and the latest one a
        # bucket call brought back (and when): a difference means a block or unblock.
        self._version_read: int | None = None
        self._version_seen: int | None = None
        self._version_seen_at = float("-inf")
        # Set when Redis may lack blocks the table has; taken by ratelimit.blocks.
        self._restore_due = False

    @property
    def name(self) -> str:
        return "redis" if self.client is not None and self.breaker.state == "closed" else "memory"

    def take(self, buckets: Sequence[Bucket], *, cost: int = 1) -> Decision:
        """Take `cost` tokens from every bucket, or none if any is short (cost 0: a look)."""
        decision = self._call(
            lambda: redis_take(self._take, buckets, version_key=self._version_key, cost=cost),
            lambda: self.buckets.take(buckets, cost=cost),
        )
        if decision.blocked_version is not None:
            self._version_seen, self._version_seen_at = decision.blocked_version, time.monotonic()
        return decision

    def count(self, key: str, *, window: int) -> int:
        """Add one to a counter that lives `window` seconds from its first event; its value."""

        def remote(client: "redis.Redis") -> int:
            pipe = client.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
            return int(pipe.execute()[0])

        return self._call_client(remote, lambda: self.counters.incr(key, window=window))

    def read_counts(self, keys: Sequence[str]) -> int:
        def remote(client: "redis.Redis") -> int:
            values: list[bytes | None] = client.mget(keys)  # type: ignore[assignment]
            return sum(int(value) for value in values if value is not None)

        return self._call_client(remote, lambda: sum(self.counters.get(key) for key in keys))

    def blocked_until(self, ip: str) -> float | None:
        """Epoch seconds the address is blocked until, from this process's copy of the
        blocked set (re-read every RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS): no database, and
        in the common case no Redis either."""
        until = self._blocked_view().get(ip, 0.0)
        return until if until > time.time() else None

    def blocked(self) -> dict[str, float]:
        now = time.time()
        return {ip: until for ip, until in self._blocked_view().items() if until > now}

    def publish_block(self, ip: str, until: float) -> None:
        def remote(client: "redis.Redis") -> None:
            pipe = client.pipeline(transaction=True)
            pipe.hset(self._blocked_key, ip, str(until))
            pipe.incr(self._version_key)
            pipe.execute()
            # In effect in this process at once, without waiting for news of the version.
            self._remote_blocked[ip] = until

        self._call_client(remote, lambda: self._publish_locally(ip, until))

    def _publish_locally(self, ip: str, until: float) -> None:
        self.counters.blocked[ip] = until

    def withdraw_block(self, ip: str) -> None:
        # From both copies whatever Redis says: neither may bring the block back later.
        self.counters.blocked.pop(ip, None)
        self._remote_blocked.pop(ip, None)

        def remote(client: "redis.Redis") -> None:
            pipe = client.pipeline(transaction=True)
            pipe.hdel(self._blocked_key, ip)
            pipe.incr(self._version_key)
            pipe.execute()

        self._call_client(remote, lambda: None)
        self._blocked_read_at = float("-inf")

    def restore_blocks(self, active: dict[str, float], *, stale: set[str]) -> None:
        """Put the table's active blocks into Redis and take out `stale` (addresses Redis
        held before the table was read, with no active row: unblocked during an outage).
        The version moves even with nothing to write, so a missing version key means
        Redis lost the set, not that it was never read."""

        def remote(client: "redis.Redis") -> None:
            pipe = client.pipeline(transaction=True)
            if stale:
                pipe.hdel(self._blocked_key, *stale)
            if active:
                pipe.hset(self._blocked_key, mapping={ip: str(until) for ip, until in active.items()})
            pipe.incr(self._version_key)
            pipe.execute()
            # Redis has them all now: this copy would only bring back stale ones later.
            self.counters.blocked.clear()

        self._call_client(remote, lambda: self.counters.blocked.update(active))
        self._blocked_read_at = float("-inf")  # re-read next: the set and its version

    def stored_blocks(self) -> set[str]:
        """The addresses in Redis's blocked set (expired or not); empty without Redis."""

        def remote(client: "redis.Redis") -> set[str]:
            stored: list[bytes] = client.hkeys(self._blocked_key)  # type: ignore[assignment]
            return {ip.decode() for ip in stored}

        return self._call_client(remote, set)

    def take_restore_due(self) -> bool:
        due, self._restore_due = self._restore_due, False
        return due

    def restore_later(self) -> None:
        """The copy taken by `take_restore_due` could not be made: ask again next time."""
        self._restore_due = True

    def _blocked_view(self) -> dict[str, float]:
        remote = self._remote_view()
        if self.client is not None and self.breaker.state == "closed" and not self.breaker.counts.consecutive_failures:
            return remote
        # Redis failing or absent: add the blocks this process published meanwhile.
        local = self.counters.blocked
        return {ip: max(remote.get(ip, 0.0), local.get(ip, 0.0)) for ip in remote.keys() | local.keys()}

    @property
    def _blocked_key(self) -> str:
        return f"{settings.RATE_LIMIT_KEY_PREFIX}:blocked"

    @property
    def _version_key(self) -> str:
        return f"{settings.RATE_LIMIT_KEY_PREFIX}:blocked:version"

    def _remote_view(self) -> dict[str, float]:
        """Re-read when a bucket call brought back a new version, or when nothing has said
        anything for RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS (a process serving no limited
        requests): under load, no round trip of its own."""
        if self.client is None:
            return {}
        now = time.monotonic()
        changed = self._version_seen is not None and self._version_seen != self._version_read
        last_heard = max(self._blocked_read_at, self._version_seen_at)
        never_read = self._blocked_read_at == float("-inf")
        if never_read or changed or now - last_heard >= settings.RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS:
            self._blocked_read_at = now
            fresh = self._call_client(self._read_blocked, lambda: None)
            if fresh is not None:
                self._remote_blocked = fresh
        return self._remote_blocked

    def _read_blocked(self, client: "redis.Redis") -> dict[str, float]:
        now = time.time()
        pipe = client.pipeline(transaction=True)
        pipe.get(self._version_key)
        pipe.hgetall(self._blocked_key)
        version, stored = pipe.execute()
        if version is None:
            # No version: Redis restarted without persistence or evicted it; blocks in the
            # table are no longer enforced until they are copied back.
            self._restore_due = True
        self._version_read = int(version or 0)
        entries = {ip.decode(): float(until) for ip, until in stored.items()}
        expired = [ip for ip, until in entries.items() if until <= now]
        if expired:
            client.hdel(self._blocked_key, *expired)
        return {ip: until for ip, until in entries.items() if until > now}

    def _call_client(self, remote: Callable[["redis.Redis"], T], local: Callable[[], T]) -> T:
        client = self.client
        return self._call((lambda: remote(client)) if client is not None else local, local)

    def _call(self, remote: Callable[[], T], local: Callable[[], T]) -> T:
        if self.client is None or not self.breaker.allow():
            return local()
        try:
            result = remote()
        except redis.RedisError as error:
            self.breaker.failure(error)
            log.warning("rate-limit Redis failed (%s); limiting in process, breaker %s", error, self.breaker.state)
            return local()
        if self.breaker.success():
            # Redis is back after failing: what was blocked or unblocked meanwhile is in
            # the table and this process's copy, not in Redis.
            self._restore_due = True
        return result


_lock = threading.Lock()
_backend: Backend | None = None


def get_backend() -> Backend:
    """The process's backend, rebuilt when RATE_LIMIT_REDIS_URL changes (tests do)."""
    global _backend
    url = settings.RATE_LIMIT_REDIS_URL
    backend = _backend
    if backend is not None and backend.url == url:
        return backend
    with _lock:
        if _backend is None or _backend.url != url:
            _backend = Backend(url)
        return _backend


def reset_backend() -> None:
    """Forget this process's buckets, counters, blocked copy and breaker (tests)."""
    global _backend
    with _lock:
        _backend = None

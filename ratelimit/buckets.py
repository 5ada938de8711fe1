"""Token buckets. A request names one or more buckets (its user's tier, its endpoint); it
passes only if every one holds a token, and then takes one from each. In Redis that is one
Lua script, so one round trip, atomic however many processes and replicas share the keys,
on the server's clock (TIME) so replicas with drifting clocks agree. `MemoryBuckets` is the
same arithmetic in one process: the backend when no Redis is configured, and the fallback
while the circuit breaker is open."""

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

# KEYS: the blocked set's version counter, then the buckets. ARGV: the cost (1, or 0 to
# look), then per bucket its rate (tokens a second) and capacity.
# Stored per bucket: t = tokens (a float), ts = milliseconds of the last update.
# Returns {allowed, blocked-set version, then per bucket: whole tokens left, ms until one
# token, ms until full}. The version rides along so each process notices a new block
# without a round trip of its own (ratelimit.backend).
TAKE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local cost = tonumber(ARGV[1])
local tokens = {}
local allowed = 1
for i = 1, #KEYS - 1 do
  local rate = tonumber(ARGV[2 * i]) / 1000
  local capacity = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i + 1], 't', 'ts')
  local t = tonumber(state[1])
  local ts = tonumber(state[2])
  if t == nil or ts == nil then
    t = capacity
    ts = now
  end
  t = math.min(capacity, t + math.max(0, now - ts) * rate)
  tokens[i] = t
  if t < cost then allowed = 0 end
end
local out = {allowed, tonumber(redis.call('GET', KEYS[1]) or '0')}
for i = 1, #KEYS - 1 do
  local rate = tonumber(ARGV[2 * i]) / 1000
  local capacity = tonumber(ARGV[2 * i + 1])
  local t = tokens[i]
  if allowed == 1 then t = t - cost end
  redis.call('HSET', KEYS[i + 1], 't', tostring(t), 'ts', tostring(now))
  local full = math.ceil((capacity - t) / rate)
  redis.call('PEXPIRE', KEYS[i + 1], full + 1000)
  local wait = 0
  if t < 1 then wait = math.ceil((1 - t) / rate) end
  out[#out + 1] = math.floor(t)
  out[#out + 1] = wait
  out[#out + 1] = full
end
return out
"""


@dataclass(frozen=True)
class Bucket:
    """`name` is the policy's name in the RateLimit headers; `key` its storage key."""

    key: str
    name: str
    per_minute: float
    capacity: int

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.per_minute / 60.0


@dataclass(frozen=True)
class BucketState:
    bucket: Bucket
    remaining: int
    # Seconds until the next token (0 while one is left) and until the bucket is full again.
    wait: float
    reset: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    states: tuple[BucketState, ...]
    backend: str
    # The blocked set's version as Redis had it (None from memory).
    blocked_version: int | None = None

    @property
    def retry_after(self) -> int:
        """Whole seconds until every bucket holds a token (at least 1 when refused)."""
        wait = max((state.wait for state in self.states), default=0.0)
        return max(1, math.ceil(wait)) if not self.allowed else math.ceil(wait)


Take = Callable[..., list[int]]


def register_take(client: "redis.Redis") -> Take:
    script: Take = client.register_script(TAKE_LUA)
    return script


def redis_take(script: Take, buckets: Sequence[Bucket], *, version_key: str, cost: int = 1) -> Decision:
    args: list[float] = [cost]
    for bucket in buckets:
        args += [bucket.rate, bucket.capacity]
    reply = script(keys=[version_key, *(bucket.key for bucket in buckets)], args=args)
    states = tuple(
        BucketState(bucket, int(reply[2 + 3 * i]), reply[3 + 3 * i] / 1000, reply[4 + 3 * i] / 1000)
        for i, bucket in enumerate(buckets)
    )
    return Decision(allowed=reply[0] == 1, states=states, backend="redis", blocked_version=int(reply[1]))


class MemoryBuckets:
    """The Lua script's arithmetic under a lock, per process. Keys expire like Redis's do
    (when full again), so an idle process does not grow."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, buckets: Sequence[Bucket], *, cost: int = 1) -> Decision:
        with self._lock:
            now = self.clock()
            tokens = [self._refilled(bucket, now) for bucket in buckets]
            allowed = all(t >= cost for t in tokens)
            states = []
            for bucket, t in zip(buckets, tokens, strict=True):
                left = t - cost if allowed else t
                self._state[bucket.key] = (left, now)
                wait = 0.0 if left >= 1 else (1 - left) / bucket.rate
                states.append(BucketState(bucket, math.floor(left), wait, (bucket.capacity - left) / bucket.rate))
            self._expire(now)
            return Decision(allowed=allowed, states=tuple(states), backend="memory")

    def clear(self) -> None:
        with self._lock:
            self._state.clear()

    def _refilled(self, bucket: Bucket, now: float) -> float:
        tokens, since = self._state.get(bucket.key, (float(bucket.capacity), now))
        return min(float(bucket.capacity), tokens + max(0.0, now - since) * bucket.rate)

    def _expire(self, now: float) -> None:
        # Bounded work per call: drop a few stale keys, as Redis's lazy expiry does.
        if len(self._state) < 10_000:
            return
        stale = [key for key, (_, since) in list(self._state.items())[:1000] if now - since > 3600]
        for key in stale:
            del self._state[key]

"""The token bucket itself: the Lua script on a real Redis (threads, processes) and the
in-process twin with the same arithmetic."""

import subprocess
import sys
import threading
import uuid

import pytest
import redis

from ratelimit.buckets import Bucket, MemoryBuckets, redis_take, register_take

# A bucket that does not refill during a test: one token every 16 hours.
FROZEN = 0.001
VERSION = "omtx:rl:test:blocked:version"


def bucket(capacity: int, *, name: str = "t", per_minute: float = FROZEN, key: str | None = None) -> Bucket:
    return Bucket(key or f"omtx:rl:test:bucket:{uuid.uuid4().hex}", name, per_minute, capacity)


def test_fifty_concurrent_requests_against_a_bucket_of_ten_let_exactly_ten_through(redis_url: str) -> None:
    shared = bucket(10)
    clients = [redis.Redis.from_url(redis_url) for _ in range(50)]
    scripts = [register_take(client) for client in clients]
    start = threading.Barrier(50)
    allowed: list[bool] = []
    lock = threading.Lock()

    def request(n: int) -> None:
        start.wait()
        decision = redis_take(scripts[n], [shared], version_key=VERSION)
        with lock:
            allowed.append(decision.allowed)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (allowed.count(True), allowed.count(False)) == (10, 40)
    clients[0].delete(shared.key)


CHILD = """
import sys
import redis
from ratelimit.buckets import Bucket, redis_take, register_take
url, key, tries = sys.argv[1], sys.argv[2], int(sys.argv[3])
script = register_take(redis.Redis.from_url(url))
sys.stdin.readline()  # both processes start together
shared = [Bucket(key, "t", 0.001, 25)]
print(sum(redis_take(script, shared, version_key=key + ":v").allowed for _ in range(tries)))
"""


def test_two_processes_share_one_bucket(redis_url: str) -> None:
    key = f"omtx:rl:test:bucket:{uuid.uuid4().hex}"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, key, "20"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    counts = [int(child.communicate(timeout=60)[0]) for child in children]
    # 40 tries at one bucket of 25: 25 pass in all, however the two interleaved.
    assert sum(counts) == 25 and all(counts)
    redis.Redis.from_url(redis_url).delete(key)


def test_a_request_takes_from_every_bucket_or_from_none(redis_url: str) -> None:
    """The tier bucket keeps its token when the endpoint bucket refuses (atomic)."""
    script = register_take(redis.Redis.from_url(redis_url))
    tier, endpoint = bucket(5, name="tier"), bucket(1, name="submit")
    assert redis_take(script, [tier, endpoint], version_key=VERSION).allowed
    refused = redis_take(script, [tier, endpoint], version_key=VERSION)
    assert not refused.allowed
    assert [s.remaining for s in refused.states] == [4, 0]
    assert [s.remaining for s in redis_take(script, [tier], version_key=VERSION, cost=0).states] == [4]


def test_the_script_refills_at_the_bucket_rate_and_says_when(redis_url: str) -> None:
    script = register_take(redis.Redis.from_url(redis_url))
    fast = bucket(2, per_minute=600)  # 10 tokens a second
    assert (
        redis_take(script, [fast], version_key=VERSION).allowed
        and redis_take(script, [fast], version_key=VERSION).allowed
    )
    refused = redis_take(script, [fast], version_key=VERSION)
    assert not refused.allowed
    assert 0 < refused.states[0].wait <= 0.1
    assert refused.retry_after == 1
    keys = redis.Redis.from_url(redis_url)
    assert 0 < keys.pttl(fast.key) <= 0.2 * 1000 + 1000  # the key lives until the bucket is full


def test_memory_buckets_refill_like_the_script() -> None:
    now = [1000.0]
    memory = MemoryBuckets(clock=lambda: now[0])
    one_a_second = bucket(3, per_minute=60)
    assert [memory.take([one_a_second]).allowed for _ in range(4)] == [True, True, True, False]
    refused = memory.take([one_a_second])
    assert refused.states[0].wait == pytest.approx(1.0)
    now[0] += 1.0
    assert memory.take([one_a_second]).allowed
    assert not memory.take([one_a_second]).allowed
    now[0] += 10.0  # never above capacity
    assert [memory.take([one_a_second]).allowed for _ in range(4)] == [True, True, True, False]


def test_memory_buckets_take_from_every_bucket_or_from_none() -> None:
    memory = MemoryBuckets()
    tier, endpoint = bucket(5, name="tier"), bucket(1, name="submit")
    assert memory.take([tier, endpoint]).allowed
    assert not memory.take([tier, endpoint]).allowed
    assert [s.remaining for s in memory.take([tier], cost=0).states] == [4]


def test_fifty_threads_on_memory_buckets_let_exactly_ten_through() -> None:
    memory = MemoryBuckets()
    shared = bucket(10)
    start = threading.Barrier(50)
    allowed: list[bool] = []

    def request() -> None:
        start.wait()
        allowed.append(memory.take([shared]).allowed)

    threads = [threading.Thread(target=request) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 10

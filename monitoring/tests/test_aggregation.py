"""Two real processes record known latencies; a third (this test) reads them merged, from
the per-process files of one host and from Redis (several replicas)."""

import os
from typing import Any

import pytest

from monitoring import apm
from monitoring.apm_store import FileStore, RedisStore
from monitoring.tests.conftest import run_python

# 40 fast requests in one process, 60 slow ones (6 of them 5xx) in the other.
PROCESS_A = {"count": 40, "ms": 10.0, "errors": 0}
PROCESS_B = {"count": 60, "ms": 200.0, "errors": 6}

RECORD = """
from pathlib import Path
from monitoring import apm
from monitoring.apm_store import FileStore, RedisStore
spec = {spec}
store = {store}
recorder = apm.use_store(store)
for i in range(spec["count"]):
    status = 500 if i < spec["errors"] else 200
    apm.record_request(route="v3:batch-status", method="GET", duration_ms=spec["ms"], status=status)
    apm.record_operation(name="ingest", duration_ms=spec["ms"], error=False)
recorder.flush()
"""


def record_in_processes(store_code: str) -> None:
    for spec in (PROCESS_A, PROCESS_B):
        run_python(RECORD.format(spec=repr(spec), store=store_code))


def assert_merged(report: dict[str, Any]) -> None:
    assert report["requests"] == 100
    assert report["error_rate"] == 0.06
    assert report["avg_response_time_ms"] == pytest.approx((40 * 10 + 60 * 200) / 100)
    # 40 % of requests at 10 ms, 60 % at 200 ms: the median is a slow one, p95 too.
    assert report["p50_response_time_ms"] == pytest.approx(200, rel=0.1)
    assert report["p95_response_time_ms"] == pytest.approx(200, rel=0.1)
    [route] = report["routes"]
    assert (route["requests"], route["errors"]) == (100, 6)
    [operation] = apm.operations(window_seconds=60)
    assert operation["operation"] == "ingest"
    assert operation["requests"] == 100
    assert operation["p50_ms"] == pytest.approx(200, rel=0.1)


def test_files_of_two_processes_merge(file_store: FileStore) -> None:
    record_in_processes(f"FileStore(Path({str(file_store.directory)!r}))")
    assert len(list(file_store.directory.glob("*.json"))) == 2
    assert_merged(apm.performance(window_seconds=60))


def test_redis_of_two_processes_merge(redis_store: RedisStore, redis_url: str) -> None:
    record_in_processes(f"RedisStore({redis_url!r}, prefix={redis_store.prefix!r})")
    assert_merged(apm.performance(window_seconds=60))
    # Each bucket's hash expires after the longest window: Redis never fills with old ones.
    [key] = list(redis_store.client.scan_iter(f"{redis_store.prefix}*"))
    assert 0 < redis_store.client.ttl(key) <= 3600 + 10


def test_a_forked_child_keeps_its_own_file(file_store: FileStore) -> None:
    apm.record_request(route="parent", method="GET", duration_ms=1, status=200)
    apm.recorder().flush()
    code = f"""
import os
from pathlib import Path
from monitoring import apm
from monitoring.apm_store import FileStore
recorder = apm.use_store(FileStore(Path({str(file_store.directory)!r})))
apm.record_request(route="parent", method="GET", duration_ms=1, status=200)
recorder.flush()
if os.fork() == 0:
    apm.record_request(route="child", method="GET", duration_ms=1, status=200)
    recorder.flush()
    os._exit(0)
os.wait()
"""
    run_python(code)
    routes = {r["route"]: r["requests"] for r in apm.performance(window_seconds=60)["routes"]}
    # The child's file holds its own request only, not a second copy of its parent's.
    assert routes == {"parent": 2, "child": 1}


def test_stale_files_are_removed(file_store: FileStore) -> None:
    apm.record_request(route="live", method="GET", duration_ms=1, status=200)
    apm.recorder().flush()
    stale = file_store.directory / "1-dead.json"
    stale.write_text("{}")
    os.utime(stale, (0, 0))
    apm.performance(window_seconds=60)
    assert not stale.exists()
    assert len(list(file_store.directory.glob("*.json"))) == 1

"""APM fixtures: a store of the test's own (a temporary directory, or a Redis key prefix),
installed as this process's recorder's, and a way to run code in other processes."""

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from monitoring import apm, tracing
from monitoring.apm_store import FileStore, RedisStore
from omtx_hub.prometheus_dir import clear_dead, multiproc_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[FileStore]:
    store = FileStore(tmp_path / "apm")
    apm.use_store(store)
    yield store
    apm.use_store(FileStore(tmp_path / "apm-after"))


@pytest.fixture
def redis_url() -> str:
    """REDIS_URL, else the local Redis CI always has (CI's SQLite pass sets no REDIS_URL);
    in CI (CI=true) an unreachable Redis fails the test, elsewhere it skips it."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    problem = None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        problem = f"Redis at {url} does not answer: {exc!r}"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return url


@pytest.fixture
def redis_store(redis_url: str, tmp_path: Path) -> Iterator[RedisStore]:
    """A Redis store under a key prefix of this test's own, deleted afterwards."""
    store = RedisStore(redis_url, prefix=f"omtx:apm-test:{secrets.token_hex(6)}:")
    apm.use_store(store)
    yield store
    apm.use_store(FileStore(tmp_path / "apm-after"))
    keys = list(store.client.scan_iter(f"{store.prefix}*"))
    if keys:
        store.client.delete(*keys)


@pytest.fixture(autouse=True, scope="session")
def _no_dead_prometheus_files() -> None:
    """Test runs are processes too: without this, every run leaves its value files behind in
    the default directory, and each scrape reads them all (gunicorn clears them at its start)."""
    clear_dead(multiproc_dir())


@pytest.fixture(autouse=True)
def _no_spans() -> Iterator[None]:
    tracing.configure("none")
    yield
    tracing.configure("none")


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    """Run `code` in a new Python process at the repository's root; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

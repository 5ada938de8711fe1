"""Where the APM's per-process histograms meet: Redis when REDIS_URL is set (every replica
adds into one hash per time bucket), else one file per process under VAR_DIR/apm/ (the
processes of one host: `make run`'s web, dispatch and background). Readers merge the time
buckets of their window from every process. Never a database row (docs/observability.md).

A time bucket is BUCKET_SECONDS of wall-clock time, named by its start (a multiple of
BUCKET_SECONDS since the epoch), so every process and replica files a request under the same
bucket. Buckets live RETENTION_SECONDS (a Redis TTL, or pruned from the files), the longest
window a reader may ask for.
"""

import json
import logging
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import redis

from monitoring.latency import Histogram

log = logging.getLogger("omtx.apm")

BUCKET_SECONDS = 10
RETENTION_SECONDS = 3600
# kind ("r" request, "o" operation), method ("" for operations), name.
Series = tuple[str, str, str]
Buckets = dict[int, dict[Series, Histogram]]


def bucket_start(timestamp: float) -> int:
    return int(timestamp // BUCKET_SECONDS) * BUCKET_SECONDS


def field_name(series: Series, stat: str) -> str:
    # The name goes last: a route pattern may hold any character, "|" included.
    kind, method, name = series
    return f"{kind}|{method}|{stat}|{name}"


def parse_field(flat: str) -> tuple[Series, str]:
    kind, method, stat, name = flat.split("|", 3)
    return (kind, method, name), stat


def merge_flat(into: dict[Series, Histogram], flat: dict[str, int]) -> None:
    by_series: dict[Series, dict[str, int]] = defaultdict(dict)
    for key, value in flat.items():
        series, stat = parse_field(key)
        by_series[series][stat] = value
    for series, stats in by_series.items():
        into.setdefault(series, Histogram()).add_fields(stats)


def flatten(histograms: dict[Series, Histogram]) -> dict[str, int]:
    return {
        field_name(series, stat): value
        for series, histogram in histograms.items()
        for stat, value in histogram.fields().items()
    }


class Store(Protocol):
    def add(self, deltas: Buckets) -> None:
        """Add one process's new observations; raises when they could not be stored."""

    def read(self, buckets: Iterable[int]) -> dict[Series, Histogram]:
        """Every process's observations in these time buckets, merged."""


class RedisStore:
    """One hash per time bucket; a flush is one pipelined round trip of HINCRBYs."""

    def __init__(self, url: str, *, prefix: str = "omtx:apm:") -> None:
        # Short: a flush or a dashboard read waits at most this long for a Redis that is away.
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix

    def add(self, deltas: Buckets) -> None:
        pipe = self.client.pipeline(transaction=False)
        for start, histograms in deltas.items():
            key = f"{self.prefix}{start}"
            for name, value in flatten(histograms).items():
                pipe.hincrby(key, name, value)
            # From the bucket's end: a bucket is never dropped while a window may still read it.
            pipe.expireat(key, start + BUCKET_SECONDS + RETENTION_SECONDS)
        pipe.execute()

    def read(self, buckets: Iterable[int]) -> dict[Series, Histogram]:
        pipe = self.client.pipeline(transaction=False)
        for start in buckets:
            pipe.hgetall(f"{self.prefix}{start}")
        merged: dict[Series, Histogram] = {}
        for raw in pipe.execute():
            merge_flat(merged, {key.decode(): int(value) for key, value in raw.items()})
        return merged


class FileStore:
    """This process's totals per time bucket, rewritten whole (atomically) at each flush into
    its own file; a reader merges every file. Files of processes gone for longer than the
    retention are deleted by readers."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.totals: Buckets = {}
        self._pid = -1
        self._path = directory / "unset.json"

    def _own_file(self) -> Path:
        # A forked child (gunicorn worker) starts from its parent's totals: drop them, they
        # are the parent's file's, and take a file of its own.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.totals = {}
            self._path = self.directory / f"{self._pid}-{secrets.token_hex(4)}.json"
        return self._path

    def add(self, deltas: Buckets) -> None:
        path = self._own_file()
        for start, histograms in deltas.items():
            bucket = self.totals.setdefault(start, {})
            for series, histogram in histograms.items():
                bucket.setdefault(series, Histogram()).add_fields(histogram.fields())
        oldest = bucket_start(time.time()) - RETENTION_SECONDS
        self.totals = {start: h for start, h in self.totals.items() if start >= oldest}
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({str(start): flatten(h) for start, h in self.totals.items()}))
        os.replace(temporary, path)

    def read(self, buckets: Iterable[int]) -> dict[Series, Histogram]:
        wanted = {str(start) for start in buckets}
        merged: dict[Series, Histogram] = {}
        for path in self._files():
            try:
                content = json.loads(path.read_text())
            except FileNotFoundError:  # deleted by another reader since the listing
                continue
            for start in wanted.intersection(content):
                merge_flat(merged, content[start])
        return merged

    def _files(self) -> list[Path]:
        stale = time.time() - RETENTION_SECONDS - BUCKET_SECONDS
        files = []
        for path in self.directory.glob("*.json"):
            try:
                if path.stat().st_mtime < stale:
                    path.unlink()
                    continue
            except FileNotFoundError:
                continue
            files.append(path)
        return files


def store_from_settings() -> Store:
    from django.conf import settings

    if settings.REDIS_URL:
        return RedisStore(settings.REDIS_URL)
    directory: Path = settings.VAR_DIR / "apm"
    return FileStore(directory)


def store_errors() -> tuple[type[BaseException], ...]:
    """What a store raises when it is away (Redis down, a full disk), not a bug."""
    return (redis.RedisError, OSError)

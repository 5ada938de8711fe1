"""Request and operation timing, aggregated across every process and replica.

Each process observes into in-memory histograms (monitoring/latency.py) per series (a route
and method, or an operation) per 10-second time bucket, and a daemon thread adds them to the
shared store (monitoring/apm_store.py) every FLUSH_SECONDS: one pipelined Redis call, or one
file write, per process per flush; nothing per request but a dictionary update under a lock.
Readers merge the buckets of their window from every process. Numbers are at most
FLUSH_SECONDS late for other processes; the reading process flushes its own first.
"""

import atexit
import logging
import os
import threading
import time
from typing import Any

from monitoring.apm_store import (
    BUCKET_SECONDS,
    RETENTION_SECONDS,
    Buckets,
    Series,
    Store,
    bucket_start,
    store_errors,
    store_from_settings,
)
from monitoring.latency import Histogram

log = logging.getLogger("omtx.apm")

FLUSH_SECONDS = 2.0
REQUEST = "r"
OPERATION = "o"


class Recorder:
    """One per process: observations not yet flushed, and the thread that flushes them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: Buckets = {}
        self._lock = threading.Lock()
        self._flusher_pid: int | None = None
        self._stop = threading.Event()

    def observe(self, series: Series, duration_ms: float, *, error: bool) -> None:
        with self._lock:
            bucket = self._pending.setdefault(bucket_start(now()), {})
            bucket.setdefault(series, Histogram()).observe(duration_ms, error=error)
        if self._flusher_pid != _pid():
            self._start_flusher()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self.store.add(pending)
        except store_errors() as exc:
            log.warning("APM flush failed, kept for the next one: %r", exc)
            self._keep(pending)

    def _keep(self, pending: Buckets) -> None:
        """Put back what a failed flush held, without what is older than any window."""
        oldest = bucket_start(now()) - RETENTION_SECONDS
        with self._lock:
            for start, histograms in pending.items():
                if start < oldest:
                    continue
                bucket = self._pending.setdefault(start, {})
                for series, histogram in histograms.items():
                    bucket.setdefault(series, Histogram()).add_fields(histogram.fields())

    def _start_flusher(self) -> None:
        # Lazily, and again in a forked child (a gunicorn worker): threads do not survive fork.
        with self._lock:
            if self._flusher_pid == _pid():
                return
            self._flusher_pid = _pid()
        threading.Thread(target=self._flush_forever, name="apm-flush", daemon=True).start()

    def _flush_forever(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        self.flush()


def now() -> float:
    """Wall-clock time, shared by every process and replica (time buckets are named by it)."""
    return time.time()


def _pid() -> int:
    return os.getpid()


_recorder: Recorder | None = None
_recorder_lock = threading.Lock()


def recorder() -> Recorder:
    global _recorder
    if _recorder is None:
        with _recorder_lock:
            if _recorder is None:
                _recorder = Recorder(store_from_settings())
                atexit.register(_recorder.flush)
    return _recorder


def use_store(store: Store) -> Recorder:
    """Replace this process's recorder with one on `store` (tests, benchmarks); returns it."""
    global _recorder
    with _recorder_lock:
        if _recorder is not None:
            _recorder.stop()
        _recorder = Recorder(store)
    return _recorder


def record_request(*, route: str, method: str, duration_ms: float, status: int) -> None:
    recorder().observe((REQUEST, method, route), duration_ms, error=status >= 500)


def record_operation(*, name: str, duration_ms: float, error: bool) -> None:
    recorder().observe((OPERATION, "", name), duration_ms, error=error)


def _window(window_seconds: int) -> tuple[dict[Series, Histogram], float, bool]:
    """Every process's series in the time buckets overlapping the last `window_seconds`, the
    seconds those buckets span up to now (≥ window_seconds: the first bucket may start
    before the window does, and its requests are all counted), and whether the store could
    be read: with Redis down the dashboard and the alerts still answer, without these figures."""
    if not 1 <= window_seconds <= RETENTION_SECONDS:
        raise ValueError(f"window_seconds must be between 1 and {RETENTION_SECONDS}")
    rec = recorder()
    rec.flush()
    until = now()
    first = bucket_start(until - window_seconds)
    try:
        series = rec.store.read(range(first, bucket_start(until) + 1, BUCKET_SECONDS))
    except store_errors() as exc:
        log.warning("APM store unreadable, request figures unavailable: %r", exc)
        return {}, until - first, False
    return series, until - first, True


def performance(*, window_seconds: int = 300) -> dict[str, Any]:
    """Request timing over the last `window_seconds`, from every process and replica.

    `requests_per_second` divides the requests by the seconds the window's 10-second buckets
    span (window_seconds rounded out to the bucket before it). An error is an answer with a
    5xx status (an exception a view let through is a 500): 4xx answers are the client's.
    `store_available` is False when the store could not be read (Redis down): then nothing is
    known, and the figures are those of an empty window. With no request in the window:
    requests 0, requests_per_second 0.0, error_rate and every time None (nothing measured,
    nothing invented). Times are in milliseconds; percentiles
    within ±10 % (monitoring/latency.py). `routes` are sorted by requests, most first; a route
    is the URL's name ("v3:batch-status"), or "<unmatched>" for a URL that matched none.
    """
    series, span, available = _window(window_seconds)
    total = Histogram()
    routes = []
    for (kind, method, name), histogram in series.items():
        if kind != REQUEST:
            continue
        total.add_fields(histogram.fields())
        routes.append({"route": name, "method": method, **histogram.summary()})
    routes.sort(key=lambda route: (-route["requests"], route["route"], route["method"]))
    return {
        "window_seconds": window_seconds,
        # False while the shared store (Redis) does not answer: the zeros then mean unknown.
        "store_available": available,
        "requests": total.count,
        "requests_per_second": round(total.count / span, 3),
        "error_rate": round(total.errors / total.count, 4) if total.count else None,
        "avg_response_time_ms": total.average_ms(),
        "p50_response_time_ms": total.percentile_ms(50),
        "p95_response_time_ms": total.percentile_ms(95),
        "p99_response_time_ms": total.percentile_ms(99),
        "routes": routes,
    }


def operations(*, window_seconds: int = 300) -> list[dict[str, Any]]:
    """`trace_operation` statistics over the window, from every process, most frequent first:
    {"operation", "requests" (calls), "errors" (calls that raised), "avg_ms", "p50_ms",
    "p95_ms", "p99_ms"}. An operation with no call in the window is not listed."""
    series, _, _ = _window(window_seconds)
    found = [
        {"operation": name, **histogram.summary()} for (kind, _, name), histogram in series.items() if kind == OPERATION
    ]
    return sorted(found, key=lambda op: (-op["requests"], op["operation"]))

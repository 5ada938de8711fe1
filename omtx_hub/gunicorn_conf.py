"""gunicorn's settings for every way the hub is served: the Procfile, the image and `make fuzz`
start it with `--config python:omtx_hub.gunicorn_conf`.

gunicorn answers a request it cannot read itself, before Django sees it: a request line past
`limit_request_line` (4094 bytes, which a query string of junk parameters passes), header
fields past their limits, a malformed line. Its page is HTML; the API answers every error in
its one JSON envelope (docs/api.md, "Errors"), so gunicorn's page is the envelope too. gunicorn
has no setting for that page: `gunicorn.util.write_error` is the one function that writes it,
looked up on the module at each call, so replacing it here reaches every worker class.

Workers are threaded (`gthread`): a thread answers while another waits on PostgreSQL, and a
client's connection stays open between requests, where a sync worker closes it after each
answer. Measured against sync workers in one run (docs/performance.md, "Status poll and
serving layout"), with fewer processes (2 × 8 threads beat 3 × 4 and 4 × 2 on 2 cores).
Each thread holds its own database connection: workers × threads per replica.
"""

import ctypes
import gc
import json
import os
import re
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from gunicorn import util

from omtx_hub.prometheus_dir import clear_dead, multiproc_dir

worker_class = "gthread"
threads = 8


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, answering with the envelope (omtx_hub/api_errors.py)."""
    code = re.sub(r"\W+", "_", HTTPStatus(status_int).phrase.lower())
    # No request id: gunicorn could not read the request, Django never saw it.
    error = {"code": code, "message": f"{reason}: {mesg}", "details": None, "request_id": None}
    body = json.dumps({"error": error}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_error


# After a large request (a 100,000-ligand submission is about 10 MB of JSON, ten times that
# as Python objects) a worker would keep what it touched: glibc keeps freed heap pages, and
# Python's small-object arenas stay as long as one object in each lives. Past TRIM_AFTER_BYTES
# the heap is trimmed; past RECYCLE_AFTER_BYTES, where trimming left 66 MB behind
# (docs/performance.md), the worker finishes what it holds and the master starts a fresh one,
# as gunicorn's max_requests does, so the memory goes back whole.
TRIM_AFTER_BYTES = 1024 * 1024
RECYCLE_AFTER_BYTES = 8 * 1024 * 1024
_malloc_trim: Callable[[int], int] | None
try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to trim
    _malloc_trim = None


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    """gunicorn's hook after each request: give a large request's memory back."""
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if size > RECYCLE_AFTER_BYTES:
        worker.log.info("worker %s replaced after a %d-byte request, to return its memory", worker.pid, size)
        worker.alive = False
    elif size > TRIM_AFTER_BYTES and _malloc_trim is not None:
        gc.collect()
        _malloc_trim(0)


# Prometheus multiprocess mode (monitoring/prometheus.py): the directory is chosen here, before
# any worker imports prometheus_client, and inherited by every worker.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir()))


def on_starting(server: Any) -> None:
    """At the master's start: the files of processes gone (a previous server) are removed."""
    clear_dead(multiproc_dir())


def child_exit(server: Any, worker: Any) -> None:
    """A worker's live gauges leave with it; its counters stay in the sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(multiproc_dir()))  # type: ignore[no-untyped-call]

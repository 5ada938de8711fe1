"""The per-process broadcaster: committed batch changes → one delta per batch per interval.

`batches.changes.batches_changed` hands every committed change to `notify`, which only
records it (a dict update under a lock) and wakes the sender thread, so a web request or the
dispatcher's pass never waits for the channel layer. The thread sends each batch at most once
per OMTX_LIVE_COALESCE_MS: a change to a batch quiet for longer goes out at once, the changes
arriving during the interval after it go out together at its end. A burst of thousands of job
completions thus becomes one delta per interval, each reading the batch row once and the
changed jobs once (at most DELTA_JOBS of them; beyond, the delta says it was truncated).

Bounded: at most MAX_BATCHES batches wait; changes of further batches are dropped and
counted (their sockets catch up with the next change, or by a snapshot). A channel layer that
fails or does not answer within OMTX_LIVE_SEND_TIMEOUT costs the thread that long, never a
caller; the failure is logged and counted in `stats`.
"""

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import connections

from batches.live import protocol, watchers

log = logging.getLogger(__name__)
# Batches waiting to be sent at once; more are dropped (and counted) until the thread catches up.
MAX_BATCHES = 10_000


@dataclass
class Pending:
    """What one batch's next delta covers: how many changes, and the jobs they named (None:
    a change that named none, or more than a delta carries)."""

    changes: int = 0
    job_ids: set[str] | None = field(default_factory=set)

    def add(self, job_ids: Iterable[UUID | str] | None) -> None:
        self.changes += 1
        if job_ids is None or self.job_ids is None:
            self.job_ids = None
            return
        self.job_ids.update(str(pk) for pk in job_ids)
        if len(self.job_ids) > protocol.DELTA_JOBS:
            self.job_ids = None


class Broadcaster:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[str, Pending] = {}
        self._last_flush: dict[str, float] = {}
        # The version of this process's last delta per batch: the next delta's `since`.
        self._sent: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._busy = False
        self.stats: Counter[str] = Counter()

    def notify(self, *, batch_ids: Iterable[UUID | str], job_ids: Iterable[UUID | str] | None = None) -> None:
        """Record committed changes of `batch_ids` (and, when the writer knows them, the jobs
        that changed). Returns at once."""
        ids = [str(pk) for pk in batch_ids]
        jobs = list(job_ids) if job_ids is not None else None
        local_only = isinstance(get_channel_layer(), InMemoryChannelLayer)
        with self._cond:
            for batch_id in ids:
                # An in-memory layer reaches this process's sockets only: no watcher, no reader.
                if local_only and not watchers.watched(batch_id):
                    continue
                if batch_id not in self._pending and len(self._pending) >= MAX_BATCHES:
                    self.stats["dropped"] += 1
                    continue
                self._pending.setdefault(batch_id, Pending()).add(jobs)
                self.stats["changes"] += 1
            if self._pending:
                self._start()
                self._cond.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every recorded change is sent (tests, benchmarks, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="omtx-live-broadcaster", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            due = self._next_due()
            try:
                for batch_id, pending in due:
                    self._flush(loop, batch_id, pending)
            finally:
                # This thread's connection is kept through a burst (opening one costs more
                # than the reads) and closed once nothing waits, so it never outlives a
                # restarted database or holds a test database open.
                with self._cond:
                    idle = not self._pending
                if idle:
                    connections.close_all()
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_due(self) -> list[tuple[str, Pending]]:
        """Block until some batch's interval has passed since its last delta; take those."""
        interval = settings.OMTX_LIVE_COALESCE_MS / 1000
        with self._cond:
            while True:
                now = time.monotonic()
                due = [pk for pk in self._pending if self._last_flush.get(pk, 0.0) + interval <= now]
                if due:
                    self._busy = True
                    for pk in due:
                        self._last_flush[pk] = now
                    return [(pk, self._pending.pop(pk)) for pk in due]
                if self._pending:
                    self._cond.wait(min(self._last_flush[pk] for pk in self._pending) + interval - now)
                else:
                    self._prune()
                    self._cond.wait()

    def _prune(self) -> None:
        """Forget long-quiet batches (bounded memory); their next delta's `since` is estimated."""
        if len(self._last_flush) > MAX_BATCHES:
            self._last_flush.clear()
            self._sent.clear()

    def _flush(self, loop: asyncio.AbstractEventLoop, batch_id: str, pending: Pending) -> None:
        started = time.monotonic()
        try:
            message = self._message(batch_id, pending)
            self.stats["read_ms"] += round(1000 * (time.monotonic() - started))
        except Exception as exc:  # the database, or a deleted row read half-way: counted, not raised
            self.stats["failures"] += 1
            log.warning("live: could not read batch %s for its delta: %r", batch_id, exc)
            return
        if message is None:
            return
        try:
            _send(loop, protocol.group_name(batch_id), message)
        except Exception as exc:  # the channel layer down, slow or full: counted, never raised
            self.stats["failures"] += 1
            log.warning("live: could not send batch %s's delta: %r", batch_id, exc)
            return
        self.stats["messages"] += 1
        self.stats["flush_ms"] += round(1000 * (time.monotonic() - started))

    def _message(self, batch_id: str, pending: Pending) -> dict[str, Any] | None:
        batch = protocol.status_row(batch_id)
        if batch is None:
            self._sent.pop(batch_id, None)
            return {"type": "batch.gone", "batch": batch_id}
        since = self._sent.get(batch_id, max(batch.version - pending.changes, 0))
        if batch.version <= since and not pending.job_ids:
            return None  # nothing a client keeps moved (a change another process sent, or none)
        self._sent[batch_id] = batch.version
        delta = protocol.delta(batch, since=min(since, batch.version), job_ids=pending.job_ids)
        text = protocol.encode(delta)
        return {
            "type": "batch.delta",
            "batch": batch_id,
            "since": delta["since"],
            "version": batch.version,
            "text": text,
        }


def _send(own_loop: asyncio.AbstractEventLoop, group: str, message: dict[str, Any]) -> None:
    """group_send within OMTX_LIVE_SEND_TIMEOUT: on this thread's own loop (Redis), or on the
    sockets' loop for an in-memory layer, whose queues cannot be woken from another loop."""
    layer = get_channel_layer()
    assert layer is not None
    timeout = settings.OMTX_LIVE_SEND_TIMEOUT
    if isinstance(layer, InMemoryChannelLayer):
        loop = watchers.sockets_loop()
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout)
    else:
        own_loop.run_until_complete(asyncio.wait_for(layer.group_send(group, message), timeout))


broadcaster = Broadcaster()

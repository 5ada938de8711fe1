"""Which batches this process's sockets watch. With the in-memory channel layer only this
process's sockets can receive a broadcast, so the broadcaster reads and sends only for
batches watched here (the dispatcher of `make run` watches none and sends nothing)."""

import asyncio
import threading
from collections import Counter

_lock = threading.Lock()
_watched: Counter[str] = Counter()
# The event loop the sockets run on: an in-memory layer's queues belong to it, so the
# broadcaster's thread hands its sends to this loop.
_loop: asyncio.AbstractEventLoop | None = None


def watch(batch_id: str) -> None:
    """Called by a batch socket, on its event loop."""
    global _loop
    with _lock:
        _watched[batch_id] += 1
        _loop = asyncio.get_running_loop()


def unwatch(batch_id: str) -> None:
    with _lock:
        _watched[batch_id] -= 1
        if _watched[batch_id] <= 0:
            del _watched[batch_id]


def watched(batch_id: str) -> bool:
    with _lock:
        return _watched[batch_id] > 0


def sockets_loop() -> asyncio.AbstractEventLoop | None:
    with _lock:
        return _loop if _loop is not None and not _loop.is_closed() else None

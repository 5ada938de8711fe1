"""The dispatcher's main loop, shared by `manage.py dispatch` and the fault tests."""

import logging
import threading

from batches.engine.dispatcher import Dispatcher, Heartbeat
from batches.selectors import queue_has_work

log = logging.getLogger(__name__)


def serve(dispatcher: Dispatcher, *, stop: threading.Event, interval: float, until_idle: bool = False) -> None:
    """Run passes until `stop` is set (or, with `until_idle`, nothing is
    queued or in flight), with the lease heartbeat beside it; then hand the
    held jobs back. Nothing but `stop` ends it: a failing pass is logged and
    the next one runs after a pause."""
    heartbeat = Heartbeat(dispatcher, interval=max(0.5, dispatcher.lease_seconds / 4))
    heartbeat.start()
    try:
        while not stop.is_set():
            try:
                moved = dispatcher.run_once()
                if until_idle and not dispatcher.calls and not dispatcher.backlog and not queue_has_work():
                    break
            except Exception:
                log.exception("dispatcher pass failed; next pass in %.1f s", interval)
                moved = 0
            if not moved:
                stop.wait(interval)
    finally:
        heartbeat.stop()
        dispatcher.shutdown()

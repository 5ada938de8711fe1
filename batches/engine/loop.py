"""The dispatcher's main loop, shared by `manage.py dispatch` and the fault tests."""

import logging
import threading

from django.db import connection

from batches.engine.dispatcher import Dispatcher
from batches.engine.outcomes import drop_broken_connection
from batches.selectors import queue_has_work
from omtx_hub.heartbeat import beat

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
            # The main loop's own liveness (the lease heartbeat below would renew forever
            # behind a pass that never returns).
            beat()
            try:
                moved = dispatcher.run_once()
                if until_idle and not dispatcher.calls and not dispatcher.backlog and not queue_has_work():
                    break
            except Exception:
                log.exception("dispatcher pass failed; next pass in %.1f s", interval)
                moved = 0
            dispatcher.wait(interval, stop=stop, moved=moved)
    finally:
        heartbeat.stop()
        dispatcher.shutdown()


class Heartbeat(threading.Thread):
    """Renews the dispatcher's leases every `interval` seconds on its own
    database connection, however long the main loop's current step takes."""

    def __init__(self, dispatcher: Dispatcher, interval: float) -> None:
        super().__init__(name="lease-heartbeat", daemon=True)
        self.dispatcher = dispatcher
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.dispatcher.renew()
                except Exception:
                    log.exception("lease heartbeat failed; trying again in %.1f s", self.interval)
                    drop_broken_connection()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)

"""The background worker's loop: every step in turn, pausing only when none had work."""

import logging
import threading
from collections.abc import Callable

from batches.background import intake
from batches.background.exports import build_exports
from batches.engine.outcomes import drop_broken_connection
from batches.services.dry_runs import dry_runs_expire
from batches.webhooks import sender as webhooks
from omtx_hub.heartbeat import beat

log = logging.getLogger(__name__)

Step = Callable[[], bool]


def steps() -> list[Step]:
    """The kinds of background work, in the order one pass runs them."""
    return [intake.step, build_exports, expire_dry_runs, webhooks.step]


def expire_dry_runs() -> bool:
    return dry_runs_expire() > 0


def run_once() -> bool:
    """One pass of every step; whether any of them did work."""
    worked = False
    for step in steps():
        worked = step() or worked
    return worked


def serve(*, stop: threading.Event, interval: float) -> None:
    """Run passes until `stop` is set. A failing pass is logged and the next one runs after
    a pause: a step's work is in the database, so nothing is lost with the exception."""
    try:
        while not stop.is_set():
            beat()
            try:
                worked = run_once()
            except Exception:
                log.exception("background pass failed; next pass in %.1f s", interval)
                drop_broken_connection()
                worked = False
            if not worked:
                stop.wait(interval)
    finally:
        intake.shutdown()
        webhooks.shutdown()

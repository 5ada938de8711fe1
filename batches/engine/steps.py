"""Running one dispatcher step against the database: retried after a
deadlock, a serialization failure or a lost connection, and never fatal to
the loop (a step that still fails is logged, counted and left for the next pass)."""

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import Error as DatabaseError

from batches.engine.outcomes import drop_broken_connection

log = logging.getLogger("batches.engine.dispatcher")
T = TypeVar("T")
DB_ATTEMPTS = 3


def retrying(stats: Counter[str], fn: Callable[..., T], **kwargs: Any) -> T:
    """`fn(**kwargs)`, again after a database error (each attempt is its own transaction)."""
    for attempt in range(DB_ATTEMPTS):
        try:
            return fn(**kwargs)
        except DatabaseError as exc:
            stats["db_errors"] += 1
            if attempt == DB_ATTEMPTS - 1:
                raise
            log.warning("%s failed (attempt %d), retrying: %r", fn.__name__, attempt + 1, exc)
            drop_broken_connection()
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def step(stats: Counter[str], name: str, fn: Callable[[], T], default: T) -> T:
    """`fn()`, or `default` when it fails: the loop never dies on one step."""
    try:
        return fn()
    except Exception:
        log.exception("dispatcher step %s failed; continuing", name)
        stats[f"{name}_failed"] += 1
        drop_broken_connection()
        return default

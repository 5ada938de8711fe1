"""Logs database queries slower than APM_SLOW_QUERY_MS, in every process (web, dispatcher,
background), through Django's execute wrappers on each connection as it opens."""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

log = logging.getLogger("omtx.apm.queries")
# Enough of the statement to recognise it; a 10,000-row bulk insert is megabytes of SQL.
SQL_SHOWN = 500


def log_slow_query(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        duration_ms = (time.perf_counter() - started) * 1000
        if duration_ms > settings.APM_SLOW_QUERY_MS:
            log.warning(
                "slow query: %.0f ms: %s",
                duration_ms,
                sql[:SQL_SHOWN],
                extra={"duration_ms": round(duration_ms, 1), "many": many},
            )


def _wrap(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    # Sent at each (re)connection of the same wrapper object: add the wrapper once.
    if log_slow_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(log_slow_query)


def install() -> None:
    connection_created.connect(_wrap, dispatch_uid="omtx-slow-queries")

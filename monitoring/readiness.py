"""Readiness: may this process take traffic? (`/health/ready`, DESIGN §7.)

Each check answers a `Check`: ok, a short state word, and detail text that
only staff see (it may name hosts or carry a driver's error message).
Liveness (`/health`) is cheaper and lives in omtx_hub.views.
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from monitoring import sources
from monitoring.health import executor_configuration

log = logging.getLogger(__name__)

# Set once the migration plan is empty: migrations only ever get applied
# while a process runs, so a clean answer stays true and later probes skip
# loading the migration graph and reading django_migrations (3–5 ms a probe,
# benchmarks/monitoring.py).
_migrations_clean = False


@dataclass(frozen=True)
class Check:
    ok: bool
    state: str
    detail: str = ""

    def public(self) -> dict[str, Any]:
        return {"ok": self.ok, "state": self.state}

    def staff(self) -> dict[str, Any]:
        return {"ok": self.ok, "state": self.state, "detail": self.detail}


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        log.warning("readiness: database unreachable: %r", exc)
        return Check(False, "unreachable", repr(exc)[:300])
    return Check(True, "ok", connection.vendor)


def check_migrations() -> Check:
    """Not ready while this code's migrations are not all applied: a process
    started before `migrate` finished would query columns that do not exist."""
    global _migrations_clean
    if _migrations_clean:
        return Check(True, "ok", "all applied")
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return Check(False, "unknown", repr(exc)[:300])
    if plan:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _backwards in plan[:10])
        # The probe is anonymous and the detail is staff's; before the first migration there
        # is no staff to sign in, so the names go to the log, where the operator looks.
        log.warning("readiness: %d migrations unapplied (run `manage.py migrate`): %s", len(plan), names)
        return Check(False, "pending", f"{len(plan)} unapplied: {names}")
    _migrations_clean = True
    return Check(True, "ok", "all applied")


def check_cache() -> Check:
    ok, detail = sources.cache_ready()
    return Check(ok, "ok" if ok else "unreachable", detail)


# A channel layer's round trip longer than this (seconds) is not ready.
CHANNEL_LAYER_TIMEOUT = 2.0


def check_channel_layer() -> Check:
    """A message sent to a private channel of the configured layer comes back within
    CHANNEL_LAYER_TIMEOUT seconds (Redis: a real round trip; in memory: this process's)."""
    import asyncio
    import uuid

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return Check(False, "not_configured", "CHANNEL_LAYERS has no default layer")

    async def round_trip() -> bool:
        channel = await layer.new_channel("readiness.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "readiness.echo", "token": token})
        message = await layer.receive(channel)
        return bool(message.get("token") == token)

    async def bounded() -> bool:
        return await asyncio.wait_for(round_trip(), CHANNEL_LAYER_TIMEOUT)

    try:
        echoed = async_to_sync(bounded)()
    except Exception as exc:  # any layer's failure (connection, timeout, full): not ready
        log.warning("readiness: channel layer unreachable: %r", exc)
        return Check(False, "unreachable", repr(exc)[:300])
    if not echoed:
        return Check(False, "unreachable", "the message sent did not come back")
    return Check(True, "ok", type(layer).__name__)


def check_executor() -> Check:
    """Every model in OMTX_READINESS_MODELS can be dispatched here; models
    outside the list may be unavailable (the API refuses their batches with 503)."""
    rows = {row["model"]: row for row in executor_configuration()}
    unknown = [name for name in settings.OMTX_READINESS_MODELS if name not in rows]
    blocked = [
        f"{name}: {rows[name]['problem']}"
        for name in settings.OMTX_READINESS_MODELS
        if name in rows and rows[name]["problem"]
    ]
    problems = [f"{name}: no such model" for name in unknown] + blocked
    if problems:
        return Check(False, "misconfigured", "; ".join(problems))
    others = [f"{name}: {row['problem']}" for name, row in rows.items() if row["problem"]]
    return Check(True, "ok", "; ".join(others) or "every model can run")


CHECKS = {
    "database": check_database,
    "migrations": check_migrations,
    "cache": check_cache,
    "channel_layer": check_channel_layer,
    "executor": check_executor,
}


def readiness() -> tuple[bool, dict[str, Check]]:
    """Every check, in order; the migration check needs the database, so it is
    skipped (and failed) when the database is unreachable."""
    results: dict[str, Check] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and not results["database"].ok:
            results[name] = Check(False, "unknown", "database unreachable")
            continue
        results[name] = check()
    return all(result.ok for result in results.values()), results

"""The staff dashboard socket, `/ws/v3/monitoring/` (docs/live-status.md).

Pushes `{"type": "dashboard", "at", "dashboard"}` (the document of GET
/api/v3/monitoring/dashboard) on connect and every OMTX_LIVE_DASHBOARD_SECONDS. The document
costs queries and a system reading, so one process computes it at most once per interval
however many staff watch: every socket of the process shares `_Latest`. The watcher's
credentials and permission are checked again every OMTX_LIVE_REAUTH_SECONDS.
"""

import asyncio
import time
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from accounts.permissions import sees_monitoring
from batches.live import protocol
from batches.live.consumer import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, LiveSocket, chosen_subprotocol
from monitoring import dashboard


class _Latest:
    """The process's last dashboard message (encoded once) and when it was computed."""

    text = ""
    computed_at = float("-inf")
    computations = 0
    lock: asyncio.Lock | None = None
    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def text_within(cls, seconds: float) -> str:
        """The message, recomputed when older than `seconds`; concurrent askers share one
        computation."""
        loop = asyncio.get_running_loop()
        if cls.lock is None or cls.loop is not loop:
            cls.lock, cls.loop = asyncio.Lock(), loop
        async with cls.lock:
            if time.monotonic() - cls.computed_at >= seconds:
                cls.text = protocol.encode(await _dashboard_message())
                cls.computed_at = time.monotonic()
                cls.computations += 1
        return cls.text


@database_sync_to_async
def _dashboard_message() -> dict[str, Any]:
    now = timezone.now()
    return {"type": "dashboard", "at": now.isoformat(), "dashboard": dashboard.dashboard(now=now)}


@database_sync_to_async
def _may_watch(user: Any) -> bool:
    return sees_monitoring(user)


class MonitoringConsumer(LiveSocket):
    async def connect(self) -> None:
        if not self.authenticated():
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        if not await _may_watch(self.scope["user"]):
            await self.refuse(CLOSE_FORBIDDEN)
            return
        await self.accept(chosen_subprotocol(self.scope))
        self.start(self._push())
        self.start(self.reauthorize_every(settings.OMTX_LIVE_REAUTH_SECONDS))

    async def still_allowed(self) -> bool:
        if not await self.still_authenticated():
            return False
        if not await _may_watch(self.scope["user"]):
            await self.shut(CLOSE_FORBIDDEN)
            return False
        return True

    async def disconnect(self, code: int) -> None:
        await self.stop_tasks()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = await self.client_message(text_data)
        if message is None:
            return
        if message["type"] == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_error("unknown_type", 'Known types: "ping".')

    async def _push(self) -> None:
        interval = settings.OMTX_LIVE_DASHBOARD_SECONDS
        while True:
            await self.send(text_data=await _Latest.text_within(interval))
            await asyncio.sleep(interval)

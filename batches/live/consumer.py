"""The batch socket, `/ws/v3/batches/<id>/` (docs/live-status.md).

Thin, as Channels' own examples are: check who asks (the batch selectors' visibility), join
the batch's group, send a snapshot, relay the broadcaster's deltas, answer `snapshot` and
`ping`. Requested snapshots are throttled (one per OMTX_LIVE_SNAPSHOT_SECONDS, requests in
between merged), and the socket's credentials are checked again before each and every
OMTX_LIVE_REAUTH_SECONDS. Every database read goes through `database_sync_to_async`. The consumer keeps the
version it last sent and drops a relayed delta that is not newer: with the in-memory layer
its own version check (`_poll`) and the web process's broadcasts can both report one change.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from django.conf import settings

from batches.live import protocol
from batches.live.relay import relay
from batches.selectors import batch_get, batch_uuid
from omtx_hub.errors import NotFound
from omtx_hub.ws_auth import current_user

SUBPROTOCOL = "omtx.v1"
# Close codes: no valid credentials; not allowed (staff sockets); no such batch, or not yours.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def chosen_subprotocol(scope: dict[str, Any]) -> str | None:
    """`omtx.v1` when offered; never a `bearer.` one, which would echo the token back."""
    return SUBPROTOCOL if SUBPROTOCOL in scope.get("subprotocols", []) else None


class LiveSocket(AsyncWebsocketConsumer):
    """What both sockets share: refusal with a code the client can read, JSON replies, the
    re-check of credentials, background tasks stopped on disconnect."""

    tasks: "list[asyncio.Task[None]] | None" = None

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        if self.tasks is None:
            self.tasks = []
        self.tasks.append(asyncio.create_task(work))

    async def stop_tasks(self) -> None:
        tasks, self.tasks = self.tasks or [], None
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def shut(self, code: int) -> None:
        """Close an accepted socket, its background work stopped first."""
        await self.stop_tasks()
        await self.close(code)

    async def still_authenticated(self) -> bool:
        """The credentials that opened the socket still hold (the scope gets the user as it is
        now); if not, the socket is closed with 4401."""
        user = await current_user(self.scope)
        if user is None:
            await self.shut(CLOSE_UNAUTHENTICATED)
            return False
        self.scope["user"] = user
        return True

    async def still_allowed(self) -> bool:
        """Authenticated and allowed what the socket shows; closes the socket when not."""
        raise NotImplementedError

    async def reauthorize_every(self, seconds: float) -> None:
        while await self._sleep_then_allowed(seconds):
            pass

    async def _sleep_then_allowed(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)
        return await self.still_allowed()

    async def refuse(self, code: int) -> None:
        # Accepted first, then closed: a close before the accept reaches a browser as an HTTP
        # 403 and close code 1006, which a page cannot tell from a network failure (and
        # would retry forever). No message is sent before the close.
        await self.accept(chosen_subprotocol(self.scope))
        await self.close(code)

    def authenticated(self) -> bool:
        user = self.scope.get("user")
        return not self.scope.get("auth_refusal") and user is not None and user.is_authenticated

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(message))

    async def send_error(self, code: str, detail: str) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail})

    async def client_message(self, text_data: str | None) -> dict[str, Any] | None:
        """The client's JSON object, or None after answering an error."""
        try:
            message = json.loads(text_data) if text_data is not None else None
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.send_error("invalid_message", 'Send a JSON object with a "type".')
            return None
        return message


class BatchConsumer(LiveSocket):
    version = 0
    batch_id = ""
    watching = False
    # Broadcasts that arrive while connecting (None once the snapshot is sent).
    held: list[dict[str, Any]] | None = None
    poller: "asyncio.Task[None] | None" = None
    snapshot_sent_at = float("-inf")
    snapshot_pending = False

    async def connect(self) -> None:
        raw = str(self.scope["url_route"]["kwargs"]["batch_id"])
        # The canonical text of the id: the relay and the broadcaster key batches by str(pk),
        # and the API accepts an id in either case.
        pk = batch_uuid(raw)
        self.batch_id = str(pk) if pk is not None else raw
        if not self.authenticated():
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        # Joined before the snapshot is read, so no change committed in between is lost:
        # broadcasts are held until the snapshot is sent, then those it does not cover go.
        self.held = []
        await relay().join(self.batch_id, self)
        self.watching = True
        snapshot = await self._snapshot()
        if snapshot is None:
            await self.refuse(CLOSE_NOT_FOUND)
            return
        await self.accept(chosen_subprotocol(self.scope))
        await self._send_snapshot(snapshot)
        held, self.held = self.held, None
        for event in held:
            await self.relay(event)
        if isinstance(self.channel_layer, InMemoryChannelLayer):
            self.poller = asyncio.create_task(self._poll())
        self.start(self.reauthorize_every(settings.OMTX_LIVE_REAUTH_SECONDS))

    async def disconnect(self, code: int) -> None:
        await self.stop_tasks()
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
            self.poller = None
        if self.watching:
            self.watching = False
            await relay().leave(self.batch_id, self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = await self.client_message(text_data)
        if message is None:
            return
        if message["type"] == "snapshot":
            await self._snapshot_requested()
        elif message["type"] == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_error("unknown_type", 'Known types: "snapshot", "ping".')

    async def relay(self, event: dict[str, Any]) -> None:
        """A broadcast from the process's relay (batches/live/relay.py): a delta as encoded
        once by its sender (one string for every socket), dropped when this socket already
        sent its version; or the batch's deletion."""
        if self.held is not None:
            self.held.append(event)
        elif event["type"] == "batch.gone":
            await self._gone()
        elif event["version"] > self.version:
            self.version = event["version"]
            await self.send(text_data=event["text"])

    async def still_allowed(self) -> bool:
        if not await self.still_authenticated():
            return False
        if not await self._visible():
            await self.shut(CLOSE_NOT_FOUND)
            return False
        return True

    async def _snapshot_requested(self) -> None:
        """Now, when the last snapshot is old enough; else once at the end of the interval,
        for every request until then."""
        if self.snapshot_pending:
            return
        wait = self.snapshot_sent_at + settings.OMTX_LIVE_SNAPSHOT_SECONDS - time.monotonic()
        if wait <= 0:
            await self._resend_snapshot()
        else:
            self.snapshot_pending = True
            self.start(self._resend_snapshot_after(wait))

    async def _resend_snapshot_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.snapshot_pending = False
        await self._resend_snapshot()

    async def _resend_snapshot(self) -> None:
        if not await self.still_authenticated():
            return
        snapshot = await self._snapshot()
        if snapshot is None:
            await self._gone()
        else:
            await self._send_snapshot(snapshot)

    async def _gone(self) -> None:
        await self.send_json(protocol.gone(self.batch_id))
        await self.close(CLOSE_NOT_FOUND)

    async def _send_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.version = snapshot["version"]
        self.snapshot_sent_at = time.monotonic()
        await self.send_json(snapshot)

    @database_sync_to_async
    def _snapshot(self) -> dict[str, Any] | None:
        try:
            batch = batch_get(user=self.scope["user"], batch_id=self.batch_id)
        except NotFound:
            return None
        return protocol.snapshot(batch)

    @database_sync_to_async
    def _visible(self) -> bool:
        try:
            batch_get(user=self.scope["user"], batch_id=self.batch_id)
        except NotFound:
            return False
        return True

    @database_sync_to_async
    def _delta_after(self, version: int) -> dict[str, Any] | None:
        """A delta from `version` when the batch moved past it ({} when not; None: gone). It
        names no jobs (this check does not know which changed), so it says it is truncated."""
        batch = protocol.status_row(self.batch_id)
        if batch is None:
            return None
        if batch.version <= version:
            return {}
        return protocol.delta(batch, since=version, job_ids=None)

    async def _poll(self) -> None:
        """Embedded mode: the dispatcher runs in another process, which an in-memory layer
        cannot reach, so the socket checks its batch's version itself."""
        while True:
            await asyncio.sleep(settings.OMTX_LIVE_POLL_SECONDS)
            delta = await self._delta_after(self.version)
            if delta is None:
                await self._gone()
                return
            if delta and delta["version"] > self.version:
                self.version = delta["version"]
                await self.send_json(delta)

"""One channel-layer membership per process and batch, fanned out to the process's sockets.

Were every socket a member of its batch's group, one delta to 500 sockets would be 500
messages through Redis, all in the one list channels-redis keeps per process, whose capacity
would drop most of them (measured: 41 of 79 deltas reached each of 500 clients, p50 2.9 s).
Instead the process joins each watched batch's group once, with a channel of its own, and
hands each delta to its sockets of that batch in memory: one Redis message per process per
delta, however many watch.

The layer drops a group member `group_expiry` seconds after it joined (channels-redis), so
the relay joins its groups again every quarter of that (at most every RENEW_MAX_SECONDS): a
socket open for days keeps its deltas, and a Redis that restarted regains the memberships.

Per event loop (daphne runs one; tests start several), as channel-layer connections are.
"""

import asyncio
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

from batches.live import protocol, watchers

log = logging.getLogger(__name__)
# After a failed receive (the layer down), wait this long before the next.
RETRY_SECONDS = 1.0
# The longest wait between two renewals of the relay's group memberships.
RENEW_MAX_SECONDS = 600.0


class Socket(Protocol):
    async def relay(self, event: dict[str, Any]) -> None: ...


class Relay:
    def __init__(self) -> None:
        self.sockets: dict[str, set[Socket]] = {}
        self.channel = ""
        self.task: asyncio.Task[None] | None = None
        self.renewer: asyncio.Task[None] | None = None
        self.layer: Any = None

    async def join(self, batch_id: str, socket: Socket) -> None:
        """Relay `batch_id`'s deltas to `socket` from now on."""
        await self._start()
        self.sockets.setdefault(batch_id, set()).add(socket)
        watchers.watch(batch_id)
        # Every join renews the membership (idempotent): a Redis that restarted and lost it
        # is rejoined by the next socket that connects.
        await self.layer.group_add(protocol.group_name(batch_id), self.channel)

    async def leave(self, batch_id: str, socket: Socket) -> None:
        mine = self.sockets.get(batch_id)
        if mine is None or socket not in mine:
            return
        mine.discard(socket)
        watchers.unwatch(batch_id)
        if not mine:
            del self.sockets[batch_id]
            await self.layer.group_discard(protocol.group_name(batch_id), self.channel)

    async def _start(self) -> None:
        layer = get_channel_layer()
        if self.task is not None and not self.task.done() and layer is self.layer:
            return
        for task in (self.task, self.renewer):
            if task is not None:
                task.cancel()  # the settings named another layer (tests)
        self.layer = layer
        # The default prefix: channels-redis reads every process-local channel from one list
        # named by it, and a channel of another prefix would never be read.
        self.channel = await layer.new_channel()
        self.task = asyncio.create_task(self._receive())
        self.renewer = asyncio.create_task(self._renew())

    def renew_seconds(self) -> float:
        expiry = getattr(self.layer, "group_expiry", 86400)
        return float(min(expiry / 4, RENEW_MAX_SECONDS))

    async def _renew(self) -> None:
        """Join every watched batch's group again, before the layer forgets the membership."""
        while True:
            await asyncio.sleep(self.renew_seconds())
            for batch_id in list(self.sockets):
                try:
                    await self.layer.group_add(protocol.group_name(batch_id), self.channel)
                except Exception as exc:  # the layer down: the next renewal tries again
                    log.warning("live: renewing a group membership failed: %r", exc)

    async def _receive(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the layer down: logged, retried; the sockets stay open
                log.warning("live: relay receive failed: %r", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for socket in list(self.sockets.get(str(event.get("batch")), ())):
                try:
                    await socket.relay(event)
                except Exception as exc:  # one socket closing mid-send must not stop the others'
                    log.warning("live: relaying to a socket failed: %r", exc)


_relays: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Relay]" = weakref.WeakKeyDictionary()


def relay() -> Relay:
    """This event loop's relay."""
    loop = asyncio.get_running_loop()
    if loop not in _relays:
        _relays[loop] = Relay()
    return _relays[loop]

"""A bound on what daphne holds for one websocket (docs/live-status.md).

daphne hands every `websocket.send` to Twisted, which buffers what the client has not read
without limit: a client that stops reading makes the process grow by every delta it is
sent. Installed by omtx_hub/asgi.py, this wraps daphne's WebSocketProtocol.handle_reply: a
send to a connection whose unsent bytes already exceed OMTX_LIVE_MAX_BUFFER_BYTES drops the
connection (and its buffer) instead. The client reconnects and gets a snapshot.
"""

import logging
from typing import Any

from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings

log = logging.getLogger(__name__)
_daphne_handle_reply = WebSocketProtocol.handle_reply


def unsent_bytes(protocol: Any) -> int:
    """What Twisted's transport holds for the client: its buffer and the writes not yet joined to it."""
    transport = protocol.transport
    return len(getattr(transport, "dataBuffer", b"")) + getattr(transport, "_tempDataLen", 0)


def handle_reply(self: Any, message: dict[str, Any]) -> None:
    if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN:
        unsent = unsent_bytes(self)
        if unsent > settings.OMTX_LIVE_MAX_BUFFER_BYTES:
            log.warning("live: dropping a websocket that does not read (%d bytes unsent)", unsent)
            # Aborted, not closed: a close frame would wait behind the bytes the client does
            # not read, and the buffer would stay.
            self.dropConnection(abort=True)
            return
    _daphne_handle_reply(self, message)


def install() -> None:
    WebSocketProtocol.handle_reply = handle_reply

"""Websocket test helpers: a communicator on the real ASGI application, authenticated by
token header, subprotocol or session cookie."""

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db.backends.signals import connection_created
from django.test import Client

from accounts.services import token_create
from omtx_hub.asgi import application


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async scenario from a sync test: sync_to_async calls inside it run in the
    test's thread, on its database connection."""
    return async_to_sync(scenario)()


def token_for(user: User) -> str:
    _, raw = token_create(user=user, name="live test")
    return raw


def bearer(raw: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {raw}".encode())]


def session_headers(user: User) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    return [(b"cookie", f"sessionid={cookie}".encode()), (b"origin", b"http://testserver")]


def socket(
    path: str, *, headers: list[tuple[bytes, bytes]] | None = None, subprotocols: list[str] | None = None
) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers or [], subprotocols=subprotocols)


def batch_path(batch_id: Any) -> str:
    return f"/ws/v3/batches/{batch_id}/"


async def refused_with(communicator: WebsocketCommunicator) -> int | None:
    """The close code of a socket refused at connect (accepted, then closed at once), None
    when it stayed open."""
    connected, _ = await communicator.connect()
    assert connected, "refusals accept first so the client can read the code"
    message = await communicator.receive_output(timeout=2)
    await communicator.wait()
    return message.get("code") if message["type"] == "websocket.close" else None


def _read_uncommitted(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite" and threading.current_thread() is not threading.main_thread():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 1")


@contextmanager
def sqlite_readers_do_not_lock() -> Iterator[None]:
    """The SQLite test database is in memory with a shared cache, where a reader's table lock
    fails a concurrent writer at once ("database table is locked"; a file database waits).
    The broadcaster's thread reads while the engine writes, so its connection reads without
    those locks here. PostgreSQL is unaffected."""
    connection_created.connect(_read_uncommitted)
    try:
        yield
    finally:
        connection_created.disconnect(_read_uncommitted)

"""Adversarial review (issues 10/11): what an open batch socket keeps allowing.

Authorization is decided once, at connect: a token revoked (or a user deactivated) while the
socket is open goes on reading the batch; and a socket may ask for snapshots without limit,
each a ranked results read and a failures read, past every HTTP rate limit."""

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from batches.models import Batch
from batches.tests.live_helpers import batch_path, bearer, run, socket, sqlite_readers_do_not_lock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _concurrent_sqlite_reads() -> Iterator[None]:
    with sqlite_readers_do_not_lock():
        yield


async def _open(ws: Any) -> dict[str, Any]:
    connected, _ = await ws.connect(timeout=5)
    assert connected
    message: dict[str, Any] = await ws.receive_json_from(timeout=5)
    assert message["type"] == "snapshot"
    return message


def test_a_token_revoked_while_its_socket_is_open_reads_nothing_more(
    owner: User, make_batch: Callable[..., Batch]
) -> None:
    batch = make_batch()
    token, raw = token_create(user=owner, name="leaked")

    async def scenario() -> list[dict[str, Any]]:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await _open(ws)
        await sync_to_async(token_revoke)(token=await sync_to_async(ApiToken.objects.get)(pk=token.pk))
        await ws.send_json_to({"type": "snapshot"})
        output = await ws.receive_output(timeout=5)
        if output["type"] == "websocket.send":
            await ws.disconnect()
        return [output]

    (answer,) = run(scenario)
    assert not (answer["type"] == "websocket.send" and '"type":"snapshot"' in answer.get("text", "")), (
        "a revoked token's socket was still sent the batch's snapshot"
    )


def test_a_deactivated_user_s_socket_reads_nothing_more(owner: User, make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    _, raw = token_create(user=owner, name="live")

    async def scenario() -> dict[str, Any]:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await _open(ws)
        await sync_to_async(User.objects.filter(pk=owner.pk).update)(is_active=False)
        await ws.send_json_to({"type": "snapshot"})
        output: dict[str, Any] = await ws.receive_output(timeout=5)
        if output["type"] == "websocket.send":
            await ws.disconnect()
        return output

    answer = run(scenario)
    assert not (answer["type"] == "websocket.send" and '"type":"snapshot"' in answer.get("text", "")), (
        "a deactivated user's socket was still sent the batch's snapshot"
    )


SNAPSHOT_ASKS = 30


def test_snapshot_requests_are_throttled(owner: User, make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    _, raw = token_create(user=owner, name="live")

    async def scenario() -> int:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await _open(ws)
        for _ in range(SNAPSHOT_ASKS):
            await ws.send_json_to({"type": "snapshot"})
        await ws.send_json_to({"type": "ping"})
        snapshots = 0
        while True:
            message = await ws.receive_json_from(timeout=10)
            if message["type"] == "pong":
                break
            snapshots += message["type"] == "snapshot"
        await ws.disconnect()
        return snapshots

    served = run(scenario)
    # A client that sees a gap needs one snapshot; thirty back to back are a flood of
    # ranked-results queries the HTTP rate limits never see.
    assert served <= 3, f"{served} of {SNAPSHOT_ASKS} back-to-back snapshot requests each read the database"


def test_a_socket_opened_with_an_upper_case_batch_id_gets_deltas(
    owner: User, make_batch: Callable[..., Batch], settings: Any
) -> None:
    """The REST API and the snapshot accept the id in any case; the relay and the watchers
    key sockets by the URL's text and broadcasts by str(pk), so such a socket hears nothing."""
    from batches.live.broadcaster import broadcaster
    from batches.services.lifecycle import batch_cancel

    settings.OMTX_LIVE_POLL_SECONDS = 3600  # deltas only from the broadcaster
    batch = make_batch()
    _, raw = token_create(user=owner, name="live")

    async def scenario() -> dict[str, Any] | None:
        ws = socket(batch_path(str(batch.pk).upper()), headers=bearer(raw))
        await _open(ws)
        await sync_to_async(batch_cancel)(batch=batch)
        try:
            message: dict[str, Any] = await ws.receive_json_from(timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            return None
        await ws.disconnect()
        return message

    delta = run(scenario)
    broadcaster.drain()
    assert delta is not None and delta["type"] == "delta", "the cancel never reached the socket"

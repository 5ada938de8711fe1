"""The batch socket: who may watch, snapshot then deltas after real changes, gaps, deletion."""

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.db.models import F
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_revoke
from batches.live.broadcaster import broadcaster
from batches.models import Batch
from batches.services.lifecycle import batch_cancel, batch_delete
from batches.tests.live_helpers import (
    batch_path,
    bearer,
    refused_with,
    run,
    session_headers,
    socket,
    sqlite_readers_do_not_lock,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _concurrent_sqlite_reads() -> Iterator[None]:
    with sqlite_readers_do_not_lock():
        yield


IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def broadcasts_only(settings: Any) -> None:
    """Deltas can only come from the broadcaster: the sockets' own version check sleeps."""
    settings.OMTX_LIVE_POLL_SECONDS = 3600


@pytest.fixture
def polling_only(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedded mode with the writer in another process: nothing reaches the broadcaster."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    settings.OMTX_LIVE_POLL_SECONDS = 0.05
    monkeypatch.setattr(broadcaster, "notify", lambda **kwargs: None)


async def open_snapshot(ws: WebsocketCommunicator) -> dict[str, Any]:
    connected, _ = await ws.connect(timeout=5)
    assert connected
    message: dict[str, Any] = await ws.receive_json_from(timeout=5)
    assert message["type"] == "snapshot"
    return message


async def deltas_until_terminal(ws: WebsocketCommunicator, version: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every delta up to the terminal one, checked against the client rule; and the jobs seen."""
    deltas: list[dict[str, Any]] = []
    jobs: dict[str, Any] = {}
    while True:
        delta = await ws.receive_json_from(timeout=10)
        assert delta["type"] == "delta"
        assert delta["since"] <= version < delta["version"], "a delta the client could not apply"
        version = delta["version"]
        deltas.append(delta)
        jobs.update({job["id"]: job for job in delta["jobs"]})
        if delta["status"]["is_terminal"]:
            return deltas, jobs


def test_owner_gets_a_snapshot_then_the_engine_s_completions(
    owner: User, make_batch: Callable[..., Batch], run_all: Callable[[], None], broadcasts_only: None
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw), subprotocols=["omtx.v1"])
        connected, subprotocol = await ws.connect(timeout=5)
        assert connected and subprotocol == "omtx.v1"
        snapshot = await ws.receive_json_from(timeout=5)
        assert snapshot["type"] == "snapshot" and snapshot["batch"] == str(batch.pk)
        assert snapshot["version"] == batch.version == snapshot["status"]["version"]
        assert snapshot["status"]["progress"]["total"] == 4
        assert snapshot["results"] == [] and snapshot["failures"] == []
        await sync_to_async(run_all)()
        deltas, jobs = await deltas_until_terminal(ws, snapshot["version"])
        assert deltas[-1]["status"]["progress"]["succeeded"] == 4
        # Completions name their jobs: the last deltas carry the finished rows.
        assert sorted(job["status"] for job in jobs.values()) == ["succeeded"] * 4
        assert all(job["metrics"] and job["job_id"] == job["id"] for job in jobs.values())
        await ws.disconnect()

    run(scenario)


def test_embedded_mode_sockets_notice_another_process_s_changes(
    owner: User, make_batch: Callable[..., Batch], run_all: Callable[[], None], polling_only: None
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        snapshot = await open_snapshot(ws)
        await sync_to_async(run_all)()
        deltas, _ = await deltas_until_terminal(ws, snapshot["version"])
        # The version check does not know which jobs moved: the client refetches.
        assert all(delta["jobs_truncated"] and delta["jobs"] == [] for delta in deltas)
        assert deltas[-1]["status"]["progress"]["succeeded"] == 4
        await ws.disconnect()

    run(scenario)


def test_session_cookie_and_subprotocol_token_both_open_the_socket(
    owner: User, make_batch: Callable[..., Batch]
) -> None:
    batch = make_batch()
    raw = token_for(owner)
    cookie = session_headers(owner)

    async def scenario() -> None:
        by_session = socket(batch_path(batch.pk), headers=cookie)
        assert (await open_snapshot(by_session))["batch"] == str(batch.pk)
        by_subprotocol = socket(batch_path(batch.pk), subprotocols=[f"bearer.{raw}", "omtx.v1"])
        connected, chosen = await by_subprotocol.connect(timeout=5)
        # The token is never echoed back as the chosen subprotocol.
        assert connected and chosen == "omtx.v1"
        assert (await by_subprotocol.receive_json_from(timeout=5))["type"] == "snapshot"
        await by_session.disconnect()
        await by_subprotocol.disconnect()

    run(scenario)


def test_staff_who_see_every_batch_may_watch_any(
    staff: User, make_batch: Callable[..., Batch], broadcasts_only: None
) -> None:
    batch = make_batch()
    raw = token_for(staff)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        assert (await open_snapshot(ws))["batch"] == str(batch.pk)
        await ws.disconnect()

    run(scenario)


def refusal(path: str, **kwargs: Any) -> int | None:
    async def scenario() -> int | None:
        return await refused_with(socket(path, **kwargs))

    code: int | None = run(scenario)
    return code


def test_outsiders_and_missing_batches_look_the_same(
    outsider: User, make_batch: Callable[..., Batch], broadcasts_only: None
) -> None:
    batch = make_batch()
    raw = token_for(outsider)
    assert refusal(batch_path(batch.pk), headers=bearer(raw)) == 4404
    assert refusal(batch_path("6f1c2a8e-0000-4000-8000-000000000000"), headers=bearer(raw)) == 4404
    assert refusal(batch_path("not-a-uuid"), headers=bearer(raw)) == 4404


def test_staff_without_the_view_permission_are_outsiders(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    clerk = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    assert refusal(batch_path(batch.pk), headers=bearer(token_for(clerk))) == 4404
    clerk.user_permissions.add(Permission.objects.get(codename="view_batch", content_type__app_label="batches"))
    clerk = User.objects.get(pk=clerk.pk)
    assert refusal(batch_path(batch.pk), headers=bearer(token_for(clerk))) is None


def test_anonymous_and_bad_credentials_are_refused(owner: User, make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    path = batch_path(batch.pk)
    assert refusal(path) == 4401
    assert refusal(path, headers=bearer("not-a-token")) == 4401
    assert refusal(path, subprotocols=["bearer.not-a-token", "omtx.v1"]) == 4401
    revoked, raw_revoked = _token(owner)
    token_revoke(token=revoked)
    assert refusal(path, headers=bearer(raw_revoked)) == 4401
    expired, raw_expired = _token(owner)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert refusal(path, headers=bearer(raw_expired)) == 4401
    # A bad token is not rescued by a good session: what is presented is what is checked.
    assert refusal(path, headers=[*session_headers(owner), *bearer("not-a-token")]) == 4401


def test_a_token_in_the_query_string_is_refused_even_when_valid(
    owner: User, make_batch: Callable[..., Batch], caplog: pytest.LogCaptureFixture
) -> None:
    batch = make_batch()
    raw = token_for(owner)
    caplog.clear()  # the token's creation logs its prefix; what follows must not
    assert refusal(f"{batch_path(batch.pk)}?token={raw}") == 4401
    assert refusal(f"{batch_path(batch.pk)}?access_token={raw}", headers=bearer(raw)) == 4401
    assert "query string" in caplog.text
    assert raw not in caplog.text and raw[:8] not in caplog.text


def _token(user: User) -> tuple[ApiToken, str]:
    from accounts.services import token_create

    return token_create(user=user, name="live")


def test_reconnecting_or_asking_gets_a_fresh_snapshot(
    owner: User, make_batch: Callable[..., Batch], run_all: Callable[[], None], broadcasts_only: None
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        first = socket(batch_path(batch.pk), headers=bearer(raw))
        old = await open_snapshot(first)
        await first.disconnect()
        await sync_to_async(run_all)()
        again = socket(batch_path(batch.pk), headers=bearer(raw))
        fresh = await open_snapshot(again)
        assert fresh["version"] > old["version"]
        assert fresh["status"]["is_terminal"] and len(fresh["results"]) == 4
        assert [row["rank"] for row in fresh["results"]] == [1, 2, 3, 4]
        await again.send_json_to({"type": "snapshot"})
        asked = await again.receive_json_from(timeout=5)
        assert asked["type"] == "snapshot" and asked["version"] == fresh["version"]
        await again.disconnect()

    run(scenario)


def test_results_and_failures_ride_in_the_snapshot(owner: User, make_batch: Callable[..., Batch]) -> None:
    from batches.engine.types import JobOutcome
    from batches.services.claims import claim_jobs
    from batches.services.ingest import Delivery, deliveries_apply

    batch = make_batch()
    jobs = sorted(claim_jobs(plan=[(batch.pk, 4)], token="t", lease_seconds=60), key=lambda job: job.index)
    outcomes = [
        JobOutcome(job_id=str(jobs[0].pk), ok=False, failure_reason="invalid_input", message="no conformer"),
        *(JobOutcome(job_id=str(job.pk), ok=True, metrics={"qed": 0.1 * job.index}) for job in jobs[1:]),
    ]
    deliveries_apply(deliveries=[Delivery(batch.pk, "t", outcome) for outcome in outcomes])
    raw = token_for(owner)

    async def scenario() -> dict[str, Any]:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        snapshot = await open_snapshot(ws)
        await ws.disconnect()
        return snapshot

    snapshot = run(scenario)
    assert [row["index"] for row in snapshot["results"]] == [3, 2, 1]  # QED: higher is better
    assert [(row["index"], row["failure_reason"], row["failure_message"]) for row in snapshot["failures"]] == [
        (0, "invalid_input", "no conformer")
    ]


def test_client_messages_ping_snapshot_and_errors(owner: User, make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await open_snapshot(ws)
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
        await ws.send_to(text_data="not json")
        assert (await ws.receive_json_from(timeout=5))["code"] == "invalid_message"
        await ws.send_json_to({"type": "subscribe"})
        assert (await ws.receive_json_from(timeout=5))["code"] == "unknown_type"
        # Still open after the errors.
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
        await ws.disconnect()

    run(scenario)


def test_a_deleted_batch_says_gone_and_closes(
    owner: User, make_batch: Callable[..., Batch], broadcasts_only: None
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await open_snapshot(ws)
        await sync_to_async(batch_cancel)(batch=batch)
        cancelled = await ws.receive_json_from(timeout=5)
        assert cancelled["type"] == "delta" and cancelled["status"]["status"] == "cancelled"
        # Cancel names no jobs: the client is told to refetch what it shows.
        assert cancelled["jobs_truncated"] is True
        await sync_to_async(lambda: batch_delete(batch=Batch.objects.get(pk=batch.pk)))()
        assert await ws.receive_json_from(timeout=5) == {"type": "gone", "batch": str(batch.pk)}
        closed = await ws.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4404}

    run(scenario)


def test_deltas_of_one_process_chain_since_to_version(
    owner: User, make_batch: Callable[..., Batch], broadcasts_only: None
) -> None:
    """Each delta's `since` is the version of the sender's previous one, so a client that
    missed one of them sees `since` above its version and asks for a snapshot."""
    batch = make_batch()
    raw = token_for(owner)
    from batches.services.lifecycle import batch_set_priority

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        snapshot = await open_snapshot(ws)
        versions = [snapshot["version"]]
        for priority in (1, 2, 3):
            if priority > 1:  # another process's changes (its deltas are its own) move it too
                await sync_to_async(Batch.objects.filter(pk=batch.pk).update)(version=F("version") + 5)
            await sync_to_async(batch_set_priority)(batch=batch, priority=priority)
            assert await sync_to_async(broadcaster.drain)()
            delta = await ws.receive_json_from(timeout=5)
            assert delta["since"] == versions[-1] and delta["version"] > delta["since"]
            versions.append(delta["version"])
        await ws.disconnect()

    run(scenario)


def test_a_burst_of_completions_becomes_a_few_deltas(
    owner: User,
    make_batch: Callable[..., Batch],
    settings: Any,
    shared_data: Any,
    broadcasts_only: None,
) -> None:
    """1,000 job completions committed in 200 transactions: the socket receives a delta per
    coalescing interval, not one per commit, and the last one is complete."""
    import time

    from batches.engine.types import JobOutcome
    from batches.services.claims import claim_jobs
    from batches.services.ingest import Delivery, deliveries_apply

    settings.OMTX_INLINE_VALIDATION_LIGANDS = 5000
    lines = (shared_data / "ligands" / "chembl2321810.smi").read_text().splitlines()[:1000]
    batch = make_batch([{"name": line.split()[1], "smiles": line.split()[0]} for line in lines])
    raw = token_for(owner)

    def burst() -> tuple[int, float]:
        jobs = claim_jobs(plan=[(batch.pk, batch.n_total)], token="burst", lease_seconds=600)
        started = time.monotonic()
        for start in range(0, len(jobs), 5):
            chunk = jobs[start : start + 5]
            outcomes = [JobOutcome(job_id=str(job.pk), ok=True, metrics={"qed": 0.5}) for job in chunk]
            deliveries_apply(deliveries=[Delivery(batch.pk, "burst", outcome) for outcome in outcomes])
        return len(jobs), time.monotonic() - started

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        snapshot = await open_snapshot(ws)
        before = broadcaster.stats["messages"]
        completed, seconds = await sync_to_async(burst)()
        assert await sync_to_async(broadcaster.drain)()
        deltas, _ = await deltas_until_terminal(ws, snapshot["version"])
        assert deltas[-1]["status"]["progress"]["succeeded"] == completed == batch.n_total
        commits = completed // 5 + 1  # and the claim
        sent = broadcaster.stats["messages"] - before
        # One delta at once, then at most one per interval while the burst lasts, and the
        # flushes of the last intervals after it (a loaded machine delays the flusher's clock
        # against the burst's, so allow a few).
        interval = settings.OMTX_LIVE_COALESCE_MS / 1000
        assert len(deltas) <= sent <= 4 + seconds / interval
        assert sent < commits / 4, f"{sent} deltas for {commits} commits"
        await ws.disconnect()

    run(scenario)


def test_a_dead_channel_layer_never_reaches_the_writer(
    owner: User,
    make_batch: Callable[..., Batch],
    run_all: Callable[[], None],
    settings: Any,
) -> None:
    """Every send fails: the engine still drains the batch, the failures are counted."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    batch = make_batch()
    failures = broadcaster.stats["failures"]
    run_all()
    assert broadcaster.drain()
    assert Batch.objects.get(pk=batch.pk).status == "completed"
    assert broadcaster.stats["failures"] > failures


def test_a_change_reported_twice_reaches_the_client_once(
    owner: User, make_batch: Callable[..., Batch], run_all: Callable[[], None], settings: Any
) -> None:
    """In-memory layer: the broadcaster and the socket's own version check both report the
    engine's changes (this process writes); the socket sends each version once, in order."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    settings.OMTX_LIVE_POLL_SECONDS = 0.01
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        snapshot = await open_snapshot(ws)
        await sync_to_async(run_all)()
        await sync_to_async(broadcaster.drain)()
        deltas, _ = await deltas_until_terminal(ws, snapshot["version"])
        versions = [delta["version"] for delta in deltas]
        assert versions == sorted(set(versions))
        assert await ws.receive_nothing(timeout=0.5)
        await ws.disconnect()

    run(scenario)


def test_a_page_of_another_site_cannot_use_the_cookie(owner: User, make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    cookie = [header for header in session_headers(owner) if header[0] == b"cookie"]

    async def scenario() -> tuple[bool, Any]:
        ws = socket(batch_path(batch.pk), headers=[*cookie, (b"origin", b"https://evil.example")])
        result: tuple[bool, Any] = await ws.connect(timeout=5)
        return result

    connected, _ = run(scenario)
    assert not connected  # refused before the handshake completes (channels' origin check)


def test_a_socket_that_fails_a_send_does_not_stop_the_others(
    owner: User, make_batch: Callable[..., Batch], broadcasts_only: None
) -> None:
    from batches.live.relay import relay
    from batches.services.lifecycle import batch_set_priority

    batch = make_batch()
    raw = token_for(owner)

    class Broken:
        async def relay(self, event: dict[str, Any]) -> None:
            raise ConnectionResetError("gone mid-send")

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        snapshot = await open_snapshot(ws)
        broken = Broken()
        await relay().join(str(batch.pk), broken)
        for priority in (1, 2):
            await sync_to_async(batch_set_priority)(batch=batch, priority=priority)
            assert await sync_to_async(broadcaster.drain)()
            assert (await ws.receive_json_from(timeout=5))["version"] > snapshot["version"]
        await relay().leave(str(batch.pk), broken)
        await ws.disconnect()

    run(scenario)


def test_a_socket_opened_with_an_upper_case_batch_id_gets_deltas(
    owner: User, make_batch: Callable[..., Batch], broadcasts_only: None
) -> None:
    """The API accepts the id in either case; the relay keys sockets by its canonical text."""
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> dict[str, Any]:
        ws = socket(batch_path(str(batch.pk).upper()), headers=bearer(raw))
        await open_snapshot(ws)
        await sync_to_async(batch_cancel)(batch=batch)
        delta: dict[str, Any] = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return delta

    delta = run(scenario)
    broadcaster.drain()
    assert delta["type"] == "delta" and delta["status"]["is_terminal"]


@pytest.fixture
def reauth_often(settings: Any) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY  # a layer of this test's event loop
    settings.OMTX_LIVE_REAUTH_SECONDS = 0.2


async def close_code_after(ws: WebsocketCommunicator, change: Callable[[], Any]) -> int | None:
    """Open the socket, make `change` in the database, and return the code the socket is
    closed with (None: it stayed open and sent something instead)."""
    await open_snapshot(ws)
    await sync_to_async(change)()
    while (output := await ws.receive_output(timeout=5))["type"] == "websocket.send":
        if '"type":"snapshot"' in output.get("text", "") or '"type":"delta"' in output.get("text", ""):
            await ws.disconnect()
            return None
    code: int | None = output.get("code")
    return code


def test_a_token_revoked_while_its_socket_is_open_closes_it(
    owner: User, make_batch: Callable[..., Batch], reauth_often: None
) -> None:
    batch = make_batch()
    token, raw = _token(owner)

    async def scenario() -> int | None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        return await close_code_after(ws, lambda: token_revoke(token=ApiToken.objects.get(pk=token.pk)))

    assert run(scenario) == 4401


def test_a_revoked_token_s_snapshot_request_is_refused_before_the_periodic_check(
    owner: User, make_batch: Callable[..., Batch], settings: Any
) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY  # a layer of this test's event loop
    settings.OMTX_LIVE_REAUTH_SECONDS = 3600
    settings.OMTX_LIVE_SNAPSHOT_SECONDS = 0
    batch = make_batch()
    token, raw = _token(owner)

    async def scenario() -> dict[str, Any]:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await open_snapshot(ws)
        await sync_to_async(token_revoke)(token=await sync_to_async(ApiToken.objects.get)(pk=token.pk))
        await ws.send_json_to({"type": "snapshot"})
        output: dict[str, Any] = await ws.receive_output(timeout=5)
        return output

    assert run(scenario) == {"type": "websocket.close", "code": 4401}


def test_a_deactivated_user_s_socket_is_closed(
    owner: User, make_batch: Callable[..., Batch], reauth_often: None
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> int | None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        return await close_code_after(ws, lambda: User.objects.filter(pk=owner.pk).update(is_active=False))

    assert run(scenario) == 4401


def test_a_session_that_ended_closes_its_socket(
    owner: User, make_batch: Callable[..., Batch], reauth_often: None
) -> None:
    from django.contrib.sessions.models import Session

    batch = make_batch()
    cookie = session_headers(owner)

    async def scenario() -> int | None:
        ws = socket(batch_path(batch.pk), headers=cookie)
        return await close_code_after(ws, lambda: Session.objects.all().delete())

    assert run(scenario) == 4401


def test_staff_who_lose_the_view_permission_lose_the_socket(
    make_batch: Callable[..., Batch], reauth_often: None
) -> None:
    batch = make_batch()
    clerk = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    view = Permission.objects.get(codename="view_batch", content_type__app_label="batches")
    clerk.user_permissions.add(view)
    raw = token_for(clerk)

    async def scenario() -> int | None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        return await close_code_after(ws, lambda: clerk.user_permissions.remove(view))

    assert run(scenario) == 4404


def test_an_owner_s_socket_stays_open_across_the_checks(
    owner: User, make_batch: Callable[..., Batch], reauth_often: None, broadcasts_only: None
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> dict[str, Any]:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await open_snapshot(ws)
        await asyncio.sleep(1)  # several checks
        await ws.send_json_to({"type": "ping"})
        reply: dict[str, Any] = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return reply

    assert run(scenario) == {"type": "pong"}


SNAPSHOT_ASKS = 30


def test_snapshot_requests_are_throttled_and_merged(
    owner: User, make_batch: Callable[..., Batch], settings: Any
) -> None:
    """Thirty requests in a row, right after the connect's snapshot: none is served before the
    interval ends, and all of them together get one snapshot then."""
    settings.CHANNEL_LAYERS = IN_MEMORY  # a layer of this test's event loop
    settings.OMTX_LIVE_SNAPSHOT_SECONDS = 1.0
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> list[str]:
        ws = socket(batch_path(batch.pk), headers=bearer(raw))
        await open_snapshot(ws)
        for _ in range(SNAPSHOT_ASKS):
            await ws.send_json_to({"type": "snapshot"})
        await ws.send_json_to({"type": "ping"})
        seen = [(await ws.receive_json_from(timeout=5))["type"]]
        seen.append((await ws.receive_json_from(timeout=5))["type"])
        assert await ws.receive_nothing(timeout=1.5)
        await ws.disconnect()
        return seen

    assert run(scenario) == ["pong", "snapshot"]


class _UnreadTransport:
    """Twisted's buffering, as daphne's protocol sees it: bytes the client has not read."""

    def __init__(self, unsent: int) -> None:
        self.dataBuffer = b"x" * unsent
        self._tempDataLen = 0


def _daphne_socket(unsent: int) -> tuple[Any, list[str]]:
    """daphne's websocket protocol, open, its sends and drops recorded instead of written."""
    from daphne.ws_protocol import WebSocketProtocol

    import omtx_hub.asgi  # noqa: F401  (installs the bound)

    events: list[str] = []
    ws = WebSocketProtocol.__new__(WebSocketProtocol)
    ws.state = WebSocketProtocol.STATE_OPEN
    ws.transport = _UnreadTransport(unsent)
    ws.serverSend = lambda content, binary: events.append(f"sent {content}")
    ws.dropConnection = lambda abort=False: events.append(f"dropped abort={abort}")
    return ws, events


def test_daphne_drops_a_socket_whose_unread_bytes_pass_the_bound(settings: Any) -> None:
    settings.OMTX_LIVE_MAX_BUFFER_BYTES = 1000
    reader, events = _daphne_socket(unsent=1000)
    reader.handle_reply({"type": "websocket.send", "text": "delta"})
    assert events == ["sent delta"]
    stalled, events = _daphne_socket(unsent=1001)
    stalled.handle_reply({"type": "websocket.send", "text": "delta"})
    assert events == ["dropped abort=True"]

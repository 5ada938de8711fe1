"""The staff dashboard socket: who may watch, what it pushes, and that one process computes
the dashboard once per interval however many sockets watch."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User

from batches.tests.live_helpers import bearer, refused_with, run, session_headers, socket, token_for
from monitoring import consumers

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/ws/v3/monitoring/"


@pytest.fixture(autouse=True)
def _fresh_dashboard(settings: Any) -> None:
    settings.OMTX_LIVE_DASHBOARD_SECONDS = 0.5
    consumers._Latest.computed_at = float("-inf")


def refusal(**kwargs: Any) -> int | None:
    async def scenario() -> int | None:
        return await refused_with(socket(PATH, **kwargs))

    code: int | None = run(scenario)
    return code


def test_staff_receive_the_dashboard_and_then_updates(staff: User) -> None:
    raw = token_for(staff)

    async def scenario() -> None:
        ws = socket(PATH, headers=bearer(raw), subprotocols=["omtx.v1"])
        connected, chosen = await ws.connect(timeout=5)
        assert connected and chosen == "omtx.v1"
        first = await ws.receive_json_from(timeout=10)
        assert first["type"] == "dashboard"
        board = first["dashboard"]
        assert {"system_health", "batch_health", "cache_stats", "performance", "alerts"} <= set(board)
        second = await ws.receive_json_from(timeout=10)
        assert second["at"] > first["at"]
        await ws.send_json_to({"type": "ping"})
        while (reply := await ws.receive_json_from(timeout=10))["type"] == "dashboard":
            pass
        assert reply == {"type": "pong"}
        await ws.disconnect()

    run(scenario)


def test_staff_session_may_watch(staff: User) -> None:
    assert refusal(headers=session_headers(staff)) is None


def test_anonymous_users_and_staff_without_the_permission_are_refused(owner: User) -> None:
    assert refusal() == 4401
    assert refusal(headers=bearer("not-a-token")) == 4401
    assert refusal(headers=bearer(token_for(owner))) == 4403
    clerk = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    assert refusal(headers=bearer(token_for(clerk))) == 4403
    clerk.user_permissions.add(Permission.objects.get(codename="view_alertrule"))
    assert refusal(headers=bearer(token_for(User.objects.get(pk=clerk.pk)))) is None


def test_many_sockets_share_one_computation_per_interval(staff: User, settings: Any) -> None:
    settings.OMTX_LIVE_DASHBOARD_SECONDS = 3600
    raw = token_for(staff)

    async def scenario() -> None:
        sockets = [socket(PATH, headers=bearer(raw)) for _ in range(5)]
        before = consumers._Latest.computations
        texts = []
        for ws in sockets:
            connected, _ = await ws.connect(timeout=5)
            assert connected
            texts.append(await ws.receive_from(timeout=10))
        assert consumers._Latest.computations == before + 1
        assert len(set(texts)) == 1
        for ws in sockets:
            await ws.disconnect()

    run(scenario)


def test_readiness_round_trips_the_channel_layer(settings: Any) -> None:
    from monitoring.readiness import check_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert check_channel_layer().state == "ok"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    check = check_channel_layer()
    assert (check.ok, check.state) == (False, "unreachable")


def test_staff_who_lose_the_permission_lose_the_socket(settings: Any) -> None:
    settings.OMTX_LIVE_REAUTH_SECONDS = 0.2
    clerk = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    watch = Permission.objects.get(codename="view_alertrule")
    clerk.user_permissions.add(watch)
    raw = token_for(clerk)

    async def scenario() -> dict[str, Any]:
        ws = socket(PATH, headers=bearer(raw))
        connected, _ = await ws.connect(timeout=5)
        assert connected
        assert (await ws.receive_json_from(timeout=10))["type"] == "dashboard"
        await sync_to_async(clerk.user_permissions.remove)(watch)
        for _ in range(20):  # a few dashboards may come first; then the close
            output: dict[str, Any] = await ws.receive_output(timeout=5)
            if output["type"] != "websocket.send":
                return output
        await ws.disconnect()
        return {"type": "still open"}

    assert run(scenario) == {"type": "websocket.close", "code": 4403}

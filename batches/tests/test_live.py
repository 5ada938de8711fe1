"""The batch socket: who may watch, snapshot then deltas after real changes, gap handling."""

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from accounts.services import token_revoke
from accounts.models import ApiToken
from batches.live.broadcaster import broadcaster
from batches.models import Batch
from batches.tests.live_helpers import batch_path, bearer, refused_with, run, session_headers, socket, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_owner_gets_a_snapshot_then_deltas_of_the_engine_s_work(
    owner: User, make_batch: Callable[..., Batch], run_all: Callable[[], None]
) -> None:
    batch = make_batch()
    raw = token_for(owner)

    async def scenario() -> None:
        ws = socket(batch_path(batch.pk), headers=bearer(raw), subprotocols=["omtx.v1"])
        connected, subprotocol = await ws.connect()
        assert connected and subprotocol == "omtx.v1"
        snapshot = await ws.receive_json_from(timeout=5)
        assert snapshot["type"] == "snapshot" and snapshot["batch"] == str(batch.pk)
        assert snapshot["version"] == batch.version
        assert snapshot["status"]["progress"]["total"] == 4
        assert snapshot["results"] == [] and snapshot["failures"] == []
        await sync_to_async(run_all)()
        version = snapshot["version"]
        seen: dict[str, Any] = {}
        while True:
            delta = await ws.receive_json_from(timeout=5)
            assert delta["type"] == "delta"
            assert delta["since"] <= version < delta["version"]
            version = delta["version"]
            seen.update({job["id"]: job for job in delta["jobs"]})
            if delta["status"]["is_terminal"]:
                break
        assert delta["status"]["progress"]["succeeded"] == 4
        assert sorted(job["status"] for job in seen.values()) == ["succeeded"] * 4
        assert all(job["metrics"] for job in seen.values())
        await ws.disconnect()

    run(scenario)

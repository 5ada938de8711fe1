"""The Firestore emulator for the result store's tests: each test gets a project of its own
(so no test sees another's documents) and the project's documents are dropped afterwards.
FIRESTORE_EMULATOR_HOST names the emulator (.ci/run starts one); without a reachable one a
test skips here and fails in CI (CI=true)."""

import os
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from batches.result_store import breaker, client


def emulator_host() -> str:
    host = os.environ.get("FIRESTORE_EMULATOR_HOST", "")
    problem = None
    if not host:
        problem = "FIRESTORE_EMULATOR_HOST is not set"
    else:
        name, _, port = host.rpartition(":")
        try:
            socket.create_connection((name, int(port)), timeout=2).close()
        except (OSError, ValueError) as exc:
            problem = f"the Firestore emulator at {host} is unreachable: {exc!r}"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; it must be available in CI")
        pytest.skip(problem)
    return host


def clear(host: str, project: str) -> None:
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    request = urllib.request.Request(url, method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()  # nosec B310


@pytest.fixture
def firestore_project(settings: Any) -> Iterator[str]:
    """The result store on, in a fresh emulator project."""
    host = emulator_host()
    project = f"omtx-test-{uuid.uuid4().hex[:12]}"
    settings.OMTX_RESULT_STORE = "firestore"
    settings.GCP_PROJECT_ID = project
    settings.FIRESTORE_DATABASE = "(default)"
    breaker.reset()  # a failure another test provoked must not send this one to the database
    yield project
    clear(host, project)
    client._client.cache_clear()
    breaker.reset()


def documents(batch_id: Any) -> dict[str, dict[str, Any]]:
    """The batch's job documents by id."""
    return {snapshot.id: snapshot.to_dict() for snapshot in client.jobs_ref(batch_id).stream()}


def summary(batch_id: Any) -> dict[str, Any] | None:
    snapshot = client.batch_ref(batch_id).get()
    return snapshot.to_dict() if snapshot.exists else None

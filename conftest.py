"""Shared fixtures: personas (owner, outsider, staff), API clients, data, a batch factory."""

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.services import token_create
from batches.engine.dispatcher import Dispatcher
from batches.engine.local import LocalExecutor
from batches.models import Batch
from batches.selectors import queue_has_work
from batches.services.submission import Submission, batch_create
from batches.validation.ligands import raw_from_json

REPO = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("OMTX_SHARED_DATA", REPO.parent / "shared" / "data"))
CDK2 = (
    "MENFQKVEKIGEGTYGVVYKARNKLTGEVVALKKIRLDTETEGVPSTAIREISLLKELNHPNIVKLLDVIHTENKLYLVFEFLHQDLKKFMDASALTGIPLPLIKSYLF"
    "QLLQGLAFCHSHRVLHRDLKPQNLLINTEGAIKLADFGLARAFGVPVRTYTHEVVTLWYRAPEILLGCKYYSTAVDIWSLGCIFAEMVTRRALFPGDSEIDQLFRIFRTLG"
    "TPDEVVWPGVTSMPDYKPSFPKWARQDFSKVVPPLDEDGRSLLSQMLHYDPNKRISAKAALAHPFFQDVTKPVPHLRL"
)
LIGANDS = [
    {"name": "ethanol", "smiles": "CCO"},
    {"name": "phenol", "smiles": "c1ccccc1O"},
    {"name": "aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)O"},
    {"name": "caffeine", "smiles": "Cn1cnc2c1c(=O)n(C)c(=O)n2C"},
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Race tests need PostgreSQL's row locks. On SQLite they are skipped,
    unless the run requires PostgreSQL (CI's PostgreSQL pass), where running
    on anything else is an error, not a skip."""
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    if on_postgres:
        return
    if os.environ.get("OMTX_REQUIRE_POSTGRES"):
        raise pytest.UsageError("OMTX_REQUIRE_POSTGRES is set but DATABASE_URL is not a PostgreSQL database")
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL); CI runs these in its PostgreSQL pass")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_channel_layers() -> Iterator[None]:
    """Each test builds channel layers of its own. A Redis layer keeps the event loop of its
    first receive, and a test's loop ends with the test (a daphne process has one loop for
    its life), so a layer shared across tests fails the next test's receive."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _isolated_media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _relaxed_rate_limits(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The limiter runs in every test, at 1000 times its limits and thresholds and with
    quotas off, in a key space of the test's own: the suite's thousands of requests are
    never refused. The default tier is the seed's, read from no table, so a test without
    database access can still make an anonymous request. ratelimit/tests turn the real
    limits on (docs/rate-limiting.md)."""
    from ratelimit.testing import isolated_limiter

    # A hub a test starts as a process (test_scale, test_gunicorn) runs relaxed the same way.
    monkeypatch.setenv("RATE_LIMIT_SCALE", "1000")
    monkeypatch.setenv("RATE_LIMIT_QUOTAS_ENABLED", "false")
    with isolated_limiter(settings, scale=1000.0, quotas=False, from_seed=True):
        yield


@pytest.fixture(autouse=True)
def _inline_validation_pool(settings: Any) -> None:
    # Background validation checks chunks in this process: a spawned pool costs seconds per
    # test. batches/tests/test_intake.py runs the real pool once.
    settings.OMTX_VALIDATION_WORKERS = 0


@pytest.fixture
def validate_in_background(db: None) -> Callable[[], int]:
    """Run the background worker's validation step until no chunk is left; how many passes."""
    from batches.background import intake

    def run() -> int:
        passes = 0
        while intake.step():
            passes += 1
        return passes

    return run


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set OMTX_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def bad_inputs(shared_data: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_data / "bad_inputs.json").read_text())
    return data


@pytest.fixture
def owner(db: None) -> User:
    return User.objects.create_user("owner", password="pw-owner-123")


@pytest.fixture
def outsider(db: None) -> User:
    return User.objects.create_user("outsider", password="pw-outsider-123")


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("operator", password="pw-staff-123", is_staff=True, is_superuser=True)


def _client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        _, raw = token_create(user=user, name="test")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def owner_client(owner: User) -> APIClient:
    return _client_for(owner)


@pytest.fixture
def outsider_client(outsider: User) -> APIClient:
    return _client_for(outsider)


@pytest.fixture
def staff_client(staff: User) -> APIClient:
    return _client_for(staff)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_batch(owner: User) -> Callable[..., Batch]:
    def make(ligands: list[Any] | None = None, *, user: User | None = None, **fields: Any) -> Batch:
        submission = Submission(
            name=fields.pop("name", "test batch"),
            model=fields.pop("model", "ligand-profile"),
            protein_sequence=fields.pop("protein_sequence", CDK2),
            ligands=raw_from_json(ligands if ligands is not None else LIGANDS),
            **fields,
        )
        batch, _ = batch_create(owner=user or owner, submission=submission)
        return batch

    return make


@pytest.fixture
def dispatcher(db: None) -> Dispatcher:
    """A dispatcher whose local executor runs chunks inline (deterministic)."""
    return Dispatcher(executors={"local": LocalExecutor(workers=0)})


@pytest.fixture
def run_all(dispatcher: Dispatcher) -> Callable[[], None]:
    """Run dispatcher passes until nothing is queued or in flight."""

    def run() -> None:
        for _ in range(50):
            dispatcher.run_once()
            if not dispatcher.calls and not queue_has_work():
                return
        raise AssertionError("dispatcher did not drain")

    return run

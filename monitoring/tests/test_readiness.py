import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import OperationalError, connection
from django.db.migrations import Migration
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from monitoring import readiness
from monitoring.tests.fakes import FakeSources, clean_migrations_cache, fake_sources_fixture  # noqa: F401

pytestmark = pytest.mark.usefixtures("fake_sources", "clean_migrations_cache")
SECRET = "password authentication failed for user hub_secret at db.internal:5432"


def staff_session(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def database_down(db: None) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError(SECRET)

    # Its own patch, undone before the test database is rolled back.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connection, "cursor", refuse)
        yield


@pytest.fixture
def pending_migration(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The migration plan names one unapplied migration; how many times it was asked."""
    calls: list[int] = []

    def plan(self: MigrationExecutor, targets: Any, clean_start: bool = False) -> list[tuple[Migration, bool]]:
        calls.append(1)
        return [(Migration("0099_future", "monitoring"), False)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", plan)
    return calls


def test_ready_when_everything_answers(db: None) -> None:
    response = Client().get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["channel_layer"] == {"ok": True, "state": "ok"}
    # Anonymous probes see states, never details.
    assert all(set(check) == {"ok", "state"} for check in body["checks"].values())


def test_staff_see_the_details(staff: User) -> None:
    body = staff_session(staff).get("/health/ready").json()
    assert body["checks"]["cache"]["detail"] == "redis answered PING in 0.2 ms"
    assert body["checks"]["migrations"] == {"ok": True, "state": "ok", "detail": "all applied"}


def test_plain_users_see_no_details(owner: User, fake_sources: FakeSources) -> None:
    fake_sources.cache_ok = (False, "connection refused to cache.internal:6379")
    response = staff_session(owner).get("/health/ready")
    assert response.status_code == 503
    assert "cache.internal" not in response.content.decode()
    assert response.json()["checks"]["cache"] == {"ok": False, "state": "unreachable"}


def test_cache_down_is_not_ready(db: None, fake_sources: FakeSources) -> None:
    fake_sources.cache_ok = (False, "connection refused")
    assert Client().get("/health/ready").status_code == 503


def test_pending_migrations_are_not_ready(staff: User, pending_migration: list[int]) -> None:
    response = staff_session(staff).get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"]["state"] == "pending"
    assert "monitoring.0099_future" in response.json()["checks"]["migrations"]["detail"]
    # Not cached while pending: the next probe asks again.
    readiness.check_migrations()
    assert len(pending_migration) == 2


def test_a_clean_migration_state_is_remembered(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert readiness.check_migrations().ok
    # Once clean, the plan is not computed again (it costs a graph load per probe).
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda *a, **k: pytest.fail("plan recomputed"))
    assert readiness.check_migrations().ok


def test_executor_readiness_follows_the_required_models(db: None, settings: Any) -> None:
    settings.MODAL_TOKEN_ID = settings.MODAL_TOKEN_SECRET = ""
    settings.OMTX_READINESS_MODELS = ["ligand-profile"]
    check = readiness.check_executor()
    assert check.ok and "boltz2" in check.detail  # reported, not failing
    settings.OMTX_READINESS_MODELS = ["ligand-profile", "boltz2"]
    check = readiness.check_executor()
    assert not check.ok and check.state == "misconfigured" and "MODAL_TOKEN_ID" in check.detail
    settings.OMTX_READINESS_MODELS = ["no-such-model"]
    assert readiness.check_executor().detail == "no-such-model: no such model"
    assert Client().get("/health/ready").status_code == 503


def test_liveness_hides_the_database_error(db: None, database_down: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        response = Client().get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "database": "unreachable"}
    assert SECRET in caplog.text  # the operator finds it in the log


def test_readiness_with_the_database_down_hides_the_error(db: None, database_down: None) -> None:
    response = Client().get("/health/ready")
    assert response.status_code == 503
    assert SECRET not in response.content.decode()
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": False, "state": "unreachable"}
    assert checks["migrations"] == {"ok": False, "state": "unknown"}


def test_liveness_when_healthy(db: None) -> None:
    response = Client().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "healthy", "database": "ok"}


def test_staff_without_the_monitoring_permission_see_no_details(db: None, fake_sources: FakeSources) -> None:
    fake_sources.cache_ok = (False, "connection refused to cache.internal:6379")
    bare = User.objects.create_user("bare-staff", is_staff=True)
    assert "cache.internal" not in staff_session(bare).get("/health/ready").content.decode()
    bare.user_permissions.add(Permission.objects.get(content_type__app_label="monitoring", codename="view_alertrule"))
    assert "cache.internal" in staff_session(bare).get("/health/ready").content.decode()

"""/metrics: who may read it, that prometheus_client's own parser reads it, and that the
hub's metrics move with real work, counted in other processes too (multiprocess mode)."""

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from batches.engine.dispatcher import Dispatcher
from batches.engine.types import JobInput, JobOutcome
from batches.models import Batch
from batches.tests.conftest import cloud, configured  # noqa: F401 - fixtures
from batches.tests.fakes import FakeExecutor
from monitoring.tests.conftest import run_python
from omtx_hub.prometheus_dir import clear_dead

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-0123456789"


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def staff_session(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_anonymous_and_users_are_refused(owner: User, owner_client: APIClient, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert Client().get("/metrics").status_code == 403
    session = Client()
    session.force_login(owner)
    assert session.get("/metrics").status_code == 403
    assert owner_client.get("/metrics").status_code == 403  # a user's API token is not the scrape token
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 403


def test_no_token_configured_means_no_token_access(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_staff_and_the_token_may_scrape(staff_session: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert value(scrape(staff_session), "omtx_queue_depth") == 0
    assert value(scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}"), "omtx_queue_depth") == 0


def test_hub_metrics_move_with_a_batch(staff_session: Client, make_batch: Any, dispatcher: Dispatcher) -> None:
    before = scrape(staff_session)
    batch: Batch = make_batch()
    queued = scrape(staff_session)
    assert value(queued, "omtx_queue_depth") == batch.n_total == 4
    assert value(queued, "omtx_jobs", state="queued") == 4
    assert value(queued, "omtx_queue_oldest_age_seconds") >= 0
    for _ in range(10):
        dispatcher.run_once()
    after = scrape(staff_session)
    moved = {
        name: value(after, name, **labels) - value(before, name, **labels)
        for name, labels in [
            ("omtx_jobs_dispatched_total", {}),
            ("omtx_jobs_completed_total", {"outcome": "succeeded"}),
        ]
    }
    assert moved == {"omtx_jobs_dispatched_total": 4, "omtx_jobs_completed_total": 4}
    assert value(after, "omtx_jobs", state="succeeded") == 4
    assert value(after, "omtx_queue_depth") == 0
    requests = "omtx_http_request_duration_seconds_count"
    status = {"route": "prometheus-metrics", "method": "GET", "status": "2xx"}
    assert value(after, requests, **status) > value(before, requests, **status)


def test_failures_are_counted_by_reason(staff_session: Client, make_batch: Any) -> None:
    def time_out(job: JobInput) -> JobOutcome:
        return JobOutcome(job.job_id, ok=False, failure_reason="timeout", message="too slow")

    before = scrape(staff_session)
    make_batch(max_attempts=1)
    dispatcher = Dispatcher(executors={"local": FakeExecutor(time_out)})
    for _ in range(5):
        dispatcher.run_once()
    after = scrape(staff_session)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("omtx_executor_errors_total", reason="timeout") == 4
    assert moved("omtx_jobs_completed_total", outcome="failed") == 4


def test_counts_of_other_processes_are_summed(staff_session: Client) -> None:
    """A dispatcher or another web worker is another process: its counts reach this scrape."""
    before = value(scrape(staff_session), "omtx_gpu_seconds_total")
    code = "from monitoring.prometheus import GPU_SECONDS; GPU_SECONDS.inc(12.5)"
    env = {"DJANGO_SETTINGS_MODULE": "omtx_hub.settings"}
    run_python(f"import django; django.setup(); {code}", env)
    run_python(f"import django; django.setup(); {code}", env)
    assert value(scrape(staff_session), "omtx_gpu_seconds_total") - before == 25.0


def test_files_of_dead_processes_are_cleared(tmp_path: Path) -> None:
    dead_pid = int(run_python("import os; print(os.getpid())"))
    (tmp_path / f"counter_{dead_pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{os.getpid()}.db").write_bytes(b"")
    assert clear_dead(tmp_path) == [tmp_path / f"counter_{dead_pid}.db"]
    assert [p.name for p in tmp_path.iterdir()] == [f"counter_{os.getpid()}.db"]


@pytest.mark.usefixtures("cloud", "configured")  # a deployment that takes Boltz-2 batches
def test_gpu_seconds_count_gpu_calls_only(staff_session: Client, make_batch: Any) -> None:
    """A Boltz-2 call (GPU) adds its submit-to-outcome seconds; a CPU model's adds none."""
    executor = FakeExecutor(hold=True)
    dispatcher = Dispatcher(executors={"modal": executor, "local": FakeExecutor()})
    make_batch(model="ligand-profile")
    before = value(scrape(staff_session), "omtx_gpu_seconds_total")
    for _ in range(3):
        dispatcher.run_once()
    assert value(scrape(staff_session), "omtx_gpu_seconds_total") == before
    make_batch(model="boltz2", options={"use_msa": False})
    dispatcher.run_once()
    [call] = dispatcher.calls.values()
    call.since -= 30  # as if the GPU had run for 30 s
    executor.hold = False
    dispatcher.run_once()
    assert value(scrape(staff_session), "omtx_gpu_seconds_total") - before == pytest.approx(30, abs=5)


def test_staff_without_the_monitoring_permission_are_refused(settings: Any) -> None:
    """Being staff opens the admin, not the metrics: monitoring.view_alertrule does, as for
    the monitoring API."""
    bare = User.objects.create_user("bare-staff", is_staff=True)
    session = Client()
    session.force_login(bare)
    assert session.get("/metrics").status_code == 403
    bare.user_permissions.add(Permission.objects.get(content_type__app_label="monitoring", codename="view_alertrule"))
    assert session.get("/metrics").status_code == 200

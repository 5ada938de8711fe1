from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psutil
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.models import Batch, Job
from batches.states import BatchStatus, JobStatus
from monitoring import health


def test_system_health_is_this_machine(settings: Any) -> None:
    system = health.system_health()
    assert 0.0 <= system["cpu_percent"] <= 100.0
    assert system["cpu_count"] == psutil.cpu_count()
    assert abs(system["memory_percent"] - psutil.virtual_memory().percent) < 5.0
    assert system["disk_percent"] == pytest.approx(psutil.disk_usage(str(settings.VAR_DIR)).percent, abs=1.0)
    assert system["uptime_seconds"] > 0 and system["host_uptime_seconds"] >= system["uptime_seconds"]
    assert set(system["load_average"]) == {"1m", "5m", "15m"}


def test_first_cpu_reading_samples_instead_of_answering_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    intervals: list[float | None] = []
    monkeypatch.setattr(health, "_cpu_primed", False)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: intervals.append(interval) or 12.5)
    assert health._cpu_percent() == 12.5
    health._cpu_percent()
    assert intervals == [health.CPU_FIRST_SAMPLE_SECONDS, None]


def test_batch_health_counts_batches_as_they_change(
    make_batch: Callable[..., Batch], run_all: Callable[[], None]
) -> None:
    now = timezone.now()
    empty = health.batch_health(now=now)
    assert (empty["total_batches"], empty["active_batches"], empty["average_error_rate"]) == (0, 0, None)
    make_batch(name="a")
    make_batch(name="b")
    queued = health.batch_health(now=timezone.now())
    assert (queued["total_batches"], queued["active_batches"], queued["completed_batches"]) == (2, 2, 0)
    run_all()
    done = health.batch_health(now=timezone.now())
    assert (done["total_batches"], done["active_batches"], done["completed_batches"]) == (2, 0, 2)
    assert done["average_error_rate"] == 0.0 and done["batch_failure_rate"] == 0.0


def test_failure_rates_count_the_window_only(make_batch: Callable[..., Batch], settings: Any) -> None:
    settings.OMTX_BATCH_HEALTH_WINDOW_SECONDS = 3600
    now = timezone.now()
    ended = {"n_queued": 0}
    ok, bad, partial, old = (make_batch(name=n) for n in ("ok", "bad", "partial", "old"))
    Batch.objects.filter(pk=ok.pk).update(status=BatchStatus.COMPLETED, n_succeeded=4, finished_at=now, **ended)
    Batch.objects.filter(pk=bad.pk).update(status=BatchStatus.FAILED, n_failed=4, finished_at=now, **ended)
    Batch.objects.filter(pk=partial.pk).update(
        status=BatchStatus.COMPLETED_WITH_FAILURES, n_succeeded=3, n_failed=1, finished_at=now, **ended
    )
    # Failed before the window: counted in the totals, not in the rates.
    Batch.objects.filter(pk=old.pk).update(
        status=BatchStatus.FAILED, n_failed=4, finished_at=now - timedelta(hours=2), **ended
    )
    found = health.batch_health(now=now)
    assert found["failed_batches"] == 2 and found["completed_batches"] == 2
    assert found["batch_failure_rate"] == pytest.approx(100 / 3, abs=0.01)  # 1 failed of 3 ended
    assert found["average_error_rate"] == pytest.approx(100 * 5 / 12, abs=0.01)  # 5 failed of 12 jobs


def test_executor_health_follows_the_queue_and_the_leases(
    make_batch: Callable[..., Batch], dispatcher: Dispatcher, outsider: User
) -> None:
    now = timezone.now()
    assert health.executor_health(now=now)["queue_depth"] == 0
    first = make_batch(name="first")
    make_batch(name="second", user=outsider)
    Job.objects.filter(batch=first).update(created_at=now - timedelta(minutes=30))
    state = health.executor_health(now=timezone.now())
    assert state["queue_depth"] == 8 and state["in_flight"] == 0
    assert 1800 <= state["oldest_queued_job_seconds"] < 1900
    claimed = dispatcher.claim()
    state = health.executor_health(now=timezone.now())
    assert state["in_flight"] == len(claimed) > 0
    assert state["queue_depth"] == 8 - len(claimed)
    assert state["expired_leases"] == 0 and state["oldest_expired_lease_seconds"] is None
    # The dispatcher "dies": its leases run out and nobody renews them.
    Job.objects.filter(status=JobStatus.DISPATCHED).update(lease_expires_at=now - timedelta(minutes=10))
    state = health.executor_health(now=now)
    assert state["in_flight"] == 0 and state["expired_leases"] == len(claimed)
    assert state["oldest_expired_lease_seconds"] == 600.0


def test_a_drained_queue_has_no_oldest_job(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> None:
    make_batch()
    run_all()
    state = health.executor_health(now=timezone.now())
    assert state["queue_depth"] == 0 and state["oldest_queued_job_seconds"] is None


def test_executor_configuration_says_why_a_model_cannot_run(settings: Any) -> None:
    settings.MODAL_TOKEN_ID = settings.MODAL_TOKEN_SECRET = ""
    rows = {row["model"]: row for row in health.executor_configuration()}
    assert rows["ligand-profile"] == {"model": "ligand-profile", "executor": "local", "ready": True, "problem": ""}
    boltz2 = rows["boltz2"]
    assert not boltz2["ready"] and "MODAL_TOKEN_ID" in boltz2["problem"]
    settings.MODAL_TOKEN_ID, settings.MODAL_TOKEN_SECRET = "ak-x", "as-y"
    rows = {row["model"]: row for row in health.executor_configuration()}
    assert rows["boltz2"]["ready"] is (rows["boltz2"]["executor"] == "modal")

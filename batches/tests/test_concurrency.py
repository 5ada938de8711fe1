"""Races run for real: each side in its own thread with its own PostgreSQL
connection and transaction, started together at a barrier (DESIGN §3).

Each test names the invariant it guards; the closing note of the engine issue
lists the mutation each one caught.
"""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.engine.types import JobInput
from batches.models import Batch, Job
from batches.services.claims import Hold, reap_expired, renew_leases
from batches.services.ingest import Delivery, deliveries_apply
from batches.services.lifecycle import batch_cancel, batch_delete, batch_retry_failed
from batches.states import BATCH_TERMINAL, JOB_TERMINAL, BatchStatus, JobStatus
from batches.tests.fakes import FakeExecutor, succeed
from batches.tests.test_transitions import assert_counters_match_rows
from omtx_hub.errors import DomainError

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 8


def race(*sides: Callable[[], Any]) -> list[Any]:
    """Run every side at once, each in a thread with its own connection;
    returns each side's result or the exception it raised."""
    barrier = threading.Barrier(len(sides))
    results: list[Any] = [None] * len(sides)

    def run(i: int, side: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = side()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, side)) for i, side in enumerate(sides)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def ligands(n: int, tag: str = "") -> list[dict[str, str]]:
    return [{"name": f"{tag}l{i}", "smiles": "C" * (i % 20 + 1) + "O" + "N" * (i // 20)} for i in range(n)]


def unexpected(results: list[Any]) -> list[Exception]:
    """Exceptions other than the domain's own refusals (409, 404)."""
    return [r for r in results if isinstance(r, Exception) and not isinstance(r, DomainError)]


def drain_claims(dispatcher: Dispatcher) -> set[str]:
    taken: set[str] = set()
    while claimed := dispatcher.claim():
        taken |= {str(job.pk) for job in claimed}
        dispatcher.submit(claimed)
    return taken


def test_claim_vs_claim_never_takes_a_job_twice(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch(ligands(300))
    dispatchers = [Dispatcher(executors={"local": FakeExecutor(hold=True)}, max_in_flight=1000) for _ in range(3)]
    results = race(*(partial(drain_claims, d) for d in dispatchers))
    assert not unexpected(results)
    sets = [r for r in results if isinstance(r, set)]
    assert sum(len(s) for s in sets) == len(set().union(*sets)) == 300
    assert_counters_match_rows(batch)
    batch.refresh_from_db()
    assert batch.n_dispatched + batch.n_running == 300


def test_claim_vs_cancel_leaves_nothing_running_in_a_cancelled_batch(make_batch: Callable[..., Batch]) -> None:
    for round_ in range(ROUNDS):
        batch = make_batch(ligands(120, tag=f"r{round_}"))
        dispatcher = Dispatcher(executors={"local": FakeExecutor(hold=True)})
        results = race(partial(drain_claims, dispatcher), partial(batch_cancel, batch=batch))
        assert not unexpected(results)
        batch.refresh_from_db()
        assert batch.status == BatchStatus.CANCELLED
        assert set(batch.jobs.values_list("status", flat=True)) == {JobStatus.CANCELLED}
        assert_counters_match_rows(batch)
        dispatcher.poll()
        assert not dispatcher.calls  # the executor calls were cancelled too


def test_ingest_vs_cancel_counts_every_job_once(make_batch: Callable[..., Batch]) -> None:
    for round_ in range(ROUNDS):
        batch = make_batch(ligands(120, tag=f"r{round_}"))
        executor = FakeExecutor(hold=True)
        dispatcher = Dispatcher(executors={"local": executor})
        dispatcher.submit(dispatcher.claim())
        executor.hold = False
        results = race(dispatcher.poll, partial(batch_cancel, batch=batch))
        assert not unexpected(results)
        batch.refresh_from_db()
        statuses = set(batch.jobs.values_list("status", flat=True))
        assert statuses <= {JobStatus.SUCCEEDED, JobStatus.CANCELLED}
        assert dispatcher.stats["applied"] + dispatcher.stats["refused"] == 120
        assert dispatcher.stats["applied"] == batch.n_succeeded
        assert batch.status in BATCH_TERMINAL
        assert_counters_match_rows(batch)


def _batch_with_failures(make_batch: Callable[..., Batch], tag: str) -> Batch:
    """A running batch: 20 jobs failed for good, 20 still queued."""
    batch = make_batch(ligands(40, tag=tag))
    failed = batch.jobs.filter(index__lt=20)
    Job.objects.filter(pk__in=failed.values("pk")).update(status=JobStatus.FAILED, failure_reason="out_of_memory")
    Batch.objects.filter(pk=batch.pk).update(n_queued=20, n_failed=20, status=BatchStatus.RUNNING)
    return batch


def test_retry_vs_cancel_never_requeues_into_a_cancelled_batch(make_batch: Callable[..., Batch]) -> None:
    for round_ in range(ROUNDS):
        batch = _batch_with_failures(make_batch, f"r{round_}")
        stale = Batch.objects.get(pk=batch.pk)  # both sides hold a copy read before the race
        results = race(partial(batch_retry_failed, batch=stale), partial(batch_cancel, batch=batch))
        assert not unexpected(results)
        batch.refresh_from_db()
        assert batch.status == BatchStatus.CANCELLED
        assert not batch.jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.DISPATCHED]).exists()
        assert_counters_match_rows(batch)


def test_retry_after_cancel_with_a_stale_copy_is_refused(make_batch: Callable[..., Batch]) -> None:
    batch = _batch_with_failures(make_batch, "stale")
    stale = Batch.objects.get(pk=batch.pk)
    batch_cancel(batch=batch)
    with pytest.raises(DomainError) as refused:
        batch_retry_failed(batch=stale)
    assert refused.value.code == "batch_cancelled"
    assert not batch.jobs.filter(status=JobStatus.QUEUED).exists()


def test_retry_vs_delete_exactly_one_wins(make_batch: Callable[..., Batch]) -> None:
    for round_ in range(ROUNDS):
        batch = _batch_with_failures(make_batch, f"r{round_}")
        Job.objects.filter(batch=batch, status=JobStatus.QUEUED).update(status=JobStatus.SUCCEEDED)
        Batch.objects.filter(pk=batch.pk).update(n_queued=0, n_succeeded=20, status=BatchStatus.COMPLETED_WITH_FAILURES)
        stale = Batch.objects.get(pk=batch.pk)
        results = race(partial(batch_retry_failed, batch=stale), partial(batch_delete, batch=batch))
        assert not unexpected(results)
        wins = [r for r in results if not isinstance(r, Exception)]
        assert len(wins) == 1, results
        if Batch.objects.filter(pk=batch.pk).exists():
            assert_counters_match_rows(batch)


def test_cancel_vs_delete_never_errors(make_batch: Callable[..., Batch]) -> None:
    for round_ in range(ROUNDS):
        batch = make_batch(ligands(30, tag=f"r{round_}"))
        copy = Batch.objects.get(pk=batch.pk)
        results = race(partial(batch_cancel, batch=batch), partial(batch_delete, batch=copy))
        assert not unexpected(results)


def test_heartbeat_vs_reaper_never_reaps_a_live_dispatcher(make_batch: Callable[..., Batch]) -> None:
    """The reaper's conditional UPDATE loses to a lease renewed meanwhile."""
    for round_ in range(ROUNDS):
        batch = make_batch(ligands(60, tag=f"r{round_}"))
        live = Dispatcher(executors={"local": FakeExecutor(hold=True)}, lease_seconds=60)
        live.submit(live.claim())
        token = next(iter(live.held_tokens()))
        Job.objects.filter(batch=batch).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        results = race(
            partial(renew_leases, holds=live.held(), lease_seconds=60),
            partial(reap_expired, token="reaper", lease_seconds=60, durable_models=set()),
        )
        assert not unexpected(results)
        renewed, reaped = results
        # Every job was either renewed (and kept) or reaped; never both.
        still_ours = Job.objects.filter(claim_token=token, status=JobStatus.DISPATCHED).count()
        assert still_ours + reaped.requeued == 60
        assert renewed + reaped.requeued == 60  # a renewed job was not reaped after all
        assert_counters_match_rows(batch)
        Job.objects.filter(batch=batch).update(status=JobStatus.SUCCEEDED)  # out of the next round's way
        Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.COMPLETED)


def test_a_stale_dispatchers_late_result_is_refused(make_batch: Callable[..., Batch]) -> None:
    """After a reap and a new claim, the first holder's result matches no row."""
    batch = make_batch(ligands(10))
    slow_executor = FakeExecutor(hold=True)
    slow = Dispatcher(executors={"local": slow_executor})
    slow.submit(slow.claim())
    (slow_token,) = slow.held_tokens()
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1), not_before=None)
    other = Dispatcher(executors={"local": FakeExecutor(hold=True)})
    assert other.reap() == 10
    Job.objects.update(not_before=None)
    other.submit(other.claim())
    late = [
        Delivery(batch.pk, slow_token, succeed(JobInput(str(job.pk), job.name, job.input_smiles)))
        for job in Job.objects.all()
    ]
    assert deliveries_apply(deliveries=late).refused == 10
    slow_executor.hold = False
    slow.poll()
    assert slow.stats["applied"] == 0
    assert not slow.calls  # the lost calls were cancelled, not ingested
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.DISPATCHED}
    assert_counters_match_rows(batch)


def test_hold_tuple_is_what_the_dispatcher_renews(make_batch: Callable[..., Batch]) -> None:
    make_batch(ligands(5))
    dispatcher = Dispatcher(executors={"local": FakeExecutor(hold=True)})
    dispatcher.submit(dispatcher.claim())
    (call,) = dispatcher.calls.values()
    assert isinstance(call.hold, Hold) and len(call.hold.job_ids) == 5
    assert dispatcher.renew() == 5
    assert all(status not in JOB_TERMINAL for status in Job.objects.values_list("status", flat=True))


def test_the_loop_survives_its_database_connections_being_killed(make_batch: Callable[..., Batch]) -> None:
    """A lost connection (failover, pg_terminate_backend) fails a step, the
    step is retried on a new connection, and the loop goes on."""
    from batches.engine.loop import serve

    batch = make_batch(ligands(200))
    executor = FakeExecutor()
    dispatcher = Dispatcher(executors={"local": executor}, capacity=20, lease_seconds=5)
    stop = threading.Event()

    def run() -> None:
        try:
            serve(dispatcher, stop=stop, interval=0.01)
        finally:
            connection.close()

    loop = threading.Thread(target=run)
    loop.start()
    try:
        for _ in range(15):
            time.sleep(0.05)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        deadline = time.monotonic() + 60
        while batch.jobs.exclude(status=JobStatus.SUCCEEDED).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert loop.is_alive(), "the dispatcher loop died"
    finally:
        stop.set()
        loop.join(timeout=30)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert dispatcher.stats["db_errors"] > 0  # the kills did land
    assert_counters_match_rows(batch)

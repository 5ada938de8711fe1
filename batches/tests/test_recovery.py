"""Failure paths of the engine, one test per guard a second mutation review
found unguarded (the engine issue's closing note lists them)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import OperationalError, connection, connections, transaction
from django.db.models import QuerySet

from batches.engine import dispatcher as dispatcher_module
from batches.engine import steps
from batches.engine.dispatcher import Dispatcher
from batches.engine.outcomes import drop_broken_connection
from batches.engine.types import JobInput, JobOutcome
from batches.models import Batch, Job
from batches.services import ingest
from batches.services.claims import Hold, claim_jobs, reap_expired, record_calls
from batches.services.ingest import Delivery
from batches.services.lifecycle import batch_cancel
from batches.states import BatchStatus, JobStatus
from batches.tests.fakes import FakeExecutor
from batches.tests.test_concurrency import ligands
from batches.tests.test_invariants import expire_leases, holding_dispatcher
from batches.tests.test_transitions import assert_counters_match_rows


def artifact(job: JobInput) -> JobOutcome:
    return JobOutcome(
        job.job_id, ok=True, metrics={"qed": 0.3}, artifact_name=f"{job.job_id}.sdf", artifact_content=b"M"
    )


@pytest.fixture
def no_sleep(monkeypatch: Any) -> None:
    monkeypatch.setattr(steps.time, "sleep", lambda seconds: None)


# N01-N04: record_calls writes only jobs still held under the token
@pytest.mark.django_db
def test_record_calls_writes_only_jobs_still_held(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch(ligands(4))
    old = claim_jobs(plan=[(batch.pk, 4)], token="old", lease_seconds=60)
    stale = Hold(batch.pk, "old", tuple(str(job.pk) for job in old))
    expire_leases()
    reap_expired(token="reaper", lease_seconds=60, durable_models=set())
    Job.objects.update(not_before=None)
    new = claim_jobs(plan=[(batch.pk, 4)], token="new", lease_seconds=60)
    fresh = Hold(batch.pk, "new", tuple(str(job.pk) for job in new))
    record_calls(calls={"call-new": fresh})
    record_calls(calls={"call-stale": stale})  # reaped and claimed again: no longer ours
    batch_cancel(batch=batch)
    record_calls(calls={"call-late": fresh})  # cancelled: no longer held
    assert set(Job.objects.values_list("call_id", flat=True)) == {"call-new"}


# N07: a claim that fails after its UPDATE claims nothing (the retry gets the jobs)
@pytest.mark.django_db
def test_a_claim_failing_after_its_update_is_rolled_back(
    make_batch: Callable[..., Batch], monkeypatch: Any, no_sleep: None
) -> None:
    batch = make_batch()
    real = QuerySet.select_related
    failures = [OperationalError("connection lost")]

    def flaky(self: QuerySet[Any], *fields: Any) -> QuerySet[Any]:
        if fields == ("batch__target",) and failures:
            raise failures.pop()
        return real(self, *fields)

    monkeypatch.setattr(QuerySet, "select_related", flaky)
    jobs = Dispatcher(executors={"local": FakeExecutor(hold=True)}).claim()
    assert len(jobs) == 4
    assert_counters_match_rows(batch)


# N11: a cancelled batch's durable call is cancelled in the executor, not "handed over"
@pytest.mark.django_db
def test_a_cancelled_durable_call_is_cancelled(make_batch: Callable[..., Batch]) -> None:
    backend = FakeExecutor(hold=True, durable=True)
    batch, dispatcher = holding_dispatcher(4, make_batch, executor=backend)
    (call_id,) = dispatcher.calls
    batch_cancel(batch=batch)
    dispatcher.poll()
    assert backend.cancelled == [call_id] and not dispatcher.calls


# N16: a retried ingest transaction stores each file once
@pytest.mark.django_db
def test_a_retried_ingest_stores_each_file_once(
    make_batch: Callable[..., Batch], monkeypatch: Any, no_sleep: None
) -> None:
    batch = make_batch()
    real = ingest._apply_batch
    failures = [OperationalError("deadlock detected"), OperationalError("deadlock detected")]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "_apply_batch", flaky)
    Dispatcher(executors={"local": FakeExecutor(artifact)}).run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert len(default_storage.listdir(f"artifacts/{batch.pk}")[1]) == 4


# N19: a clean stop hands durable calls over at once (no lease to wait out)
@pytest.mark.django_db
def test_a_clean_stop_hands_durable_calls_over_at_once(make_batch: Callable[..., Batch]) -> None:
    backend = FakeExecutor(hold=True, durable=True)
    _, leaving = holding_dispatcher(4, make_batch, executor=backend)
    (call_id,) = leaving.calls
    leaving.release()
    assert not backend.cancelled
    successor = Dispatcher(executors={"local": backend})
    assert successor.reap() == 4
    assert set(successor.calls) == {call_id}


# N20: a claim that keeps failing leaves no token behind
@pytest.mark.django_db
def test_a_failed_claim_leaves_no_token(make_batch: Callable[..., Batch], monkeypatch: Any, no_sleep: None) -> None:
    make_batch()
    monkeypatch.setattr(dispatcher_module, "claim_jobs", lambda **kw: (_ for _ in ()).throw(OperationalError("down")))
    dispatcher = Dispatcher(executors={"local": FakeExecutor()})
    dispatcher.run_once()
    assert dispatcher.stats["claim_failed"] == 1
    assert not dispatcher.held_tokens()


# N17/N18: only a broken connection outside a transaction is closed (SQLite's
# in-memory test database is never really closed, so PostgreSQL only)
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_only_a_broken_connection_outside_a_transaction_is_closed(monkeypatch: Any) -> None:
    connection.ensure_connection()
    drop_broken_connection()
    assert connection.connection is not None  # healthy: kept
    monkeypatch.setattr(type(connections["default"]), "is_usable", lambda self: False)
    with transaction.atomic():
        drop_broken_connection()
        assert connection.connection is not None  # inside the caller's transaction: never closed,
        assert not connection.needs_rollback  # nor marked for rollback
    drop_broken_connection()
    assert connection.connection is None  # broken, outside a transaction: closed, the next query reconnects


# real bug 1: a submit step that fails keeps its claimed jobs leased forever
@pytest.mark.django_db
def test_jobs_of_a_failed_submit_are_not_leased_forever(make_batch: Callable[..., Batch], monkeypatch: Any) -> None:
    batch = make_batch()
    dispatcher = Dispatcher(executors={"local": FakeExecutor(hold=True)})
    with monkeypatch.context() as patch:
        patch.setattr(
            dispatcher_module, "reusable_results", lambda keys: (_ for _ in ()).throw(OperationalError("conn lost"))
        )
        dispatcher.run_once()
    assert dispatcher.stats["submit_failed"] == 1
    expire_leases()
    dispatcher.run_once()  # nothing runs those jobs: they must be recoverable
    assert batch.jobs.filter(status=JobStatus.DISPATCHED).count() == 0


# real bug 2: an OSError deleting a refused file, after the commit, re-queues applied outcomes
@pytest.mark.django_db
def test_a_failed_delete_after_the_commit_keeps_stored_files(
    make_batch: Callable[..., Batch], monkeypatch: Any
) -> None:
    batch = make_batch()
    dispatcher = Dispatcher(executors={"local": FakeExecutor(artifact)})
    dispatcher.submit(dispatcher.claim())
    job = batch.jobs.first()
    assert job is not None
    late = JobOutcome(str(job.pk), ok=True, metrics={"qed": 0.1}, artifact_name="late.sdf", artifact_content=b"x")
    dispatcher.backlog.append(Delivery(batch.pk, "a-lost-token", late))

    class FlakyDelete:
        failed = False

        def save(self, *args: Any, **kwargs: Any) -> str:
            return default_storage.save(*args, **kwargs)

        def delete(self, name: str) -> None:
            if not self.failed:
                self.failed = True
                raise PermissionError(name)
            default_storage.delete(name)

    monkeypatch.setattr(ingest, "default_storage", FlakyDelete())
    dispatcher.poll()  # stores the 4 outcomes; deleting the refused file fails after the commit
    dispatcher.poll()  # the next flush
    for stored in batch.jobs.all():
        assert stored.status == JobStatus.SUCCEEDED
        assert default_storage.exists(stored.artifact.name), "a stored outcome's file was deleted"

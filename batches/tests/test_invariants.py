"""Invariants one test each, found by breaking the engine on purpose: each
test here failed under its mutation (listed in the engine issue's closing
note). PostgreSQL-marked ones hold locks from another connection."""

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.engine.types import JobInput, JobOutcome
from batches.models import Batch, Job
from batches.services import claims
from batches.services.claims import (
    Hold,
    claim_jobs,
    mark_running,
    reap_expired,
    record_calls,
    release_jobs,
    renew_leases,
)
from batches.services.ingest import Delivery, deliveries_apply
from batches.services.lifecycle import batch_cancel, batch_retry_failed
from batches.services.transitions import lock_batches
from batches.states import BatchStatus, JobStatus
from batches.tests.fakes import FakeExecutor, succeed
from batches.tests.test_concurrency import ligands
from batches.tests.test_transitions import assert_counters_match_rows

PG = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


# -- helpers: other connections, held locks ------------------------------------


class Side(threading.Thread):
    """Runs `fn` on its own connection (optionally with a lock_timeout)."""

    def __init__(self, fn: Callable[[], Any], lock_timeout: str | None = None) -> None:
        super().__init__(daemon=True)
        self.fn, self.lock_timeout = fn, lock_timeout
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.lock_timeout:
                with connection.cursor() as cursor:
                    cursor.execute(f"SET lock_timeout = '{self.lock_timeout}'")
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


def in_thread(fn: Callable[[], Any], lock_timeout: str | None = None) -> Any:
    side = Side(fn, lock_timeout)
    side.start()
    side.join(30)
    if side.error:
        raise side.error
    return side.result


@contextlib.contextmanager
def holding(fn: Callable[[], Any]) -> Iterator[None]:
    """Another transaction runs `fn` and keeps its locks until the block ends."""
    ready, done = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            fn()
            ready.set()
            done.wait(30)

    side = Side(hold)
    side.start()
    assert ready.wait(10), side.error
    try:
        yield
    finally:
        done.set()
        side.join(30)
        assert side.error is None, side.error


def wait_until_blocked_or_done(side: threading.Thread, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and side.is_alive():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)


def job_rows_lockable(batch: Batch) -> int:
    with transaction.atomic():
        rows = Job.objects.select_for_update(nowait=True, of=("self",)).filter(batch=batch).order_by()
        return len(list(rows.values_list("pk", flat=True)))


def expire_leases() -> None:
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def holding_dispatcher(batch_size: int, make_batch: Callable[..., Batch], **kw: Any) -> tuple[Batch, Dispatcher]:
    batch = make_batch(ligands(batch_size))
    dispatcher = Dispatcher(executors={"local": kw.pop("executor", None) or FakeExecutor(hold=True)}, **kw)
    dispatcher.submit(dispatcher.claim())
    return batch, dispatcher


# -- M04: the reaper's UPDATE must re-check the lease ---------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reaper_loses_to_a_lease_renewed_after_its_scan(make_batch: Callable[..., Batch], monkeypatch: Any) -> None:
    batch, live = holding_dispatcher(10, make_batch, lease_seconds=60)
    (token,) = live.held_tokens()
    holds = live.held()
    expire_leases()
    real_lock = claims.lock_batches

    def heartbeat_then_lock(*args: Any, **kwargs: Any) -> Any:
        # The heartbeat commits between the reaper's scan and its UPDATE.
        assert in_thread(lambda: renew_leases(holds=holds, lease_seconds=60)) == 10
        return real_lock(*args, **kwargs)

    monkeypatch.setattr(claims, "lock_batches", heartbeat_then_lock)
    reaped = reap_expired(token="reaper", lease_seconds=60, durable_models=set())
    assert (reaped.requeued, reaped.failed) == (0, 0)
    assert Job.objects.filter(claim_token=token, status=JobStatus.DISPATCHED).count() == 10
    assert_counters_match_rows(batch)


# -- M09 / M16: the heartbeat never waits; real bug: it skips whole batches ----


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_heartbeat_skips_a_locked_job_row_without_waiting(make_batch: Callable[..., Batch]) -> None:
    batch, dispatcher = holding_dispatcher(10, make_batch)
    first = batch.jobs.get(index=0).pk
    with holding(lambda: Job.objects.filter(pk=first).update(failure_message="held")):
        renewed = in_thread(lambda: renew_leases(holds=dispatcher.held(), lease_seconds=60), lock_timeout="1s")
    assert renewed == 9


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_heartbeat_renews_while_the_batch_row_is_locked(make_batch: Callable[..., Batch]) -> None:
    """A claim/ingest/cancel holding the batch row must not stop the heartbeat
    from renewing that batch's jobs (it locks job rows only)."""
    batch, dispatcher = holding_dispatcher(10, make_batch)
    with holding(lambda: lock_batches([batch.pk])):
        renewed = in_thread(lambda: renew_leases(holds=dispatcher.held(), lease_seconds=60), lock_timeout="1s")
    assert renewed == 10


# -- M08 / M21 / M28 / M30: batch lock before any job row, for every writer ---


def _ingest(ctx: SimpleNamespace) -> Any:
    outcome = succeed(JobInput(ctx.hold.job_ids[0], "x", "C"))
    return deliveries_apply(deliveries=[Delivery(ctx.batch.pk, ctx.hold.token, outcome)])


WRITERS: dict[str, Callable[[SimpleNamespace], Any]] = {
    "cancel": lambda ctx: batch_cancel(batch=ctx.batch),
    "ingest": _ingest,
    "mark_running": lambda ctx: mark_running(holds=[ctx.hold]),
    "record_calls": lambda ctx: record_calls(calls={"call-x": ctx.hold}),
    "release": lambda ctx: release_jobs(holds=[ctx.hold]),
    "claim": lambda ctx: claim_jobs(plan=[(ctx.batch.pk, 6)], token="t2", lease_seconds=60),
}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writer", WRITERS)
def test_writers_wait_for_the_batch_lock_before_touching_jobs(make_batch: Callable[..., Batch], writer: str) -> None:
    batch = make_batch(ligands(6))
    jobs = claim_jobs(plan=[(batch.pk, 6)], token="t", lease_seconds=60)
    ctx = SimpleNamespace(batch=batch, hold=Hold(batch.pk, "t", tuple(str(job.pk) for job in jobs)))
    with holding(lambda: lock_batches([batch.pk])):
        side = Side(lambda: WRITERS[writer](ctx))
        side.start()
        wait_until_blocked_or_done(side)
        assert side.is_alive(), f"{writer} wrote without waiting for the batch lock"
        assert in_thread(lambda: job_rows_lockable(batch)) == 6, f"{writer} locked job rows before the batch"
    side.join(30)
    assert side.error is None, side.error
    assert_counters_match_rows(batch)


# -- M15: mark_running moves dispatched jobs only ------------------------------


@pytest.mark.django_db
def test_mark_running_twice_counts_once(make_batch: Callable[..., Batch]) -> None:
    batch, dispatcher = holding_dispatcher(4, make_batch)
    holds = [call.hold for call in dispatcher.calls.values()]
    assert mark_running(holds=holds) == 4
    assert mark_running(holds=holds) == 0  # an adopted call seen running again, a retried step
    assert_counters_match_rows(batch)


# -- M24: durable calls are adopted by call id, never respawned ---------------


@pytest.mark.django_db
def test_durable_calls_are_adopted_and_uncalled_jobs_requeued(make_batch: Callable[..., Batch]) -> None:
    backend = FakeExecutor(hold=True, durable=True)
    batch, dead = holding_dispatcher(6, make_batch, executor=backend)
    (call_id,) = dead.calls
    orphan = batch.jobs.get(index=0)  # its call id was never recorded: the dispatcher died in between
    Job.objects.filter(pk=orphan.pk).update(call_id="")
    expire_leases()
    survivor = Dispatcher(executors={"local": backend})
    assert survivor.reap() == 6
    assert set(survivor.calls) == {call_id}
    assert len(survivor.calls[call_id].hold.job_ids) == 5
    orphan.refresh_from_db()
    assert orphan.status == JobStatus.QUEUED
    backend.hold = False
    survivor.poll()
    assert batch.jobs.filter(status=JobStatus.SUCCEEDED).count() == 5
    assert len(backend.submitted) == 1  # never spawned twice
    assert_counters_match_rows(batch)


@pytest.mark.django_db
def test_losing_a_durable_call_to_adoption_does_not_cancel_it(make_batch: Callable[..., Batch]) -> None:
    """Real bug: the dispatcher that lost the call cancels it under its adopter."""
    backend = FakeExecutor(hold=True, durable=True)
    _, slow = holding_dispatcher(4, make_batch, executor=backend)
    (call_id,) = slow.calls
    expire_leases()  # e.g. its heartbeat stalled
    adopter = Dispatcher(executors={"local": backend})
    adopter.reap()
    assert call_id in adopter.calls
    slow.poll()  # the slow dispatcher notices the jobs are no longer its own
    assert call_id not in backend.cancelled


# -- M29: a release hands back only what it still holds -----------------------


@pytest.mark.django_db
def test_release_leaves_jobs_another_dispatcher_reclaimed(make_batch: Callable[..., Batch]) -> None:
    batch, first = holding_dispatcher(4, make_batch)
    expire_leases()
    second = Dispatcher(executors={"local": FakeExecutor(hold=True)})
    assert second.reap() == 4
    Job.objects.update(not_before=None)
    second.submit(second.claim())
    (token,) = second.held_tokens()
    first.release()
    assert Job.objects.filter(claim_token=token, status=JobStatus.DISPATCHED).count() == 4
    assert_counters_match_rows(batch)


# -- M25 / M26 / M32: no token outlives its jobs ------------------------------


@pytest.mark.django_db
def test_no_token_outlives_its_jobs(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    dispatcher = Dispatcher(executors={"local": FakeExecutor()})
    dispatcher.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert not dispatcher.held_tokens()
    later = make_batch(["CCCCO"])
    Job.objects.filter(batch=later).update(not_before=timezone.now() + timedelta(hours=1))
    assert dispatcher.claim() == []
    assert not dispatcher.held_tokens()


# -- M27: a retried batch is no longer finished -------------------------------


@pytest.mark.django_db
def test_retry_reopens_a_finished_batch(make_batch: Callable[..., Batch]) -> None:
    def fail(job: JobInput) -> JobOutcome:
        return JobOutcome(job.job_id, ok=False, failure_reason="out_of_memory", message="OOM")

    batch = make_batch()
    Dispatcher(executors={"local": FakeExecutor(fail)}).run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and batch.finished_at is not None
    batch_retry_failed(batch=batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.finished_at is None


# -- M19: a refused outcome leaves no file -------------------------------------


@pytest.mark.django_db
def test_a_refused_outcome_leaves_no_file(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    job = batch.jobs.first()
    assert job is not None
    outcome = JobOutcome(str(job.pk), ok=True, metrics={"qed": 0.1}, artifact_name="late.sdf", artifact_content=b"x")
    assert deliveries_apply(deliveries=[Delivery(batch.pk, "not-the-holder", outcome)]).refused == 1
    assert not default_storage.exists(f"artifacts/{batch.pk}/late.sdf")


# -- M17: batch locks in primary-key order -------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_lock_batches_locks_in_primary_key_order(make_batch: Callable[..., Batch]) -> None:
    ids = [make_batch().pk, make_batch(["CCCO"]).pk]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        lock_batches(ids)
    (sql,) = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert sql.rstrip().endswith('ORDER BY "batches_batch"."id" ASC FOR UPDATE')


# -- M33: the reaper skips a locked batch rather than wait ---------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reaper_skips_a_locked_batch(make_batch: Callable[..., Batch]) -> None:
    batch, _ = holding_dispatcher(4, make_batch)
    expire_leases()
    with holding(lambda: lock_batches([batch.pk])):
        reaped = in_thread(lambda: reap_expired(token="r", lease_seconds=60, durable_models=set()), lock_timeout="1s")
    assert reaped.requeued == 0


# -- real bug: a cancel that a delete follows at once answers 500 -------------


@pytest.mark.django_db(transaction=True)
def test_cancel_and_retry_read_the_batch_back_under_its_lock(
    make_batch: Callable[..., Batch], monkeypatch: Any
) -> None:
    """After the commit, a delete that waited on the lock may already have
    removed the row: reading it back there raised DoesNotExist (a 500)."""
    batch = _failed_batch(make_batch)
    inside: list[bool] = []
    real_refresh = Batch.refresh_from_db

    def recording(self: Batch, *args: Any, **kwargs: Any) -> None:
        inside.append(connection.in_atomic_block)
        real_refresh(self, *args, **kwargs)

    monkeypatch.setattr(Batch, "refresh_from_db", recording)
    batch_retry_failed(batch=batch)
    batch_cancel(batch=batch)
    assert inside and all(inside)


def _failed_batch(make_batch: Callable[..., Batch]) -> Batch:
    def fail(job: JobInput) -> JobOutcome:
        return JobOutcome(job.job_id, ok=False, failure_reason="out_of_memory", message="OOM")

    batch = make_batch()
    Dispatcher(executors={"local": FakeExecutor(fail)}).run_once()
    return batch


# -- M20: delete keeps a file another batch's reused job points at ------------


@pytest.mark.django_db
def test_delete_keeps_an_artifact_another_batch_reused(
    make_batch: Callable[..., Batch], run_all: Callable[[], None]
) -> None:
    from batches.services.lifecycle import batch_delete

    first = make_batch(name="first")
    run_all()
    second = make_batch(name="second")  # same model, target and ligands: every prediction is reused
    run_all()
    reused = second.jobs.exclude(artifact="").first()
    assert reused is not None and reused.reused_from is not None
    first.refresh_from_db()
    batch_delete(batch=first)
    assert default_storage.exists(reused.artifact.name)


# -- outcomes waiting to be stored keep their lease, and store their files once -


@pytest.mark.django_db
def test_a_database_outage_keeps_outcomes_leased_and_files_single(
    make_batch: Callable[..., Batch], monkeypatch: Any
) -> None:
    from django.db import OperationalError

    from batches.engine import dispatcher as dispatcher_module
    from batches.engine import steps

    def artifact(job: JobInput) -> JobOutcome:
        return JobOutcome(
            job.job_id, ok=True, metrics={"qed": 0.3}, artifact_name=f"{job.job_id}.sdf", artifact_content=b"M"
        )

    batch = make_batch()
    dispatcher = Dispatcher(executors={"local": FakeExecutor(artifact)})
    real_apply = dispatcher_module.deliveries_apply
    monkeypatch.setattr(
        dispatcher_module, "deliveries_apply", lambda **kw: (_ for _ in ()).throw(OperationalError("down"))
    )
    monkeypatch.setattr(steps.time, "sleep", lambda seconds: None)
    dispatcher.run_once()
    assert len(dispatcher.backlog) == 4
    assert dispatcher.held_tokens() and dispatcher.renew() == 4  # still leased: not reaped while the database is away
    monkeypatch.setattr(dispatcher_module, "deliveries_apply", real_apply)
    dispatcher.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED and not dispatcher.backlog
    files = default_storage.listdir(f"artifacts/{batch.pk}")[1]
    assert len(files) == 4  # one file per job, not one per attempt to store it
    assert not dispatcher.held_tokens()


# -- a stale dispatcher's call ids never land on jobs another one holds ---------


@pytest.mark.django_db
def test_a_stale_record_calls_leaves_the_new_holders_call_ids(make_batch: Callable[..., Batch]) -> None:
    batch, stale = holding_dispatcher(4, make_batch)
    (stale_token,) = stale.held_tokens()
    stale_ids = tuple(str(pk) for pk in batch.jobs.values_list("pk", flat=True))
    expire_leases()
    fresh = Dispatcher(executors={"local": FakeExecutor(hold=True)})
    assert fresh.reap() == 4
    Job.objects.update(not_before=None)
    fresh.submit(fresh.claim())
    (fresh_call,) = fresh.calls
    assert record_calls(calls={"stale-call": Hold(batch.pk, stale_token, stale_ids)}) == 0
    assert set(batch.jobs.values_list("call_id", flat=True)) == {fresh_call}


# -- a claim that fails after its UPDATE leaves nothing claimed -----------------


@pytest.mark.django_db
def test_a_claim_failing_at_its_last_read_is_rolled_back_and_retried(make_batch: Callable[..., Batch]) -> None:
    from django.db import OperationalError

    batch = make_batch(ligands(10))
    failures = []

    def fail_first_read(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not failures and 'INNER JOIN "batches_target"' in sql:
            failures.append(sql)
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    dispatcher = Dispatcher(executors={"local": FakeExecutor(hold=True)}, max_in_flight=6)
    with connection.execute_wrapper(fail_first_read):
        claimed = dispatcher.claim()
    assert failures and len(claimed) == 6
    assert batch.jobs.filter(status=JobStatus.DISPATCHED).count() == 6  # the failed attempt claimed nothing
    assert_counters_match_rows(batch)


# -- jobs claimed but never sent are not kept alive by the heartbeat ------------


@pytest.mark.django_db
def test_jobs_a_failed_submit_never_sent_lapse_and_run_later(
    make_batch: Callable[..., Batch], monkeypatch: Any
) -> None:
    from django.db import OperationalError

    from batches.engine import dispatcher as dispatcher_module
    from batches.engine import steps

    batch = make_batch()
    dispatcher = Dispatcher(executors={"local": FakeExecutor()})
    real_lookup = dispatcher_module.reusable_results

    def down(**kwargs: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dispatcher_module, "reusable_results", down)
    monkeypatch.setattr(steps.time, "sleep", lambda seconds: None)
    dispatcher.run_once()
    assert batch.jobs.filter(status=JobStatus.DISPATCHED).count() == 4  # claimed, never sent
    assert dispatcher.renew() == 0 and not dispatcher.held_tokens()  # ... and no longer kept alive
    monkeypatch.setattr(dispatcher_module, "reusable_results", real_lookup)
    expire_leases()
    dispatcher.run_once()  # reaped back to the queue
    Job.objects.update(not_before=None)
    dispatcher.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert_counters_match_rows(batch)

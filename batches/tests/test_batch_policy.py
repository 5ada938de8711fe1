"""Per-batch policy in the engine: max_in_flight, max_attempts, timeout_seconds.
Each invariant has a test that fails when the engine ignores it."""

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.engine.types import ChunkRequest
from batches.models import Batch, Job
from batches.services.claims import claim_jobs
from batches.services.lifecycle import batch_retry_failed
from batches.states import BatchStatus, FailureReason, JobStatus
from batches.tests.fakes import FakeExecutor
from batches.tests.test_concurrency import drain_claims, race, unexpected
from batches.tests.test_transitions import assert_counters_match_rows


class TimedExecutor(FakeExecutor):
    """Remembers the per-attempt timeout each chunk was sent with."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[tuple[ChunkRequest, int]] = []

    def submit(self, request: ChunkRequest, *, timeout_seconds: int) -> str:
        self.timeouts.append((request, timeout_seconds))
        return super().submit(request, timeout_seconds=timeout_seconds)


def fake_dispatcher(executor: FakeExecutor, **kwargs: int) -> Dispatcher:
    return Dispatcher(executors={"local": executor}, **kwargs)


def in_flight(batch: Batch) -> int:
    return batch.jobs.filter(status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]).count()


def drain(dispatcher: Dispatcher, passes: int = 20) -> None:
    for _ in range(passes):
        Job.objects.update(not_before=None)
        dispatcher.run_once()


# -- max_in_flight ---------------------------------------------------------------


def test_max_in_flight_is_respected_across_passes(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor(hold=True)
    dispatcher = fake_dispatcher(executor)
    batch = make_batch([f"C{'C' * i}O" for i in range(10)], max_in_flight=3)
    for _ in range(3):
        dispatcher.run_once()
        assert in_flight(batch) == 3
    executor.hold = False
    peak = 0
    for _ in range(10):
        dispatcher.run_once()
        peak = max(peak, in_flight(batch))
    assert peak <= 3
    batch.refresh_from_db()
    assert (batch.status, batch.n_succeeded) == (BatchStatus.COMPLETED, 10)
    assert max(len(request.jobs) for request in executor.submitted) <= 3


def test_a_stale_plan_cannot_pass_the_batch_cap(make_batch: Callable[..., Batch]) -> None:
    """The plan is read without a lock; the claim checks the cap under the batch lock."""
    batch = make_batch([f"C{'C' * i}O" for i in range(10)], max_in_flight=3)
    assert len(claim_jobs(plan=[(batch.pk, 10)], token="a", lease_seconds=60)) == 3
    assert claim_jobs(plan=[(batch.pk, 10)], token="b", lease_seconds=60) == []
    assert in_flight(batch) == 3
    assert_counters_match_rows(batch)


def test_a_capped_batch_leaves_its_owners_share_to_their_next_batch(make_batch: Callable[..., Batch]) -> None:
    capped = make_batch([f"C{'C' * i}O" for i in range(10)], name="capped", priority=5, max_in_flight=2)
    other = make_batch([f"C{'C' * i}N" for i in range(10)], name="other")
    claimed = fake_dispatcher(FakeExecutor(), max_in_flight=8).claim()
    per_batch = Counter(job.batch_id for job in claimed)
    assert per_batch == {capped.pk: 2, other.pk: 6}


def test_a_capped_batch_does_not_shrink_another_users_share(make_batch: Callable[..., Batch], outsider: User) -> None:
    make_batch([f"C{'C' * i}O" for i in range(10)], max_in_flight=1)
    theirs = make_batch([f"C{'C' * i}N" for i in range(10)], user=outsider)
    claimed = fake_dispatcher(FakeExecutor(), max_in_flight=8).claim()
    assert sum(job.batch_id == theirs.pk for job in claimed) == 7


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_never_pass_the_batch_cap(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch([f"C{'C' * i}O" for i in range(40)], max_in_flight=5)
    dispatchers = [Dispatcher(executors={"local": FakeExecutor(hold=True)}) for _ in range(3)]
    results = race(*(partial(drain_claims, d) for d in dispatchers))
    assert not unexpected(results)
    assert sum(len(r) for r in results) == in_flight(batch) == 5
    assert_counters_match_rows(batch)


# -- max_attempts ------------------------------------------------------------------


def test_the_batch_max_attempts_is_honoured(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.call_error = ("executor_error", "container lost")
    once = make_batch(["CCO"], name="once", max_attempts=1)
    five = make_batch(["CCN"], name="five", max_attempts=5)
    default = make_batch(["CCC"], name="default")
    drain(fake_dispatcher(executor), 8)
    attempts = {job.batch.name: (job.status, job.attempts) for job in Job.objects.select_related("batch")}
    assert attempts == {
        "once": (JobStatus.FAILED, 1),
        "five": (JobStatus.FAILED, 5),
        "default": (JobStatus.FAILED, 3),  # the model's
    }
    for batch in (once, five, default):
        assert_counters_match_rows(batch)


def test_the_reaper_honours_the_batch_max_attempts(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch(["CCO", "CCN"], max_attempts=1)
    dead = fake_dispatcher(FakeExecutor(hold=True))
    dead.run_once()  # … and the dispatcher dies here.
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert fake_dispatcher(FakeExecutor()).reap() == 2
    assert set(batch.jobs.values_list("status", "failure_reason")) == {(JobStatus.FAILED, FailureReason.EXECUTOR_ERROR)}
    assert_counters_match_rows(batch)


def test_a_manual_retry_gives_the_batch_max_attempts_again(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.call_error = ("timeout", "too slow")
    batch = make_batch(["CCO"], max_attempts=2)
    dispatcher = fake_dispatcher(executor)
    drain(dispatcher, 3)
    assert batch.jobs.get().attempts == 2
    assert batch_retry_failed(batch=batch) == 1
    drain(dispatcher, 3)
    job = batch.jobs.get()
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2)
    assert len(executor.submitted) == 4


# -- timeout_seconds ---------------------------------------------------------------


def test_the_batch_timeout_is_sent_to_the_executor(make_batch: Callable[..., Batch]) -> None:
    executor = TimedExecutor()
    short = make_batch(["CCO", "CCN"], name="short", timeout_seconds=30)
    default = make_batch(["CCCO"], name="default")
    fake_dispatcher(executor).run_once()
    sent = {request.jobs[0].job_id: timeout for request, timeout in executor.timeouts}
    by_batch = {Job.objects.get(pk=job_id).batch_id: timeout for job_id, timeout in sent.items()}
    assert by_batch == {short.pk: 30, default.pk: 120}  # 120: ligand-profile's own
    # Chunks never mix batches, so each chunk has one batch's timeout.
    for request, _ in executor.timeouts:
        assert len({Job.objects.get(pk=job.job_id).batch_id for job in request.jobs}) == 1

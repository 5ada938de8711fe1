"""Per-batch policy in the engine: max_in_flight, max_attempts, timeout_seconds,
and in-batch duplicates (allowed on the legacy path) computed once. Each
invariant has a test that fails when the engine ignores it."""

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.engine.types import ChunkRequest, JobInput, JobOutcome
from batches.models import Batch, Job
from batches.services.claims import claim_jobs
from batches.services.lifecycle import batch_retry_failed
from batches.states import BatchStatus, FailureReason, JobStatus
from batches.tests.fakes import FakeExecutor, succeed
from batches.tests.test_concurrency import drain_claims, race, unexpected
from batches.tests.test_transitions import assert_counters_match_rows

# Three names for ethanol (two spellings), two for phenol, one caffeine.
DUPLICATED = [
    {"name": "ethanol", "smiles": "CCO"},
    {"name": "phenol", "smiles": "c1ccccc1O"},
    {"name": "EtOH", "smiles": "OCC"},
    {"name": "alcohol", "smiles": "CCO"},
    {"name": "caffeine", "smiles": "Cn1cnc2c1c(=O)n(C)c(=O)n2C"},
    {"name": "carbolic acid", "smiles": "Oc1ccccc1"},
]


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


def computed(executor: FakeExecutor) -> Counter[str]:
    """How many times the executor was asked for each molecule."""
    return Counter(job.smiles for request in executor.submitted for job in request.jobs)


def in_flight(batch: Batch) -> int:
    return batch.jobs.filter(status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]).count()


def drain(dispatcher: Dispatcher, passes: int = 20) -> None:
    for _ in range(passes):
        Job.objects.update(not_before=None)
        dispatcher.run_once()


# -- in-batch duplicates ---------------------------------------------------------


def test_in_batch_duplicates_are_computed_once(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    dispatcher = fake_dispatcher(executor)
    batch = make_batch(DUPLICATED, allow_duplicates=True)
    assert batch.n_total == 6
    drain(dispatcher, 4)
    assert sorted(computed(executor).values()) == [1, 1, 1]
    batch.refresh_from_db()
    assert (batch.status, batch.n_succeeded, batch.n_reused) == (BatchStatus.COMPLETED, 6, 3)
    ethanol = batch.jobs.get(name="ethanol")
    for name in ("EtOH", "alcohol"):
        twin = batch.jobs.get(name=name)
        assert twin.reused_from == ethanol.pk and twin.result == ethanol.result
    assert_counters_match_rows(batch)


def test_one_claim_takes_one_job_per_molecule(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch(DUPLICATED, allow_duplicates=True)
    claimed = fake_dispatcher(FakeExecutor()).claim()
    assert [job.name for job in claimed] == ["ethanol", "phenol", "caffeine"]
    assert batch.jobs.filter(status=JobStatus.QUEUED).count() == 3
    assert_counters_match_rows(batch)


def test_a_duplicate_waits_while_its_molecule_is_in_flight(make_batch: Callable[..., Batch]) -> None:
    remote = FakeExecutor(hold=True)
    first, second = fake_dispatcher(remote), fake_dispatcher(remote)
    batch = make_batch(DUPLICATED, allow_duplicates=True)
    first.run_once()
    first.run_once()
    # Another dispatcher, too, leaves the twins of molecules in flight alone.
    assert second.claim() == []
    assert sorted(computed(remote).values()) == [1, 1, 1]
    remote.hold = False
    first.poll()
    first.run_once()
    batch.refresh_from_db()
    assert (batch.status, batch.n_reused) == (BatchStatus.COMPLETED, 3)
    assert sorted(computed(remote).values()) == [1, 1, 1]


def test_a_failed_molecule_lets_its_duplicate_run(make_batch: Callable[..., Batch]) -> None:
    def script(job: JobInput) -> JobOutcome:
        if job.name == "ethanol":
            return JobOutcome(job.job_id, ok=False, failure_reason="out_of_memory", message="CUDA OOM")
        return succeed(job)

    executor = FakeExecutor(script)
    batch = make_batch(DUPLICATED[:3], allow_duplicates=True)
    drain(fake_dispatcher(executor), 3)
    assert batch.jobs.get(name="ethanol").status == JobStatus.FAILED
    # A failure is not copied: the twin is another attempt at the molecule.
    twin = batch.jobs.get(name="EtOH")
    assert (twin.status, twin.reused_from) == (JobStatus.SUCCEEDED, None)
    assert computed(executor)["CCO"] == 2


def test_canonical_submissions_still_hold_no_duplicates(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch(DUPLICATED)
    assert batch.n_total == 3
    assert {r["code"] for r in batch.validation_report["rejected_ligands"]} == {"duplicate"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_compute_each_molecule_once(make_batch: Callable[..., Batch]) -> None:
    names = [{"name": f"n{i}", "smiles": ("CCO", "CCN", "CCC")[i % 3]} for i in range(30)]
    make_batch(names, allow_duplicates=True)
    remote = FakeExecutor(hold=True)
    dispatchers = [Dispatcher(executors={"local": remote}) for _ in range(3)]
    results = race(*(partial(drain_claims, d) for d in dispatchers))
    assert not unexpected(results)
    assert computed(remote) == {"CCO": 1, "CCN": 1, "CCC": 1}


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


@pytest.mark.django_db
def test_waiting_duplicates_do_not_starve_the_owners_next_batch(make_batch: Callable[..., Batch]) -> None:
    remote = FakeExecutor(hold=True)
    dispatcher = Dispatcher(executors={"local": remote}, capacity=4, max_in_flight=4)
    older = make_batch([{"name": f"n{i}", "smiles": "CCO"} for i in range(20)], allow_duplicates=True)
    newer = make_batch([{"name": f"m{i}", "smiles": "C" * (i + 2)} for i in range(5)])
    dispatcher.run_once()  # claims one CCO job (its twins wait) ...
    dispatcher.run_once()
    dispatcher.run_once()
    held = Batch.objects.get(pk=newer.pk)
    in_flight_total = sum(
        b.jobs.filter(status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]).count() for b in (older, held)
    )
    # 4 slots, 1 used by the CCO job: the newer batch's distinct ligands should fill the other 3.
    assert in_flight_total == 4, (in_flight_total, held.n_queued)

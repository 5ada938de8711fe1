import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.engine.local import LocalExecutor
from batches.engine.types import JobInput, JobOutcome
from batches.models import Batch, Job
from batches.queue import batch_outlook, queue_position
from batches.selectors import batch_progress
from batches.services.ingest import Delivery, deliveries_apply
from batches.services.lifecycle import batch_cancel
from batches.states import BatchStatus, FailureReason, JobStatus
from batches.tests.fakes import FakeExecutor, succeed
from batches.tests.test_transitions import assert_counters_match_rows


def fake_dispatcher(executor: FakeExecutor, **kwargs: int) -> Dispatcher:
    return Dispatcher(executors={"local": executor}, **kwargs)


def expire_backoff() -> None:
    Job.objects.update(not_before=None)


def test_a_real_batch_runs_end_to_end(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> None:
    batch = make_batch()
    run_all()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert batch.n_succeeded == 4
    job = batch.jobs.get(name="aspirin")
    assert job.result is not None
    assert job.result["formula"] == "C9H8O4"
    assert job.qed == job.result["qed"]
    assert job.artifact.name.endswith(".sdf")
    assert "M  END" in job.artifact.read().decode()
    assert job.attempts == 1


def test_steps_one_at_a_time(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    dispatcher = fake_dispatcher(executor)
    batch = make_batch()
    claimed = dispatcher.claim()
    assert len(claimed) == 4
    assert {j.status for j in Job.objects.all()} == {JobStatus.DISPATCHED}
    dispatcher.submit(claimed)
    assert len(executor.submitted) == 1  # one chunk: chunk size 16 > 4 jobs
    assert all(Job.objects.values_list("call_id", flat=True))
    executor.hold = True
    dispatcher.poll()
    assert {j.status for j in Job.objects.all()} == {JobStatus.RUNNING}
    executor.hold = False
    dispatcher.poll()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert_counters_match_rows(batch)


def test_partial_failures_end_completed_with_failures(make_batch: Callable[..., Batch]) -> None:
    def script(job: JobInput) -> JobOutcome:
        if job.name in ("phenol", "caffeine"):
            return JobOutcome(job.job_id, ok=False, failure_reason="out_of_memory", message="CUDA OOM")
        return succeed(job)

    dispatcher = fake_dispatcher(FakeExecutor(script))
    batch = make_batch()
    dispatcher.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED_WITH_FAILURES
    assert (batch.n_succeeded, batch.n_failed, batch.n_active) == (2, 2, 0)
    failed = batch.jobs.get(name="phenol")
    assert failed.failure_reason == FailureReason.OUT_OF_MEMORY
    assert failed.attempts == 1  # permanent: not retried
    assert_counters_match_rows(batch)


def test_missing_output_fails_only_that_ligand(make_batch: Callable[..., Batch]) -> None:
    def script(job: JobInput) -> JobOutcome | None:
        return None if job.name == "ethanol" else succeed(job)

    dispatcher = fake_dispatcher(FakeExecutor(script))
    batch = make_batch()
    dispatcher.run_once()
    job = batch.jobs.get(name="ethanol")
    assert job.status == JobStatus.FAILED
    assert job.failure_reason == FailureReason.OUTPUT_MISSING
    assert batch.jobs.filter(status=JobStatus.SUCCEEDED).count() == 3


def test_transient_errors_retry_with_backoff_then_fail(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.call_error = ("executor_error", "container lost")
    dispatcher = fake_dispatcher(executor)
    batch = make_batch()
    dispatcher.run_once()
    job = batch.jobs.first()
    assert job is not None
    assert job.status == JobStatus.QUEUED
    assert job.not_before is not None and job.not_before > timezone.now()
    assert job.failure_reason == FailureReason.EXECUTOR_ERROR
    # Backoff holds the job back until it expires.
    assert dispatcher.claim() == []
    for _ in range(2):
        expire_backoff()
        dispatcher.run_once()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.attempts == 3
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED
    assert_counters_match_rows(batch)


def test_retry_then_success(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.call_error = ("timeout", "no result after 1800 s")
    dispatcher = fake_dispatcher(executor)
    batch = make_batch()
    dispatcher.run_once()
    executor.call_error = None
    expire_backoff()
    dispatcher.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert set(batch.jobs.values_list("attempts", flat=True)) == {2}


def test_unknown_failure_reason_is_classified_unknown(make_batch: Callable[..., Batch]) -> None:
    def script(job: JobInput) -> JobOutcome:
        return JobOutcome(job.job_id, ok=False, failure_reason="gremlins", message="?")

    dispatcher = fake_dispatcher(FakeExecutor(script))
    batch = make_batch()
    dispatcher.run_once()
    assert set(batch.jobs.values_list("failure_reason", flat=True)) == {FailureReason.UNKNOWN}


def test_cancel_is_honoured_when_a_late_result_arrives(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.hold = True
    dispatcher = fake_dispatcher(executor)
    batch = make_batch()
    dispatcher.run_once()
    # One job's result arrives late, after the user cancelled.
    late = batch.jobs.get(name="ethanol")
    batch_cancel(batch=batch)
    outcome = succeed(JobInput(str(late.pk), late.name, late.input_smiles))
    report = deliveries_apply(deliveries=[Delivery(batch.pk, late.claim_token, outcome)])
    assert (report.applied, report.refused) == (0, 1)
    late.refresh_from_db()
    assert late.status == JobStatus.CANCELLED
    # The dispatcher then cancels the executor call.
    dispatcher.poll()
    assert executor.cancelled and not dispatcher.calls
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert batch.n_cancelled == 4
    assert_counters_match_rows(batch)


def test_expired_lease_is_recovered(make_batch: Callable[..., Batch]) -> None:
    dead = fake_dispatcher(FakeExecutor())
    batch = make_batch()
    dead.submit(dead.claim())  # ... and the dispatcher dies here.
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    survivor = fake_dispatcher(FakeExecutor())
    assert survivor.reap() == 4
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.QUEUED}
    expire_backoff()
    survivor.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert_counters_match_rows(batch)


def test_live_leases_are_renewed_not_reaped(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.hold = True
    dispatcher = fake_dispatcher(executor)
    make_batch()
    dispatcher.run_once()
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    dispatcher.poll()  # renews
    assert dispatcher.reap() == 0


def test_two_dispatchers_never_claim_the_same_job(make_batch: Callable[..., Batch]) -> None:
    make_batch([f"C{'C' * i}O" for i in range(40)])
    first, second = fake_dispatcher(FakeExecutor()), fake_dispatcher(FakeExecutor())
    a = {j.pk for j in first.claim()}
    b = {j.pk for j in second.claim()}
    assert len(a) == 40 and not b


def test_in_flight_cap_is_respected(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.hold = True
    dispatcher = fake_dispatcher(executor, max_in_flight=3)
    make_batch()
    dispatcher.run_once()
    dispatcher.run_once()
    assert dispatcher.in_flight == 3
    assert Job.objects.filter(status=JobStatus.QUEUED).count() == 1


def test_claims_are_fair_across_users(make_batch: Callable[..., Batch], outsider: User) -> None:
    make_batch([f"C{'C' * i}O" for i in range(20)])
    make_batch([f"C{'C' * i}N" for i in range(20)], user=outsider)
    dispatcher = fake_dispatcher(FakeExecutor(), max_in_flight=10)
    claimed = dispatcher.claim()
    per_user: dict[int, int] = {}
    for job in claimed:
        per_user[job.owner_id] = per_user.get(job.owner_id, 0) + 1
    assert sorted(per_user.values()) == [5, 5]


def test_priority_goes_first_within_a_user(make_batch: Callable[..., Batch]) -> None:
    make_batch(["CCO", "CCN"], name="low")
    make_batch(["CCCO", "CCCN"], name="high", priority=5)
    dispatcher = fake_dispatcher(FakeExecutor(), max_in_flight=2)
    assert {j.batch.name for j in dispatcher.claim()} == {"high"}


def test_process_pool_executor_runs_real_chunks(make_batch: Callable[..., Batch]) -> None:
    dispatcher = Dispatcher(executors={"local": LocalExecutor(workers=1)})
    batch = make_batch()
    try:
        for _ in range(600):
            dispatcher.run_once()
            batch.refresh_from_db()
            if batch.status == BatchStatus.COMPLETED:
                break
            time.sleep(0.05)
    finally:
        dispatcher.shutdown()
    assert batch.status == BatchStatus.COMPLETED


def test_dispatch_command_once(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    call_command("dispatch", "--once", "--workers", "0")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_dispatch_command_until_idle(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    call_command("dispatch", "--until-idle", "--workers", "0", "--interval", "0")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_clean_shutdown_hands_jobs_back(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    executor.hold = True
    dispatcher = fake_dispatcher(executor)
    batch = make_batch()
    dispatcher.run_once()
    dispatcher.shutdown()
    assert executor.cancelled
    assert set(Job.objects.values_list("status", "attempts")) == {(JobStatus.QUEUED, 0)}
    assert_counters_match_rows(batch)
    fresh = fake_dispatcher(FakeExecutor())
    fresh.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_fair_share_does_not_starve_a_small_batch_behind_a_big_one(
    make_batch: Callable[..., Batch], outsider: User
) -> None:
    big = make_batch([f"C{'C' * (i % 40)}O{'N' * (i // 40)}" for i in range(400)], name="big")
    small = make_batch([f"C{'C' * i}S" for i in range(20)], user=outsider, name="small")
    executor = FakeExecutor()
    dispatcher = fake_dispatcher(executor, max_in_flight=8)
    dispatcher.run_once()
    first_pass = [job.job_id for request in executor.submitted for job in request.jobs]
    assert small.jobs.filter(pk__in=first_pass).count() == 4  # half the free slots
    for _ in range(4):
        dispatcher.run_once()
    small.refresh_from_db()
    big.refresh_from_db()
    assert small.status == BatchStatus.COMPLETED
    assert big.n_active > 300  # the big batch, queued first, is still far from done


def test_weights_give_a_heavier_user_a_larger_share(make_batch: Callable[..., Batch], outsider: User) -> None:
    make_batch([f"C{'C' * i}O" for i in range(30)])
    make_batch([f"C{'C' * i}N" for i in range(30)], user=outsider)
    weights = {outsider.pk: 3.0}
    dispatcher = fake_dispatcher(FakeExecutor(hold=True), max_in_flight=8)
    dispatcher.weights = lambda owners: {owner: weights.get(owner, 1.0) for owner in owners}
    per_user: dict[int, int] = {}
    for job in dispatcher.claim():
        per_user[job.owner_id] = per_user.get(job.owner_id, 0) + 1
    assert per_user == {outsider.pk: 6, Batch.objects.exclude(owner=outsider).get().owner_id: 2}


def test_an_identical_prediction_is_reused_not_run_again(make_batch: Callable[..., Batch]) -> None:
    executor = FakeExecutor()
    dispatcher = fake_dispatcher(executor)
    first = make_batch()
    dispatcher.run_once()
    second = make_batch(name="again")
    dispatcher.run_once()
    assert len(executor.submitted) == 1  # only the first batch reached the executor
    second.refresh_from_db()
    assert (second.status, second.n_succeeded, second.n_reused) == (BatchStatus.COMPLETED, 4, 4)
    reused = second.jobs.get(name="aspirin")
    original = first.jobs.get(name="aspirin")
    assert reused.reused_from == original.pk and reused.result == original.result
    different = make_batch(name="other seed", options={"random_seed": 7})
    dispatcher.run_once()
    assert len(executor.submitted) == 2  # other parameters: another prediction
    assert different.jobs.filter(reused_from__isnull=False).count() == 0


def test_a_durable_call_of_a_dead_dispatcher_is_adopted_not_spawned_again(
    make_batch: Callable[..., Batch],
) -> None:
    remote = FakeExecutor(hold=True, durable=True)  # one remote service (Modal), seen by both dispatchers
    dead = fake_dispatcher(remote)
    batch = make_batch()
    dead.submit(dead.claim())  # ... and the dispatcher dies here, its call still running remotely.
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    survivor = fake_dispatcher(remote)
    assert survivor.reap() == 4
    assert list(survivor.calls) == list(dead.calls)
    remote.hold = False
    survivor.poll()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert len(remote.submitted) == 1
    assert set(batch.jobs.values_list("attempts", flat=True)) == {1}
    assert_counters_match_rows(batch)


def test_the_modal_executor_is_wired_when_credentials_are_set(settings: Any) -> None:
    assert "modal" not in Dispatcher.from_settings(workers=0).executors
    settings.MODAL_TOKEN_ID, settings.MODAL_TOKEN_SECRET = "ak-test", "as-test"
    executors = Dispatcher.from_settings(workers=0).executors
    assert executors["modal"].durable and not executors["local"].durable


def test_a_failing_database_step_does_not_stop_the_pass(make_batch: Callable[..., Batch]) -> None:
    from django.db import OperationalError

    batch = make_batch()
    dispatcher = fake_dispatcher(FakeExecutor())
    original = dispatcher.reap
    dispatcher.reap = lambda: (_ for _ in ()).throw(OperationalError("deadlock detected"))  # type: ignore[method-assign]
    dispatcher.run_once()
    assert dispatcher.stats["reap_failed"] == 1
    dispatcher.reap = original  # type: ignore[method-assign]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_throughput_and_estimates_count_executed_jobs_only(make_batch: Callable[..., Batch]) -> None:
    cancelled = make_batch(name="cancelled while queued")
    batch_cancel(batch=cancelled)
    progress = batch_progress(cancelled)
    assert progress["jobs_per_second"] is None
    assert batch_outlook(cancelled, progress)["remaining"]["jobs"] == 0
    queued = make_batch(["CCO", "CCN"], name="queued")
    assert batch_outlook(queued, batch_progress(queued))["remaining"] == {
        "jobs": 2,
        "worker_seconds": 0.1,
        "gpu": None,
        "gpu_seconds": 0.0,
        "cost_usd": 0.0,
    }


def test_queue_position_counts_the_owners_jobs_ahead_and_the_users_sharing(
    make_batch: Callable[..., Batch], outsider: User
) -> None:
    first = make_batch([f"C{'C' * i}O" for i in range(10)], name="first")
    second = make_batch(["CCO", "CCN", "CCS"], name="second")
    urgent = make_batch(["CCCl"], name="urgent", priority=5)
    make_batch(["CCBr", "CCI"], user=outsider, name="theirs")
    assert queue_position(first) == {"batches_ahead": 1, "jobs_ahead": 1, "users_sharing": 2}
    assert queue_position(second) == {"batches_ahead": 2, "jobs_ahead": 11, "users_sharing": 2}
    assert queue_position(urgent) == {"batches_ahead": 0, "jobs_ahead": 0, "users_sharing": 2}


def test_a_queued_batch_gets_an_eta_from_the_hubs_throughput(make_batch: Callable[..., Batch]) -> None:
    running = make_batch([f"C{'C' * i}O" for i in range(8)], name="running")
    fake_dispatcher(FakeExecutor(), max_in_flight=4).run_once()  # 4 of 8 done
    Batch.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(seconds=4))
    waiting = make_batch(["CCO", "CCN"], name="waiting")
    outlook = batch_outlook(waiting, batch_progress(waiting))
    assert outlook["eta_basis"] == "hub"
    low, high = outlook["eta_seconds_range"]
    # 1 job/s; 4 of the owner's jobs ahead, 1 user: (4 + 2) / 1.
    assert low < 6 < high

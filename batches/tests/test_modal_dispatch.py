"""Boltz-2 batches through the dispatcher and the real ModalExecutor, over the
fake `modal` package: the engine's side of Modal, end to end."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.engine.modal_executor import ModalExecutor
from batches.engine.types import ChunkRequest
from batches.models import Batch, Job
from batches.states import BatchStatus, FailureReason, JobStatus
from batches.tests.fake_modal import FakeCloud
from batches.tests.test_modal_executor import errors, outcome_payloads
from batches.tests.test_transitions import assert_counters_match_rows


def modal_dispatcher() -> Dispatcher:
    return Dispatcher(executors={"modal": ModalExecutor.from_settings()})


def boltz_batch(make_batch: Callable[..., Batch]) -> Batch:
    return make_batch(model="boltz2", options={"use_msa": False})


def request_of(cloud: FakeCloud, call_id: str) -> ChunkRequest:
    from batches.engine import wire

    request, _ = wire.request_from_payload(cloud.calls[call_id].payload)
    return request


def test_a_boltz_batch_runs_through_modal_despite_transient_errors(
    make_batch: Callable[..., Batch], cloud: FakeCloud, configured: None
) -> None:
    batch = boltz_batch(make_batch)
    dispatcher = modal_dispatcher()
    dispatcher.run_once()
    (call_id,) = dispatcher.calls
    assert set(batch.jobs.values_list("call_id", flat=True)) == {call_id}  # recorded for adoption
    cloud.calls[call_id].script = [errors().ConnectionError("connection reset")]
    dispatcher.run_once()  # transient: still pending, nothing failed
    assert batch.jobs.filter(status=JobStatus.DISPATCHED).count() == 4
    cloud.finish(call_id, outcome_payloads(request_of(cloud, call_id), failed=1))
    dispatcher.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED_WITH_FAILURES
    assert (batch.n_succeeded, batch.n_failed) == (3, 1)
    done = batch.jobs.filter(status=JobStatus.SUCCEEDED).first()
    assert done is not None and done.affinity_pred_value == -1.0 and done.artifact.name.endswith(".cif")
    assert batch.jobs.get(status=JobStatus.FAILED).failure_reason == FailureReason.OUT_OF_MEMORY
    assert_counters_match_rows(batch)


def test_a_dead_dispatchers_modal_call_is_adopted_once_and_not_cancelled(
    make_batch: Callable[..., Batch], cloud: FakeCloud, configured: None
) -> None:
    batch = boltz_batch(make_batch)
    first = modal_dispatcher()
    first.run_once()
    (call_id,) = first.calls
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # first stalls or dies
    second = modal_dispatcher()
    second.run_once()
    assert list(second.calls) == [call_id] and len(cloud.calls) == 1  # adopted, never spawned again
    first.run_once()  # the stalled one wakes up: the call is no longer its own
    assert not first.calls and not cloud.calls[call_id].cancelled
    cloud.finish(call_id, outcome_payloads(request_of(cloud, call_id)))
    second.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert set(batch.jobs.values_list("attempts", flat=True)) == {1}
    assert_counters_match_rows(batch)


def test_a_modal_timeout_retries_then_fails_for_good(
    make_batch: Callable[..., Batch], cloud: FakeCloud, configured: None
) -> None:
    batch = boltz_batch(make_batch)
    dispatcher = modal_dispatcher()
    for _ in range(3):
        Job.objects.update(not_before=None)
        dispatcher.run_once()
        for call_id in list(dispatcher.calls):
            cloud.calls[call_id].script = [errors().FunctionTimeoutError("Function timed out after 2100 s")]
        dispatcher.run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED
    assert set(batch.jobs.values_list("failure_reason", "attempts")) == {(FailureReason.TIMEOUT, 3)}
    assert len(cloud.calls) == 3


def test_cancelling_a_batch_cancels_its_modal_call(
    make_batch: Callable[..., Batch], cloud: FakeCloud, configured: None, owner_client: Any
) -> None:
    batch = boltz_batch(make_batch)
    dispatcher = modal_dispatcher()
    dispatcher.run_once()
    (call_id,) = dispatcher.calls
    assert owner_client.post(f"/api/v3/batches/{batch.pk}/cancel").status_code == 200
    dispatcher.run_once()
    assert cloud.calls[call_id].cancelled and not dispatcher.calls
    cloud.finish(call_id, outcome_payloads(request_of(cloud, call_id)))  # a late result changes nothing
    batch.refresh_from_db()
    assert batch.n_cancelled == 4 and not batch.jobs.exclude(status=JobStatus.CANCELLED).exists()

"""Events are written as an outbox: in the transaction of the change, only for batches
with a URL, set-based, and never by sending anything from the dispatcher."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.engine.dispatcher import Dispatcher
from batches.engine.types import JobInput, JobOutcome
from batches.models import Batch, Job
from batches.services.lifecycle import batch_cancel, batch_retry_failed
from batches.states import BatchStatus, JobStatus
from batches.tests.fakes import FakeExecutor, succeed
from batches.webhooks.models import DeliveryStatus, WebhookDelivery
from batches.webhooks.sender import Sender
from batches.webhooks.tests.conftest import send_all
from batches.webhooks.tests.receivers import HANG, Receiver, refused_url

URL = "http://127.0.0.1:9/hook"


def fail_some(names: set[str]) -> Callable[[JobInput], JobOutcome]:
    def script(job: JobInput) -> JobOutcome:
        if job.name in names:
            return JobOutcome(job.job_id, ok=False, failure_reason="out_of_memory", message="CUDA OOM")
        return succeed(job)

    return script


def events(batch: Batch) -> list[str]:
    return sorted(WebhookDelivery.objects.filter(batch=batch).values_list("event", flat=True))


def test_a_completed_batch_announces_itself_once(
    hooked_batch: Callable[..., Batch], run_all: Callable[[], None]
) -> None:
    batch = hooked_batch(URL)
    run_all()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.url, delivery.status) == ("batch.completed", URL, DeliveryStatus.PENDING)
    assert delivery.owner_id == batch.owner_id
    data = delivery.payload["data"]["batch"]
    assert (data["id"], data["status"], data["total"], data["succeeded"]) == (str(batch.pk), "completed", 4, 4)
    assert delivery.payload["id"] == str(delivery.pk) and delivery.payload["type"] == "batch.completed"
    assert data["finished_at"] == batch.finished_at.isoformat()


def test_a_batch_without_a_url_writes_nothing(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    Dispatcher(executors={"local": FakeExecutor(fail_some({"phenol"}))}).run_once()
    batch_cancel(batch=make_batch())
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED_WITH_FAILURES
    assert not WebhookDelivery.objects.exists()


def test_failed_jobs_and_the_batch_outcome(hooked_batch: Callable[..., Batch]) -> None:
    batch = hooked_batch(URL)
    Dispatcher(executors={"local": FakeExecutor(fail_some({"phenol", "caffeine"}))}).run_once()
    assert events(batch) == ["batch.completed_with_failures", "job.failed", "job.failed"]
    failed = WebhookDelivery.objects.filter(event="job.failed").order_by("payload__data__job__index")
    job = Job.objects.get(batch=batch, name="phenol")
    first = failed[0]
    assert first.job_id == job.pk
    assert first.payload["data"]["job"] == {
        "id": str(job.pk),
        "index": job.index,
        "name": "phenol",
        "input_smiles": job.input_smiles,
        "canonical_smiles": job.canonical_smiles,
        "status": "failed",
        "attempts": 1,
        "failure_reason": "out_of_memory",
        "failure_message": "CUDA OOM",
        "finished_at": job.finished_at.isoformat(),
    }
    assert first.payload["data"]["batch"] == {"id": str(batch.pk), "name": batch.name}


def test_every_job_failing_sends_batch_failed(hooked_batch: Callable[..., Batch]) -> None:
    batch = hooked_batch(URL, ["CCO", "CCN"])
    Dispatcher(executors={"local": FakeExecutor(fail_some({"ligand_1", "ligand_2"}))}).run_once()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED
    assert events(batch) == ["batch.failed", "job.failed", "job.failed"]


def test_a_failure_that_will_be_retried_sends_nothing_until_the_last_attempt(
    hooked_batch: Callable[..., Batch], settings: Any
) -> None:
    batch = hooked_batch(URL, ["CCO"], max_attempts=2)
    executor = FakeExecutor()
    executor.call_error = ("executor_error", "container lost")
    dispatcher = Dispatcher(executors={"local": executor})
    dispatcher.run_once()
    assert events(batch) == []  # queued again
    Job.objects.update(not_before=None)
    dispatcher.run_once()
    assert events(batch) == ["batch.failed", "job.failed"]


def test_a_retried_batch_announces_its_end_again(hooked_batch: Callable[..., Batch]) -> None:
    batch = hooked_batch(URL)
    Dispatcher(executors={"local": FakeExecutor(fail_some({"phenol"}))}).run_once()
    batch_retry_failed(batch=batch)
    Dispatcher(executors={"local": FakeExecutor()}).run_once()
    assert events(batch) == ["batch.completed", "batch.completed_with_failures", "job.failed"]


def test_cancelling_sends_batch_cancelled(hooked_batch: Callable[..., Batch]) -> None:
    batch = hooked_batch(URL)
    batch_cancel(batch=batch)
    assert events(batch) == ["batch.cancelled"]
    assert WebhookDelivery.objects.get().payload["data"]["batch"]["cancelled"] == 4


def test_cancelling_a_validating_batch_sends_batch_cancelled(hooked_batch: Callable[..., Batch]) -> None:
    batch = hooked_batch(URL)
    Job.objects.filter(batch=batch).delete()  # still validating: no jobs yet
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.VALIDATING, finished_at=None)
    batch_cancel(batch=batch)
    assert events(batch) == ["batch.cancelled"]
    assert WebhookDelivery.objects.get().payload["data"]["batch"]["status"] == "cancelled"


def test_the_outbox_row_rolls_back_with_its_change(hooked_batch: Callable[..., Batch]) -> None:
    batch = hooked_batch(URL)
    with pytest.raises(RuntimeError), transaction.atomic():
        batch_cancel(batch=batch)
        assert events(batch) == ["batch.cancelled"]  # written inside the transaction...
        raise RuntimeError("the change fails after its event was written")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.QUEUED
    assert events(batch) == []  # ...and gone with it


def test_reaped_jobs_out_of_attempts_send_job_failed(hooked_batch: Callable[..., Batch]) -> None:
    batch = hooked_batch(URL, ["CCO", "CCN"], max_attempts=1)
    dead = Dispatcher(executors={"local": FakeExecutor()})
    dead.submit(dead.claim())  # ... and the dispatcher dies here.
    Job.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    Dispatcher(executors={"local": FakeExecutor()}).reap()
    assert events(batch) == ["batch.failed", "job.failed", "job.failed"]
    ids = set(WebhookDelivery.objects.filter(event="job.failed").values_list("job_id", flat=True))
    assert ids == set(batch.jobs.values_list("pk", flat=True))


def test_a_burst_of_failures_is_inserted_in_one_statement(hooked_batch: Callable[..., Batch]) -> None:
    ligands = [f"C{'C' * i}O" for i in range(40)]
    batch = hooked_batch(URL, ligands)
    dispatcher = Dispatcher(executors={"local": FakeExecutor(lambda job: fail_some({job.name})(job))})
    with CaptureQueriesContext(connection) as queries:
        dispatcher.run_once()
    insert = 'INSERT INTO "batches_webhookdelivery"'
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(insert)]
    assert WebhookDelivery.objects.filter(event="job.failed").count() == 40
    # One INSERT for the 40 job.failed (the chunk's jobs are one ingest), one for batch.failed.
    assert len(inserts) == 2
    assert events(batch).count("batch.failed") == 1


def test_the_dispatcher_finishes_jobs_while_the_receiver_hangs_and_sends_nothing(
    hooked_batch: Callable[..., Batch],
    run_all: Callable[[], None],
    receiver: Callable[..., Receiver],
    sender: Sender,
    settings: Any,
) -> None:
    """The real dispatcher and local executor: a hanging receiver and one that is down
    change nothing for the jobs, and the dispatcher itself opens no connection to either."""
    hanging = receiver(HANG)
    slow_batch = hooked_batch(hanging.url, ["CCO", "c1ccccc1O"])
    down_batch = hooked_batch(refused_url(), ["CCN"])
    run_all()
    for batch in (slow_batch, down_batch):
        batch.refresh_from_db()
        assert batch.status == BatchStatus.COMPLETED
        assert batch.jobs.filter(status=JobStatus.SUCCEEDED).count() == batch.n_total
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.PENDING, 0)}
    assert hanging.connections == 0 and not hanging.requests
    # Only the background worker sends: the hanging receiver times out, the other is down.
    send_all(sender)
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.PENDING, 1)}
    assert hanging.connections == 1

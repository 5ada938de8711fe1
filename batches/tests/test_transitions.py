from collections.abc import Callable

import pytest

from batches.models import Batch, Job
from batches.services.transitions import derive_status, job_transition, jobs_transition
from batches.states import BatchStatus, JobStatus


def finish(job: Job, target: str) -> bool:
    """Move a dispatched or running job to `target`."""
    held = (JobStatus.DISPATCHED, JobStatus.RUNNING)
    return jobs_transition(jobs=Job.objects.filter(pk=job.pk), sources=held, target=target) == 1


def counters(batch: Batch) -> dict[str, int]:
    batch.refresh_from_db()
    return {s: getattr(batch, f"n_{s}") for s in JobStatus.values}


def assert_counters_match_rows(batch: Batch) -> None:
    rows = {s: Job.objects.filter(batch=batch, status=s).count() for s in JobStatus.values}
    assert counters(batch) == rows


def test_new_batch_counts_every_job_queued(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    assert batch.status == BatchStatus.QUEUED
    assert batch.n_total == batch.n_queued == 4
    assert_counters_match_rows(batch)


def test_transition_is_conditional_and_counted_once(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    job = batch.jobs.first()
    assert job is not None
    assert job_transition(job=job, source=JobStatus.QUEUED, target=JobStatus.DISPATCHED)
    # A second dispatcher holding a stale copy loses: nothing moves twice.
    stale = Job.objects.get(pk=job.pk)
    stale.status = JobStatus.QUEUED
    assert not job_transition(job=stale, source=JobStatus.QUEUED, target=JobStatus.DISPATCHED)
    assert_counters_match_rows(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.started_at is not None


def test_illegal_transition_is_refused(make_batch: Callable[..., Batch]) -> None:
    job = make_batch().jobs.first()
    assert job is not None
    with pytest.raises(ValueError):
        job_transition(job=job, source=JobStatus.QUEUED, target=JobStatus.SUCCEEDED)
    with pytest.raises(ValueError):
        job_transition(job=job, source=JobStatus.SUCCEEDED, target=JobStatus.QUEUED)


def test_version_increases_with_every_change(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    before = batch.version
    jobs_transition(jobs=batch.jobs.all(), sources=(JobStatus.QUEUED,), target=JobStatus.DISPATCHED)
    batch.refresh_from_db()
    assert batch.version > before


def _finish_all(batch: Batch, outcomes: list[str]) -> None:
    jobs_transition(jobs=batch.jobs.all(), sources=(JobStatus.QUEUED,), target=JobStatus.DISPATCHED)
    for job, target in zip(batch.jobs.order_by("index"), outcomes, strict=True):
        assert finish(job, target)


@pytest.mark.parametrize(
    "outcomes,expected",
    [
        (["succeeded"] * 4, BatchStatus.COMPLETED),
        (["succeeded", "failed", "succeeded", "failed"], BatchStatus.COMPLETED_WITH_FAILURES),
        (["failed"] * 4, BatchStatus.FAILED),
    ],
)
def test_batch_status_follows_the_last_job_in_the_same_transaction(
    make_batch: Callable[..., Batch], outcomes: list[str], expected: str
) -> None:
    batch = make_batch()
    _finish_all(batch, outcomes)
    batch.refresh_from_db()
    assert batch.status == expected
    assert batch.finished_at is not None
    assert_counters_match_rows(batch)


def test_a_batch_is_not_finished_while_one_job_is_active(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    jobs_transition(jobs=batch.jobs.all(), sources=(JobStatus.QUEUED,), target=JobStatus.DISPATCHED)
    for job in list(batch.jobs.order_by("index"))[:3]:
        finish(job, JobStatus.SUCCEEDED)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.finished_at is None


def test_derive_status_keeps_cancelled(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    batch.status = BatchStatus.CANCELLED
    assert derive_status(batch) == BatchStatus.CANCELLED

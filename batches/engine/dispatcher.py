"""The dispatcher: claim → submit → poll → ingest, plus reaping expired leases.

Each step is a small method tests call one at a time. Several dispatchers may
run at once: claims are conditional updates stamped with a per-claim token.
"""

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from batches.catalog import get_model
from batches.engine.local import LocalExecutor
from batches.engine.types import ChunkRequest, Executor, ExecutorUnavailable, JobInput, JobOutcome
from batches.models import Job
from batches.registry import ModelSpec
from batches.services.ingest import job_record_failure, job_record_outcome
from batches.services.transitions import apply_counts, jobs_transition
from batches.states import JOB_ACTIVE, FailureReason, JobStatus

log = logging.getLogger(__name__)


@dataclass
class Call:
    executor: Executor
    job_ids: list[str]
    seen_running: bool = False


@dataclass
class Dispatcher:
    executors: dict[str, Executor]
    max_in_flight: int = field(default_factory=lambda: settings.OMTX_MAX_IN_FLIGHT)
    lease_seconds: int = field(default_factory=lambda: settings.OMTX_LEASE_SECONDS)
    calls: dict[str, Call] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, *, workers: int | None = None) -> "Dispatcher":
        local = LocalExecutor(settings.OMTX_EXECUTOR_WORKERS if workers is None else workers)
        return cls(executors={"local": local})

    @property
    def in_flight(self) -> int:
        return sum(len(call.job_ids) for call in self.calls.values())

    def run_once(self) -> int:
        """One pass of every step; returns how many jobs changed hands."""
        self.reap()
        claimed = self.claim()
        self.submit(claimed)
        return len(claimed) + self.poll()

    # -- claim -------------------------------------------------------------

    def claim(self) -> list[Job]:
        capacity = self.max_in_flight - self.in_flight
        if capacity <= 0:
            return []
        now = timezone.now()
        ready = Job.objects.filter(Q(not_before__isnull=True) | Q(not_before__lte=now), status=JobStatus.QUEUED)
        owners = list(ready.order_by().values_list("owner_id", flat=True).distinct()[:200])
        if not owners:
            return []
        # Fair share: every user with queued work gets an equal slice of the
        # free capacity, then priority and age decide within the slice.
        share = max(1, capacity // len(owners))
        candidates: list[str] = []
        for owner_id in owners:
            slice_ = ready.filter(owner_id=owner_id).order_by("-priority", "created_at", "index")[:share]
            candidates += [str(pk) for pk in slice_.values_list("pk", flat=True)]
        return self._take(candidates[:capacity], now)

    def _take(self, candidates: list[str], now: datetime) -> list[Job]:
        token = uuid.uuid4().hex
        with transaction.atomic():
            Job.objects.filter(pk__in=candidates, status=JobStatus.QUEUED).update(
                status=JobStatus.DISPATCHED,
                claim_token=token,
                attempts=F("attempts") + 1,
                call_id="",
                lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                started_at=now,
            )
            per_batch = Job.objects.filter(claim_token=token).values("batch_id").annotate(n=Count("pk"))
            for row in per_batch:
                apply_counts(row["batch_id"], {JobStatus.QUEUED: -row["n"], JobStatus.DISPATCHED: row["n"]})
        return list(Job.objects.filter(claim_token=token).select_related("batch__target").order_by("batch_id", "index"))

    # -- submit ------------------------------------------------------------

    def submit(self, jobs: list[Job]) -> None:
        by_batch: dict[object, list[Job]] = defaultdict(list)
        for job in jobs:
            by_batch[job.batch_id].append(job)
        for batch_jobs in by_batch.values():
            batch = batch_jobs[0].batch
            spec = get_model(batch.model)
            for start in range(0, len(batch_jobs), spec.chunk_size):
                self._submit_chunk(batch_jobs[start : start + spec.chunk_size], spec)

    def _submit_chunk(self, chunk: list[Job], spec: ModelSpec) -> None:
        batch = chunk[0].batch
        request = ChunkRequest(
            model=spec.name,
            target_sequence=batch.target.sequence,
            params=dict(batch.options),
            jobs=tuple(JobInput(str(job.pk), job.name, job.canonical_smiles) for job in chunk),
        )
        executor = self.executors.get(spec.executor)
        try:
            if executor is None:
                raise ExecutorUnavailable(f"no {spec.executor} executor in this dispatcher")
            call_id = executor.submit(request, timeout_seconds=spec.timeout_seconds)
        except ExecutorUnavailable as exc:
            for job in chunk:
                job_record_failure(job=job, reason=FailureReason.EXECUTOR_ERROR, message=str(exc))
            return
        Job.objects.filter(pk__in=[job.pk for job in chunk], status=JobStatus.DISPATCHED).update(call_id=call_id)
        self.calls[call_id] = Call(executor=executor, job_ids=[str(job.pk) for job in chunk])

    # -- poll and ingest ---------------------------------------------------

    def poll(self) -> int:
        finished = 0
        for call_id in list(self.calls):
            finished += self._poll_call(call_id, self.calls[call_id])
        self._renew_leases()
        return finished

    def _poll_call(self, call_id: str, call: Call) -> int:
        jobs = {str(j.pk): j for j in Job.objects.filter(pk__in=call.job_ids).select_related("batch")}
        if not any(job.status in JOB_ACTIVE for job in jobs.values()):
            # Every job was cancelled meanwhile: cancel the executor call too.
            call.executor.cancel(call_id)
            del self.calls[call_id]
            return 0
        result = call.executor.poll(call_id)
        if result.state in ("pending", "running"):
            if result.state == "running" and not call.seen_running:
                call.seen_running = True
                jobs_transition(
                    jobs=Job.objects.filter(pk__in=call.job_ids),
                    sources=(JobStatus.DISPATCHED,),
                    target=JobStatus.RUNNING,
                )
            return 0
        del self.calls[call_id]
        if result.state == "error":
            for job in jobs.values():
                job_record_failure(job=job, reason=result.failure_reason, message=result.message)
            return len(jobs)
        self._ingest(jobs, result.outcomes)
        return len(jobs)

    def _ingest(self, jobs: dict[str, Job], outcomes: tuple[JobOutcome, ...]) -> None:
        for outcome in outcomes:
            job = jobs.pop(outcome.job_id, None)
            if job is not None:
                job_record_outcome(job=job, outcome=outcome)
        for job in jobs.values():
            # The executor finished the call but said nothing about this job.
            job_record_failure(job=job, reason=FailureReason.OUTPUT_MISSING, message="no result returned for this job")

    def _renew_leases(self) -> None:
        ids = [job_id for call in self.calls.values() for job_id in call.job_ids]
        expires = timezone.now() + timedelta(seconds=self.lease_seconds)
        for start in range(0, len(ids), 1000):
            Job.objects.filter(pk__in=ids[start : start + 1000], status__in=JOB_ACTIVE[1:]).update(
                lease_expires_at=expires
            )

    # -- reap --------------------------------------------------------------

    def reap(self) -> int:
        """Recover jobs whose dispatcher died: their lease ran out and no live
        dispatcher renews it. The local pool died with its process, so the
        job goes back to the queue (or fails once attempts are used up)."""
        expired = (
            Job.objects.filter(status__in=JOB_ACTIVE[1:], lease_expires_at__lt=timezone.now())
            .exclude(call_id__in=list(self.calls))
            .select_related("batch")
        )
        recovered = 0
        for job in expired[:500]:
            recovered += job_record_failure(
                job=job, reason=FailureReason.EXECUTOR_ERROR, message="lease expired: the dispatcher stopped"
            )
        return recovered

    def release(self) -> int:
        """Hand in-flight jobs back to the queue on a clean stop, so they
        need not wait for their lease to expire."""
        ids = [job_id for call in self.calls.values() for job_id in call.job_ids]
        for call_id, call in self.calls.items():
            call.executor.cancel(call_id)
        self.calls.clear()
        return jobs_transition(
            jobs=Job.objects.filter(pk__in=ids),
            sources=JOB_ACTIVE[1:],
            target=JobStatus.QUEUED,
            call_id="",
            lease_expires_at=None,
            attempts=F("attempts") - 1,
        )

    def shutdown(self) -> None:
        self.release()
        for executor in self.executors.values():
            if isinstance(executor, LocalExecutor):
                executor.shutdown()

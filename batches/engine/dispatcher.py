"""The dispatcher: reap → claim → submit → poll → ingest, with a lease heartbeat.

Each step is a small method tests call one at a time. Several dispatchers may
run at once; they share nothing but the database:
- a claim stamps jobs with a fresh token, and every later write is
  conditioned on it (services/claims.py, services/ingest.py);
- `renew` (run by `loop.Heartbeat` in its own thread) keeps the leases of held jobs
  fresh however long a step takes, so a live dispatcher is never reaped;
- a dead dispatcher's jobs are reaped in bulk: adopted by call id when the
  executor is durable (Modal), else queued again;
- a database error in a step (deadlock, serialization failure, lost
  connection) is retried, then left for the next pass; the loop never dies
  on one, and outcomes not yet stored stay in memory until they are.
"""

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from uuid import UUID

from django.conf import settings

from batches.catalog import BOLTZ2, MODELS, get_model
from batches.engine import steps
from batches.engine.fairness import claim_plan
from batches.engine.holdings import Call, Holdings
from batches.engine.local import LocalExecutor
from batches.engine.modal_executor import ModalExecutor, modal_problem
from batches.engine.outcomes import call_outcomes, reuse_delivery
from batches.engine.types import ChunkRequest, Executor, ExecutorUnavailable, JobInput, JobOutcome
from batches.models import Job
from batches.queue import call_in_flight, dispatch_queue, reusable_results
from batches.services.claims import (
    Hold,
    claim_jobs,
    mark_running,
    reap_expired,
    record_calls,
    release_jobs,
    renew_leases,
    still_held,
)
from batches.services.ingest import Delivery, IngestReport, deliveries_apply, failure_outcomes, save_artifacts
from batches.states import JobStatus
from monitoring import prometheus as metrics
from ratelimit.tiers import tier_weights

log = logging.getLogger(__name__)
T = TypeVar("T")
STOP_CHECK_SECONDS = 0.5
FED_WAIT_SECONDS = 2.0


def equal_weights(owner_ids: Iterable[int]) -> dict[int, float]:
    return dict.fromkeys(owner_ids, 1.0)


@dataclass
class Dispatcher:
    executors: dict[str, Executor]
    # Jobs in flight across every dispatcher, and in this one.
    max_in_flight: int = field(default_factory=lambda: settings.OMTX_MAX_IN_FLIGHT)
    capacity: int = field(default_factory=lambda: settings.OMTX_DISPATCHER_CAPACITY)
    lease_seconds: int = field(default_factory=lambda: settings.OMTX_LEASE_SECONDS)
    weights: Callable[[Iterable[int]], dict[int, float]] = tier_weights
    stats: Counter[str] = field(default_factory=Counter)
    holdings: Holdings = field(default_factory=Holdings)

    @classmethod
    def from_settings(cls, *, workers: int | None = None) -> "Dispatcher":
        """The local pool always; the Modal executor when its credentials are set."""
        executors: dict[str, Executor] = {
            "local": LocalExecutor(settings.OMTX_EXECUTOR_WORKERS if workers is None else workers)
        }
        if not modal_problem(BOLTZ2.name):
            executors["modal"] = ModalExecutor.from_settings()
        return cls(executors=executors)

    @property
    def calls(self) -> dict[str, Call]:
        return self.holdings.calls

    @property
    def backlog(self) -> list[Delivery]:
        return self.holdings.backlog

    @property
    def in_flight(self) -> int:
        return self.holdings.in_flight

    def held(self) -> list[Hold]:
        return self.holdings.held()

    def held_tokens(self) -> set[str]:
        return self.holdings.held_tokens()

    def run_once(self) -> int:
        """One pass of every step; returns how many jobs changed hands."""
        moved = self._step("reap", self.reap, 0)
        claimed: list[Job] = self._step("claim", self.claim, [])
        self._step("submit", lambda: self.submit(claimed), None)
        return moved + len(claimed) + self._step("poll", self.poll, 0)

    def wait(self, timeout: float, *, stop: threading.Event, moved: int = 0) -> None:
        """Between passes. The local pool keeps its workers fed from its own
        queue, so while it has work the dispatcher sleeps until it is hungry,
        up to FED_WAIT_SECONDS (the pace of reaping and of noticing a cancel),
        even after a pass that `moved` jobs: its bookkeeping then runs once per
        many chunks, not once per chunk. Otherwise the next pass runs at once
        after a pass that moved jobs, else after `timeout` or on `stop`."""
        pool = self.executors.get("local")
        # A pass that moved nothing while the pool was hungry failed to take
        # its results (the database is away): pause, do not spin.
        if isinstance(pool, LocalExecutor) and pool.workers and pool.has_work and (moved or not pool.hungry):
            deadline = time.monotonic() + max(timeout, FED_WAIT_SECONDS)
            while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
                if pool.wait(min(remaining, STOP_CHECK_SECONDS)):
                    return
        elif not moved:
            stop.wait(timeout)

    # -- heartbeat -----------------------------------------------------------

    def renew(self) -> int:
        """Push out the leases of every job this dispatcher holds. The
        heartbeat's job, not a pass's: each renewal rewrites every held row,
        so doing it every pass too would be hundreds of writes a second."""
        return renew_leases(holds=self.held(), lease_seconds=self.lease_seconds)

    # -- reap ----------------------------------------------------------------

    def reap(self) -> int:
        """Recover jobs of dispatchers that died: adopt their durable calls,
        queue the rest again."""
        durable = {
            name
            for name, spec in MODELS.items()
            if spec.executor in self.executors and self.executors[spec.executor].durable
        }
        token = self.holdings.new_token()
        try:
            reaped = self._retrying(
                reap_expired,
                token=token,
                lease_seconds=self.lease_seconds,
                durable_models=durable,
                exclude_tokens=self.held_tokens() - {token},
            )
            for call_id, (model, hold) in reaped.adopted.items():
                spec = get_model(model)
                self.holdings.add_call(Call(call_id, self.executors[spec.executor], hold, gpu=bool(spec.gpu)))
        finally:
            self.holdings.drop_token(token)
        self.stats["reaped"] += reaped.requeued + reaped.failed
        adopted = sum(len(hold.job_ids) for _, hold in reaped.adopted.values())
        self.stats["adopted"] += adopted
        return reaped.requeued + reaped.failed + adopted

    # -- claim ---------------------------------------------------------------

    def claim(self) -> list[Job]:
        jobs, short = self._claim_round(self.capacity - self.in_flight, exclude=set())
        # A batch can deliver fewer jobs than planned: its duplicates of a
        # molecule in flight wait for it. One more round spends those slots on
        # the other batches instead of leaving them idle for a pass.
        if short:
            more, _ = self._claim_round(self.capacity - self.in_flight - len(jobs), exclude=short)
            jobs += more
        return jobs

    def _claim_round(self, room: int, *, exclude: set[UUID]) -> tuple[list[Job], set[UUID]]:
        """The jobs claimed, and the batches that delivered fewer than planned."""
        if room <= 0:
            return [], set()
        batches, held = dispatch_queue()
        free = min(room, self.max_in_flight - sum(held.values()))
        if free <= 0:
            return [], set()
        batches = [batch for batch in batches if batch.id not in exclude]
        plan = claim_plan(
            free=free, batches=batches, held=held, weights=self.weights({b.owner_id for b in batches} | held.keys())
        )
        if not plan:
            return [], set()
        token = self.holdings.new_token()
        try:
            jobs = self._retrying(claim_jobs, plan=plan, token=token, lease_seconds=self.lease_seconds)
        except BaseException:
            # Nothing, or jobs we will never submit, was claimed: let the
            # heartbeat forget the token so their lease runs out.
            self.holdings.drop_token(token)
            raise
        delivered = Counter(job.batch_id for job in jobs)
        short = {batch_id for batch_id, wanted in plan if delivered[batch_id] < wanted}
        if not jobs:
            self.holdings.drop_token(token)
            return [], short
        self.holdings.claimed(token, jobs)
        metrics.JOBS_DISPATCHED.inc(len(jobs))
        return jobs, short

    # -- submit --------------------------------------------------------------

    def submit(self, jobs: list[Job]) -> None:
        """Reuse earlier predictions, send the rest to executors in chunks,
        and record each call id on its jobs."""
        if not jobs:
            return
        try:
            self._send(jobs)
        finally:
            # Whatever was not sent (the step failed) is no longer renewed:
            # its lease runs out and the reaper queues it again.
            for token in {job.claim_token for job in jobs}:
                self.holdings.drop_token(token)
        self._flush()

    def _send(self, jobs: list[Job]) -> None:
        by_batch: dict[UUID, list[Job]] = defaultdict(list)
        reusable = self._retrying(reusable_results, keys=[job.reuse_key for job in jobs])
        for job in jobs:
            reused = reuse_delivery(job, reusable[job.reuse_key]) if job.reuse_key in reusable else None
            if reused is not None:
                self.backlog.append(reused)
            else:
                by_batch[job.batch_id].append(job)
        recorded: dict[str, Hold] = {}
        for batch_jobs in by_batch.values():
            spec = get_model(batch_jobs[0].batch.model)
            for start in range(0, len(batch_jobs), spec.chunk_size):
                self._spawn(batch_jobs[start : start + spec.chunk_size], recorded)
        if recorded:
            self._step("record_calls", lambda: self._retrying(record_calls, calls=recorded), 0)

    def _spawn(self, chunk: list[Job], recorded: dict[str, Hold]) -> None:
        batch = chunk[0].batch
        spec = get_model(batch.model)
        hold = Hold(batch.pk, chunk[0].claim_token, tuple(str(job.pk) for job in chunk))
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
            # A chunk holds one batch's jobs (`_send`), so one batch's timeout.
            call_id = executor.submit(request, timeout_seconds=batch.attempt_timeout)
        except Exception as exc:  # an executor that cannot take the chunk fails it, not the dispatcher
            log.warning("submit to %s failed: %r", spec.executor, exc)
            message = f"could not submit to the {spec.executor} executor: {exc}"
            self._deliver(hold, failure_outcomes(list(hold.job_ids), reason="executor_error", message=message))
            return
        self.holdings.add_call(Call(call_id, executor, hold, gpu=bool(spec.gpu)))
        recorded[call_id] = hold

    # -- poll and ingest -----------------------------------------------------

    def poll(self) -> int:
        """Ask each call how it is doing; store what finished. Calls whose
        jobs are all gone (cancelled, reaped) are cancelled in the executor."""
        if not self.calls:
            self._flush()
            return 0
        ours = self._retrying(still_held, holds=[call.hold for call in self.calls.values()])
        finished = 0
        started: list[Call] = []
        for call_id, call in list(self.calls.items()):
            alive = tuple(job_id for job_id in call.hold.job_ids if job_id in ours)
            if not alive:
                self._lost(call_id, call)
                continue
            call.hold = replace(call.hold, job_ids=alive)
            finished += self._poll_call(call_id, call, started)
        if started:
            self._step("mark_running", lambda: self._mark_running(started), None)
        self._flush()
        return finished

    def _poll_call(self, call_id: str, call: Call, started: list[Call]) -> int:
        try:
            result = call.executor.poll(call_id)
        except Exception as exc:  # an executor hiccup leaves the call for the next pass
            log.warning("poll of %s failed: %r", call_id, exc)
            self.stats["poll_errors"] += 1
            metrics.EXECUTOR_ERRORS.labels("poll_error").inc()
            return 0
        if result.state in ("pending", "running"):
            if result.state == "running" and not call.seen_running:
                started.append(call)
            return 0
        self.holdings.drop_call(call_id)
        if call.gpu:
            metrics.GPU_SECONDS.inc(time.monotonic() - call.since)
        self._deliver(call.hold, call_outcomes(call.hold, result))
        return len(call.hold.job_ids)

    def _mark_running(self, calls: list[Call]) -> None:
        self._retrying(mark_running, holds=[call.hold for call in calls])
        for call in calls:
            call.seen_running = True

    def _deliver(self, hold: Hold, outcomes: list[JobOutcome]) -> None:
        self.holdings.backlog += [Delivery(hold.batch_id, hold.token, outcome) for outcome in outcomes]

    def _flush(self) -> None:
        """Store the backlog, one batch at a time; what fails stays for the next
        pass. The backlog is replaced only at the end, so the heartbeat keeps
        renewing these jobs while they are being stored."""
        by_batch: dict[UUID, list[Delivery]] = defaultdict(list)
        for delivery in self.backlog:
            by_batch[delivery.batch_id].append(delivery)
        kept: list[Delivery] = []
        for batch_id, deliveries in by_batch.items():
            try:
                # Files once, outside the retries: a retried transaction must
                # not store another copy of each file.
                deliveries = save_artifacts(deliveries)
                report = self._retrying(deliveries_apply, deliveries=deliveries)
            except Exception as exc:  # database or storage away: nothing is lost, the next pass tries again
                log.warning("storing %d outcomes of batch %s failed, kept: %r", len(deliveries), batch_id, exc)
                kept += deliveries
                continue
            self.stats["applied"] += report.applied
            self.stats["refused"] += report.refused
            _count(report)
            if report.refused:
                log.info("refused %d outcomes of batch %s: jobs no longer held", report.refused, batch_id)
        self.holdings.backlog = kept

    def _lost(self, call_id: str, call: Call) -> None:
        """None of the call's jobs is ours any more. Cancel the work, unless a
        durable call was adopted by another dispatcher (our lease lapsed):
        then it is theirs to poll, and cancelling it would waste it."""
        if call.executor.durable and call_in_flight(call_id):
            self.holdings.drop_call(call_id)
            self.stats["calls_handed_over"] += 1
            return
        self._cancel(call_id, call)

    def _cancel(self, call_id: str, call: Call) -> None:
        try:
            call.executor.cancel(call_id)
        except Exception as exc:  # the jobs are already cancelled; a failed cancel wastes compute only
            log.warning("cancel of %s failed: %r", call_id, exc)
        self.holdings.drop_call(call_id)
        self.stats["calls_cancelled"] += 1

    # -- stop ----------------------------------------------------------------

    def release(self) -> int:
        """Clean stop: store what finished, cancel local calls and hand their
        jobs back at once; durable calls keep running and their jobs are
        handed over by expiring their lease, for another dispatcher to adopt."""
        self._flush()
        local: list[Hold] = []
        durable: list[Hold] = []
        for call_id, call in list(self.calls.items()):
            (durable if call.executor.durable else local).append(call.hold)
            if not call.executor.durable:
                self._cancel(call_id, call)
        self.holdings.drop_calls()
        if durable:
            self._retrying(renew_leases, holds=durable, lease_seconds=0)
        return self._retrying(release_jobs, holds=local) if local else 0

    def shutdown(self) -> None:
        try:
            self.release()
        finally:
            for executor in self.executors.values():
                executor.shutdown()

    # -- plumbing ------------------------------------------------------------

    def _retrying(self, fn: Callable[..., T], **kwargs: Any) -> T:
        return steps.retrying(self.stats, fn, **kwargs)

    def _step(self, name: str, fn: Callable[[], T], default: T) -> T:
        return steps.step(self.stats, name, fn, default)


# A failed attempt queued again is counted as "retried": it is not the job's outcome yet.
OUTCOMES: dict[str, str] = {JobStatus.SUCCEEDED: "succeeded", JobStatus.FAILED: "failed", JobStatus.QUEUED: "retried"}


def _count(report: IngestReport) -> None:
    for status, n in report.statuses.items():
        metrics.JOBS_COMPLETED.labels(OUTCOMES.get(status, status)).inc(n)
    for reason, n in report.failures.items():
        metrics.EXECUTOR_ERRORS.labels(reason).inc(n)

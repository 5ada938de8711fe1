"""A dispatcher's hold on jobs: claim, record calls, renew, release, reap.

Set-based: one statement per step per batch at most, never one transaction
per job. Every write after the claim is conditioned on the claim token, so a
dispatcher that lost a job (reaped, cancelled, handed back) writes nothing.
Lock order as in `transitions`: batch rows first, then jobs.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction
from django.db.models import F, Q, QuerySet, Subquery
from django.utils import timezone

from batches.models import Batch, Job
from batches.services.retry import retry_decision
from batches.services.transitions import CHUNK, apply_counts, held_jobs, lock_batches, update_held_rows
from batches.states import BATCH_ACTIVE, FailureReason, JobStatus
from batches.webhooks.outbox import job_failed_enqueue

HELD = (JobStatus.DISPATCHED, JobStatus.RUNNING)


def claim_jobs(*, plan: list[tuple[UUID, int]], token: str, lease_seconds: int) -> list[Job]:
    """Claim up to n ready jobs of each (batch, n) in `plan`, in input order,
    stamping them with `token`. Returns the claimed jobs with batch and target."""
    now = timezone.now()
    claimed: list[UUID] = []
    with transaction.atomic():
        batches = lock_batches(batch_id for batch_id, _ in plan)
        for batch_id, wanted in plan:
            batch = batches.get(batch_id)
            if batch is None or batch.status not in BATCH_ACTIVE:
                continue
            if _claim_batch(batch, _within_cap(batch, wanted), token, lease_seconds, now):
                claimed.append(batch_id)
        # Read inside the transaction: a failure here rolls the claim back,
        # so a retried claim cannot strand the first one's jobs.
        jobs = Job.objects.filter(batch_id__in=claimed, claim_token=token, status=JobStatus.DISPATCHED)
        return list(jobs.select_related("batch__target").order_by("batch_id", "index"))


def _within_cap(batch: Batch, wanted: int) -> int:
    """`wanted`, cut to the batch's own `max_in_flight` less what it has
    dispatched or running. Exact, unlike the plan: the counters move only
    under the batch lock we hold, so two dispatchers cannot both take the
    last slot."""
    if batch.max_in_flight is None:
        return wanted
    return min(wanted, batch.max_in_flight - batch.n_dispatched - batch.n_running)


def _claim_batch(batch: Batch, wanted: int, token: str, lease_seconds: int, now: datetime) -> int:
    """Claim the batch's first `wanted` ready jobs in input order, computing
    each molecule once: a job whose reuse key is in flight in this batch waits
    (queued), and is served by the reuse path once that molecule succeeds."""
    if wanted <= 0:
        return 0
    picked = _one_per_molecule(list(claimable_jobs(batch_id=batch.pk, now=now)[:wanted]))
    moved = 0
    # Conditional on `queued`; under the batch lock the row count is exact.
    for start in range(0, len(picked), CHUNK):
        moved += Job.objects.filter(pk__in=picked[start : start + CHUNK], status=JobStatus.QUEUED).update(
            status=JobStatus.DISPATCHED,
            claim_token=token,
            attempts=F("attempts") + 1,
            call_id="",
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=now,
        )
    if moved:
        apply_counts(batch, {JobStatus.QUEUED: -moved, JobStatus.DISPATCHED: moved}, now=now, job_ids=picked)
    return moved


def claimable_jobs(*, batch_id: UUID, now: datetime) -> QuerySet[Job, tuple[UUID, str]]:
    """(id, reuse key) of the batch's ready jobs in input order, less those
    whose molecule is in flight. Walks the partial index `job_batch_queue`
    from the front and stops at the LIMIT the caller slices: its cost grows
    with the jobs claimed, not with the queue (benchmarks/dispatch.py
    EXPLAINs it at 1k and 100k queued)."""
    ready = Job.objects.filter(batch_id=batch_id, status=JobStatus.QUEUED).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now)
    )
    in_flight = (
        Job.objects.filter(batch_id=batch_id, status__in=HELD).exclude(reuse_key="").order_by().values("reuse_key")
    )
    return ready.exclude(reuse_key__in=Subquery(in_flight)).order_by("index").values_list("pk", "reuse_key")


def _one_per_molecule(rows: list[tuple[UUID, str]]) -> list[UUID]:
    """The claim's jobs of (id, reuse key) rows: a later job repeating a key
    waits for the first, unless that molecule has succeeded already (then every
    one of them is a reuse, not a computation). Only a claim that holds
    duplicates (the legacy path's) asks which keys have a success."""
    keys = [key for _, key in rows if key]
    if len(set(keys)) == len(keys):
        return [pk for pk, _ in rows]
    done = set(
        Job.objects.filter(reuse_key__in=set(keys), status=JobStatus.SUCCEEDED)
        .order_by()
        .values_list("reuse_key", flat=True)
    )
    picked: list[UUID] = []
    seen: set[str] = set()
    for pk, key in rows:
        if key and key in seen and key not in done:
            continue
        seen.add(key)
        picked.append(pk)
    return picked


@dataclass(frozen=True)
class Hold:
    """Jobs of one batch a dispatcher holds under one claim token."""

    batch_id: UUID
    token: str
    job_ids: tuple[str, ...]


def record_calls(*, calls: dict[str, Hold]) -> int:
    """Store each call id on the jobs it runs (call id → the jobs' hold), so a
    dispatcher that adopts them after a crash polls the call instead of
    spawning it again. One statement per claim token. Returns how many jobs
    were updated."""
    by_token: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for call_id, hold in calls.items():
        by_token[hold.token] += [(job_id, call_id) for job_id in hold.job_ids]
    updated = 0
    with transaction.atomic():
        lock_batches(hold.batch_id for hold in calls.values())
        for token, rows in by_token.items():
            updated += update_held_rows(token=token, fields=("call_id",), rows=rows)
    return updated


def mark_running(*, holds: Iterable[Hold]) -> int:
    """dispatched → running for the jobs of calls the executor reports
    started: one UPDATE per batch and token, one counter update per batch."""
    by_batch = _by_batch(holds)
    moved_total = 0
    with transaction.atomic():
        batches = lock_batches(by_batch)
        for batch_id, batch_holds in by_batch.items():
            tokens = _by_token(batch_holds)
            moved = sum(
                held_jobs(job_ids, token).filter(status=JobStatus.DISPATCHED).update(status=JobStatus.RUNNING)
                for token, job_ids in tokens.items()
            )
            if moved and batch_id in batches:
                named = [pk for job_ids in tokens.values() for pk in job_ids]
                apply_counts(batches[batch_id], {JobStatus.DISPATCHED: -moved, JobStatus.RUNNING: moved}, job_ids=named)
            moved_total += moved
    return moved_total


def renew_leases(*, holds: Iterable[Hold], lease_seconds: int) -> int:
    """The heartbeat: push out the lease of the jobs in `holds` still held
    under their token. By job, not by token: a job claimed with a token but
    never sent (its submit failed) must lapse, whatever the token's other jobs do.

    It runs beside the dispatcher's other steps (its own thread and
    connection), so it must never wait: rows another transaction has locked
    (a cancel, an ingest) are skipped this beat and renewed on the next."""
    condition = _held_condition(holds)
    if condition is None:
        return 0
    expires = timezone.now() + timedelta(seconds=lease_seconds)
    with transaction.atomic():
        # OF self, and no ordering: Job's default ordering joins the batch
        # table, and FOR UPDATE would then lock (and skip) batch rows too.
        rows = (
            Job.objects.filter(condition, status__in=HELD).order_by().select_for_update(skip_locked=True, of=("self",))
        )
        ids = list(rows.values_list("pk", flat=True))
        renewed = 0
        for start in range(0, len(ids), CHUNK):
            renewed += Job.objects.filter(condition, pk__in=ids[start : start + CHUNK], status__in=HELD).update(
                lease_expires_at=expires
            )
    return renewed


def _held_condition(holds: Iterable[Hold]) -> Q | None:
    """jobs of `holds` under their own token: one OR term per token."""
    condition = None
    for token, job_ids in _by_token(holds).items():
        term = Q(pk__in=job_ids, claim_token=token)
        condition = term if condition is None else condition | term
    return condition


def still_held(*, holds: Iterable[Hold]) -> set[str]:
    """Which of the held job ids are still ours: one query by claim token (the
    partial index `job_held_token`), whose parameters are the few tokens, not
    every job id; it runs every pass."""
    holds = list(holds)
    tokens = {hold.token for hold in holds}
    if not tokens:
        return set()
    rows = Job.objects.filter(claim_token__in=tokens, status__in=HELD).order_by().values_list("pk", "claim_token")
    held = {(str(pk), token) for pk, token in rows}
    return {job_id for hold in holds for job_id in hold.job_ids if (job_id, hold.token) in held}


def release_jobs(*, holds: Iterable[Hold]) -> int:
    """Hand held jobs back to the queue (a clean stop): the attempt is not
    counted, and a job that moved on meanwhile is left alone."""
    by_batch = _by_batch(holds)
    released = 0
    with transaction.atomic():
        batches = lock_batches(by_batch)
        for batch_id, batch_holds in by_batch.items():
            deltas: dict[str, int] = defaultdict(int)
            for token, job_ids in _by_token(batch_holds).items():
                for status in HELD:
                    moved = (
                        held_jobs(job_ids, token)
                        .filter(status=status)
                        .update(
                            status=JobStatus.QUEUED,
                            call_id="",
                            lease_expires_at=None,
                            attempts=F("attempts") - 1,
                        )
                    )
                    deltas[status] -= moved
                    deltas[JobStatus.QUEUED] += moved
                    released += moved
            if batch_id in batches:
                apply_counts(batches[batch_id], deltas)
    return released


@dataclass
class Reaped:
    requeued: int = 0
    failed: int = 0
    # call id → (model, the adopted jobs' hold), for durable executors.
    adopted: dict[str, tuple[str, Hold]] = field(default_factory=dict)


def reap_expired(
    *,
    token: str,
    lease_seconds: int,
    durable_models: set[str],
    exclude_tokens: Iterable[str] = (),
    limit: int = 100,
) -> Reaped:
    """Recover jobs whose lease ran out (their dispatcher died or hung).

    A job whose call lives on in a durable executor (Modal) is adopted under
    `token` and polled by its call id: never spawned twice. Any other job goes
    back to the queue, or fails once its attempts are used up. Batches another
    transaction holds (another reaper, a cancel) are skipped, not waited for;
    the reaper's own live jobs (`exclude_tokens`) are never its prey, and a
    lease the heartbeat renewed meanwhile fails the UPDATE's condition."""
    now = timezone.now()
    expired = Job.objects.filter(status__in=HELD, lease_expires_at__lt=now).exclude(
        claim_token__in=list(exclude_tokens)
    )
    candidates = list(expired.order_by().values_list("batch_id", flat=True).distinct()[:limit])
    reaped = Reaped()
    with transaction.atomic():
        for batch in lock_batches(candidates, skip_locked=True).values():
            _reap_batch(batch, expired.filter(batch_id=batch.pk), token, lease_seconds, durable_models, now, reaped)
    return reaped


def _reap_batch(
    batch: Batch,
    expired: QuerySet[Job],
    token: str,
    lease_seconds: int,
    durable_models: set[str],
    now: datetime,
    reaped: Reaped,
) -> None:
    if batch.model in durable_models:
        _adopt(batch, expired.exclude(call_id=""), token, lease_seconds, now, reaped)
        expired = expired.filter(call_id="")
    max_attempts = batch.attempts_allowed
    deltas: Counter[str] = Counter()
    groups = expired.order_by().values_list("status", "attempts").distinct()
    for status, attempts in list(groups):
        decision = retry_decision(
            reason=FailureReason.EXECUTOR_ERROR, attempts=attempts, max_attempts=max_attempts, now=now
        )
        moved = expired.filter(status=status, attempts=attempts).update(
            status=decision.status,
            not_before=decision.not_before,
            finished_at=decision.finished_at,
            failure_reason=FailureReason.EXECUTOR_ERROR,
            failure_message="lease expired: the dispatcher holding this job stopped",
            call_id="",
            lease_expires_at=None,
        )
        deltas[status] -= moved
        deltas[decision.status] += moved
        if decision.status == JobStatus.QUEUED:
            reaped.requeued += moved
        else:
            reaped.failed += moved
    if deltas[JobStatus.FAILED]:
        # Under the batch lock, the jobs of this batch failed at this very instant are the
        # ones just reaped.
        job_failed_enqueue(batch=batch, jobs=Job.objects.filter(batch_id=batch.pk, finished_at=now))
    if any(deltas.values()):
        apply_counts(batch, dict(deltas), now=now)


def _adopt(batch: Batch, expired: QuerySet[Job], token: str, lease_seconds: int, now: datetime, reaped: Reaped) -> None:
    """Take over the jobs of calls that outlived their dispatcher."""
    expires = now + timedelta(seconds=lease_seconds)
    for call_id in list(expired.order_by().values_list("call_id", flat=True).distinct()):
        if expired.filter(call_id=call_id).update(claim_token=token, lease_expires_at=expires):
            ids = held_jobs_of_call(call_id, token)
            reaped.adopted[call_id] = (batch.model, Hold(batch.pk, token, ids))


def held_jobs_of_call(call_id: str, token: str) -> tuple[str, ...]:
    rows = Job.objects.filter(claim_token=token, call_id=call_id, status__in=HELD).values_list("pk", flat=True)
    return tuple(str(pk) for pk in rows)


def _by_batch(holds: Iterable[Hold]) -> dict[UUID, list[Hold]]:
    grouped: dict[UUID, list[Hold]] = defaultdict(list)
    for hold in holds:
        grouped[hold.batch_id].append(hold)
    return grouped


def _by_token(holds: Iterable[Hold]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for hold in holds:
        grouped[hold.token] += hold.job_ids
    return grouped

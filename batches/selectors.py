"""Reads. Every read of a batch goes through batch_get, which hides other users' batches."""

import hashlib
import heapq
import json
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, cast
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import connection
from django.db.models import Case, F, FloatField, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.permissions import VIEW_ALL_BATCHES, sees_all_batches, staff_has_perms
from batches.catalog import get_model
from batches.models import Batch, Job
from batches.ranking import RowAfter, metric_value, rank_key
from batches.states import BatchStatus, JobStatus
from omtx_hub import rows
from omtx_hub.errors import InvalidInput, NotFound

AnyUser = AbstractBaseUser | AnonymousUser
# No name is longer, so no longer search finds anything; bounded, a valid query stays
# within gunicorn's request-line limit (4094 bytes, past which it refuses the request itself).
SEARCH_MAX_LENGTH = Batch._meta.get_field("name").max_length or 200
# What staff need, besides seeing every batch, to act on another owner's (batch_get's perm).
CHANGE_BATCH = "batches.change_batch"
DELETE_BATCH = "batches.delete_batch"


def sees_all(user: AnyUser) -> bool:
    """Staff holding the view permission see every batch (accounts/permissions.py); anyone
    else only their own. The one statement of that rule: the queries below and the cached
    reads (batches/api/cached_reads.py) apply it."""
    return sees_all_batches(user)


def batch_visible(*, user: AnyUser, owner_id: int) -> bool:
    return sees_all(user) or (user.pk is not None and owner_id == user.pk)


def acts_on_all(user: AnyUser, perm: str | None) -> bool:
    """Whether `user` reaches every owner's batch: to read it (perm None), sees_all; to write
    it, staff who see it and also hold `perm` ("batches.change_batch", "batches.delete_batch").
    Seeing a batch is not leave to cancel or delete it. Owners need no permission for their own."""
    return sees_all(user) if perm is None else staff_has_perms(user, (VIEW_ALL_BATCHES, perm))


def _visible(user: AnyUser, *, all_owners: bool) -> QuerySet[Batch]:
    batches = Batch.objects.all()
    return batches if all_owners else batches.filter(owner_id=user.pk)


def batch_uuid(value: UUID | str) -> UUID | None:
    """The id as a UUID, None when it is not one. Checked before the query: the ORM
    would raise a ValidationError from deep inside the lookup, a 500."""
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        return None


def batch_get(*, user: AnyUser, batch_id: UUID | str, perm: str | None = None) -> Batch:
    """The batch, for reading; for a write, `perm` names the model permission a non-owner
    needs (acts_on_all). Someone else's batch, a missing one and a malformed id look the
    same: 404, also to staff who may see the batch but not do this to it."""
    pk = batch_uuid(batch_id)
    staff = acts_on_all(user, perm)
    # One query, and no owner join for a user, who sees only their own batches: the owner
    # is who asks. Unordered: `.first()` would sort, and a primary key needs no sort. The
    # validation report lists every rejected ligand (up to the whole submission): a status
    # poll never reads it, the detail and the export load it when they do.
    batches = _visible(user, all_owners=staff).select_related("target", *(["owner"] if staff else []))
    batches = batches.defer("validation_report")
    batch = next(iter(batches.filter(pk=pk).order_by()[:1]), None) if pk is not None else None
    if batch is None:
        raise NotFound("No such batch.")
    if not staff:
        batch.owner = cast(User, user)
    return batch


# What the status shows (representations.batch_status) and its outlook places the batch by.
STATUS_FIELDS = (
    *("id", "owner_id", "model", "priority", "status", "version", "created_at", "started_at", "finished_at"),
    *("ligands_submitted", "ligands_rejected", "n_total", "n_queued", "n_dispatched", "n_running"),
    *("n_succeeded", "n_failed", "n_cancelled", "n_reused"),
)


def batch_status_get(*, user: AnyUser, batch_id: UUID | str) -> Batch:
    """batch_get for the status poll: the same visibility, only the columns the status shows
    (the others are deferred), one narrow statement. SQL because a poll repeats it: the
    ORM spent more Python compiling this read than PostgreSQL spent answering it."""
    pk = batch_uuid(batch_id)
    if pk is None:
        raise NotFound("No such batch.")
    staff = sees_all(user)
    # Bandit B608 (SQL built from a string) does not apply: column and table names come from
    # the model; the id and the owner are parameters.
    sql = f"SELECT {rows.columns(Batch, STATUS_FIELDS, 'b')} FROM {Batch._meta.db_table} b WHERE b.id = %s"  # nosec B608
    params: list[Any] = [Batch._meta.pk.get_db_prep_value(pk, connection)]
    if not staff:
        sql += " AND b.owner_id = %s"
        params.append(user.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such batch.")
    return rows.instance(Batch, STATUS_FIELDS, row)


def batch_list(
    *,
    user: AnyUser,
    status: str | None = None,
    model: str | None = None,
    search: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Batch]:
    # Given but empty is not absent: `status=` and `model=` name no status and no model (400).
    # The brief representation: none of a batch's documents (the validation report alone
    # can list 100,000 rejected ligands), and no owner, which a brief does not show.
    batches = _visible(user, all_owners=sees_all(user)).defer("validation_report", "manifest", "options")
    if status is not None:
        batches = batches.filter(status__in=_statuses(status, BatchStatus.values))
    if model is not None:
        batches = batches.filter(model=get_model(model).name)
    if search is not None and len(search) > SEARCH_MAX_LENGTH:
        message = f"search is longer than {SEARCH_MAX_LENGTH} characters, the longest batch name."
        raise InvalidInput(message, code="invalid_search", details={"maximum": SEARCH_MAX_LENGTH})
    if search:
        batches = batches.filter(name__icontains=search)
    if created_after:
        batches = batches.filter(created_at__gte=created_after)
    if created_before:
        batches = batches.filter(created_at__lt=created_before)
    return batches.order_by("-created_at", "-pk")


def job_list(*, batch: Batch, status: str | None = None) -> QuerySet[Job]:
    """A batch's jobs in input order, optionally of some statuses (comma-separated)."""
    jobs = Job.objects.filter(batch=batch)
    if status is not None:
        jobs = jobs.filter(status__in=_statuses(status, JobStatus.values))
    return jobs.order_by("index")


def _statuses(given: str, known: list[str]) -> list[str]:
    """Comma-separated, each known and named once: the list stays as short as the enum."""
    statuses = given.split(",")
    unknown = sorted(set(statuses) - set(known))
    if unknown:
        raise InvalidInput(
            f"Unknown status {', '.join(map(repr, unknown))}.",
            code="invalid_status",
            details={"unknown": unknown, "allowed": known},
        )
    if len(set(statuses)) < len(statuses):
        raise InvalidInput("Each status may be named once.", code="invalid_status", details={"allowed": known})
    return statuses


def job_get(*, batch: Batch, job_id: UUID | str) -> Job:
    pk = batch_uuid(job_id)
    job = Job.objects.filter(batch=batch, pk=pk).first() if pk is not None else None
    if job is None:
        raise NotFound("No such job in this batch.")
    return job


def queue_has_work() -> bool:
    return Job.objects.filter(status=JobStatus.QUEUED).exists()


def batch_progress(batch: Batch) -> dict[str, Any]:
    """Counts, progress, throughput and an ETA from the batch row alone: O(1)
    in jobs. Throughput counts executed jobs only: reused and cancelled jobs
    cost nothing and would make a batch look thousands of times faster."""
    finished = batch.n_finished
    executed = batch.n_succeeded - batch.n_reused + batch.n_failed
    total = batch.n_total
    rate = eta = None
    if batch.started_at and executed:
        end = batch.finished_at or timezone.now()
        rate = executed / max((end - batch.started_at).total_seconds(), 1e-3)
        if batch.n_active:
            eta = batch.n_active / rate
    return {
        "total": total,
        "queued": batch.n_queued,
        "dispatched": batch.n_dispatched,
        "running": batch.n_running,
        "succeeded": batch.n_succeeded,
        "reused": batch.n_reused,
        "failed": batch.n_failed,
        "cancelled": batch.n_cancelled,
        "rejected": batch.ligands_rejected,
        "progress_percent": round(100.0 * finished / total, 2) if total else 100.0,
        "jobs_per_second": round(rate, 3) if rate is not None else None,
        "eta_seconds": round(eta, 1) if eta is not None else None,
        # The observed average can drift either way as the queue and the
        # executor's capacity change; the range says so instead of one number.
        "eta_seconds_range": [round(eta * 0.75, 1), round(eta * 1.5, 1)] if eta is not None else None,
    }


def _metric_expression(name: str) -> Any:
    return metric_value(name)


@dataclass(frozen=True)
class Ranking:
    """A batch's jobs ranked best first: succeeded jobs with the metric by `key`
    ascending (the metric, or its negation for a descending sort; batches/ranking.py),
    ties by input order; then every other row (no metric, or not succeeded: a failed
    or retrying job's output is not a result) by input order. `fingerprint` names the
    batch and the whole query, for cursors."""

    batch: Batch
    jobs: QuerySet[Job]
    key: Any
    statuses: list[str]
    thresholded: bool
    fingerprint: str

    def ordered(self) -> QuerySet[Job]:
        """The whole ranking as one query, for OFFSET pages: served by the rank index
        when only succeeded jobs are asked for, a sort of the batch's rows otherwise."""
        if self.statuses == [JobStatus.SUCCEEDED]:
            jobs = self._succeeded()
        else:
            key = Case(When(status=JobStatus.SUCCEEDED, then=self.key), output_field=FloatField())
            jobs = self.jobs.annotate(rank_key=key)
        return jobs.order_by(F("rank_key").asc(nulls_last=True), "index")

    def at(self, offset: int, limit: int) -> list[Job]:
        """The page at `offset`. From the top it is `after(None)`: index ranges whatever
        the statuses, where `ordered` sorts the batch for any status but succeeded."""
        if offset == 0:
            return self.after(None, limit)
        return list(self.ordered()[offset : offset + limit])

    def count(self) -> int:
        """From the batch row's counters when no threshold narrows the statuses: O(1), where
        counting a 100k batch's rows is a scan. They move in the transactions that move jobs."""
        if self.thresholded:
            return self.jobs.count()
        return sum(getattr(self.batch, f"n_{status}") for status in self.statuses)

    def after(self, position: tuple[float | None, int] | None, limit: int) -> list[Job]:
        """Up to `limit` jobs following `position` (the last row's key and index; None:
        from the top). Each part is an index range: the ranked rows by (key, index),
        then the others by index, one range per status, merged. At most one query per
        status and one more, whatever the batch's size."""
        rows: list[Job] = []
        if position is None or position[0] is not None:
            ranked = self._succeeded().filter(Q(rank_key__isnull=False)).order_by("rank_key", "index")
            if position is not None:
                ranked = ranked.filter(RowAfter(F("rank_key"), F("index"), Value(position[0]), Value(position[1])))
            rows = list(ranked[:limit]) if JobStatus.SUCCEEDED in self.statuses else []
            position = None
        if len(rows) < limit:
            rows += self._unranked(position[1] if position else -1, limit - len(rows))
        return rows

    def _succeeded(self) -> QuerySet[Job]:
        return self.jobs.filter(status=JobStatus.SUCCEEDED).annotate(rank_key=self.key)

    def _unranked(self, index: int, limit: int) -> list[Job]:
        # Succeeded rows without the metric are ordered by their (NULL) key too: the
        # planner then sees the rank index's own order instead of sorting them.
        # A status the batch's counters say it has no job in is not asked for.
        streams: list[QuerySet[Any]] = [
            self.jobs.filter(status=status).annotate(rank_key=Value(None, output_field=FloatField())).order_by("index")
            for status in self.statuses
            if status != JobStatus.SUCCEEDED and getattr(self.batch, f"n_{status}")
        ]
        if JobStatus.SUCCEEDED in self.statuses:
            streams.append(self._succeeded().filter(Q(rank_key__isnull=True)).order_by("rank_key", "index"))
        pages = [list(stream.filter(index__gt=index)[:limit]) for stream in streams]
        return list(islice(heapq.merge(*pages, key=lambda job: job.index), limit))


def results_ranking(
    *,
    batch: Batch,
    sort: str | None = None,
    order: str | None = None,
    status: str | None = JobStatus.SUCCEEDED,
    thresholds: list[tuple[str, str, float]] | None = None,
) -> Ranking:
    """Jobs ranked best first by `sort` in the model's direction for that
    metric (`order` asc/desc overrides it); ties broken by input order."""
    spec = get_model(batch.model)
    metric = spec.output(spec.default_rank if sort is None else sort)
    if metric.kind == "str":
        raise InvalidInput(f"Metric {metric.name!r} is text and cannot rank.", code="unknown_metric")
    if order not in (None, "asc", "desc"):
        raise InvalidInput("order must be asc or desc.", code="invalid_order")
    descending = order == "desc" if order else metric.direction == "higher"
    jobs = Job.objects.filter(batch=batch)
    everything = status is None or status == "all"
    statuses = list(JobStatus.values) if everything else _statuses(status or "", JobStatus.values)
    if not everything:
        jobs = jobs.filter(status__in=statuses)
    for position, (name, op, value) in enumerate(thresholds or []):
        spec.output(name)
        alias = f"threshold_{position}"
        jobs = jobs.alias(**{alias: _metric_expression(name)}).filter(Q(**{f"{alias}__{op}": value}))
    key = rank_key(metric.name, descending=descending)
    query = [str(batch.pk), metric.name, descending, sorted(statuses), sorted(thresholds or [])]
    fingerprint = hashlib.sha256(json.dumps(query).encode()).hexdigest()[:16]
    return Ranking(batch, jobs, key, statuses, bool(thresholds), fingerprint)


def results_list(
    *,
    batch: Batch,
    sort: str | None = None,
    order: str | None = None,
    status: str | None = JobStatus.SUCCEEDED,
    thresholds: list[tuple[str, str, float]] | None = None,
) -> QuerySet[Job]:
    """The ranking as one ordered queryset (for OFFSET pages)."""
    ranking = results_ranking(batch=batch, sort=sort, order=order, status=status, thresholds=thresholds)
    return ranking.ordered()

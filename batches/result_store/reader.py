"""Results pages from Firestore, when they are the database's answer.

The store answers the results API's default question, a batch's succeeded jobs ranked by a
metric (any metric, either direction, offset or cursor pages), and only when it holds every
succeeded job of the batch: a count of the batch's succeeded documents equal to the batch
row's counter. A succeeded job never changes again, and its document is written only after
the commit that made it succeeded, so equal counts mean the same rows. Anything else is read
from the database: other statuses (they change without a write to the store: claims,
retries, cancels), thresholds (Firestore would order by the filtered field first), a page
holding a cut row (documents.py), the store off or failing. Every call has a deadline
(OMTX_RESULT_STORE_TIMEOUT_SECONDS) and, after a failure, this process reads the database
without asking Firestore for OMTX_RESULT_STORE_BACKOFF_SECONDS (breaker.py).
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection
from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError
from google.cloud.firestore import FieldFilter

from batches.catalog import get_model
from batches.models import Batch, Job
from batches.result_store import breaker, enabled
from batches.result_store.client import ONCE, READS, jobs_ref, timeout
from batches.result_store.documents import after_bound, exact, job_from_document, order_field, rank_key
from batches.selectors import Ranking
from batches.states import JobStatus

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store cannot give this page exactly: the caller reads the database."""


@dataclass(frozen=True)
class StoreRanking(Ranking):
    """`Ranking`'s pages, read from the batch's documents (same rows, order and rank keys)."""

    field: str

    def at(self, offset: int, limit: int) -> list[Job]:
        return self._page(self._query().offset(offset).limit(limit))

    def after(self, position: tuple[float | None, int] | None, limit: int) -> list[Job]:
        query = self._query()
        if position is not None:
            query = query.where(filter=FieldFilter(self.field, ">", after_bound(*position)))
        return self._page(query.limit(limit))

    def _as_the_database_returns(self, key: float | None) -> float | None:
        """The key as the database hands it to the cursor, down to a zero's sign: PostgreSQL
        negates 0.0 to -0.0; SQLite's negation of a zero gives 0 (an integer, 0.0 to Python)."""
        if key == 0.0 and self.field.endswith("_d") and connection.vendor != "postgresql":
            return 0.0
        return key

    def _query(self) -> Any:
        return jobs_ref(self.batch.pk).order_by(self.field)

    def _page(self, query: Any) -> list[Job]:
        try:
            docs = [snapshot.to_dict() for snapshot in _read(lambda: list(query.stream(retry=ONCE, timeout=timeout())))]
        except StoreUnavailable:
            READS.labels("database_error").inc()
            raise
        if not all(exact(doc) for doc in docs):
            READS.labels("database_inexact").inc()
            raise StoreUnavailable("a row of this page is cut in its document")
        jobs = []
        for doc in docs:
            job = job_from_document(doc)
            key = rank_key(doc["order"][self.field.removeprefix("order.")])
            job.rank_key = self._as_the_database_returns(key)  # type: ignore[attr-defined]
            jobs.append(job)
        READS.labels("firestore").inc()
        return jobs


def store_ranking(ranking: Ranking, *, batch: Batch, sort: str | None, order: str | None) -> StoreRanking | None:
    """The store's copy of `ranking` (results_ranking's, already validated), or None (and why,
    counted) when the database must answer."""
    reason = _database_reason(ranking, batch)
    if reason is not None:
        READS.labels(f"database_{reason}").inc()
        return None
    spec = get_model(batch.model)
    metric = spec.output(spec.default_rank if sort is None else sort)
    descending = order == "desc" if order else metric.direction == "higher"
    field = order_field(metric.name, descending=descending)
    return StoreRanking(
        ranking.batch, ranking.jobs, ranking.key, ranking.statuses, ranking.thresholded, ranking.fingerprint, field
    )


def _database_reason(ranking: Ranking, batch: Batch) -> str | None:
    if not enabled():
        return "disabled"
    if ranking.thresholded or ranking.statuses != [JobStatus.SUCCEEDED]:
        return "query"
    if breaker.is_open():
        return "backoff"
    try:
        stored = _read(lambda: _succeeded_documents(batch))
    except StoreUnavailable:
        return "error"
    return None if stored == batch.n_succeeded else "incomplete"


def _succeeded_documents(batch: Batch) -> int:
    query = jobs_ref(batch.pk).where(filter=FieldFilter("status", "==", JobStatus.SUCCEEDED.value))
    result = query.count().get(retry=ONCE, timeout=timeout())
    return int(result[0][0].value)


def _read(call: Any) -> Any:
    if breaker.is_open():
        raise StoreUnavailable("backoff")
    try:
        return call()
    except (GoogleAPIError, GoogleAuthError, OSError, ValueError) as exc:
        breaker.trip()
        log.warning("result store read failed (%r); reading the database", exc)
        raise StoreUnavailable("error") from exc

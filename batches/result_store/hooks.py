"""The dispatcher's one call into the result store: inside the ingest's transaction it
schedules the write of the jobs it stored, to run after the commit. A Firestore failure
there is logged and counted, never raised: the jobs are stored, and the results API reads
the database until `manage.py sync_result_store` repairs the batch's documents. After a
failure the writes of the next OMTX_RESULT_STORE_BACKOFF_SECONDS are skipped (breaker.py),
logged and counted the same way, so a silent Firestore costs the dispatcher one timeout a
period, not one per pass."""

import logging
from collections.abc import Iterable
from functools import partial
from uuid import UUID

from django.db import DatabaseError, transaction
from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError

from batches.result_store import breaker, enabled
from batches.result_store.client import WRITES
from batches.result_store.writer import jobs_write

log = logging.getLogger(__name__)
# ValueError: the client's own ("The transaction has no transaction ID" after a failed begin).
FAILURES = (GoogleAPIError, GoogleAuthError, OSError, DatabaseError, ValueError)


def after_ingest(*, batch_id: UUID, job_ids: Iterable[str]) -> None:
    """Call inside the ingest's transaction; does nothing while the store is off."""
    if enabled():
        transaction.on_commit(partial(write_quietly, batch_id, list(job_ids)), robust=True)


def write_quietly(batch_id: UUID, job_ids: list[str]) -> None:
    if breaker.is_open():
        WRITES.labels("skipped").inc(len(job_ids))
        _not_written(batch_id, job_ids, "skipped: the store failed within OMTX_RESULT_STORE_BACKOFF_SECONDS")
        return
    try:
        jobs_write(batch_id=batch_id, job_ids=job_ids)
    except FAILURES as exc:
        breaker.trip()
        _not_written(batch_id, job_ids, repr(exc))


def _not_written(batch_id: UUID, job_ids: list[str], why: str) -> None:
    log.warning(
        "result store: %d documents of batch %s not written (%s); the database has them, "
        "repair with `manage.py sync_result_store %s`",
        len(job_ids),
        batch_id,
        why,
        batch_id,
    )

"""The dispatcher's one call into the result store: inside the ingest's transaction it
schedules the write of the jobs it stored, to run after the commit. A Firestore failure
there is logged and counted, never raised: the jobs are stored, and the results API reads
the database until `manage.py sync_result_store` repairs the batch's documents."""

import logging
from collections.abc import Iterable
from functools import partial
from uuid import UUID

from django.db import DatabaseError, transaction
from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError

from batches.result_store import enabled
from batches.result_store.writer import jobs_write

log = logging.getLogger(__name__)
FAILURES = (GoogleAPIError, GoogleAuthError, OSError, DatabaseError)


def after_ingest(*, batch_id: UUID, job_ids: Iterable[str]) -> None:
    """Call inside the ingest's transaction; does nothing while the store is off."""
    if enabled():
        transaction.on_commit(partial(write_quietly, batch_id, list(job_ids)), robust=True)


def write_quietly(batch_id: UUID, job_ids: list[str]) -> None:
    try:
        jobs_write(batch_id=batch_id, job_ids=job_ids)
    except FAILURES as exc:
        log.warning(
            "result store: %d documents of batch %s not written (%r); the database has them, "
            "repair with `manage.py sync_result_store %s`",
            len(job_ids),
            batch_id,
            exc,
            batch_id,
        )

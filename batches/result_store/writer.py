"""Writing a batch's documents: the jobs an ingest just stored (after its commit), or the
whole batch (`manage.py sync_result_store`). Jobs are read from the database in chunks
(`.iterator`) and written in batched writes of at most 500, Firestore's cap, so a
100,000-job batch costs the memory of one chunk.

Every write sets whole documents whose id is the job's id: repeating a write (a retried
pass, a re-sync, two dispatchers) replaces each document with the same content, never adds one.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from django.conf import settings
from django.db.models import QuerySet
from google.api_core.exceptions import AlreadyExists, FailedPrecondition
from google.cloud import firestore

from batches.catalog import TYPED_COLUMNS
from batches.models import Batch, Job
from batches.result_store.client import ONCE, WRITES, batch_ref, client, jobs_ref, retry, timeout
from batches.result_store.documents import job_document
from batches.result_store.encoding import set_write
from batches.states import COUNTER_FIELD

# Firestore's cap on the writes of one commit.
WRITES_PER_COMMIT = 500
# Jobs per database fetch while streaming a batch.
CHUNK = 2000
# Reads and writes of a summary that another writer keeps replacing in between.
SUMMARY_ATTEMPTS = 3
ROW_FIELDS = (
    *("id", "batch_id", "index", "name", "input_smiles", "canonical_smiles", "standardization", "status"),
    *("result", "failure_reason", "failure_message", "artifact", *sorted(TYPED_COLUMNS)),
)
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    written: int = 0
    deleted: int = 0
    batch_exists: bool = True


def jobs_write(*, batch_id: UUID | str, job_ids: Iterable[str]) -> int:
    """Write these jobs' documents from their rows as committed, then the batch's summary."""
    batch = _batch(batch_id)
    if batch is None:
        return 0
    rows = _rows(batch).filter(pk__in=list(job_ids))
    written = _write(batch, rows.iterator(chunk_size=CHUNK))
    summary_write(batch)
    return written


def batch_sync(*, batch_id: UUID | str, progress: Callable[[int], None] | None = None) -> SyncReport:
    """Rewrite a batch's documents from the database: every job's, then delete those of jobs
    it no longer has (all of them, and the summary, when the batch is gone)."""
    batch = _batch(batch_id)
    if batch is None:
        deleted = _delete_all(batch_id)
        return SyncReport(deleted=deleted, batch_exists=False)
    report = SyncReport()
    report.written = _write(batch, _rows(batch).iterator(chunk_size=CHUNK), progress)
    report.deleted = _delete_stale(batch)
    summary_write(batch, synced=True)
    return report


def _batch(batch_id: UUID | str) -> Batch | None:
    return Batch.objects.filter(pk=batch_id).defer("validation_report", "manifest", "options").first()


def _rows(batch: Batch) -> QuerySet[Job]:
    return Job.objects.filter(batch_id=batch.pk).only(*ROW_FIELDS).order_by("index")


def _write(batch: Batch, jobs: Iterator[Job], progress: Callable[[int], None] | None = None) -> int:
    collection = jobs_ref(batch.pk)
    written = 0
    for chunk in _chunks(jobs, WRITES_PER_COMMIT):
        writes = client().batch()
        writes._add_write_pbs(
            [
                set_write(collection.document(str(job.pk))._document_path, job_document(job, model=batch.model))
                for job in chunk
            ]
        )
        _commit(writes, len(chunk))
        written += len(chunk)
        if progress is not None:
            progress(written)
    return written


def _commit(writes: Any, count: int) -> None:
    try:
        writes.commit(retry=retry(), timeout=timeout())
    except Exception:
        WRITES.labels("failed").inc(count)
        raise
    WRITES.labels("written").inc(count)


def _delete_stale(batch: Batch) -> int:
    """Documents whose job is not the batch's any more, read and checked a page at a time."""
    deleted = 0
    # Names only (an empty projection), streamed: one query, however many documents.
    names = (snapshot.reference for snapshot in jobs_ref(batch.pk).select([]).stream(retry=ONCE, timeout=timeout()))
    for refs in _chunks(names, WRITES_PER_COMMIT):
        ids = [ref.id for ref in refs]
        kept = {
            str(pk) for pk in Job.objects.filter(batch_id=batch.pk, pk__in=_uuids(ids)).values_list("pk", flat=True)
        }
        stale = [ref for ref in refs if ref.id not in kept]
        if stale:
            writes = client().batch()
            for ref in stale:
                writes.delete(ref)
            writes.commit(retry=retry(), timeout=timeout())
            deleted += len(stale)
    return deleted


def _uuids(ids: list[str]) -> list[UUID]:
    found = []
    for value in ids:
        try:
            found.append(UUID(value))
        except ValueError:
            continue  # not a job's document: stale by definition
    return found


def _delete_all(batch_id: UUID | str) -> int:
    ref = batch_ref(batch_id)
    deleted: int = client().recursive_delete(ref)
    return deleted


def summary_write(batch: Batch, *, synced: bool = False) -> None:
    """The batch's summary, from its row as committed now. A writer holding an older version
    than the stored one leaves it (two dispatchers' passes may finish in either order)."""
    fresh = Batch.objects.filter(pk=batch.pk).only(*SUMMARY_FIELDS).first()
    if fresh is None:
        return
    summary = _summary(fresh)
    if synced:
        # The version the whole batch was last rewritten at (by the re-sync).
        summary["synced_version"] = batch.version
    _store_summary(batch_ref(batch.pk), summary)


SUMMARY_FIELDS = ("id", "owner_id", "model", "status", "version", "n_total", *COUNTER_FIELD.values(), "n_reused")


def _summary(batch: Batch) -> dict[str, Any]:
    return {
        "batch_id": str(batch.pk),
        "owner_id": batch.owner_id,
        "model": batch.model,
        "status": batch.status,
        "version": batch.version,
        "total": batch.n_total,
        "counts": {status: getattr(batch, column) for status, column in COUNTER_FIELD.items()},
        "reused": batch.n_reused,
        "updated_at": firestore.SERVER_TIMESTAMP,
    }


def _store_summary(ref: Any, summary: dict[str, Any]) -> None:
    """Read, then write on condition that the document is still what was read (created if it
    was missing, last_update_time if it was there), again after another writer's change.
    No transaction: a transaction's begin and read took no timeout (60 s of retries against
    a silent Firestore, then a ValueError); each call here ends within timeout()."""
    for _ in range(SUMMARY_ATTEMPTS):
        stored = ref.get(retry=retry(), timeout=timeout())
        if stored.exists and (stored.get("version") or 0) > summary["version"]:
            return
        try:
            _put_summary(ref, stored, summary)
        except (AlreadyExists, FailedPrecondition):
            continue  # written in between: read it again
        return


def _put_summary(ref: Any, stored: Any, summary: dict[str, Any]) -> None:
    if not stored.exists:
        ref.create(summary, retry=retry(), timeout=timeout())
        return
    # A pass keeps the version the whole batch was last rewritten at; the re-sync sets its own.
    values = {"synced_version": stored.to_dict().get("synced_version"), **summary}
    # update() replaces each named field whole (counts included): the document becomes `values`.
    unchanged = client().write_option(last_update_time=stored.update_time)
    ref.update(values, option=unchanged, retry=retry(), timeout=timeout())


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def orphans_delete() -> int:
    """Delete the documents of every batch the database no longer has; returns how many
    batches'. Listed with their missing parents too: a batch whose summary write failed."""
    removed = 0
    batches = client().collection(f"{settings.OMTX_FIRESTORE_PREFIX}_batches")
    for refs in _chunks(batches.list_documents(page_size=WRITES_PER_COMMIT), WRITES_PER_COMMIT):
        found = Batch.objects.filter(pk__in=_uuids([ref.id for ref in refs])).values_list("pk", flat=True)
        kept = {str(pk) for pk in found}
        for ref in refs:
            if ref.id not in kept:
                client().recursive_delete(ref)
                removed += 1
    return removed

"""The Firestore client and where a batch's documents live.

`<prefix>_batches/{batch id}` is the batch's summary; `…/jobs/{job id}` one document per job.
The document id is the job's id, so writing a job twice replaces its one document.
"""

from functools import cache
from typing import Any
from uuid import UUID

from django.conf import settings
from google.api_core.retry import Retry, if_transient_error
from google.cloud import firestore
from prometheus_client import Counter

# A stream's (a query's, the count's) own retry loop reopens the stream for as long as its
# retry's predicate accepts the error, whatever the retry's deadline: against a silent
# Firestore the default one retried DeadlineExceeded for ever. Streams get one attempt.
ONCE = Retry(predicate=lambda exc: False)

WRITES = Counter(
    "omtx_result_store_writes",
    "Result store writes by the dispatcher and the re-sync: documents written, failed, or skipped (backoff).",
    ["outcome"],
)
READS = Counter(
    "omtx_result_store_reads",
    "Results pages by where they were read: firestore, or database and why (disabled, incomplete, error, …).",
    ["source"],
)


def timeout() -> float:
    """Seconds a call waits for Firestore (OMTX_RESULT_STORE_TIMEOUT_SECONDS) before the caller
    falls back (a read) or gives up and counts the failure (a write)."""
    return float(settings.OMTX_RESULT_STORE_TIMEOUT_SECONDS)


def retry() -> Retry:
    """Retries of a single call (a commit, a document read or write): transient errors only,
    all of them within timeout(), so the call ends by then."""
    return Retry(predicate=if_transient_error, initial=0.1, maximum=1.0, timeout=timeout())


@cache
def _client(project: str, database: str) -> firestore.Client:
    return firestore.Client(project=project, database=database)


def client() -> firestore.Client:
    """One client per process and project (it holds a gRPC channel, made after any fork)."""
    return _client(settings.GCP_PROJECT_ID, settings.FIRESTORE_DATABASE)


def batch_ref(batch_id: UUID | str) -> Any:
    return client().collection(f"{settings.OMTX_FIRESTORE_PREFIX}_batches").document(str(batch_id))


def jobs_ref(batch_id: UUID | str) -> Any:
    return batch_ref(batch_id).collection("jobs")

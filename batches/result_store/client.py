"""The Firestore client and where a batch's documents live.

`<prefix>_batches/{batch id}` is the batch's summary; `…/jobs/{job id}` one document per job.
The document id is the job's id, so writing a job twice replaces its one document.
"""

from functools import cache
from typing import Any
from uuid import UUID

from django.conf import settings
from google.cloud import firestore
from prometheus_client import Counter

# Seconds a read or a write waits for Firestore before the caller falls back (a read) or
# gives up and counts the failure (a write).
TIMEOUT = 10.0

WRITES = Counter(
    "omtx_result_store_writes",
    "Result store writes by the dispatcher and the re-sync: documents written, or failed batches of them.",
    ["outcome"],
)
READS = Counter(
    "omtx_result_store_reads",
    "Results pages by where they were read: firestore, or database and why (disabled, incomplete, error, …).",
    ["source"],
)


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

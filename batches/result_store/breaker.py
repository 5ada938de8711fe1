"""This process's memory of a failing Firestore: after a failed call, the result store is left
alone for OMTX_RESULT_STORE_BACKOFF_SECONDS. A silent Firestore then costs one timeout per
process and period, not one per ingest pass or results page: the dispatcher skips its writes
(`manage.py sync_result_store` repairs them) and the results API reads the database.

One float per process, read and written under the GIL: two threads failing together both
push the reopening a little later, which is harmless."""

from time import monotonic

from django.conf import settings

_skipped_until = 0.0


def is_open() -> bool:
    """Whether the store is being skipped now (a call failed less than the backoff ago)."""
    return monotonic() < _skipped_until


def trip() -> None:
    """A call failed: skip the store for the backoff from now."""
    global _skipped_until
    _skipped_until = monotonic() + float(settings.OMTX_RESULT_STORE_BACKOFF_SECONDS)


def reset() -> None:
    global _skipped_until
    _skipped_until = 0.0

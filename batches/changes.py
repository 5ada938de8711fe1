"""The one "a batch changed" hook.

Every writer that changes a batch (its row, its jobs, its intake progress, its existence)
calls `batches_changed` after its transaction commits, from whichever process it runs in
(web, `dispatch`, `background`, admin):

    transaction.on_commit(lambda: batches_changed(batch_ids=[batch.pk], owner_ids=[batch.owner_id]))

or `batches_changed_on_commit(...)`, which says the same. What reacts to a change hangs off
this function and nowhere else: the cache (batches/cache_tags.py: the next read of the
batch's status, results and its owner's lists goes to the database) and the live status
(batches/live/broadcaster.py: a coalesced delta to the batch's sockets, sent from a thread of
its own so the caller never waits for the channel layer). Called inside a transaction that
later rolls back, it would only cost a cache miss and an empty delta; called before the
commit, it could let a reader cache (or a socket show) the old state, which is why it runs
on commit. Writers that know which jobs changed name them (`job_ids`), so the delta carries
those rows; otherwise it carries the status alone and says its job list is incomplete.
"""

from collections.abc import Iterable
from uuid import UUID

from django.db import transaction

from batches import cache_tags
from batches.models import Batch


def batches_changed(
    *,
    batch_ids: Iterable[UUID],
    owner_ids: Iterable[int] | None = None,
    job_ids: Iterable[UUID | str] | None = None,
) -> None:
    """React to committed changes of these batches. `owner_ids`, when the caller has them
    (a deleted batch's owner can no longer be read), spares a query; `job_ids`, the jobs of
    these batches that changed, when the caller knows them."""
    ids = list(batch_ids)
    if not ids:
        return
    owners = set(owner_ids) if owner_ids is not None else _owners(ids)
    tags = [cache_tags.batch_tag(pk) for pk in ids]
    tags += [cache_tags.owner_tag(owner) for owner in owners]
    cache_tags.bump([*tags, cache_tags.EVERYONE])
    # Imported here: the live protocol builds on the API representations, which import the
    # services, which import this module.
    from batches.live.broadcaster import broadcaster

    broadcaster.notify(batch_ids=ids, job_ids=job_ids)


def batches_changed_on_commit(
    *,
    batch_ids: Iterable[UUID],
    owner_ids: Iterable[int] | None = None,
    job_ids: Iterable[UUID | str] | None = None,
) -> None:
    """`batches_changed` once the current transaction commits (at once outside one)."""
    ids = list(batch_ids)
    owners = list(owner_ids) if owner_ids is not None else None
    jobs = list(job_ids) if job_ids is not None else None
    transaction.on_commit(lambda: batches_changed(batch_ids=ids, owner_ids=owners, job_ids=jobs))


def _owners(batch_ids: list[UUID]) -> set[int]:
    return set(Batch.objects.filter(pk__in=batch_ids).values_list("owner_id", flat=True))

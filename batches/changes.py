"""The one "a batch changed" hook.

Every writer that changes a batch (its row, its jobs, its intake progress, its existence)
calls `batches_changed` after its transaction commits, from whichever process it runs in
(web, `dispatch`, `background`, admin):

    transaction.on_commit(lambda: batches_changed(batch_ids=[batch.pk], owner_ids=[batch.owner_id]))

or `batches_changed_on_commit(...)`, which says the same. What reacts to a change hangs off
this function and nowhere else: today the cache (batches/cache_tags.py: the next read of
the batch's status, results and its owner's lists goes to the database); the live status
(websocket broadcasts) joins here. Called inside a transaction that later rolls back, it
would only cost a cache miss; called before the commit, it could let a reader cache the
old state, which is why it runs on commit.
"""

from collections.abc import Iterable
from uuid import UUID

from django.db import transaction

from batches import cache_tags
from batches.models import Batch


def batches_changed(*, batch_ids: Iterable[UUID], owner_ids: Iterable[int] | None = None) -> None:
    """React to committed changes of these batches. `owner_ids`, when the caller has them
    (a deleted batch's owner can no longer be read), spares a query."""
    ids = list(batch_ids)
    if not ids:
        return
    owners = set(owner_ids) if owner_ids is not None else _owners(ids)
    tags = [cache_tags.batch_tag(pk) for pk in ids]
    tags += [cache_tags.owner_tag(owner) for owner in owners]
    cache_tags.bump([*tags, cache_tags.EVERYONE])


def batches_changed_on_commit(*, batch_ids: Iterable[UUID], owner_ids: Iterable[int] | None = None) -> None:
    """`batches_changed` once the current transaction commits (at once outside one)."""
    ids = list(batch_ids)
    owners = list(owner_ids) if owner_ids is not None else None
    transaction.on_commit(lambda: batches_changed(batch_ids=ids, owner_ids=owners))


def _owners(batch_ids: list[UUID]) -> set[int]:
    return set(Batch.objects.filter(pk__in=batch_ids).values_list("owner_id", flat=True))

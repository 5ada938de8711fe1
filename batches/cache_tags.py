"""Generation tokens: how a cached batch read knows it is still current.

Every cached entry is stored with the tokens of what it was read from, as they were *before*
the database read: its batch's token (status, results) or its owner's (a user's list) or
everyone's (a staff list), and the epoch. `bump` (through batches/changes.py, after the
writer's commit) gives those a new random token, so an entry read before the commit no
longer matches and the next read goes to the database. A reader fetches an entry and the
current tokens in one MGET.

Why it cannot serve a stale entry: an entry carries tokens read before its database read,
and a writer's bump lands after its commit. A commit the read did not see is bumped after
the tokens were read, so the entry's tokens are already old. A token that expired or was
evicted is replaced by a new random one, which no entry carries. A bump lost to a Redis
outage would leave old entries matching: the process that lost it bumps the epoch, which
every entry carries, as soon as Redis answers again (TTLs bound the rest).
"""

import uuid
from collections.abc import Iterable
from typing import Any, cast
from uuid import UUID

from django.core.cache import cache

from omtx_hub.cache_backend import outage

# Longer than any entry lives; an expired token only turns entries into misses.
TOKEN_SECONDS = 24 * 3600
EPOCH = "gen:epoch"
EVERYONE = "gen:everyone"
Tags = tuple[str, ...]


class _LostBump:
    """Set when a bump could not be stored: every entry must be dropped once Redis is back."""

    pending = False


def batch_tag(batch_id: UUID) -> str:
    return f"gen:batch:{batch_id}"


def owner_tag(owner_id: int) -> str:
    return f"gen:owner:{owner_id}"


def bump(tag_keys: Iterable[str]) -> None:
    """New tokens for `tag_keys`: every entry stored with their old ones is out of date."""
    token = uuid.uuid4().hex
    keys = list(tag_keys)
    if _LostBump.pending:
        keys.append(EPOCH)
    not_stored = cache.set_many(dict.fromkeys(keys, token), TOKEN_SECONDS)
    _LostBump.pending = bool(not_stored)


def read(key: str, tag_keys: list[str]) -> tuple[Any | None, Tags | None]:
    """The value under `key` if its tokens are current, and the current tokens (None when
    Redis fails: then nothing is to be stored either)."""
    if _LostBump.pending and not outage.backing_off():
        bump([])
    names = [*tag_keys, EPOCH]
    found = cache.get_many([key, *names])
    read = tuple(found.get(name) for name in names)
    if None in read:
        return None, _fill(names, read)
    tags = cast(Tags, read)
    entry: Any = found.get(key)
    if current(entry, tags):
        return entry[1], tags
    return None, tags


def _fill(names: list[str], tags: tuple[str | None, ...]) -> Tags | None:
    """Tokens for the names that have none: new ones, added only where still absent (a
    writer's concurrent bump wins), then read back."""
    for name, tag in zip(names, tags, strict=True):
        if tag is None:
            cache.add(name, uuid.uuid4().hex, TOKEN_SECONDS)
    found = cache.get_many(names)
    filled = tuple(found.get(name) for name in names)
    return None if None in filled else cast(Tags, filled)


def store(key: str, tags: Tags, value: Any, timeout: float) -> None:
    cache.set(key, (tags, value), timeout)


def current(entry: Any, tags: Tags) -> bool:
    """Whether a stored (tags, value) pair carries `tags`."""
    return isinstance(entry, tuple) and entry[0] == tags

"""The batch reads clients poll, through the cache: status, results pages, lists.

Each answer is what the database read would give, byte for byte, or that read itself: an
entry is served only while its generation tokens are current (batches/cache_tags.py), and
every writer bumps them after its commit (batches/changes.py). Visibility is checked on
every read, cached or not, with the selectors' one rule (`batch_visible`): a status entry
carries its batch's owner, so a warm poll answers, or 404s, without the database.

Not through the cache: reads inside a transaction (its uncommitted writes must not reach
other requests; pytest-django's `db` tests run in one, so they read the database as before)
and every read when OMTX_CACHE_READS is off.
"""

import hashlib
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.request import Request

from batches import cache_tags
from batches.api import representations as rep
from batches.api.pagination import Pagination, ResultsPagination
from batches.api.params import instant, thresholds
from batches.models import Batch
from batches.result_store.reader import StoreUnavailable, store_ranking
from batches.selectors import (
    Ranking,
    batch_get,
    batch_list,
    batch_status_get,
    batch_uuid,
    batch_visible,
    results_ranking,
    sees_all,
)
from omtx_hub.cache import available, build_once, record_lookup
from omtx_hub.errors import NotFound
from omtx_hub.requests import request_user


def _through_cache() -> bool:
    return available() and not connection.in_atomic_block


def _pk(batch_id: str | UUID) -> UUID:
    pk = batch_uuid(batch_id)
    if pk is None:
        raise NotFound("No such batch.")
    return pk


def status_key(pk: UUID) -> str:
    return f"status:{pk}"


def batch_status(*, request: Request, batch_id: str | UUID) -> dict[str, Any]:
    """The status document (representations.batch_status)."""
    if not _through_cache():
        return rep.batch_status(batch_status_get(user=request.user, batch_id=batch_id))
    pk = _pk(batch_id)
    entry, tags = cache_tags.read(status_key(pk), [cache_tags.batch_tag(pk)])
    record_lookup(entry is not None)
    if entry is not None:
        if not batch_visible(user=request.user, owner_id=entry[0]):
            raise NotFound("No such batch.")
        body: dict[str, Any] = entry[1]
        return body
    batch = batch_status_get(user=request.user, batch_id=pk)
    return _store_status(batch, tags)


def _store_status(batch: Batch, tags: cache_tags.Tags | None) -> dict[str, Any]:
    body = rep.batch_status(batch)
    if tags is not None:
        cache_tags.store(status_key(batch.pk), tags, (batch.owner_id, body), settings.OMTX_CACHE_STATUS_SECONDS)
    return body


def _request_digest(request: Request) -> str:
    """Everything of the request an answer depends on: scheme and host (its links are
    absolute), path, and the query in a canonical order (DRF rebuilds the page links
    with the query sorted, so the order a client sent it in changes nothing)."""
    query = urlencode(sorted(request.query_params.lists()), doseq=True)
    whole = f"{request.scheme}://{request.get_host()}{request.path}?{query}"
    return hashlib.sha256(whole.encode()).hexdigest()[:32]


def _visibility(request: Request) -> str:
    return "staff" if sees_all(request.user) else "owner"


def results_page(*, request: Request, batch_id: str | UUID) -> dict[str, Any]:
    """A results page (its `batch` and `metrics` included). Keyed by the batch's version and
    token, the request and the reader's visibility; one process builds a page while the
    others wait for it (omtx_hub.cache.build_once)."""
    if not _through_cache():
        return _results(request, batch_get(user=request.user, batch_id=batch_id))
    pk = _pk(batch_id)
    entry, tags = cache_tags.read(status_key(pk), [cache_tags.batch_tag(pk)])
    if tags is None:
        record_lookup(False)
        return _results(request, batch_get(user=request.user, batch_id=pk))
    read: Batch | None = None
    if entry is None:
        read = batch_get(user=request.user, batch_id=pk)
        owner_id, status = read.owner_id, _store_status(read, tags)
    else:
        owner_id, status = entry
    if not batch_visible(user=request.user, owner_id=owner_id):
        raise NotFound("No such batch.")
    key = f"results:{pk}:v{status['version']}:{_visibility(request)}:{_request_digest(request)}"
    found = cache.get(key)
    record_lookup(cache_tags.current(found, tags))
    if cache_tags.current(found, tags):
        page: dict[str, Any] = found[1]
        return page
    ttl = settings.OMTX_CACHE_RESULTS_SECONDS if status["is_terminal"] else settings.OMTX_CACHE_STATUS_SECONDS

    def build() -> tuple[cache_tags.Tags, dict[str, Any]]:
        return tags, _results(request, read or batch_get(user=request.user, batch_id=pk))

    built = build_once(key, build, timeout=ttl, fresh=lambda value: cache_tags.current(value, tags))
    return built[1]


def _results(request: Request, batch: Batch) -> dict[str, Any]:
    """From the result store when it can give the database's answer (result_store/reader.py),
    else from the database."""
    params = request.query_params
    sort, order = params.get("sort"), params.get("order")
    ranking = results_ranking(
        batch=batch, sort=sort, order=order, status=params.get("status", "succeeded"), thresholds=thresholds(params)
    )
    stored = store_ranking(ranking, batch=batch, sort=sort, order=order)
    if stored is not None:
        try:
            return _results_page(request, batch, stored)
        except StoreUnavailable:
            pass  # counted and logged by the reader; the database answers
    return _results_page(request, batch, ranking)


def _results_page(request: Request, batch: Batch, ranking: Ranking) -> dict[str, Any]:
    paginator = ResultsPagination()
    page = paginator.paginate_ranking(ranking, request)
    response = paginator.get_paginated_response([rep.job_row(job, request, rank=rank) for rank, job in page])
    body: dict[str, Any] = response.data
    body.update({"batch": rep.batch_status(batch), "metrics": rep.metric_fields(batch.model)})
    return body


def batch_page(*, request: Request, view: Any) -> dict[str, Any]:
    """A page of the batches the reader sees, cached OMTX_CACHE_LIST_SECONDS at most and
    dropped at once when one of them changes (its owner's token, and everyone's for staff)."""
    if not _through_cache():
        return _batches(request, view)
    staff = sees_all(request.user)
    tag = cache_tags.EVERYONE if staff else cache_tags.owner_tag(request_user(request).pk)
    reader = "staff" if staff else f"user-{request.user.pk}"
    key = f"list:{reader}:{_request_digest(request)}"
    entry, tags = cache_tags.read(key, [tag])
    record_lookup(entry is not None)
    if entry is not None:
        cached: dict[str, Any] = entry
        return cached
    body = _batches(request, view)
    if tags is not None:
        cache_tags.store(key, tags, body, settings.OMTX_CACHE_LIST_SECONDS)
    return body


def _batches(request: Request, view: Any) -> dict[str, Any]:
    params = request.query_params
    batches = batch_list(
        user=request.user,
        status=params.get("status"),
        model=params.get("model"),
        search=params.get("search"),
        created_after=instant(params, "created_after"),
        created_before=instant(params, "created_before"),
    )
    paginator = Pagination()
    page = paginator.paginate_queryset(batches, request, view=view) or []
    body: dict[str, Any] = paginator.get_paginated_response([rep.batch_brief(b, request) for b in page]).data
    return body

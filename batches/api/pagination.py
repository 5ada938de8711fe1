"""Limit/offset pagination whose bounds are part of the contract (schema_inputs.py), and
cursor pagination for rankings."""

from dataclasses import dataclass
from typing import Any

from django.core import signing
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from batches.models import Job
from batches.selectors import Ranking
from omtx_hub.errors import InvalidInput

MAX_LIMIT = 1000
# Past any batch's jobs and any owner's batches; spares the database a giant OFFSET.
MAX_OFFSET = 10_000_000
CURSOR_SALT = "batches.results.cursor"


class Pagination(LimitOffsetPagination):
    """limit 1..1000 (default 50), offset 0..10,000,000 (default 0); absent means the default.
    DRF's own quietly falls back to the default on junk; here junk is a 400 naming the bounds."""

    default_limit = 50
    max_limit = MAX_LIMIT
    max_offset = MAX_OFFSET

    def get_limit(self, request: Request) -> int:
        return _bounded_int(request.query_params, "limit", default=self.default_limit, low=1, high=self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _bounded_int(request.query_params, "offset", default=0, low=0, high=self.max_offset)


def _bounded_int(params: Any, name: str, *, default: int, low: int, high: int) -> int:
    if name not in params:
        return default
    raw = params[name]
    # ASCII digits only (int() also takes " 5", "5_0" and other scripts' digits); the length
    # check keeps a thousand-digit value away from int().
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(high)) and low <= int(raw) <= high:
        return int(raw)
    details = {"parameter": name, "minimum": low, "maximum": high}
    raise InvalidInput(f"{name} must be an integer from {low} to {high}.", code=f"invalid_{name}", details=details)


class ResultsPagination(Pagination):
    """A ranking's pages by offset (as every list) or by `cursor`: the opaque position
    after a page's last row, which `next_cursor` hands out on every page. A cursor
    page costs the same at rank 90,000 as at rank 1; an OFFSET page walks the rows it
    skips. The cursor is signed and bound to its batch and query (sort, order, status,
    thresholds), and carries the rank, so `rank` stays the position in the ranking."""

    def paginate_ranking(self, ranking: Ranking, request: Request) -> list[tuple[int, Job]]:
        """(rank, job) for the page the request asks for."""
        self.request = request
        self.url = request.build_absolute_uri()
        self.limit = self.size = size = self.get_limit(request)
        self.count = total = ranking.count()
        self.cursor = _cursor(request.query_params, ranking.fingerprint)
        if self.cursor is None:
            self.offset = self.get_offset(request)
            jobs = ranking.at(self.offset, size)
            first = self.offset
        else:
            jobs = ranking.after((self.cursor.key, self.cursor.index), size)
            first = self.cursor.rank
        self.page = [(first + i + 1, job) for i, job in enumerate(jobs)]
        self.following = _next_cursor(self.page, total, ranking.fingerprint)
        return self.page

    def get_paginated_response(self, data: Any) -> Response:
        if self.cursor is None:
            previous, next_link = self.get_previous_link(), self.get_next_link()
        else:
            previous = _previous_by_offset(self.url, self.cursor.rank, self.size)
            next_link = replace_query_param(self.url, "cursor", self.following) if self.following else None
        body = {"count": self.count, "next": next_link, "previous": previous, "next_cursor": self.following}
        return Response({**body, "results": data})


@dataclass(frozen=True)
class Position:
    """After the row ranked `rank`, whose rank key was `key` (None: no metric) at input `index`."""

    key: float | None
    index: int
    rank: int


def _next_cursor(page: list[tuple[int, Job]], total: int, fingerprint: str) -> str | None:
    if not page or page[-1][0] >= total:
        return None
    rank, job = page[-1]
    key = job.rank_key  # type: ignore[attr-defined]  # annotated by results_ranking
    return signing.dumps([fingerprint, key, job.index, rank], salt=CURSOR_SALT, compress=True)


def _previous_by_offset(url: str, rank: int, limit: int) -> str | None:
    """Cursors go forward only; the page before is an offset page (deep ones cost more)."""
    if rank == 0:
        return None
    return replace_query_param(remove_query_param(url, "cursor"), "offset", max(rank - limit, 0))


def _cursor(params: Any, fingerprint: str) -> Position | None:
    if "cursor" not in params:
        return None
    if "offset" in params:
        raise InvalidInput("Give cursor or offset, not both.", code="invalid_cursor", details={"parameter": "cursor"})
    try:
        payload = signing.loads(params["cursor"], salt=CURSOR_SALT)
    except signing.BadSignature:
        payload = None
    # Signed, so only this server wrote it; the checks keep an old format from a 500.
    if not (isinstance(payload, list) and len(payload) == 4 and payload[0] == fingerprint):
        message = "cursor is not one this ranking handed out (another batch, sort, order, status or filter?)."
        raise InvalidInput(message, code="invalid_cursor", details={"parameter": "cursor"})
    _, key, index, rank = payload
    if not (key is None or isinstance(key, float | int)) or not (isinstance(index, int) and isinstance(rank, int)):
        raise InvalidInput("cursor is malformed.", code="invalid_cursor", details={"parameter": "cursor"})
    return Position(key, index, rank)

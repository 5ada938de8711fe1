"""Limit/offset pagination whose bounds are part of the contract (schema_inputs.py)."""

from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from omtx_hub.errors import InvalidInput

MAX_LIMIT = 1000
# Past any batch's jobs and any owner's batches; spares the database a giant OFFSET.
MAX_OFFSET = 10_000_000


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

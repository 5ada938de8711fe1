"""Rank keys and their indexes, generated from the catalog (one list: adding a model's
metric adds its indexes, and `makemigrations` writes them).

A results page orders by a *rank key* ascending, NULLs last, ties by input order:
the metric for ascending ranking, its negation for descending. Both directions are
then one ascending btree order, so `(batch, key, index) WHERE status = 'succeeded'`
serves each exactly: the first page, an OFFSET, a keyset cursor (a row comparison
`(key, index) > (k, i)`) and the NULL-metric rows (`key IS NULL`, in index order)
are all one index range, with no sort. One btree cannot serve both directions with
ascending tie-breaks (its backward scan breaks ties by descending index; an
incremental sort would re-sort each tie group, and integer counts tie by the
thousand), hence two indexes per metric. They are partial: jobs are inserted queued,
so they cost nothing at submission, only when a job succeeds.
"""

import hashlib
import re
from typing import Any

from django.db.models import BooleanField, F, FloatField, Func, Index, Q
from django.db.models.expressions import Combinable

from batches.catalog import MODELS, TYPED_COLUMNS
from batches.states import JobStatus

METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Index names are at most 30 characters (Django's check, for Oracle's sake).
MAX_INDEX_NAME = 30


class JsonNumber(Func):
    """`result[key]` as a double when it is a JSON number, else NULL. A string or a
    boolean there must not fail the cast: inside an index the failure would be the
    ingest's UPDATE, not a read."""

    output_field = FloatField()

    def __init__(self, key: str) -> None:
        if not METRIC_NAME.fullmatch(key):
            raise ValueError(f"not a metric name: {key!r}")
        self.key = key
        super().__init__(F("result"))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # type: ignore[override]
        field, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"CASE WHEN jsonb_typeof({field} -> '{self.key}') = 'number' "
            f"THEN ({field} ->> '{self.key}')::double precision END"
        )
        return sql, [*params, *params]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        field, params = compiler.compile(self.source_expressions[0])
        path = f"'$.\"{self.key}\"'"
        sql = (
            f"CASE WHEN json_type({field}, {path}) IN ('integer', 'real') "
            f"THEN CAST(json_extract({field}, {path}) AS REAL) END"
        )
        return sql, [*params, *params]


class Negated(Func):
    template = "(-%(expressions)s)"
    output_field = FloatField()


class RowAfter(Func):
    """`(key, index) > (k, i)`: a row comparison, which a btree on (…, key, index)
    takes as the start of its range. `key > k OR (key = k AND index > i)` would not be."""

    output_field = BooleanField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # type: ignore[override]
        compiled = [compiler.compile(expression) for expression in self.source_expressions]
        left, right = compiled[:2], compiled[2:]
        sql = f"({left[0][0]}, {left[1][0]}) > ({right[0][0]}, {right[1][0]})"
        return sql, [param for _, params in compiled for param in params]


def sortable_metrics() -> list[str]:
    """Every numeric output of every model, each name once (a name means one value)."""
    names = {out.name for spec in MODELS.values() for out in spec.outputs if out.kind in ("float", "int")}
    return sorted(names)


def metric_value(name: str) -> Combinable:
    return F(name) if name in TYPED_COLUMNS else JsonNumber(name)


def rank_key(name: str, *, descending: bool) -> Combinable:
    value = metric_value(name)
    return Negated(value) if descending else value


def rank_index_name(name: str, *, descending: bool) -> str:
    suffix = "_d" if descending else "_a"
    full = f"job_rank_{name}{suffix}"
    if len(full) <= MAX_INDEX_NAME:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"job_rank_{name[: MAX_INDEX_NAME - 18]}_{digest}{suffix}"


def rank_indexes() -> list[Index]:
    """results_list's rankings of succeeded jobs: one index per sortable metric and direction."""
    return [
        Index(
            F("batch"),
            rank_key(name, descending=descending),
            F("index"),
            condition=Q(status=JobStatus.SUCCEEDED),
            name=rank_index_name(name, descending=descending),
        )
        for name in sortable_metrics()
        for descending in (False, True)
    ]

"""Model instances from hand-written SQL, for the reads every status poll repeats.

Compiling a queryset costs the poll more Python than PostgreSQL spends answering it
(`get_select` and `as_sql`: docs/performance.md, "Status poll and serving layout"). These
reads are written as SQL over the model's own column names, and their rows become instances
the way the ORM's compiler would make them: each value through the field's and the
backend's converters (SQLite stores UUIDs as text and datetimes without a zone), then
`Model.from_db`, so a column the query did not read is deferred, as with `.only()`.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def columns(model: type[Model], fields: Sequence[str], alias: str) -> str:
    """`alias.column, …` for the model's `fields` (attnames), quoted for the current backend."""
    return _columns(model, tuple(fields), alias, connection.vendor)


@cache
def _columns(model: type[Model], fields: tuple[str, ...], alias: str, vendor: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(_field(model, name).column)}" for name in fields)


def instance(model: type[M], fields: Sequence[str], values: Sequence[Any]) -> M:
    """An instance of `model` from `values`, the columns of `fields` (attnames) in order."""
    read = {
        name: _convert(value, converters)
        for name, value, converters in zip(
            fields, values, _converters(model, tuple(fields), connection.vendor), strict=True
        )
    }
    # from_db takes the values in the model's field order.
    names = [f.attname for f in model._meta.concrete_fields if f.attname in read]
    return model.from_db(connection.alias, names, [read[name] for name in names])


def _field(model: type[Model], attname: str) -> "Field[Any, Any]":
    return next(f for f in model._meta.concrete_fields if f.attname == attname)


def _convert(value: Any, converters: list[tuple[Any, Any]]) -> Any:
    for convert, expression in converters:
        value = convert(value, expression, connection)
    return value


@cache
def _converters(model: type[Model], fields: tuple[str, ...], vendor: str) -> list[list[tuple[Any, Any]]]:
    """Per field, what the compiler would apply (SQLCompiler.get_converters). Per vendor:
    the tests switch databases between runs, never within one process's connection."""
    found = []
    for name in fields:
        col = _field(model, name).get_col(model._meta.db_table)
        found.append([(c, col) for c in [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]])
    return found

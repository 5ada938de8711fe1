"""A job row as a Firestore document and back, and the size rules it keeps.

A document holds what a results row shows (representations.job_row) and the storage name of
the job's structure file: never the structure itself. Firestore caps a document at 1 MiB and
forbids nested arrays; a text longer than TEXT_LIMIT is cut and a value Firestore cannot
hold is left out, each named in `truncated`, and the results API reads the database for any
page holding such a row (documents.py's `exact`), so an answer never differs.

Firestore returns a map's keys sorted; the database returns them in its own order (jsonb:
shortest first; SQLite: as written). Each map is stored with its keys' order beside it.

`order.<metric>_a` / `_d` is the row's place in the ranking by that metric, ascending or
descending, as one string, set on succeeded rows only: "0" + the rank key + the input index
(+ the key's exact bits, for the cursor) for a row with the metric, "1" + the index for one
without. Strings compare byte by byte, so one single-field index orders the rows exactly as
batches/ranking.py's `(key, index)` NULLS LAST does; a row without the field (not succeeded)
is outside every such query.
"""

import struct
from typing import Any

from batches.catalog import TYPED_COLUMNS, get_model
from batches.models import Job
from batches.states import JobStatus

# Characters kept of any one text (a name, a SMILES, a failure message).
TEXT_LIMIT = 16_384
# Firestore's limit is 1,048,576 bytes a document; this leaves room for the document's name.
DOCUMENT_LIMIT = 1_000_000
TEXTS = ("name", "smiles", "canonical_smiles", "failure_message")
MAPS = {"metrics": "result", "standardization": "standardization"}
INDEX_DIGITS = 10


def job_document(job: Job, *, model: str) -> dict[str, Any]:
    """The document of `job`, a job of a batch of `model`."""
    truncated: list[str] = []
    doc: dict[str, Any] = {
        "job_id": str(job.pk),
        "batch_id": str(job.batch_id),
        "index": job.index,
        "name": job.name,
        "smiles": job.input_smiles,
        "canonical_smiles": job.canonical_smiles,
        "status": job.status,
        "failure_reason": job.failure_reason,
        "failure_message": job.failure_message,
        "structure": job.artifact.name if job.artifact else "",
    }
    for field in TEXTS:
        if len(doc[field]) > TEXT_LIMIT:
            doc[field] = doc[field][:TEXT_LIMIT]
            truncated.append(field)
    for field, attribute in MAPS.items():
        value = getattr(job, attribute)
        if not _storable(value):
            value = None
            truncated.append(field)
        doc[field] = value
        doc[f"{field}_keys"] = list(value) if isinstance(value, dict) else None
    if job.status == JobStatus.SUCCEEDED:
        doc["order"] = order_fields(job, model)
    if document_size(doc) > DOCUMENT_LIMIT:
        doc.update(metrics=None, metrics_keys=None, standardization=None, standardization_keys=None)
        truncated += [name for name in MAPS if name not in truncated]
    doc["truncated"] = truncated
    return doc


def exact(doc: dict[str, Any]) -> bool:
    """Whether the document holds its row whole (nothing cut or left out)."""
    return not doc.get("truncated")


def job_from_document(doc: dict[str, Any]) -> Job:
    """An unsaved Job carrying what representations.job_row reads."""
    return Job(
        pk=doc["job_id"],
        batch_id=doc["batch_id"],
        index=doc["index"],
        name=doc["name"],
        input_smiles=doc["smiles"],
        canonical_smiles=doc["canonical_smiles"],
        standardization=_in_order(doc["standardization"], doc["standardization_keys"]),
        status=doc["status"],
        result=_in_order(doc["metrics"], doc["metrics_keys"]),
        failure_reason=doc["failure_reason"],
        failure_message=doc["failure_message"],
        artifact=doc["structure"],
    )


def _in_order(value: Any, keys: list[str] | None) -> Any:
    return {key: value[key] for key in keys} if isinstance(value, dict) and keys is not None else value


# --- ranking order ----------------------------------------------------------------


def rankable(model: str) -> list[str]:
    """The metrics a batch of `model` can be ranked by (selectors.results_ranking's rule)."""
    return [out.name for out in get_model(model).outputs if out.kind != "str"]


def order_field(metric: str, *, descending: bool) -> str:
    return f"order.{metric}_{'d' if descending else 'a'}"


def order_fields(job: Job, model: str) -> dict[str, str]:
    fields = {}
    for metric in rankable(model):
        value = metric_value(job, metric)
        fields[f"{metric}_a"] = order_string(value, job.index)
        fields[f"{metric}_d"] = order_string(None if value is None else -value, job.index)
    return fields


def metric_value(job: Job, name: str) -> float | None:
    """What batches/ranking.py's `metric_value` reads in SQL: the typed column, or the
    result's value when it is a JSON number (a boolean or a string is no number)."""
    if name in TYPED_COLUMNS:
        column: float | None = getattr(job, name)
        return column
    value = (job.result or {}).get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def order_string(key: float | None, index: int) -> str:
    if key is None:
        return f"1{index:0{INDEX_DIGITS}d}"
    return f"0{_sortable(key)}{index:0{INDEX_DIGITS}d}{_bits(key):016x}"


def after_bound(key: float | None, index: int) -> str:
    """The bound a cursor page starts after: above the row at (key, index) whatever its
    key's exact bits ("~" sorts after every hex digit), below the next row."""
    return order_string(key, index)[: 1 + (16 if key is not None else 0) + INDEX_DIGITS] + "~"


def rank_key(value: str) -> float | None:
    """The rank key an order string was made from, bit for bit (-0.0 stays -0.0, as the
    database's key does; None: a row without the metric)."""
    if value.startswith("1"):
        return None
    start = 17 + INDEX_DIGITS
    key: float = struct.unpack(">d", struct.pack(">Q", int(value[start : start + 16], 16)))[0]
    return key


def _bits(key: float) -> int:
    bits: int = struct.unpack(">Q", struct.pack(">d", key))[0]
    return bits


def _sortable(key: float) -> str:
    """16 hex digits whose order is the numbers' order: a positive double's bits with the
    sign bit set, a negative one's bits inverted. -0.0 is 0.0, as SQL compares them."""
    bits = _bits(key + 0.0)
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


# --- size rules -------------------------------------------------------------------


def _storable(value: Any, *, in_array: bool = False) -> bool:
    """Whether Firestore holds `value` as it is: no array directly inside an array, integers
    within 64 bits, finite or not floats (Firestore keeps NaN and infinities)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return not in_array and all(_storable(v, in_array=True) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return False


def document_size(value: Any) -> int:
    """Bytes as Firestore counts them (cloud.google.com/firestore/docs/storage-size): a
    string is its UTF-8 length + 1, a number 8, a boolean or null 1, a map the sum of its
    keys (as strings) and values, an array the sum of its values; plus 32 per document."""
    return 32 + _size(value)


def _size(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(k.encode()) + 1 + _size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_size(v) for v in value)
    if isinstance(value, str):
        return len(value.encode()) + 1
    if isinstance(value, bool) or value is None:
        return 1
    return 8

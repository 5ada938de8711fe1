"""Export rows and their encodings: one row per input ligand (accepted, rejected, pending,
failed alike), in input order, in constant memory.

Small exports stream inline (`stream`); large ones are built in slices of input indexes by
the background worker (batches/export_files.py), with the same encoders, so both paths write
the same bytes.
"""

import bisect
import csv
import io
import json
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.files.storage import default_storage
from rdkit import Chem

from batches.catalog import get_model
from batches.models import Batch, Job
from batches.validation.rdkit_log import rdkit_messages

FORMATS = {
    "csv": ("text/csv", "csv"),
    "csv.gz": ("application/gzip", "csv.gz"),
    "jsonl": ("application/x-ndjson", "jsonl"),
    "jsonl.gz": ("application/gzip", "jsonl.gz"),
    "sdf": ("chemical/x-mdl-sdfile", "sdf"),
    "sdf.gz": ("application/gzip", "sdf.gz"),
    "zip": ("application/zip", "zip"),
}
BASE_COLUMNS = [
    "index",
    "name",
    "input_smiles",
    "canonical_smiles",
    "removed_fragments",
    "standardization",
    "status",
    "failure_reason",
    "failure_message",
]
# Read as tuples, not model instances: a third of the CSV's time went to building Jobs.
JOB_FIELDS = (
    "index",
    "name",
    "input_smiles",
    "canonical_smiles",
    "standardization",
    "status",
    "failure_reason",
    "failure_message",
    "result",
    "artifact",
)
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP
# "CSV injection"), fullwidth forms included: Excel folds them to ASCII.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
CHUNK_BYTES = 64 * 1024

Row = tuple[dict[str, Any], str]  # the row, and its job's structure file ("" if none)


def export_rows(batch: Batch, *, start: int = 0, stop: int | None = None) -> Iterator[Row]:
    """Rows of input indexes [start, stop): the stored jobs merged with the rejected
    ligands of the report. Without `stop`, one query read in chunks."""
    rejected = _rejected_between(batch, start, stop)
    jobs = Job.objects.filter(batch=batch, index__gte=start).order_by("index")
    if stop is not None:
        jobs = jobs.filter(index__lt=stop)
    pending = next(rejected, None)
    for values in jobs.values_list(*JOB_FIELDS).iterator(chunk_size=2000):
        while pending is not None and pending["index"] < values[0]:
            yield _rejected_row(pending), ""
            pending = next(rejected, None)
        yield _job_row(values), values[-1] or ""
    while pending is not None:
        yield _rejected_row(pending), ""
        pending = next(rejected, None)


def _rejected_between(batch: Batch, start: int, stop: int | None) -> Iterator[dict[str, Any]]:
    rejected = sorted(batch.validation_report.get("rejected_ligands", []), key=lambda r: r["index"])
    keys = [r["index"] for r in rejected]
    first = bisect.bisect_left(keys, start)
    last = len(keys) if stop is None else bisect.bisect_left(keys, stop)
    return iter(rejected[first:last])


def index_end(batch: Batch) -> int:
    """One past the last input index that has a row."""
    last = Job.objects.filter(batch=batch).order_by("-index").values_list("index", flat=True).first()
    rejected: list[int] = [r["index"] for r in batch.validation_report.get("rejected_ligands", [])]
    return max([-1 if last is None else last, *rejected]) + 1


def _rejected_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": item["index"],
        "name": item["name"],
        "input_smiles": item["smiles"],
        "canonical_smiles": "",
        "removed_fragments": "",
        "standardization": "",
        "status": "rejected",
        "failure_reason": item["code"],
        "failure_message": item["message"],
    }


def _job_row(values: tuple[Any, ...]) -> dict[str, Any]:
    index, name, input_smiles, canonical, standardization, status, reason, message, result, _ = values
    return {
        "index": index,
        "name": name,
        "input_smiles": input_smiles,
        "canonical_smiles": canonical,
        "removed_fragments": ".".join(standardization.get("removed_fragments", [])),
        "standardization": "; ".join(standardization.get("changes", []) + standardization.get("flags", [])),
        "status": status,
        "failure_reason": reason,
        "failure_message": message,
        **(result or {}),
    }


def metric_columns(batch: Batch) -> list[str]:
    return [f.name for f in get_model(batch.model).outputs if f.name not in BASE_COLUMNS]


def neutralize_formula(value: Any) -> Any:
    """Text a spreadsheet would execute, prefixed with ' so it shows as text.
    Numbers are left alone: -0.5 is a value, not a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def encode_csv(batch: Batch, rows: Iterable[Row], *, header: bool = True) -> Iterator[bytes]:
    columns = BASE_COLUMNS + metric_columns(batch)
    sink = io.StringIO()
    writer = csv.writer(sink)
    if header:
        writer.writerow(columns)
    for row, _ in rows:
        # neutralize_formula inlined: this line runs once per cell.
        writer.writerow(
            ["'" + v if isinstance(v, str) and v.startswith(FORMULA_TRIGGERS) else v for v in map(row.get, columns)]
        )
        if sink.tell() > CHUNK_BYTES:
            yield sink.getvalue().encode()
            sink.seek(0)
            sink.truncate()
    yield sink.getvalue().encode()


def encode_jsonl(batch: Batch, rows: Iterable[Row], *, header: bool = True) -> Iterator[bytes]:
    for row, _ in rows:
        yield (json.dumps(row, default=str) + "\n").encode()


def encode_sdf(batch: Batch, rows: Iterable[Row], *, header: bool = True) -> Iterator[bytes]:
    for row, artifact in rows:
        yield _sdf_record(row, artifact).encode()


def _sdf_record(row: dict[str, Any], artifact: str) -> str:
    block = None
    # A structure that is not SDF (Boltz-2's mmCIF) has no connection table to reuse.
    if artifact.endswith(".sdf") and default_storage.exists(artifact):
        with default_storage.open(artifact, "rb") as handle:
            block = handle.read().decode()
    if block is None:
        with rdkit_messages():
            mol = Chem.MolFromSmiles(row["canonical_smiles"]) if row["canonical_smiles"] else None
        # Rejected ligands keep their row as an empty molecule carrying the reason.
        block = Chem.MolToMolBlock(mol if mol is not None else Chem.Mol())
    # Keep the connection table only; our properties replace the artifact's.
    body = block[: block.index("M  END")].split("\n", 1)[1]
    props = "".join(f">  <{key}>\n{_one_line(value)}\n\n" for key, value in row.items() if value not in (None, ""))
    return f"{_one_line(row['name'])}\n{body}M  END\n{props}$$$$\n"


def _one_line(value: Any) -> str:
    return str(value).replace("\n", " ")


ENCODERS = {"csv": encode_csv, "jsonl": encode_jsonl, "sdf": encode_sdf}


def gzip_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """One gzip member around the whole stream, flushed as it goes."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        if packed := packer.compress(chunk):
            yield packed
    yield packer.flush()


def stream(batch: Batch, fmt: str) -> Iterator[bytes]:
    """The whole export of `fmt`, inline."""
    if fmt == "zip":
        return stream_zip(batch)
    base = fmt.removesuffix(".gz")
    chunks = ENCODERS[base](batch, export_rows(batch))
    return gzip_stream(chunks) if fmt.endswith(".gz") else chunks


class _Sink(io.RawIOBase):
    """A write-only buffer drained after each write, for streaming."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def stream_zip(batch: Batch) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        yield from _zip_member(archive, sink, "results.csv", encode_csv(batch, export_rows(batch)))
        yield from _zip_member(archive, sink, "results.jsonl", encode_jsonl(batch, export_rows(batch)))
        for row, artifact in export_rows(batch):
            if artifact and default_storage.exists(artifact):
                suffix = artifact.rsplit(".", 1)[-1]
                with default_storage.open(artifact, "rb") as handle:
                    content = handle.read()
                name = f"structures/{row['index']:06d}_{_safe(row['name'])}.{suffix}"
                yield from _zip_member(archive, sink, name, [content])
    yield sink.drain()


def _zip_member(archive: zipfile.ZipFile, sink: _Sink, name: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, mode="w", force_zip64=True) as member:
        for chunk in chunks:
            member.write(chunk)
            yield sink.drain()
    yield sink.drain()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]

"""Streamed exports, one row per input ligand (accepted, rejected, pending,
failed alike), in input order, in constant memory."""

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.files.storage import default_storage
from rdkit import Chem

from batches.catalog import get_model
from batches.models import Batch, Job
from batches.validation.rdkit_log import rdkit_messages

FORMATS = {
    "csv": ("text/csv", "csv"),
    "jsonl": ("application/x-ndjson", "jsonl"),
    "sdf": ("chemical/x-mdl-sdfile", "sdf"),
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
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP
# "CSV injection"), fullwidth forms included: Excel folds them to ASCII.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def export_rows(batch: Batch) -> Iterator[tuple[dict[str, Any], Job | None]]:
    """Merge the stored jobs and the rejected ligands of the report by input index."""
    rejected = iter(sorted(batch.validation_report.get("rejected_ligands", []), key=lambda r: r["index"]))
    pending = next(rejected, None)
    for job in Job.objects.filter(batch=batch).order_by("index").iterator(chunk_size=2000):
        while pending is not None and pending["index"] < job.index:
            yield _rejected_row(pending), None
            pending = next(rejected, None)
        yield _job_row(job), job
    while pending is not None:
        yield _rejected_row(pending), None
        pending = next(rejected, None)


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


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "index": job.index,
        "name": job.name,
        "input_smiles": job.input_smiles,
        "canonical_smiles": job.canonical_smiles,
        "removed_fragments": ".".join(job.standardization.get("removed_fragments", [])),
        "standardization": "; ".join(job.standardization.get("changes", []) + job.standardization.get("flags", [])),
        "status": job.status,
        "failure_reason": job.failure_reason,
        "failure_message": job.failure_message,
        **(job.result or {}),
    }


def metric_columns(batch: Batch) -> list[str]:
    return [f.name for f in get_model(batch.model).outputs if f.name not in BASE_COLUMNS]


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


def neutralize_formula(value: Any) -> Any:
    """Text a spreadsheet would execute, prefixed with ' so it shows as text.
    Numbers are left alone: -0.5 is a value, not a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def stream_csv(batch: Batch) -> Iterator[bytes]:
    columns = BASE_COLUMNS + metric_columns(batch)
    sink = io.StringIO()
    writer = csv.DictWriter(sink, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row, _ in export_rows(batch):
        writer.writerow({key: neutralize_formula(value) for key, value in row.items()})
        if sink.tell() > 64 * 1024:
            yield sink.getvalue().encode()
            sink.seek(0)
            sink.truncate()
    yield sink.getvalue().encode()


def stream_jsonl(batch: Batch) -> Iterator[bytes]:
    for row, _ in export_rows(batch):
        yield (json.dumps(row, default=str) + "\n").encode()


def _sdf_record(row: dict[str, Any], job: Job | None) -> str:
    block = None
    if job is not None and job.artifact and default_storage.exists(job.artifact.name):
        with default_storage.open(job.artifact.name, "rb") as handle:
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


def stream_sdf(batch: Batch) -> Iterator[bytes]:
    for row, job in export_rows(batch):
        yield _sdf_record(row, job).encode()


def stream_zip(batch: Batch) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        yield from _zip_member(archive, sink, "results.csv", stream_csv(batch))
        yield from _zip_member(archive, sink, "results.jsonl", stream_jsonl(batch))
        for row, job in export_rows(batch):
            if job is not None and job.artifact and default_storage.exists(job.artifact.name):
                suffix = job.artifact.name.rsplit(".", 1)[-1]
                with default_storage.open(job.artifact.name, "rb") as handle:
                    content = handle.read()
                yield from _zip_member(
                    archive, sink, f"structures/{row['index']:06d}_{_safe(row['name'])}.{suffix}", [content]
                )
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


STREAMS = {"csv": stream_csv, "jsonl": stream_jsonl, "sdf": stream_sdf, "zip": stream_zip}

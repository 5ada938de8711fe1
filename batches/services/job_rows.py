"""A batch's jobs written in one go: what a submission turns into once it is validated.

On PostgreSQL the rows go through COPY: for 100,000 jobs the ORM's bulk_create spends most
of a minute in Python (a model instance per job, each field prepared, each column dumped as
an array for UNNEST); COPY streams tuples at the speed of the wire. Elsewhere (SQLite, the
embedded default) bulk_create does the same job for the batch sizes that run there.
"""

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import Field
from django.utils import timezone

from batches.models import Batch, Job
from batches.validation.ligands import LigandReport
from batches.validation.smiles import LigandOk

REUSE_FIELDS = ("model", "model_version", "weights_revision", "parameters", "target_sha256")


def reuse_key(*, manifest: dict[str, Any], canonical_smiles: str) -> str:
    """Equal keys are the same prediction: model, version, weights, parameters, target
    and canonical ligand (DESIGN §5)."""
    return ReuseKeys(manifest).key(canonical_smiles)


class ReuseKeys:
    """reuse_key for many ligands of one manifest: the sha256 of the canonical JSON of
    {ligand, model, …}. "ligand" sorts first, so the JSON is the ligand's part then the
    manifest's, which is encoded once instead of once per job."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        rest = json.dumps(
            {key: manifest[key] for key in REUSE_FIELDS}, sort_keys=True, default=str, separators=(",", ":")
        )
        self.tail = ("," + rest[1:]).encode()

    def key(self, canonical_smiles: str) -> str:
        head = '{"ligand":' + json.dumps(canonical_smiles)
        return hashlib.sha256(head.encode() + self.tail).hexdigest()


def create_jobs(batch: Batch, report: LigandReport) -> None:
    """The batch's jobs, one per accepted ligand, and the counters that say so."""
    accepted = report.accepted
    counts = {"ligands_rejected": len(report.rejected), "n_total": len(accepted), "n_queued": len(accepted)}
    Batch.objects.filter(pk=batch.pk).update(**counts)
    for name, value in counts.items():
        setattr(batch, name, value)
    if connection.vendor == "postgresql":
        _copy_jobs(batch, accepted)
    else:
        Job.objects.bulk_create(_jobs(batch, accepted), batch_size=2000)


def _given(batch: Batch, ok: LigandOk, keys: ReuseKeys) -> dict[str, Any]:
    """What a new job takes from its batch and its ligand; every other field its default."""
    return {
        "batch_id": batch.pk,
        "owner_id": batch.owner_id,
        "priority": batch.priority,
        "index": ok.index,
        "name": ok.name,
        "input_smiles": ok.smiles,
        "canonical_smiles": ok.canonical_smiles,
        "inchikey": ok.inchikey,
        "standardization": ok.standardization,
        "reuse_key": keys.key(ok.canonical_smiles),
    }


def _jobs(batch: Batch, accepted: list[LigandOk]) -> Iterator[Job]:
    keys = ReuseKeys(batch.manifest)
    return (Job(**_given(batch, ok, keys)) for ok in accepted)


def _copy_jobs(batch: Batch, accepted: list[LigandOk]) -> None:
    fields: list[Field[Any, Any]] = list(Job._meta.concrete_fields)
    defaults = _defaults(fields)
    keys = ReuseKeys(batch.manifest)
    table = connection.ops.quote_name(Job._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    attnames = [field.attname for field in fields]
    json_fields = {field.attname for field in fields if field.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for ok in accepted:
            row = {**defaults, "id": uuid.uuid4(), **_given(batch, ok, keys)}
            copy.write_row(
                [json.dumps(row[a]) if a in json_fields and row[a] is not None else row[a] for a in attnames]
            )


def _defaults(fields: list[Field[Any, Any]]) -> dict[str, Any]:
    """Each field's value in a new job as the ORM would save it (auto_now_add stamped now)."""
    now = timezone.now()
    return {
        field.attname: now
        if getattr(field, "auto_now_add", False)
        else (field.get_default() if field.has_default() else None if field.null else field.get_default())
        for field in fields
    }

"""Job rows written by COPY (PostgreSQL) are the rows the ORM writes; reuse keys unchanged."""

from collections.abc import Callable
from typing import Any

import pytest
from django.forms.models import model_to_dict

from batches.catalog import get_model
from batches.models import Batch, Job
from batches.services import job_rows
from batches.services.submission import request_fingerprint
from batches.validation.ligands import raw_from_json, validate_ligands
from conftest import LIGANDS

SALTS = [*LIGANDS, {"name": "tosylate", "smiles": "CC(N)Cc1ccccc1.Cc1ccc(S(=O)(=O)O)cc1"}, "C[C@H](N)C(=O)O"]


@pytest.mark.parametrize("smiles", ["CCO", "C[C@H](N)C(=O)O", 'C"quoted"', "Ç\\u00e9/\\\\"])
@pytest.mark.parametrize(
    "parameters", [{}, {"conformer": False, "force_field": "UFF"}, {"nested": {"b": [1, 2.5], "a": None}}]
)
def test_reuse_keys_are_the_canonical_json_s_sha256(smiles: str, parameters: dict[str, Any]) -> None:
    """Written once per manifest, the key must still equal the original definition, or no
    prediction made before would ever be reused again."""
    manifest = {
        "model": "ligand-profile",
        "model_version": "1.0.0",
        "weights_revision": "rdkit",
        "parameters": parameters,
        "target_sha256": "ab" * 32,
        "executor": "ignored",
    }
    fields = {key: manifest[key] for key in job_rows.REUSE_FIELDS}
    assert job_rows.reuse_key(manifest=manifest, canonical_smiles=smiles) == request_fingerprint(
        {**fields, "ligand": smiles}
    )


@pytest.mark.postgres
def test_copy_writes_every_field_as_the_orm_does(make_batch: Callable[..., Batch]) -> None:
    copied, ormed = make_batch(), make_batch(name="other")  # two batches; their jobs rewritten both ways
    Job.objects.all().delete()
    report = validate_ligands(raw_from_json(SALTS), get_model("ligand-profile").limits)
    job_rows._copy_jobs(copied, report.accepted)
    Job.objects.bulk_create(job_rows._jobs(ormed, report.accepted))
    skip = {"id", "batch", "created_at"}

    def rows(batch: Batch) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in model_to_dict(job).items() if k not in skip}
            for job in Job.objects.filter(batch=batch).order_by("index")
        ]

    assert rows(copied) == rows(ormed) and len(rows(copied)) == len(SALTS)
    assert {job.created_at is not None for job in Job.objects.all()} == {True}

"""CSV exports never hand a spreadsheet a formula; JSONL and SDF keep values as given."""

import csv
import io
import json
import zipfile
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from batches.exports import neutralize_formula
from batches.models import Batch

HOSTILE_NAMES = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\uff1dcmd", "ok name"]


def _export(client: APIClient, batch: Batch, fmt: str) -> bytes:
    response = client.get(f"/api/v3/batches/{batch.pk}/export?format={fmt}")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.fixture
def hostile_batch(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> Batch:
    ligands = [{"name": name, "smiles": "CCO" + "C" * i} for i, name in enumerate(HOSTILE_NAMES)]
    ligands.append({"name": "bad", "smiles": "=2+5*cmd|' /C calc'!A0"})  # rejected, still exported
    batch = make_batch(ligands)
    run_all()
    return batch


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


@pytest.mark.django_db
def test_csv_cells_that_would_run_are_neutralized(hostile_batch: Batch, owner_client: APIClient) -> None:
    rows = _csv_rows(_export(owner_client, hostile_batch, "csv"))
    names = [row["name"] for row in rows]
    assert names[:6] == ["'" + n if n != "ok name" else n for n in HOSTILE_NAMES]
    rejected = rows[-1]
    assert rejected["status"] == "rejected"
    assert rejected["input_smiles"].startswith("'=")
    # Every text cell starts with something a spreadsheet shows as text.
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r", "\uff1d")), value


@pytest.mark.django_db
def test_numbers_are_not_touched(hostile_batch: Batch, owner_client: APIClient) -> None:
    rows = _csv_rows(_export(owner_client, hostile_batch, "csv"))
    ethanol = rows[0]
    assert float(ethanol["clogp"]) < 0  # a negative number stays a number, not '-0.0014
    assert not ethanol["clogp"].startswith("'")


@pytest.mark.django_db
def test_the_csv_inside_the_zip_is_neutralized_too(hostile_batch: Batch, owner_client: APIClient) -> None:
    archive = zipfile.ZipFile(io.BytesIO(_export(owner_client, hostile_batch, "zip")))
    rows = _csv_rows(archive.read("results.csv"))
    assert rows[0]["name"] == "'" + HOSTILE_NAMES[0]
    jsonl = [json.loads(line) for line in archive.read("results.jsonl").splitlines()]
    assert jsonl[0]["name"] == HOSTILE_NAMES[0]


@pytest.mark.django_db
def test_jsonl_and_sdf_keep_values_as_given(hostile_batch: Batch, owner_client: APIClient) -> None:
    lines = [json.loads(line) for line in _export(owner_client, hostile_batch, "jsonl").splitlines()]
    assert [line["name"] for line in lines[:6]] == HOSTILE_NAMES
    sdf = _export(owner_client, hostile_batch, "sdf").decode()
    assert sdf.startswith(HOSTILE_NAMES[0] + "\n")
    assert "'=" not in sdf


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=1", "a=1")],
)
def test_the_rule(value: str, expected: str) -> None:
    assert neutralize_formula(value) == expected
    assert neutralize_formula(-1.5) == -1.5

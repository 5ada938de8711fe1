"""The result store's documents without Firestore: size rules, the order strings that must
sort as the database ranks, and the system check (issue 11)."""

import random
import struct
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from batches.models import Job
from batches.result_store import documents
from batches.result_store.documents import (
    DOCUMENT_LIMIT,
    TEXT_LIMIT,
    after_bound,
    document_size,
    job_document,
    job_from_document,
    order_string,
    rank_key,
)
from batches.result_store.encoding import value_pb


def _job(**fields: Any) -> Job:
    values: dict[str, Any] = {
        "index": 3,
        "name": "aspirin",
        "input_smiles": "CC(=O)Oc1ccccc1C(=O)O",
        "canonical_smiles": "CC(=O)Oc1ccccc1C(=O)O",
        "status": "succeeded",
        "result": {"qed": 0.55, "mol_weight": 180.16, "hbd": 1, "inchikey": "BSYNRYMUTXBXSQ-UHFFFAOYSA-N"},
        "qed": 0.55,
        "mol_weight": 180.16,
        "artifact": "artifacts/b/aspirin.sdf",
        **fields,
    }
    return Job(batch_id="0f2f1b9e-3d7e-4b8e-9a43-0c7f1d3b4a10", **values)


def test_a_document_holds_the_row_and_names_the_structure_file() -> None:
    doc = job_document(_job(), model="ligand-profile")
    assert doc["structure"] == "artifacts/b/aspirin.sdf" and doc["truncated"] == []
    back = job_from_document(doc)
    assert (back.name, back.result, back.artifact.name, back.index) == (
        "aspirin",
        _job().result,
        "artifacts/b/aspirin.sdf",
        3,
    )
    # Only succeeded rows carry a place in the rankings.
    assert "order" in doc and "order" not in job_document(_job(status="failed"), model="ligand-profile")


def test_map_keys_come_back_in_the_databases_order() -> None:
    result = {"zeta": 1, "alpha": 2, "mid": 3}
    doc = job_document(_job(result=result), model="ligand-profile")
    doc["metrics"] = dict(sorted(doc["metrics"].items()))  # as Firestore returns a map
    assert list(job_from_document(doc).result) == ["zeta", "alpha", "mid"]


def test_long_text_is_cut_and_flagged() -> None:
    doc = job_document(_job(failure_message="x" * (TEXT_LIMIT + 5), status="failed"), model="ligand-profile")
    assert len(doc["failure_message"]) == TEXT_LIMIT and doc["truncated"] == ["failure_message"]
    assert not documents.exact(doc)


def test_values_firestore_cannot_hold_are_left_out_and_flagged() -> None:
    doc = job_document(_job(result={"grid": [[1, 2], [3, 4]], "big": 2**70}), model="ligand-profile")
    assert doc["metrics"] is None and doc["truncated"] == ["metrics"]


def test_a_document_stays_under_firestores_limit() -> None:
    huge = {"changes": ["a" * 10_000] * 200}  # 2 MB of standardization notes
    doc = job_document(_job(standardization=huge), model="ligand-profile")
    assert document_size(doc) < DOCUMENT_LIMIT
    assert set(doc["truncated"]) == {"metrics", "standardization"} and doc["standardization"] is None
    encoded = value_pb(doc).ByteSize()
    assert encoded < 1_048_576


def test_document_size_follows_firestores_rules() -> None:
    # 32 + "a"(2) + "xyz"(4) + "n"(2) + 8 + "m"(2) + ("k"(2) + null 1) + "l"(2) + true 1 + 8
    assert document_size({"a": "xyz", "n": 1.5, "m": {"k": None}, "l": [True, 3]}) == 32 + 6 + 10 + 5 + 11


def _sql_order(keys: list[tuple[float | None, int]]) -> list[tuple[float | None, int]]:
    """ORDER BY key NULLS LAST, index, with SQL's -0.0 = 0.0."""
    return sorted(keys, key=lambda item: (item[0] is None, item[0] or 0.0, item[1]))


def test_order_strings_sort_as_the_database_ranks() -> None:
    rng = random.Random(11)
    pool = [0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 5e-324, 1e300, -1e300, 0.5, 2.0, None]
    keys = [(rng.choice([*pool, rng.uniform(-1e6, 1e6)]), i) for i in range(3000)]
    by_string = sorted(keys, key=lambda item: order_string(*item))
    assert by_string == _sql_order(keys)


def test_rank_keys_come_back_bit_for_bit_and_cursor_bounds_skip_their_row() -> None:
    for key in (0.0, -0.0, 1.5, -2.25, 5e-324, None):
        back = rank_key(order_string(key, 7))
        if key is None:
            assert back is None
        else:
            assert back is not None and struct.pack(">d", back) == struct.pack(">d", key)
        assert order_string(key, 7) < after_bound(key, 7) < order_string(key, 8)
    # The row after a -0.0 row of the same index is not the same row again (0.0 == -0.0).
    assert order_string(0.0, 7) < after_bound(-0.0, 7)


def test_firestore_without_a_project_fails_the_system_check(settings: Any) -> None:
    settings.OMTX_RESULT_STORE = "firestore"
    settings.GCP_PROJECT_ID = ""
    with pytest.raises(SystemCheckError, match=r"omtx\.E201"):
        call_command("check")
    settings.GCP_PROJECT_ID = "omtx-prod"
    call_command("check")

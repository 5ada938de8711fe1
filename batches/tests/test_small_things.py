"""What a new user meets first: target names, the demo's curl line, model descriptions."""

import io
from collections.abc import Callable

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from batches.catalog import LIGAND_PROFILE
from batches.models import Batch
from conftest import CDK2


@pytest.mark.django_db
def test_a_target_without_a_name_is_named_from_its_uniprot_header(make_batch: Callable[..., Batch]) -> None:
    fasta = ">sp|P24941|CDK2_HUMAN Cyclin-dependent kinase 2 OS=Homo sapiens\n" + CDK2
    assert make_batch(protein_sequence=fasta).target_name == "CDK2_HUMAN (P24941)"
    assert make_batch(protein_sequence=">my kinase construct\n" + CDK2).target_name == "my kinase construct"


@pytest.mark.django_db
def test_a_bare_sequence_reuses_the_owners_earlier_name_or_gets_a_fingerprint(
    make_batch: Callable[..., Batch], outsider: object
) -> None:
    first = make_batch()
    assert first.target_name.startswith("unnamed 298-residue target ")
    named = make_batch(protein_name="CDK2 (ours)")
    assert named.target_name == "CDK2 (ours)"
    assert make_batch().target_name == "CDK2 (ours)"
    # Another user's names are theirs.
    assert make_batch(user=outsider).target_name == first.target_name


@pytest.mark.django_db
def test_the_demo_prints_a_curl_line_for_the_real_address() -> None:
    out = io.StringIO()
    call_command("seed_demo", base_url="http://0.0.0.0:9123", stdout=out)
    assert "http://0.0.0.0:9123/api/v3/batches/" in out.getvalue()


def test_conformer_energy_is_not_offered_as_a_ranking_metric_without_a_warning() -> None:
    energy = LIGAND_PROFILE.output("conformer_energy")
    assert energy.direction == "none" or "not comparable" in energy.description


WRONG_JSON_TYPES = [
    ("name", 5),
    ("protein_name", True),
    ("format", 0),
    ("format", "pdf"),
    ("standardize", 0),
    ("standardize", "true"),
    ("priority", "5"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), WRONG_JSON_TYPES)
def test_json_types_are_json_types(owner_client: APIClient, field: str, value: object) -> None:
    """A number is not text, text is not a boolean or a number: JSON says which it is."""
    body = {"protein_sequence": CDK2, "ligands": ["CCO"], field: value}
    response = owner_client.post("/api/v3/batches/validate", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


@pytest.mark.django_db
def test_form_fields_are_text_and_still_read(owner_client: APIClient) -> None:
    upload = io.BytesIO(b"CCN.Cl amine\n")
    upload.name = "one.smi"
    form = {"ligands_file": upload, "protein_sequence": CDK2, "standardize": "false", "priority": "3"}
    response = owner_client.post("/api/v3/batches/validate", form, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["standardization"]["standardize"] is False


@pytest.mark.django_db
def test_the_dry_run_names_the_target_as_the_batch_will(
    make_batch: Callable[..., Batch], owner_client: APIClient
) -> None:
    make_batch(protein_name="CDK2 (ours)")
    report = owner_client.post(
        "/api/v3/batches/validate", {"protein_sequence": CDK2, "ligands": ["CCO"]}, format="json"
    ).json()
    created = owner_client.post("/api/v3/batches/", {"protein_sequence": CDK2, "ligands": ["CCO"]}, format="json")
    assert report["protein"]["name"] == created.json()["target"]["name"] == "CDK2 (ours)"

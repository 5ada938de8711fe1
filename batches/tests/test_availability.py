"""Boltz-2 is accepted exactly when the Modal executor is configured; otherwise a clear 503."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from batches.catalog import BOLTZ2, LIGAND_PROFILE
from batches.engine.availability import check_executor
from batches.models import Batch
from conftest import CDK2
from omtx_hub.errors import Unavailable

BATCHES = "/api/v3/batches/"
BOLTZ_BODY = {
    "name": "boltz screen",
    "model": "boltz2",
    "protein_sequence": CDK2,
    "ligands": [{"name": "ethanol", "smiles": "CCO"}, {"name": "phenol", "smiles": "c1ccccc1O"}],
    "options": {"use_msa": False, "seed": 3},
}


@pytest.fixture
def modal_tokens(settings: Any) -> None:
    settings.MODAL_TOKEN_ID = "ak-test"
    settings.MODAL_TOKEN_SECRET = "as-test"


@pytest.fixture
def no_modal_tokens(settings: Any) -> None:
    settings.MODAL_TOKEN_ID = ""
    settings.MODAL_TOKEN_SECRET = ""


def test_boltz2_is_refused_without_modal_tokens(no_modal_tokens: None) -> None:
    with pytest.raises(Unavailable) as caught:
        check_executor(BOLTZ2)
    assert caught.value.code == "model_unavailable"
    assert caught.value.status_code == 503
    assert "MODAL_TOKEN_ID / MODAL_TOKEN_SECRET are not set" in caught.value.message
    assert "ligand-profile" in caught.value.message


def test_boltz2_is_accepted_with_modal_tokens(modal_tokens: None) -> None:
    check_executor(BOLTZ2)
    check_executor(LIGAND_PROFILE)


def test_the_api_refuses_boltz2_without_tokens(no_modal_tokens: None, owner_client: APIClient) -> None:
    response = owner_client.post(BATCHES, BOLTZ_BODY, format="json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_unavailable" and "MODAL_TOKEN_ID" in error["message"]
    assert not Batch.objects.exists()


def test_the_api_queues_boltz2_with_tokens(modal_tokens: None, owner_client: APIClient) -> None:
    response = owner_client.post(BATCHES, BOLTZ_BODY, format="json")
    assert response.status_code == 201, response.content
    batch = Batch.objects.get()
    assert batch.model == "boltz2"
    assert batch.options["use_msa"] is False and batch.options["seed"] == 3
    assert batch.options["msa"] == ""
    assert batch.jobs.count() == 2

"""The predecessor's clients: POST /api/v3/batches/submit answers as it did, its
`configuration` keys become the batch's policy, and its duplicate ligands
(one SMILES under several names) are each a job, computed once."""

import csv
import io
from collections import Counter
from typing import Any

import pytest
from rest_framework.test import APIClient

from batches.engine.dispatcher import Dispatcher
from batches.models import Batch
from batches.states import BatchStatus
from batches.tests.fakes import FakeExecutor
from conftest import CDK2, LIGANDS

SUBMIT = "/api/v3/batches/submit"
LEGACY_KEYS = {
    "success",
    "batch_id",
    "message",
    "total_jobs",
    "estimated_duration_seconds",
    "status_url",
    "results_url",
}


def legacy(**overrides: Any) -> dict[str, Any]:
    return {
        "job_name": "old client",
        "protein_name": "CDK2",
        "protein_sequence": CDK2,
        "ligands": LIGANDS,
        "model_name": "ligand-profile",
        **overrides,
    }


def submit(client: APIClient, configuration: dict[str, Any], **headers: Any) -> Any:
    return client.post(SUBMIT, legacy(configuration=configuration), format="json", **headers)


def assert_refused(response: Any, key: str) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_configuration"
    assert error["details"]["key"] == f"configuration.{key}"
    assert key in error["message"]
    assert not Batch.objects.exists()
    return error


# -- the answer --------------------------------------------------------------------


def test_legacy_submit_answers_200_in_the_predecessors_shape(owner_client: APIClient) -> None:
    response = owner_client.post(SUBMIT, legacy(), format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) >= LEGACY_KEYS
    batch = Batch.objects.get()
    assert data["success"] is True
    assert data["batch_id"] == str(batch.pk) == data["id"]  # the canonical fields ride along
    assert data["total_jobs"] == 4
    assert data["message"] == "Batch submitted: 4 jobs."
    assert data["warnings"] == []
    assert data["estimated_duration_seconds"] == pytest.approx(4 * 0.05)
    assert data["status_url"] == f"http://testserver/api/v3/batches/{batch.pk}/status"
    assert data["results_url"] == f"http://testserver/api/v3/batches/{batch.pk}/results"
    assert response["Location"] == data["url"]
    # The URLs it hands out work for the predecessor's client.
    assert owner_client.get(data["status_url"]).json()["status"] == "queued"
    assert owner_client.get(data["results_url"]).status_code == 200


def test_legacy_message_names_rejected_ligands(owner_client: APIClient) -> None:
    ligands = [*LIGANDS, {"name": "junk", "smiles": "C1CC"}]
    data = owner_client.post(SUBMIT, legacy(ligands=ligands), format="json").json()
    assert data["message"] == "Batch submitted: 4 jobs, 1 ligands rejected."
    assert data["validation"]["rejected_ligands"][0]["name"] == "junk"


def test_legacy_idempotent_replay_answers_200_in_the_same_shape(owner_client: APIClient) -> None:
    first = owner_client.post(SUBMIT, legacy(), format="json", HTTP_IDEMPOTENCY_KEY="old-1")
    again = owner_client.post(SUBMIT, legacy(), format="json", HTTP_IDEMPOTENCY_KEY="old-1")
    assert first.status_code == again.status_code == 200
    assert set(first.json()) == set(again.json())
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert "already submitted" in again.json()["message"]
    assert Batch.objects.count() == 1
    other = owner_client.post(SUBMIT, legacy(job_name="other"), format="json", HTTP_IDEMPOTENCY_KEY="old-1")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"


def test_legacy_errors_keep_the_hubs_envelope(owner_client: APIClient) -> None:
    response = owner_client.post(SUBMIT, {"job_name": "x", "model_name": "ligand-profile"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert {"code", "message"} <= set(response.json()["error"])


def test_the_canonical_create_still_answers_201(owner_client: APIClient) -> None:
    body = {"model": "ligand-profile", "protein_sequence": CDK2, "ligands": LIGANDS}
    response = owner_client.post("/api/v3/batches/", body, format="json")
    assert response.status_code == 201
    assert "success" not in response.json()


# -- configuration keys ------------------------------------------------------------


@pytest.mark.parametrize(("given", "priority"), [("low", -5), ("normal", 0), ("high", 5), ("HIGH", 5)])
def test_priority_maps_to_the_batch_priority(owner_client: APIClient, given: str, priority: int) -> None:
    assert submit(owner_client, {"priority": given}).status_code == 200
    batch = Batch.objects.get()
    assert batch.priority == priority
    assert set(batch.jobs.values_list("priority", flat=True)) == {priority}


@pytest.mark.parametrize("given", ["urgent", 5, True])
def test_an_unknown_priority_is_refused_naming_the_allowed_values(owner_client: APIClient, given: Any) -> None:
    error = assert_refused(submit(owner_client, {"priority": given}), "priority")
    assert error["details"]["allowed"] == ["low", "normal", "high"]
    assert "'low', 'normal', 'high'" in error["message"]


def test_max_concurrent_jobs_maps_to_max_in_flight(owner_client: APIClient) -> None:
    data = submit(owner_client, {"max_concurrent_jobs": 2}).json()
    assert Batch.objects.get().max_in_flight == 2
    assert data["manifest"]["max_in_flight"] == 2


@pytest.mark.parametrize("given", [0, -1, "4", 2.5, False])
def test_an_invalid_max_concurrent_jobs_is_refused(owner_client: APIClient, given: Any) -> None:
    assert_refused(submit(owner_client, {"max_concurrent_jobs": given}), "max_concurrent_jobs")


@pytest.mark.parametrize(
    ("configuration", "attempts"),
    [
        ({"retry_failed_jobs": False}, 1),
        ({"retry_failed_jobs": True}, None),  # the model's own
        ({"max_retry_attempts": 0}, 1),
        ({"max_retry_attempts": 4}, 5),
        ({"retry_failed_jobs": True, "max_retry_attempts": 2}, 3),
        ({"retry_failed_jobs": None, "max_retry_attempts": None}, None),
    ],
)
def test_retry_keys_map_to_max_attempts(
    owner_client: APIClient, configuration: dict[str, Any], attempts: int | None
) -> None:
    data = submit(owner_client, configuration).json()
    assert Batch.objects.get().max_attempts == attempts
    assert data["manifest"]["max_attempts"] == (attempts or 3)
    assert data["warnings"] == []


def test_retries_above_the_hubs_bound_are_capped_with_a_warning(owner_client: APIClient) -> None:
    data = submit(owner_client, {"max_retry_attempts": 50}).json()
    assert Batch.objects.get().max_attempts == 10
    assert data["warnings"] == ["max_retry_attempts 50 is above the hub's 9; 9 are used."]


def test_no_retries_wins_over_a_retry_count_with_a_warning(owner_client: APIClient) -> None:
    data = submit(owner_client, {"retry_failed_jobs": False, "max_retry_attempts": 3}).json()
    assert Batch.objects.get().max_attempts == 1
    assert "max_retry_attempts is ignored" in data["warnings"][0]


@pytest.mark.parametrize(("key", "given"), [("retry_failed_jobs", "no"), ("max_retry_attempts", -1)])
def test_invalid_retry_keys_are_refused(owner_client: APIClient, key: str, given: Any) -> None:
    assert_refused(submit(owner_client, {key: given}), key)


@pytest.mark.parametrize(("given", "seconds"), [(60, 60), (10, 10), (59.2, 60)])
def test_timeout_per_job_maps_to_timeout_seconds(owner_client: APIClient, given: float, seconds: int) -> None:
    data = submit(owner_client, {"timeout_per_job": given}).json()
    assert Batch.objects.get().timeout_seconds == seconds
    assert data["manifest"]["timeout_seconds"] == seconds


def test_a_timeout_above_the_models_is_capped_with_a_warning(owner_client: APIClient) -> None:
    data = submit(owner_client, {"timeout_per_job": 3600}).json()
    assert Batch.objects.get().timeout_seconds == 120  # ligand-profile's own limit
    assert data["warnings"] == ["timeout_per_job 3600 s is above ligand-profile's 120 s; 120 s is used."]


@pytest.mark.parametrize("given", [5, 0, "60", True])
def test_an_invalid_timeout_per_job_is_refused(owner_client: APIClient, given: Any) -> None:
    assert_refused(submit(owner_client, {"timeout_per_job": given}), "timeout_per_job")


def test_scheduling_strategy_is_recorded_with_a_warning(owner_client: APIClient) -> None:
    configuration = {"scheduling_strategy": "round_robin"}
    data = submit(owner_client, configuration, HTTP_IDEMPOTENCY_KEY="s-1").json()
    (warning,) = data["warnings"]
    assert "'round_robin'" in warning and "fairly across users" in warning
    assert warning in data["message"]
    assert Batch.objects.get().validation_report["warnings"] == [warning]
    # Recorded with the batch: a replay, which validates nothing, still says it.
    assert submit(owner_client, configuration, HTTP_IDEMPOTENCY_KEY="s-1").json()["warnings"] == [warning]


def test_scheduling_strategy_must_be_text(owner_client: APIClient) -> None:
    assert_refused(submit(owner_client, {"scheduling_strategy": 3}), "scheduling_strategy")


def test_model_parameters_still_go_to_options_and_unknown_keys_are_refused(owner_client: APIClient) -> None:
    data = submit(owner_client, {"conformer": False, "priority": "high", "max_concurrent_jobs": 3}).json()
    assert data["options"]["conformer"] is False
    assert "priority" not in data["options"]
    response = submit(owner_client, {"gpu_type": "A100"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_parameter"
    assert response.json()["error"]["details"]["unknown"] == ["gpu_type"]


def test_every_key_at_once(owner_client: APIClient) -> None:
    configuration = {
        "priority": "low",
        "max_concurrent_jobs": 4,
        "retry_failed_jobs": True,
        "max_retry_attempts": 1,
        "timeout_per_job": 30,
        "scheduling_strategy": "fifo",
        "conformer": True,
    }
    assert submit(owner_client, configuration).status_code == 200
    batch = Batch.objects.get()
    policy = (batch.priority, batch.max_in_flight, batch.max_attempts, batch.timeout_seconds)
    assert policy == (-5, 4, 2, 30)
    assert batch.options["conformer"] is True


# -- duplicates ----------------------------------------------------------------------


DUPLICATED = [
    {"name": "ethanol", "smiles": "CCO"},
    {"name": "EtOH", "smiles": "OCC"},
    {"name": "aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)O"},
    {"name": "grain alcohol", "smiles": "CCO"},
]


def test_legacy_duplicates_are_jobs_computed_once(owner_client: APIClient) -> None:
    data = owner_client.post(SUBMIT, legacy(ligands=DUPLICATED), format="json").json()
    assert data["total_jobs"] == 4 and data["validation"]["rejected"] == 0
    executor = FakeExecutor()
    dispatcher = Dispatcher(executors={"local": executor})
    for _ in range(4):
        dispatcher.run_once()
    computed = Counter(job.smiles for request in executor.submitted for job in request.jobs)
    assert computed == {"CCO": 1, "CC(=O)Oc1ccccc1C(=O)O": 1}
    status = owner_client.get(data["status_url"]).json()
    assert status["status"] == BatchStatus.COMPLETED
    rows = owner_client.get(data["results_url"]).json()["results"]
    assert sorted(row["name"] for row in rows) == ["EtOH", "aspirin", "ethanol", "grain alcohol"]
    export = owner_client.get(f"/api/v3/batches/{data['batch_id']}/export?format=csv")
    names = [row["name"] for row in csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode()))]
    assert names == ["ethanol", "EtOH", "aspirin", "grain alcohol"]


def test_the_canonical_path_still_rejects_duplicates(owner_client: APIClient) -> None:
    body = {"model": "ligand-profile", "protein_sequence": CDK2, "ligands": DUPLICATED}
    data = owner_client.post("/api/v3/batches/", body, format="json").json()
    assert data["total"] == 2
    rejected = data["validation"]["rejected_ligands"]
    assert [(r["name"], r["code"]) for r in rejected] == [("EtOH", "duplicate"), ("grain alcohol", "duplicate")]

import csv
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from batches.models import Batch, Job
from batches.states import BatchStatus, JobStatus
from conftest import CDK2, LIGANDS

BATCHES = "/api/v3/batches/"


def body(**overrides: Any) -> dict[str, Any]:
    return {"name": "screen", "model": "ligand-profile", "protein_sequence": CDK2, "ligands": LIGANDS, **overrides}


def per_batch_paths(batch: Batch) -> list[tuple[str, str]]:
    job = batch.jobs.order_by("index").first()
    assert job is not None
    base = f"{BATCHES}{batch.pk}"
    return [
        ("get", f"{base}/"),
        ("get", f"{base}/status"),
        ("get", f"{base}/results"),
        ("get", f"{base}/export?format=csv"),
        ("get", f"{base}/jobs/"),
        ("get", f"{base}/jobs/{job.pk}/"),
        ("get", f"{base}/jobs/{job.pk}/structure"),
        ("get", f"{base}/jobs/{job.pk}/download/sdf"),
        ("post", f"{base}/cancel"),
        ("post", f"{base}/retry"),
        ("delete", f"{base}/"),
    ]


@pytest.fixture
def finished_batch(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> Batch:
    batch = make_batch()
    run_all()
    batch.refresh_from_db()
    return batch


def test_outsider_gets_404_on_every_batch_endpoint(finished_batch: Batch, outsider_client: APIClient) -> None:
    for method, path in per_batch_paths(finished_batch):
        response = getattr(outsider_client, method)(path)
        assert response.status_code == 404, (method, path, response.content[:200])
        if response["Content-Type"].startswith("application/json"):
            assert response.json()["error"]["code"] == "not_found"
    assert Batch.objects.filter(pk=finished_batch.pk).exists()


def test_unauthenticated_gets_401_on_every_endpoint(finished_batch: Batch, anon_client: APIClient) -> None:
    paths = [
        *per_batch_paths(finished_batch),
        ("get", BATCHES),
        ("post", BATCHES),
        ("post", f"{BATCHES}submit"),
        ("post", f"{BATCHES}validate"),
        ("get", "/api/v3/models/"),
    ]
    for method, path in paths:
        response = getattr(anon_client, method)(path)
        assert response.status_code == 401, (method, path)
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "not_authenticated"


def test_owner_reaches_every_batch_endpoint(finished_batch: Batch, owner_client: APIClient) -> None:
    expected = {"cancel": 409, "retry": 409}  # finished, nothing failed
    for method, path in per_batch_paths(finished_batch):
        response = getattr(owner_client, method)(path)
        action = path.rstrip("/").rsplit("/", 1)[-1]
        want = expected.get(action, 204 if method == "delete" else 200)
        assert response.status_code == want, (method, path, getattr(response, "content", b"")[:300])
    assert not Batch.objects.filter(pk=finished_batch.pk).exists()


def test_staff_sees_every_batch(finished_batch: Batch, staff_client: APIClient) -> None:
    assert staff_client.get(f"{BATCHES}{finished_batch.pk}/").status_code == 200
    assert staff_client.get(BATCHES).json()["count"] == 1


def test_create_runs_and_reports(owner_client: APIClient, run_all: Callable[[], None]) -> None:
    response = owner_client.post(BATCHES, body(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert response["Location"] == data["url"]
    assert data["status"] == "queued" and data["total"] == 4
    assert data["manifest"]["model"] == "ligand-profile"
    assert data["target"]["length"] == len(CDK2)
    run_all()
    status = owner_client.get(f"{BATCHES}{data['id']}/status").json()
    assert status["status"] == "completed" and status["is_terminal"]
    assert status["progress"]["progress_percent"] == 100.0


def test_status_while_running_has_rate_and_eta(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch = make_batch()
    from batches.services.transitions import jobs_transition
    from batches.tests.test_transitions import finish

    jobs_transition(jobs=batch.jobs.all(), sources=(JobStatus.QUEUED,), target=JobStatus.DISPATCHED)
    finish(batch.jobs.order_by("index")[0], JobStatus.SUCCEEDED)
    progress = owner_client.get(f"{BATCHES}{batch.pk}/status").json()["progress"]
    assert progress["progress_percent"] == 25.0
    assert progress["jobs_per_second"] > 0
    assert progress["eta_seconds"] is not None


def test_list_filters_and_pages(
    make_batch: Callable[..., Batch], owner_client: APIClient, outsider_client: APIClient, run_all: Callable[[], None]
) -> None:
    make_batch(name="alpha screen")
    run_all()
    make_batch(name="beta screen")
    response = owner_client.get(BATCHES, {"limit": 1})
    assert response.json()["count"] == 2 and len(response.json()["results"]) == 1
    assert response.json()["next"]
    assert [b["name"] for b in owner_client.get(BATCHES, {"status": "queued"}).json()["results"]] == ["beta screen"]
    assert [b["name"] for b in owner_client.get(BATCHES, {"search": "alpha"}).json()["results"]] == ["alpha screen"]
    assert owner_client.get(BATCHES, {"model": "ligand-profile"}).json()["count"] == 2
    assert owner_client.get(BATCHES, {"created_after": "2000-01-01"}).json()["count"] == 2
    assert owner_client.get(BATCHES, {"created_after": "yesterday"}).status_code == 400
    assert outsider_client.get(BATCHES).json()["count"] == 0


def test_legacy_submit_body_keeps_working(owner_client: APIClient) -> None:
    legacy = {
        "job_name": "old client",
        "protein_name": "CDK2",
        "protein_sequence": CDK2,
        "ligands": [{"name": "a", "smiles": "CCO"}, {"name": "b", "smiles": "CCN"}],
        "model_name": "ligand-profile",
        "use_msa": True,
        "use_potentials": False,
        "configuration": {"conformer": False},
    }
    response = owner_client.post(f"{BATCHES}submit", legacy, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["name"] == "old client" and data["target"]["name"] == "CDK2"
    assert data["options"]["conformer"] is False
    # The predecessor's read paths, without trailing slashes.
    assert owner_client.get(f"{BATCHES}{data['id']}/status").status_code == 200
    assert owner_client.get(f"{BATCHES}{data['id']}/results").status_code == 200
    assert owner_client.get(BATCHES.rstrip("/") + "?limit=5&offset=0&status=queued").json()["count"] == 1


def test_legacy_default_model_boltz2_is_refused_clearly(owner_client: APIClient) -> None:
    legacy = {"job_name": "x", "protein_sequence": CDK2, "ligands": [{"name": "a", "smiles": "CCO"}]}
    response = owner_client.post(f"{BATCHES}submit", legacy, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    assert not Batch.objects.exists()


def test_idempotency_key(owner_client: APIClient) -> None:
    first = owner_client.post(BATCHES, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = owner_client.post(BATCHES, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert Batch.objects.count() == 1
    other = owner_client.post(BATCHES, body(name="other"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert Batch.objects.count() == 1


def test_idempotency_keys_are_per_user(owner_client: APIClient, outsider_client: APIClient) -> None:
    owner_client.post(BATCHES, body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = outsider_client.post(BATCHES, body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201
    assert Batch.objects.count() == 2


def test_every_bad_smiles_is_reported_per_item(owner_client: APIClient, bad_inputs: dict[str, Any]) -> None:
    bad = [{"name": f"bad_{i}", "smiles": s} for i, (s, _) in enumerate(bad_inputs["smiles"])]
    response = owner_client.post(BATCHES, body(ligands=[*bad, {"name": "good", "smiles": "CCO"}]), format="json")
    assert response.status_code == 201, response.content
    validation = response.json()["validation"]
    assert validation["accepted"] == 1 and validation["rejected"] == len(bad)
    assert [r["name"] for r in validation["rejected_ligands"]] == [b["name"] for b in bad]
    assert all(r["message"] for r in validation["rejected_ligands"])


def test_on_invalid_reject_stores_nothing(owner_client: APIClient) -> None:
    response = owner_client.post(BATCHES, body(ligands=["CCO", "C1CC"], on_invalid="reject"), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_ligands"
    assert error["details"]["rejected_ligands"][0]["index"] == 1
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "overrides,code,status",
    [
        ({"ligands": ["C1CC", "Xx"]}, "no_valid_ligands", 400),
        ({"ligands": []}, "no_ligands", 400),
        ({"protein_sequence": "MKT"}, "invalid_protein", 400),
        ({"model": "alphafold9"}, "unknown_model", 400),
        ({"options": {"recycling_steps": 3}}, "unknown_parameter", 400),
        ({"options": {"max_iterations": -1}}, "invalid_input", 400),
        ({"options": {"conformer": "yes"}}, "invalid_input", 400),
        ({"on_invalid": "maybe"}, "validation_error", 400),
        ({"priority": 99}, "validation_error", 400),
        ({"ligands": "CCO"}, "validation_error", 400),
        ({"model": "boltz2"}, "model_unavailable", 503),
    ],
)
def test_bad_requests_get_clear_errors(
    owner_client: APIClient, overrides: dict[str, Any], code: str, status: int
) -> None:
    response = owner_client.post(BATCHES, body(**overrides), format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert not Batch.objects.exists()


def test_every_bad_protein_is_refused(owner_client: APIClient, bad_inputs: dict[str, Any]) -> None:
    for sequence, why in bad_inputs["protein_sequences"]:
        response = owner_client.post(BATCHES, body(protein_sequence=sequence), format="json")
        if sequence.startswith(">") or " " in sequence:
            continue  # parsed or stripped deliberately (see test_validation)
        assert response.status_code == 400, why
        assert response.json()["error"]["code"] in ("invalid_protein", "validation_error")


def test_malformed_json_is_a_400(owner_client: APIClient) -> None:
    response = owner_client.post(BATCHES, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_too_many_ligands_is_413(owner_client: APIClient, settings: Any) -> None:
    from batches.catalog import LIGAND_PROFILE

    limits = LIGAND_PROFILE.limits
    object.__setattr__(limits, "max_ligands", 3)
    try:
        response = owner_client.post(BATCHES, body(), format="json")
    finally:
        object.__setattr__(limits, "max_ligands", 100_000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_oversized_body_is_413(owner_client: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = owner_client.post(BATCHES, body(name="x" * 2000), format="json")
    assert response.status_code == 413


def test_validate_is_a_dry_run(owner_client: APIClient, anon_client: APIClient) -> None:
    response = owner_client.post(f"{BATCHES}validate", body(ligands=["CCO", "C1CC", "OCC"]), format="json")
    assert response.status_code == 200
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (1, 2)
    assert report["accepted_ligands"][0]["canonical_smiles"] == "CCO"
    assert {r["code"] for r in report["rejected_ligands"]} == {"invalid_smiles", "duplicate"}
    assert report["estimate"]["jobs"] == 1
    assert report["queue"] == {"batches_ahead": 0, "jobs_ahead": 0, "users_sharing": 1}
    assert report["would_run"] is True
    assert not Batch.objects.exists()


def test_status_shows_the_outlook(owner_client: APIClient, make_batch: Callable[..., Batch]) -> None:
    make_batch(name="earlier")
    later = make_batch(["CCCO"], name="later")
    outlook = owner_client.get(f"{BATCHES}{later.pk}/status").json()["outlook"]
    assert outlook["queue"] == {"batches_ahead": 1, "jobs_ahead": 4, "users_sharing": 1}
    assert outlook["remaining"]["jobs"] == 1 and outlook["eta_basis"] is None


@pytest.mark.parametrize(
    "filename,count,fmt",
    [
        ("chembl2321810.smi", 1017, None),
        ("cdk2_zinc.smi", 47, None),
        ("zinc100.tsv", 100, None),
        ("cmet_ligands.sdf", 24, None),
        ("cdk2_zinc.smi", 47, "smi"),
    ],
)
def test_upload_files(
    owner_client: APIClient,
    shared_data: Path,
    filename: str,
    count: int,
    fmt: str | None,
    validate_in_background: Callable[[], int],
) -> None:
    path = shared_data / "ligands" / filename
    with path.open("rb") as handle:
        form = {"ligands_file": handle, "protein_sequence": CDK2, "name": filename, "options": '{"conformer": false}'}
        if fmt:
            form["format"] = fmt
        response = owner_client.post(BATCHES, form, format="multipart")
    # Past the inline limit (500 by default) a file is accepted and validated in the background.
    background = count > django_settings.OMTX_INLINE_VALIDATION_LIGANDS
    assert response.status_code == (202 if background else 201), response.content[:500]
    if background:
        assert response.json()["status"] == "validating"
        validate_in_background()
        response = owner_client.get(response.json()["url"])
    validation = response.json()["validation"]
    assert validation["submitted"] == count
    assert validation["accepted"] + validation["rejected"] == count
    batch = Batch.objects.get(pk=response.json()["id"])
    assert batch.options["conformer"] is False


def test_upload_idempotency_uses_file_content(owner_client: APIClient) -> None:
    def post(content: bytes) -> Any:
        upload = io.BytesIO(content)
        upload.name = "l.smi"
        form = {"ligands_file": upload, "protein_sequence": CDK2}
        return owner_client.post(BATCHES, form, format="multipart", HTTP_IDEMPOTENCY_KEY="up")

    assert post(b"CCO a\n").status_code == 201
    assert post(b"CCO a\n").status_code == 200
    assert post(b"CCN a\n").status_code == 409


def test_results_follow_each_metrics_direction(finished_batch: Batch, owner_client: APIClient) -> None:
    url = f"{BATCHES}{finished_batch.pk}/results"

    def values(**params: Any) -> list[Any]:
        response = owner_client.get(url, params)
        assert response.status_code == 200, response.content
        return [row["metrics"].get(params.get("sort", "qed")) for row in response.json()["results"]]

    qed = values()  # default: QED, higher is better
    assert qed == sorted(qed, reverse=True)
    violations = values(sort="brenk_alerts")  # lower is better
    assert violations == sorted(violations)
    energies = values(sort="conformer_energy")  # JSON metric, lower is better
    assert energies == sorted(energies)
    assert values(sort="qed", order="asc") == sorted(qed)
    data = owner_client.get(url).json()
    assert [row["rank"] for row in data["results"]] == [1, 2, 3, 4]
    assert {m["name"]: m["better"] for m in data["metrics"]}["qed"] == "higher"


def test_results_filters_and_errors(finished_batch: Batch, owner_client: APIClient) -> None:
    url = f"{BATCHES}{finished_batch.pk}/results"
    heavy = owner_client.get(url, {"min_mol_weight": 100}).json()["results"]
    assert {r["name"] for r in heavy} == {"aspirin", "caffeine"}
    window = owner_client.get(url, {"min_mol_weight": 100, "max_mol_weight": 185}).json()["results"]
    assert [r["name"] for r in window] == ["aspirin"]
    assert owner_client.get(url, {"min_tpsa": 40}).json()["count"] == 2
    assert owner_client.get(url, {"status": "all"}).json()["count"] == 4
    assert owner_client.get(url, {"status": "failed"}).json()["count"] == 0
    for params, code in [
        ({"sort": "nonsense"}, "unknown_metric"),
        ({"sort": "formula"}, "unknown_metric"),
        ({"order": "up"}, "invalid_order"),
        ({"status": "done"}, "invalid_status"),
        ({"min_qed": "high"}, "invalid_threshold"),
    ]:
        response = owner_client.get(url, params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == code


def test_results_are_available_while_running(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch = make_batch()
    data = owner_client.get(f"{BATCHES}{batch.pk}/results", {"status": "all"}).json()
    assert data["count"] == 4 and data["batch"]["status"] == "queued"


def _export(client: APIClient, batch: Batch, fmt: str) -> bytes:
    response = client.get(f"{BATCHES}{batch.pk}/export", {"format": fmt})
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    return b"".join(response.streaming_content)


@pytest.fixture
def mixed_batch(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> Batch:
    """Accepted, rejected (bad and duplicate), succeeded and pending ligands."""
    batch = make_batch(["CCO", "C1CC", "c1ccccc1O", "OCC", "CC(=O)Oc1ccccc1C(=O)O"])
    run_all()
    job = batch.jobs.get(index=4)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, failure_reason="timeout")
    return batch


def test_exports_have_one_row_per_input_ligand(mixed_batch: Batch, owner_client: APIClient) -> None:
    rows = list(csv.DictReader(io.StringIO(_export(owner_client, mixed_batch, "csv").decode())))
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in rows] == ["succeeded", "rejected", "succeeded", "rejected", "failed"]
    assert rows[1]["failure_reason"] == "invalid_smiles"
    assert rows[3]["failure_reason"] == "duplicate"
    assert float(rows[0]["qed"]) > 0

    lines = [json.loads(line) for line in _export(owner_client, mixed_batch, "jsonl").splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2, 3, 4]

    from rdkit import Chem

    sdf = _export(owner_client, mixed_batch, "sdf")
    mols = list(Chem.ForwardSDMolSupplier(io.BytesIO(sdf), sanitize=False, removeHs=False))
    assert len(mols) == 5 and all(m is not None for m in mols)
    assert [m.GetProp("status") for m in mols] == ["succeeded", "rejected", "succeeded", "rejected", "failed"]
    assert mols[0].GetConformer().Is3D()

    archive = zipfile.ZipFile(io.BytesIO(_export(owner_client, mixed_batch, "zip")))
    names = archive.namelist()
    assert "results.csv" in names and "results.jsonl" in names
    assert len([n for n in names if n.startswith("structures/")]) == 3
    assert archive.read("results.csv").decode().count("\n") == 6


def test_export_while_pending_and_bad_format(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch = make_batch()
    rows = list(csv.DictReader(io.StringIO(_export(owner_client, batch, "csv").decode())))
    assert {r["status"] for r in rows} == {"queued"} and len(rows) == 4
    response = owner_client.get(f"{BATCHES}{batch.pk}/export", {"format": "xlsx"})
    assert response.status_code == 400


def test_cancel_then_conflicts(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch = make_batch()
    response = owner_client.post(f"{BATCHES}{batch.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["progress"]["cancelled"] == 4
    again = owner_client.post(f"{BATCHES}{batch.pk}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "batch_finished"
    assert owner_client.post(f"{BATCHES}{batch.pk}/retry").status_code == 409
    assert owner_client.delete(f"{BATCHES}{batch.pk}/").status_code == 204


def test_delete_running_batch_is_a_conflict(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    batch = make_batch()
    response = owner_client.delete(f"{BATCHES}{batch.pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "batch_active"
    assert Batch.objects.filter(pk=batch.pk).exists()


def test_delete_removes_artifacts(finished_batch: Batch, owner_client: APIClient) -> None:
    from django.core.files.storage import default_storage

    names = [job.artifact.name for job in finished_batch.jobs.all()]
    assert all(default_storage.exists(n) for n in names)
    assert owner_client.delete(f"{BATCHES}{finished_batch.pk}/").status_code == 204
    assert not any(default_storage.exists(n) for n in names)
    assert not Job.objects.exists()


def test_retry_requeues_only_failed_jobs(
    mixed_batch: Batch, owner_client: APIClient, run_all: Callable[[], None]
) -> None:
    # mixed_batch's counters were bypassed by a raw update; fix them the honest way.
    Job.objects.filter(batch=mixed_batch, status=JobStatus.FAILED).update(status=JobStatus.SUCCEEDED)
    from batches.services.transitions import job_transition

    job = mixed_batch.jobs.get(index=4)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    Batch.objects.filter(pk=mixed_batch.pk).update(n_succeeded=2, n_running=1, status=BatchStatus.RUNNING)
    job_transition(job=job, source=JobStatus.RUNNING, target=JobStatus.FAILED, failure_reason="timeout")
    mixed_batch.refresh_from_db()
    assert mixed_batch.status == BatchStatus.COMPLETED_WITH_FAILURES
    succeeded_before = set(mixed_batch.jobs.filter(status=JobStatus.SUCCEEDED).values_list("pk", "finished_at"))

    response = owner_client.post(f"{BATCHES}{mixed_batch.pk}/retry")
    assert response.status_code == 200 and response.json()["requeued"] == 1
    assert response.json()["status"] == "running"
    run_all()
    mixed_batch.refresh_from_db()
    assert mixed_batch.status == BatchStatus.COMPLETED
    assert succeeded_before <= set(mixed_batch.jobs.values_list("pk", "finished_at"))


def test_job_detail_and_structure(finished_batch: Batch, owner_client: APIClient) -> None:
    job = finished_batch.jobs.get(name="caffeine")
    detail = owner_client.get(f"{BATCHES}{finished_batch.pk}/jobs/{job.pk}/").json()
    assert detail["status"] == "succeeded" and detail["attempts"] == 1
    assert detail["metrics"]["formula"] == "C8H10N4O2"
    structure = owner_client.get(detail["structure_url"])
    assert structure.status_code == 200
    assert b"M  END" in b"".join(structure.streaming_content)
    cif = owner_client.get(f"{BATCHES}{finished_batch.pk}/jobs/{job.pk}/download/cif")
    assert cif.status_code == 404 and cif.json()["error"]["code"] == "no_structure"
    other = owner_client.get(f"{BATCHES}{finished_batch.pk}/jobs/00000000-0000-0000-0000-000000000000/")
    assert other.status_code == 404


def test_jobs_list_filters(finished_batch: Batch, owner_client: APIClient) -> None:
    url = f"{BATCHES}{finished_batch.pk}/jobs/"
    assert owner_client.get(url).json()["count"] == 4
    assert owner_client.get(url, {"status": "failed"}).json()["count"] == 0


def test_models_endpoint(owner_client: APIClient) -> None:
    models = {m["name"]: m for m in owner_client.get("/api/v3/models/").json()["models"]}
    assert set(models) == {"boltz2", "ligand-profile"}
    metrics = {m["name"]: m for m in models["boltz2"]["metrics"]}
    assert metrics["affinity_pred_value"]["better"] == "lower"
    assert metrics["affinity_probability_binary"]["better"] == "higher"


def test_list_query_count_is_constant(
    make_batch: Callable[..., Batch], owner_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    for i in range(5):
        make_batch(name=f"b{i}")
    with django_assert_max_num_queries(6):
        assert owner_client.get(BATCHES).status_code == 200

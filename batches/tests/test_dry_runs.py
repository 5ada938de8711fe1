"""Large dry runs: 202, validated in the background like a batch, the inline report at the end
(batches/services/dry_runs.py)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from batches.background import intake as background
from batches.background.loop import run_once
from batches.models import Batch, DryRun, IntakeChunk, Job
from batches.services import dry_runs, intake, submission
from batches.tests.test_concurrency import race, unexpected
from batches.tests.test_intake import MIXED
from batches.validation.ligands import raw_from_json
from conftest import CDK2

VALIDATE = "/api/v3/batches/validate"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setattr(submission, "INTAKE_CHUNK", 3)
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 2


def _validate(client: APIClient, ligands: list[Any] = MIXED, **fields: Any) -> Any:
    return client.post(VALIDATE, {"protein_sequence": CDK2, "ligands": ligands, **fields}, format="json")


def _without_queue(report: dict[str, Any]) -> dict[str, Any]:
    # Where the batch would queue is read when the report is made; nothing else may differ.
    return {key: value for key, value in report.items() if key != "queue"}


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"standardize": False},
        {"on_invalid": "reject"},
        {"allow_duplicates": True},
        {"options": {"conformer": False}, "timeout_seconds": 20},
    ],
)
def test_a_large_dry_run_reports_what_an_inline_one_reports(
    owner_client: APIClient,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    validate_in_background: Callable[[], int],
    fields: dict[str, Any],
) -> None:
    inline = _validate(owner_client, **fields)
    assert inline.status_code == 200, inline.content[:300]
    monkeypatch.setattr(submission, "INTAKE_CHUNK", 3)
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 2
    accepted = _validate(owner_client, **fields)
    assert accepted.status_code == 202, accepted.content[:300]
    body = accepted.json()
    assert body["status"] == "validating" and body["report"] is None
    assert body["intake"] == {"submitted": len(MIXED), "validated": 0}
    assert accepted["Location"] == body["url"]
    assert IntakeChunk.objects.filter(dry_run_id=body["id"]).count() == 4  # 11 ligands, 3 a chunk
    assert validate_in_background() >= 1
    done = owner_client.get(body["url"]).json()
    assert done["status"] == "done" and done["intake"] is None and done["finished_at"] is not None
    assert _without_queue(done["report"]) == _without_queue(inline.json())
    assert not IntakeChunk.objects.exists()  # chunks go once used
    assert not Batch.objects.exists() and not Job.objects.exists()  # a dry run stores no batch


def test_the_dry_run_shows_its_progress(owner_client: APIClient, small_chunks: None) -> None:
    url = _validate(owner_client).json()["url"]
    chunk = intake.intake_claim(limit=1)[0]
    intake.intake_store(chunk=chunk, results=background.check_chunk(chunk.items, chunk.first_index, chunk.limits, True))
    assert owner_client.get(url).json()["intake"] == {"submitted": len(MIXED), "validated": 3}


def test_whole_batch_problems_are_answered_before_the_202(owner_client: APIClient, small_chunks: None) -> None:
    assert _validate(owner_client, protein_sequence="NOT A PROTEIN 123").status_code == 400
    assert _validate(owner_client, options={"force_field": "nope"}).status_code == 400
    assert _validate(owner_client, on_invalid="maybe").status_code == 400
    assert not DryRun.objects.exists() and not IntakeChunk.objects.exists()


def test_a_dry_run_is_its_owner_s_only(
    owner_client: APIClient,
    outsider_client: APIClient,
    staff_client: APIClient,
    small_chunks: None,
    validate_in_background: Callable[[], int],
) -> None:
    url = _validate(owner_client).json()["url"]
    validate_in_background()
    for client in (outsider_client, staff_client):  # a dry run is private to whoever made it
        assert client.get(url).status_code == 404
        assert client.delete(url).status_code == 404
    assert APIClient().get(url).status_code in (401, 403)
    assert owner_client.get(url).status_code == 200


@pytest.mark.parametrize("bad", ["0" * 32 + "-", "-" * 36, "f" * 33])
def test_a_malformed_dry_run_id_is_404(owner_client: APIClient, bad: str) -> None:
    assert owner_client.get(f"{VALIDATE[:-8]}validations/{bad}").status_code == 404


def test_a_dropped_dry_run_takes_its_chunks_and_a_late_store_writes_nothing(
    owner_client: APIClient, small_chunks: None, validate_in_background: Callable[[], int]
) -> None:
    url = _validate(owner_client).json()["url"]
    held = intake.intake_claim(limit=1)[0]
    assert owner_client.delete(url).status_code == 204
    assert owner_client.get(url).status_code == 404
    assert not IntakeChunk.objects.exists()
    assert not intake.intake_store(chunk=held, results=[])
    assert validate_in_background() == 0


def test_a_dry_run_whose_worker_died_before_its_report_gets_it_from_the_next(
    owner_client: APIClient, small_chunks: None
) -> None:
    url = _validate(owner_client).json()["url"]
    for chunk in intake.intake_claim(limit=100):
        intake.intake_store(
            chunk=chunk, results=background.check_chunk(chunk.items, chunk.first_index, chunk.limits, True)
        )
    assert owner_client.get(url).json()["status"] == "validating"
    assert background.step()  # nothing left to claim: the next pass writes the report
    assert owner_client.get(url).json()["status"] == "done"


def test_dry_runs_expire(owner_client: APIClient, small_chunks: None, settings: Any) -> None:
    settings.OMTX_DRY_RUN_HOURS = 2
    old, new = (_validate(owner_client).json()["id"] for _ in range(2))
    DryRun.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(hours=2, seconds=1))
    assert dry_runs.dry_runs_expire() == 1
    assert list(DryRun.objects.values_list("pk", flat=True)) == [DryRun.objects.get(pk=new).pk]
    assert IntakeChunk.objects.filter(dry_run_id=old).count() == 0
    body = owner_client.get(f"{VALIDATE[:-8]}validations/{new}").json()
    created = DryRun.objects.get(pk=new).created_at
    assert body["expires_at"] == (created + timedelta(hours=2)).isoformat().replace("+00:00", "Z")


def test_the_background_loop_expires_dry_runs(owner_client: APIClient, small_chunks: None) -> None:
    run_id = _validate(owner_client).json()["id"]
    DryRun.objects.filter(pk=run_id).update(created_at=timezone.now() - timedelta(days=30))
    run_once()
    assert not DryRun.objects.exists()


def test_batches_and_dry_runs_validate_side_by_side(
    owner_client: APIClient, small_chunks: None, validate_in_background: Callable[[], int]
) -> None:
    run_url = _validate(owner_client).json()["url"]
    batch_url = owner_client.post(
        "/api/v3/batches/", {"protein_sequence": CDK2, "ligands": MIXED}, format="json"
    ).json()["url"]
    validate_in_background()
    assert owner_client.get(run_url).json()["report"]["accepted"] == owner_client.get(batch_url).json()["total"]


def _stored_dry_run(owner: User, n: int) -> DryRun:
    ligands = [{"name": f"l{i}", "smiles": "C" * (i % 12 + 1) + "O" * (i // 12)} for i in range(n)]
    sub = submission.Submission(
        name="race", model="ligand-profile", protein_sequence=CDK2, ligands=raw_from_json(ligands)
    )
    return dry_runs.dry_run_start(owner=owner, submission=sub)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_finalizers_write_the_report_once(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submission, "INTAKE_CHUNK", 3)
    run = _stored_dry_run(owner, 30)
    for chunk in intake.intake_claim(limit=100):
        intake.intake_store(
            chunk=chunk, results=background.check_chunk(chunk.items, chunk.first_index, chunk.limits, True)
        )
    outcomes = race(*[lambda: dry_runs.dry_run_finalize(dry_run_id=run.pk) for _ in range(4)])
    assert not unexpected(outcomes)
    assert outcomes.count(True) == 1
    run.refresh_from_db()
    assert run.status == DryRun.Status.DONE and run.report is not None and run.report["accepted"] == 30
